"""The unified-logging parser on real logs of JDK 17 and 25 (tests/data/gclogs) and on single lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jvmbridge.errors import JvmError
from jvmbridge.gclog import CONCURRENT, CYCLE, PAUSE, SAFEPOINT, STALL, GcLogParser, parse_file, split_line

LOGS = Path(__file__).parent.parent / "data" / "gclogs"
FIXTURES = sorted(p.name for p in LOGS.glob("*.log"))
M = 1 << 20

# an independent count: a pause line is a gc or gc,phases line "GC(n) [Y: ]Pause ... <duration>"
PAUSE_LINE = re.compile(r"\]\[gc(,phases)? *\] GC\((\d+)\) (?:[YOyo]: )?(Pause .*?) (\d+\.\d+)(ms|s)$")
SAFEPOINT_LINE = re.compile(r'\]\[safepoint *\] Safepoint "')


def test_fixtures_present() -> None:
    assert len(FIXTURES) >= 8, FIXTURES


@pytest.mark.parametrize("name", FIXTURES)
def test_every_pause_once_with_its_duration_and_ttsp(name: str) -> None:
    text = (LOGS / name).read_text()
    expected = []
    for line in text.splitlines():
        m = PAUSE_LINE.search(line)
        if m:
            scale = 1e-3 if m.group(5) == "ms" else 1.0
            expected.append((int(m.group(2)), round(float(m.group(4)) * scale, 9)))
    events = parse_file(LOGS / name)
    pauses = [(e.gc_id, e.duration) for e in events if e.kind == PAUSE]
    assert expected and pauses == expected
    assert all(e.time_to_safepoint is not None and e.time_to_safepoint > 0 for e in events if e.kind == PAUSE)
    assert sum(1 for e in events if e.kind == SAFEPOINT) == len(SAFEPOINT_LINE.findall(text))
    for e in events:
        assert e.start is not None and e.start > 0
        assert e.duration >= 0
        assert e.kind != PAUSE or e.cause or e.name in ("Pause Remark", "Pause Cleanup"), e


def test_g1_jdk17_values() -> None:
    # [0.078s][info][gc] GC(0) Pause Young (Normal) (G1 Evacuation Pause) ...
    events = parse_file(LOGS / "g1-jdk17.log")
    first = events[0]
    assert (first.kind, first.name, first.cause, first.gc_id) == (
        PAUSE,
        "Pause Young (Normal)",
        "G1 Evacuation Pause",
        0,
    )
    line = next(
        x for x in (LOGS / "g1-jdk17.log").read_text().splitlines() if "][gc       ] GC(0) Pause" in x
    )
    m = re.search(r"(\d+)M->(\d+)M\((\d+)M\) (\d+\.\d+)ms", line)
    assert m
    assert (first.heap_before, first.heap_after, first.heap_capacity) == tuple(
        int(m.group(i)) * M for i in (1, 2, 3)
    )
    assert first.duration == pytest.approx(float(m.group(4)) / 1e3)
    assert events[1].kind == SAFEPOINT and events[1].name == "G1CollectForAllocation"
    assert first.time_to_safepoint == events[1].time_to_safepoint
    cycles = [e for e in events if e.kind == CYCLE]
    assert cycles and all(e.name == "Concurrent Mark Cycle" for e in cycles)
    names = {e.name for e in events if e.kind == PAUSE}
    assert {"Pause Remark", "Pause Cleanup", "Pause Young (Concurrent Start)"} <= names


def test_zgc_jdk17_cycles_measured_from_their_start() -> None:
    text = (LOGS / "z-jdk17.log").read_text()
    events = parse_file(LOGS / "z-jdk17.log")
    cycles = [e for e in events if e.kind == CYCLE]
    assert len(cycles) == len(re.findall(r"\] GC\(\d+\) Garbage Collection \(.*\) \d+M\(", text))
    for c in cycles:
        assert c.name == "Garbage Collection" and c.cause and c.duration > 0
        assert c.heap_before and c.heap_after is not None and c.heap_capacity is None
        pauses = [e for e in events if e.kind == PAUSE and e.gc_id == c.gc_id]
        assert [p.name for p in pauses] == ["Pause Mark Start", "Pause Mark End", "Pause Relocate Start"]
        assert all(c.start <= p.start for p in pauses if c.start is not None and p.start is not None)
    assert any(e.kind == CONCURRENT and e.name == "Concurrent Mark" for e in events)


def test_zgc_jdk25_generations() -> None:
    events = parse_file(LOGS / "z-jdk25.log")
    pauses = [e for e in events if e.kind == PAUSE]
    assert {e.generation for e in pauses} <= {"young", "old"} and "young" in {e.generation for e in pauses}
    cycles = [e for e in events if e.kind == CYCLE]
    assert cycles and {c.name for c in cycles} <= {"Major Collection", "Minor Collection"}
    assert all(c.duration > 0 for c in cycles)


def test_shenandoah_cause_comes_from_trigger() -> None:
    events = parse_file(LOGS / "shenandoah-jdk25.log")
    first = next(e for e in events if e.kind == PAUSE)
    assert first.name == "Pause Init Mark (unload classes)"
    assert first.cause and "threshold" in first.cause
    assert any(e.kind == CONCURRENT and e.heap_before is not None for e in events)


def test_split_line_decorations() -> None:
    a = split_line("[2026-11-26T23:11:26.123+0000][0.061s][info][gc] GC(0) Pause Young 12M->1M(256M) 1.645ms")
    assert (a.uptime, a.level, a.tags) == (0.061, "info", ("gc",))
    assert a.message.startswith("GC(0) Pause Young")
    b = split_line("[61ms][1795734635509ms][debug][gc,phases   ] x")
    assert (b.uptime, b.level, b.tags, b.message) == (0.061, "debug", ("gc", "phases"), "x")
    c = split_line("[1795734635509123456ns][61000000ns][12345][safepoint] y")
    assert c.uptime == 0.061 and c.tags == ("safepoint",)
    d = split_line("GC(3) Pause Full (System.gc()) 10M->5M(24M) 4.194ms")
    assert d.uptime is None and d.tags is None and d.message.startswith("GC(3)")


def test_undecorated_lines_and_causes() -> None:
    parser = GcLogParser(hold_pauses=False)
    [full] = parser.feed("GC(3) Pause Full (System.gc()) 10M->5M(24M) 4.194ms")
    assert (full.name, full.cause, full.heap_before, full.start) == (
        "Pause Full",
        "System.gc()",
        10 * M,
        None,
    )
    [young] = parser.feed(
        "GC(4) Pause Young (Concurrent Start) (G1 Humongous Allocation) 20M->19M(64M) 0.5ms"
    )
    assert (young.name, young.cause) == ("Pause Young (Concurrent Start)", "G1 Humongous Allocation")
    assert parser.feed("[0.1s][info][gc,heap] GC(4) Eden regions: 1->0(2)") == []
    assert parser.feed("[0.1s][info][gc,stats] Pause Init Mark (N)   64 us") == []


def test_held_pause_released_by_its_safepoint_in_order() -> None:
    parser = GcLogParser()
    assert (
        parser.feed("[1.000000000s][info][gc] GC(1) Pause Young (Allocation Failure) 16M->1M(61M) 1.000ms")
        == []
    )
    assert parser.feed("[1.000100000s][info][gc] GC(0) Concurrent Mark Cycle 2.000ms") == []
    out = parser.feed(
        '[1.000200000s][info][safepoint] Safepoint "ParallelGCFailedAllocation", Time since last: 5 ns, '
        "Reaching safepoint: 3000 ns, At safepoint: 1100000 ns, Leaving safepoint: 1000 ns, Total: 1104000 ns"
    )
    assert [e.kind for e in out] == [PAUSE, CYCLE, SAFEPOINT]
    assert out[0].time_to_safepoint == pytest.approx(3e-6)
    assert out[2].duration == pytest.approx(1.104e-3)
    # a safepoint that ended before the pause was logged does not lend it its TTSP
    parser.feed("[5.0s][info][gc] GC(2) Pause Young (Allocation Failure) 16M->1M(61M) 1.000ms")
    out = parser.feed('[9.0s][info][safepoint] Safepoint "Cleanup", Reaching safepoint: 1 ns, Total: 2 ns')
    assert out[0].time_to_safepoint is None
    parser.feed("[9.5s][info][gc] GC(3) Pause Young (Allocation Failure) 16M->1M(61M) 1.000ms")
    assert [e.gc_id for e in parser.flush()] == [3]


def test_stall_events() -> None:
    [stall] = GcLogParser().feed("[0.176924197s][info][gc] Allocation Stall (main) 7.957ms")
    assert (stall.kind, stall.cause, stall.duration) == (STALL, "main", pytest.approx(7.957e-3))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(JvmError, match="cannot read GC log"):
        parse_file(tmp_path / "nope.log")


def test_g1_jdk25_evacuation_failure_is_a_qualifier_not_the_cause() -> None:
    # a 96 MB heap holding 40 MB live: "(G1 Evacuation Pause) (Evacuation Failure: Allocation)"
    events = parse_file(LOGS / "g1-jdk25-tight.log")
    failed = [e for e in events if e.kind == PAUSE and "Evacuation Failure" in e.name]
    assert failed, "the fixture has an evacuation failure"
    assert all(e.cause == "G1 Evacuation Pause" for e in failed)
    assert failed[0].name == "Pause Young (Normal) (Evacuation Failure: Allocation)"


@pytest.mark.parametrize("name", [n for n in FIXTURES if n.endswith("-tight.log")])
def test_tight_heaps_full_collections_stalls_and_aborted_cycles(name: str) -> None:
    """Logs of a 40 MB live set in a 96 MB heap (`osv-java run --gc-log`, examples/gclive 1 40; the
    Shenandoah and JDK 25 ZGC ones cut after their first 350 lines, at a safepoint line): every
    collector's pauses still carry a heap capacity (where the collector logs one), and ZGC's
    allocation stalls are events of their own."""
    events = parse_file(LOGS / name)
    pauses = [e for e in events if e.kind == PAUSE]
    assert pauses
    if name.startswith(("g1", "parallel", "serial")):
        assert all(e.heap_capacity and e.heap_capacity <= 96 * M for e in pauses)
        assert any(e.name.startswith("Pause Full") for e in pauses) or name.startswith("g1-jdk17")
    if name == "z-jdk17-tight.log":
        assert any(e.kind == STALL for e in events)
