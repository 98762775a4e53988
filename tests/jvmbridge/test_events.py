"""The live GC event stream: through a FIFO set at launch, and started on a running JVM by attach."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from jvmbridge.attach import attach
from jvmbridge.errors import JvmError
from jvmbridge.events import DECORATORS, HOLD, WHAT, EventStream, follow, make_fifo, xlog_options
from jvmbridge.gclog import PAUSE, SAFEPOINT, parse_file
from jvmbridge.jdk import Jdk


@pytest.mark.parametrize(
    "feature,gc",
    [("17", "G1"), ("17", "Z"), ("17", "Parallel"), ("25", "G1"), ("25", "Shenandoah"), ("25", "Z")],
)
def test_stream_at_launch_matches_the_log_file(
    feature: str, gc: str, request: pytest.FixtureRequest, start_jvm, tmp_path: Path
) -> None:
    jdk: Jdk = request.getfixturevalue(f"jdk{feature}")
    fifo = make_fifo(tmp_path)
    log = tmp_path / "gc.log"
    with EventStream(fifo) as stream:
        jvm = start_jvm(
            jdk,
            "-Xmx32m",
            f"-XX:+Use{gc}GC",
            *xlog_options(fifo),
            f"-Xlog:{WHAT}:file={log}:{DECORATORS}",
            main="GcWorkload",
            args=("25", "12"),
            wait_ready=False,
        )
        events = list(stream.events(timeout=120, until=lambda: jvm.proc.poll() is not None))
    assert jvm.proc.wait(timeout=60) == 0
    from_file = parse_file(log)

    def key(kinds: tuple[str, ...], evs: list) -> list[tuple[object, ...]]:
        # generation and start too: ZGC's young and old "Pause Mark End" of one collection can have the
        # same duration and time-to-safepoint to the nanosecond
        return sorted(
            (e.kind, e.gc_id, e.generation or "", e.name, e.start, e.duration, e.time_to_safepoint or 0.0)
            for e in evs
            if e.kind in kinds
        )

    pauses = key((PAUSE,), events)
    assert pauses, "the workload made no GC pause"
    assert pauses == key((PAUSE,), from_file)
    assert len(set(pauses)) == len(pauses)  # each once
    assert key(("cycle", "concurrent", SAFEPOINT), events) == key(
        ("cycle", "concurrent", SAFEPOINT), from_file
    )


def test_follow_a_running_jvm(jdk: Jdk, start_jvm) -> None:
    jvm = start_jvm(jdk)
    vm = attach(jvm.pid)
    with follow(jvm.pid) as stream:
        folder = Path(f"/proc/{jvm.pid}/root") / stream.jvm_path.lstrip("/")
        assert folder.exists()
        assert stream.jvm_path in vm.jcmd("VM.log list")
        vm.jcmd("GC.run")
        vm.jcmd("GC.run")
        pauses = []
        deadline = time.monotonic() + 20
        for event in stream.events(timeout=20):
            if event.kind == PAUSE:
                pauses.append(event)
            if len(pauses) == 2 or time.monotonic() > deadline:
                break
    assert [p.cause for p in pauses] == ["Diagnostic Command"] * 2
    assert all(p.name == "Pause Full" and p.time_to_safepoint is not None for p in pauses)
    assert pauses[0].gc_id is not None and pauses[1].gc_id == pauses[0].gc_id + 1
    # closing stops the JVM's logging to us and removes the FIFO
    assert stream.jvm_path not in vm.jcmd("VM.log list")
    assert not folder.parent.exists()
    assert jvm.proc.poll() is None


def test_cli_events(jdk17: Jdk, start_jvm, classes: Path) -> None:
    import json
    import sys

    jvm = start_jvm(jdk17)

    def collect() -> None:
        time.sleep(1.5)
        attach(jvm.pid).jcmd("GC.run")

    trigger = threading.Thread(target=collect)
    trigger.start()
    code = "from osv_java.jvm_commands import jvm_group; jvm_group()"
    out = subprocess.run(
        [sys.executable, "-c", code, "events", str(jvm.pid), "--json", "--duration", "4"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    trigger.join()
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    [pause] = [e for e in events if e["kind"] == PAUSE]
    assert pause["name"] == "Pause Full" and pause["cause"] == "Diagnostic Command"
    assert pause["heap_capacity"] > 0 and pause["duration"] > 0


def test_follow_refuses_a_bad_selection(jdk17: Jdk, start_jvm) -> None:
    jvm = start_jvm(jdk17)
    with pytest.raises(JvmError, match="refused the log configuration"):
        follow(jvm.pid, what="nosuchtag=info")
    leftovers = [
        p for p in Path(f"/proc/{jvm.pid}/root/tmp").iterdir() if p.name.startswith("osv-java-events-")
    ]
    assert leftovers == []


def test_xlog_options(tmp_path: Path) -> None:
    opts = xlog_options(tmp_path / "f")
    assert opts[0] == "-Xlog:async"
    assert opts[1] == f"-Xlog:{WHAT}:file={tmp_path / 'f'}:{DECORATORS}:filecount=0"
    assert xlog_options("/x", use_async=False) == [f"-Xlog:{WHAT}:file=/x:{DECORATORS}:filecount=0"]
    with pytest.raises(JvmError, match="cannot take"):
        xlog_options("/tmp/a:b")


def test_stream_reads_lines_split_across_writes(tmp_path: Path) -> None:
    fifo = make_fifo(tmp_path)
    with EventStream(fifo) as stream:
        fd = os.open(fifo, os.O_WRONLY)
        os.write(fd, b"[1.000000000s][info][gc] GC(0) Pause Young (Allocation Failure) 16M->1M(61M) 1.0")
        assert stream.poll(0.05) == []
        os.write(fd, b"00ms\n")
        os.close(fd)
        got = stream.poll(0.5)
        deadline = time.monotonic() + HOLD + 2
        while not got and time.monotonic() < deadline:  # no safepoint line follows: released after HOLD
            got = stream.poll(0.1)
        [event] = got
    assert event.duration == pytest.approx(1e-3) and event.gc_id == 0


def test_a_late_safepoint_line_still_gives_the_pause_its_time_to_safepoint(tmp_path: Path) -> None:
    """The JVM's log writer can wait for a CPU between a pause line and its safepoint line: a stream
    must pair them as the log file does, not release the pause when the pipe is briefly quiet."""
    fifo = make_fifo(tmp_path)
    with EventStream(fifo) as stream:
        fd = os.open(fifo, os.O_WRONLY)
        os.write(fd, b"[1000000000ns][info][gc,phases] GC(3) Y: Pause Mark Start (Major) 0.015ms\n")
        assert stream.poll(0.3) == [] and stream.poll(0.3) == []
        os.write(fd, b'[1000100000ns][info][safepoint] Safepoint "ZMarkStart", Time since last: 5 ns, '
                     b"Reaching safepoint: 40000 ns, At safepoint: 20000 ns, Total: 60000 ns\n")
        os.close(fd)
        events = stream.poll(0.5)
    [pause] = [e for e in events if e.kind == PAUSE]
    assert pause.time_to_safepoint == pytest.approx(40e-6)
    assert [e.kind for e in events] == [PAUSE, SAFEPOINT]


def test_once_safepoints_show_a_pause_waits_past_hold_for_its_own(tmp_path: Path) -> None:
    """A guest starved of CPU can send a pause's safepoint line seconds late: a stream that logs
    safepoints waits for it rather than strip the pause of its time-to-safepoint."""
    fifo = make_fifo(tmp_path)
    safepoint = (b'[%dns][info][safepoint] Safepoint "G1CollectForAllocation", Time since last: 5 ns, '
                 b"Reaching safepoint: 70000 ns, At safepoint: 2000000 ns, Total: 2070000 ns\n")
    with EventStream(fifo) as stream:
        fd = os.open(fifo, os.O_WRONLY)
        os.write(fd, safepoint % 500_000_000)
        assert [e.kind for e in stream.poll(0.5)] == [SAFEPOINT]
        os.write(fd, b"[1000000000ns][info][gc] GC(0) Pause Young (Normal) (G1 Evacuation Pause) 9M->2M(64M) 2.000ms\n")
        deadline = time.monotonic() + HOLD + 1.0
        while time.monotonic() < deadline:
            assert stream.poll(0.2) == [], "the pause went out before its safepoint line"
        os.write(fd, safepoint % 1_000_100_000)
        os.close(fd)
        events = stream.poll(0.5)
    [pause] = [e for e in events if e.kind == PAUSE]
    assert pause.time_to_safepoint == pytest.approx(70e-6)
