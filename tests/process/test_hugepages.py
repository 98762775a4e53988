"""Huge pages on real JVMs of this host: the policy's flags put the heap on huge pages (read from
/proc/PID/smaps), off puts none there, the external collapse repairs a JVM started without flags, a
refused collapse is one line, and the supervisor measures, warns and repairs beside a live JVM."""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hookevents import Events
from osvtest import kill_if_running, release_waiting

from gc_hooks.hugepages import HugePages
from gc_hooks.hugepages.collapse import collapse
from gc_hooks.hugepages.system import bracketed
from gc_hooks.runner import SupervisorRunner
from gc_hooks.seam import Machine, SupervisorSpec
from jvmbridge import smaps

ROOT = Path(__file__).resolve().parents[2]
JDKS = {"17": Path("/usr/lib/jvm/java-17-openjdk-amd64"),
        "25": next(iter(sorted(Path("/usr/lib/jvm").glob("temurin-25*"))), Path("/nonexistent"))}
HEAP = ("-Xms512m", "-Xmx512m")
FILL_MB = "400"
MB = 1 << 20


def thp_mode() -> str:
    try:
        return bracketed(Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text())
    except OSError:
        return ""


@dataclass
class Jvm:
    proc: subprocess.Popen[str]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def say(self, line: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "done"


@pytest.fixture(scope="module", params=sorted(JDKS))
def java(request: pytest.FixtureRequest) -> Path:
    home = JDKS[request.param]
    if not (home / "bin" / "java").exists():
        pytest.skip(f"JDK {request.param} is not installed")
    return home / "bin" / "java"


@pytest.fixture(scope="module")
def heapfill(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("heapfill")
    javac = JDKS["17"] / "bin" / "javac"
    subprocess.run([str(javac), "--release", "17", "-d", str(out), str(ROOT / "tests/java/HeapFill.java")], check=True)
    return out


@pytest.fixture
def start(heapfill: Path) -> Iterator[object]:
    started: list[Jvm] = []

    def run(java: Path, *options: str, mb: str = FILL_MB) -> Jvm:
        proc = subprocess.Popen([str(java), *options, "-cp", str(heapfill), "HeapFill", mb], text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
        jvm = Jvm(proc)
        started.append(jvm)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("ready "), f"the JVM did not start: {line!r}"
        return jvm

    yield run
    for jvm in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(jvm.pid, signal.SIGKILL)
        jvm.proc.wait(timeout=30)


def policy_options(mode: str, target: str = "process") -> list[str]:
    machine = Machine(target=target, memory_mb=None, cpus=os.cpu_count(), jdk_feature=17, user_jvm_options=HEAP)
    return HugePages(mode).jvm_options(machine)


def test_policy_flags_put_a_512m_heap_on_huge_pages(java: Path, start) -> None:  # type: ignore[no-untyped-def]
    options = policy_options("auto")
    assert "-XX:+UseTransparentHugePages" in options
    jvm = start(java, *options, *HEAP)
    pages = smaps.heap_pages(jvm.pid)
    assert pages.source == "heap_info"
    assert pages.end - pages.start == 512 * MB
    assert pages.rss >= 350 * MB, pages.describe()
    assert pages.share >= 0.9, pages.describe()
    assert pages.region_size == 2 * MB  # the policy's -XX:G1HeapRegionSize=2m reached the JVM


def test_off_puts_nothing_on_huge_pages(java: Path, start) -> None:  # type: ignore[no-untyped-def]
    if thp_mode() == "always":
        pytest.skip("THP is 'always' on this host: every large anonymous mapping gets huge pages")
    assert policy_options("off") == []
    jvm = start(java, *HEAP)
    pages = smaps.heap_pages(jvm.pid)
    assert pages.rss >= 350 * MB
    assert pages.share < 0.05, pages.describe()


def test_external_collapse_repairs_a_jvm_started_without_flags(java: Path, start) -> None:  # type: ignore[no-untyped-def]
    if thp_mode() == "always":
        pytest.skip("THP is 'always' on this host: nothing to repair")
    jvm = start(java, *HEAP)
    before = smaps.heap_pages(jvm.pid)
    assert before.share < 0.1, before.describe()
    result = collapse(jvm.pid, [(m.start, m.end) for m in before.mappings])
    after = smaps.heap_pages(jvm.pid)
    assert result.error is None, result.line()
    assert result.steps >= before.rss // (8 * MB)  # in bounded steps, not one call
    assert after.share >= 0.9, after.describe()
    assert after.rss <= before.rss + 64 * MB  # nothing the JVM had not touched was committed
    jvm.say("fill")  # the JVM goes on working on its collapsed heap


def test_external_collapse_of_zgc_shared_memory_heap(start) -> None:  # type: ignore[no-untyped-def]
    jvm = start(JDKS["17"] / "bin" / "java", "-XX:+UseZGC", *HEAP)
    before = smaps.heap_pages(jvm.pid)
    assert before.kind == "shmem" and before.source == "memfd"
    collapse(jvm.pid, [(m.start, m.end) for m in before.mappings])
    after = smaps.heap_pages(jvm.pid)
    assert after.share >= 0.9, after.describe()


def test_refused_collapse_is_one_clear_line(start) -> None:  # type: ignore[no-untyped-def]
    if os.geteuid() != 0:
        pytest.skip("needs root to drop CAP_SYS_NICE from a child")
    jvm = start(JDKS["17"] / "bin" / "java", "-Xmx64m", mb="16")
    proc = subprocess.run(["setpriv", "--bounding-set=-sys_nice", sys.executable, "-m", "gc_hooks.hugepages",
                           "collapse", str(jvm.pid)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 125, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("osv-java: error: "), proc.stderr
    assert "CAP_SYS_NICE" in lines[0]


def test_collapse_of_a_process_that_is_gone_is_one_line() -> None:
    proc = subprocess.run([sys.executable, "-m", "gc_hooks.hugepages", "collapse", "999999999"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 125 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("osv-java: error: no process 999999999"), proc.stderr


def supervisor_spec(mode: str, target: str, **extra: object) -> SupervisorSpec:
    machine = Machine(target=target, memory_mb=None, cpus=os.cpu_count(), jdk_feature=17)
    spec = HugePages(mode).supervisor(machine)
    assert spec is not None
    return SupervisorSpec(spec.policy, spec.module, spec.cls, {**spec.settings, "first": 0.2, "interval": 0.5,
                                                               **extra})


def test_supervisor_repairs_a_jvm_started_without_flags(start) -> None:  # type: ignore[no-untyped-def]
    if thp_mode() == "always":
        pytest.skip("THP is 'always' on this host: nothing to repair")
    jvm = start(JDKS["17"] / "bin" / "java", *HEAP)
    channel = Events()
    with SupervisorRunner([supervisor_spec("auto", "attach")], channel) as runner:
        runner.start(jvm.pid)
        first = channel.wait("collapse")
        assert float(first.before.rstrip("%")) < 10, first.line()
        # a tick collapses for at most `budget` seconds: the rest follows in the next ticks
        done = channel.wait("collapse", until=lambda e: float(e.after.rstrip("%")) >= 90)
        assert done.line()
        measured = smaps.heap_pages(jvm.pid)
        assert measured.share >= 0.9, measured.describe()
        assert runner.active == ["hugepages"]
    assert any(e.what == "measure" for e in channel.events)


def test_supervisor_warns_and_says_why(start) -> None:  # type: ignore[no-untyped-def]
    if thp_mode() != "madvise":
        pytest.skip("the diagnosis checked here is the one for THP in 'madvise' mode")
    jvm = start(JDKS["17"] / "bin" / "java", *HEAP)
    channel = Events()
    with SupervisorRunner([supervisor_spec("thp", "process", collapse=False)], channel) as runner:
        runner.start(jvm.pid)
        warning = channel.wait("warning")
    assert "-XX:+UseTransparentHugePages" in warning.why, warning.line()
    assert "G1 regions of 1024 KB" in warning.why, warning.line()
    assert not any(e.what == "collapse" for e in channel.events)


def test_jvm_stats_shows_the_heaps_huge_page_share(start) -> None:  # type: ignore[no-untyped-def]
    import json

    osv = str(Path(sys.executable).parent / "osv-java")
    java = JDKS["17"] / "bin" / "java"
    on = start(java, *policy_options("auto"), *HEAP)
    record = json.loads(subprocess.run([osv, "jvm", "stats", str(on.pid), "--json"], capture_output=True,
                                       text=True, check=True, timeout=60).stdout)
    assert record["heap_hugepage_share"] >= 0.9 and record["heap_resident"] >= 350 * MB
    shown = subprocess.run([osv, "jvm", "stats", str(on.pid)], capture_output=True, text=True, check=True,
                           timeout=60).stdout
    assert "huge pages" in shown and "resident heap (" in shown
    if thp_mode() == "madvise":
        off = start(java, *HEAP)
        record = json.loads(subprocess.run([osv, "jvm", "stats", str(off.pid), "--json"], capture_output=True,
                                           text=True, check=True, timeout=60).stdout)
        assert record["heap_hugepage_share"] < 0.05


def test_collapse_refused_on_a_range_marked_nohugepage_says_so() -> None:
    import ctypes
    import mmap

    from gc_hooks.hugepages.collapse import CollapseError

    size = 16 * MB
    region = mmap.mmap(-1, size + 2 * MB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # as a JVM heap
    base = ctypes.addressof(ctypes.c_char.from_buffer(region))
    start = (base + 2 * MB - 1) // (2 * MB) * (2 * MB)
    region.madvise(mmap.MADV_NOHUGEPAGE)
    for offset in range(0, size + 2 * MB, 4096):
        region[offset] = 1
    with pytest.raises(CollapseError, match="not eligible"):
        collapse(os.getpid(), [(start, start + size)], strict=True)


def test_collapse_commits_nothing_the_process_had_not_touched() -> None:
    import ctypes
    import mmap

    size = 64 * MB
    region = mmap.mmap(-1, size + 2 * MB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # as a JVM heap
    base = ctypes.addressof(ctypes.c_char.from_buffer(region))
    start = (base + 2 * MB - 1) // (2 * MB) * (2 * MB)
    touched = 8 * MB
    first = start - base
    for offset in range(first, first + touched, 4096):
        region[offset] = 1
    result = collapse(os.getpid(), [(start, start + size)])
    assert result.requested == touched and result.collapsed == touched, result.line()
    mine = [m for m in smaps.read("self") if m.start <= start < m.end]
    assert mine and mine[0].rss <= touched + 4 * MB and mine[0].huge >= touched


def test_attach_hugepages_repairs_a_running_jvm(start) -> None:  # type: ignore[no-untyped-def]
    if thp_mode() == "always":
        pytest.skip("THP is 'always' on this host: nothing to repair")
    jvm = start(JDKS["17"] / "bin" / "java", *HEAP)
    assert smaps.heap_pages(jvm.pid).share < 0.1
    osv = str(Path(sys.executable).parent / "osv-java")
    proc = subprocess.run([osv, "attach", str(jvm.pid), "--hugepages", "--duration", "8"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "hugepages: collapse" in proc.stderr, proc.stderr
    after = smaps.heap_pages(jvm.pid)
    assert after.share >= 0.9, after.describe()


def test_a_collapse_out_of_budget_says_blocks_are_left() -> None:
    import ctypes
    import mmap

    size = 16 * MB
    region = mmap.mmap(-1, size + 2 * MB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    base = ctypes.addressof(ctypes.c_char.from_buffer(region))
    start = (base + 2 * MB - 1) // (2 * MB) * (2 * MB)
    for offset in range(start - base, start - base + size, 4096):
        region[offset] = 1
    cut = collapse(os.getpid(), [(start, start + size)], budget=0.0)
    assert cut.unfinished and cut.collapsed < size, cut.line()
    whole = collapse(os.getpid(), [(start, start + size)])
    assert not whole.unfinished and whole.collapsed == size, whole.line()


def test_supervisor_collapses_again_what_the_gc_uncommitted_and_committed_again(start) -> None:  # type: ignore[no-untyped-def]
    if thp_mode() == "always":
        pytest.skip("THP is 'always' on this host: nothing to repair")
    jvm = start(JDKS["17"] / "bin" / "java", "-Xms16m", "-Xmx512m")  # a heap G1 shrinks at a full GC
    channel = Events()
    with SupervisorRunner([supervisor_spec("auto", "attach")], channel) as runner:
        runner.start(jvm.pid)
        channel.wait("collapse", until=lambda e: float(e.after.rstrip("%")) >= 90)
        jvm.say("drop")  # a full GC: G1 uncommits the empty regions (in the background since JDK 17)
        for _ in range(100):
            shrunk = smaps.heap_pages(jvm.pid)
            if shrunk.rss < 200 * MB:
                break
            time.sleep(0.2)
        assert shrunk.rss < 200 * MB, shrunk.describe()
        with channel.lock:
            seen = len(channel.events)
        jvm.say("fill")  # committed again, on 4 KB pages: the JVM does not advise its heap
        again = channel.wait("collapse", timeout=60, until=lambda e: e in channel.events[seen:]
                             and float(e.after.rstrip("%")) >= 90)
        assert float(again.before.rstrip("%")) < 90, again.line()
    after = smaps.heap_pages(jvm.pid)
    assert after.rss >= 350 * MB and after.share >= 0.9, after.describe()


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_osv_java_run_on_the_process_target_with_a_512m_heap(mode: str, examples_built: Path) -> None:
    """As a user runs it: `osv-java run --target process` with no huge-page option puts the heap on
    huge pages (smaps, while the app waits), `--hugepages off` puts none there."""
    if mode == "off" and thp_mode() == "always":
        pytest.skip("THP is 'always' on this host: every large anonymous mapping gets huge pages")
    osv = str(Path(sys.executable).parent / "osv-java")
    proc = subprocess.Popen(
        [osv, "run", "--target", "process", "--bootchart", *(["--hugepages", "off"] if mode == "off" else []),
         "--jvm-opt=-Xms512m", "--jvm-opt=-Xmx512m", "examples/tlb/tlb.jar", "--array-mb", "384", "--graph-mb", "0",
         "--accesses", "1000", "--rounds", "1", "--wait"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        ready = proc.stdout.readline()
        assert ready.startswith("READY "), ready
        pages = smaps.heap_pages(int(ready.split()[1]))
        assert pages.end - pages.start == 512 * MB and pages.rss >= 384 * MB, pages.describe()
        if mode == "auto":
            assert pages.share >= 0.9, pages.describe()
        else:
            assert pages.share < 0.05, pages.describe()
        out, err = release_waiting(proc, 120)
    finally:
        kill_if_running(proc)
    assert proc.returncode == 0 and "RESULT ns_per_access=" in out, err
    assert ("hugepages: start" in err) == (mode == "auto"), err


def test_a_whole_blocks_collapse_leaves_partly_resident_blocks_alone() -> None:
    import ctypes
    import mmap

    region = mmap.mmap(-1, 8 * MB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # as a VM's guest RAM
    base = ctypes.addressof(ctypes.c_char.from_buffer(region))
    start = (base + 2 * MB - 1) // (2 * MB) * (2 * MB)
    first = start - base
    for offset in range(first, first + 2 * MB, 4096):  # one block wholly resident
        region[offset] = 1
    region[first + 2 * MB] = 1  # and one page of the next (the rest given back, or never touched)
    result = collapse(os.getpid(), [(start, start + 4 * MB)], whole=True)
    assert result.requested == 2 * MB and result.collapsed == 2 * MB, result.line()
    # the partly resident block did not grow (counted in pagemap: smaps would count the whole VMA,
    # which the kernel may have merged with a neighbouring anonymous mapping)
    assert resident_pages(start + 2 * MB, start + 4 * MB) <= 17  # its one page, and no more than 64 KB
    assert resident_pages(start, start + 2 * MB) == 512


def resident_pages(start: int, end: int) -> int:
    """Pages of this process present in RAM in [start, end), from /proc/self/pagemap (bit 63)."""
    with open("/proc/self/pagemap", "rb") as f:
        f.seek(start // 4096 * 8)
        entries = f.read((end - start) // 4096 * 8)
    return sum(1 for (entry,) in struct.iter_unpack("<Q", entries) if entry >> 63)
