"""The dynamic heap on real JVMs (JDK 17): the supervisor beside a running JVM, as --target process and
`osv-java attach` run it. Each test starts its own JVM and keeps to about 30 s."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from heaptest import MB, Holder, wait_for
from hookevents import Events

from gc_hooks.dynamic_heap.actuate import flag_value
from gc_hooks.dynamic_heap.policy import DynamicHeap
from gc_hooks.dynamic_heap.signals import JvmReader, Window, memory_cgroup
from gc_hooks.dynamic_heap.supervisor import DynamicHeapSupervisor
from gc_hooks.runner import SupervisorRunner
from gc_hooks.seam import Machine, SupervisorSpec
from jvmbridge.attach import attach
from jvmbridge.hsperf import PerfData

StartHolder = Callable[..., Holder]


def launch_options(*user: str) -> list[str]:
    return [*DynamicHeap().jvm_options(Machine("process", None, 2, 17, user)), *user]


def spec(target: str = "process", **decide: float) -> SupervisorSpec:
    made = DynamicHeap(interval=0.5).supervisor(Machine(target, None, 2, 17))
    assert made is not None
    made.settings["decide"] = decide
    return made


def flag(pid: int, name: str) -> int:
    return int(flag_value(attach(pid).printflag(name)))


@pytest.mark.parametrize("collector", ["-XX:+UseG1GC", "-XX:+UseZGC"])
def test_after_a_burst_the_heap_goes_back_to_the_live_set_and_not_below(start_holder: StartHolder,
                                                                        collector: str) -> None:
    jvm = start_holder(*launch_options("-Xmx2g", collector))
    jvm.say("live 700")  # the burst
    jvm.say("live 200")  # what stays live after it
    burst = jvm.committed()
    assert burst >= 600 * MB
    events = Events()
    with SupervisorRunner([spec()], events) as runner:
        runner.start(jvm.pid)
        goal = max(1.5 * 200 * MB, 64 * MB)
        assert wait_for(lambda: jvm.committed() <= goal, 25), (
            f"committed {jvm.committed() // MB} MB, events {[e.line() for e in events.events]}")
        for _ in range(8):  # and it stays above the live set (ZGC's used counter lags: the set itself)
            assert jvm.committed() >= 200 * MB
            wait_for(lambda: False, 0.25)
    assert "shrink" in events.whats()
    assert any("GC.run" in e.why for e in events.events)


def test_heap_shrinks_when_the_cgroup_limit_drops_and_grows_back_when_it_rises(
        start_holder: StartHolder, memory_cgroup_v1: Path) -> None:
    limit_file = memory_cgroup_v1 / "memory.limit_in_bytes"
    limit_file.write_text(str(3 * 1024 * MB))
    jvm = start_holder(*launch_options("-Xmx2g", "-XX:+UseG1GC"), cgroup=memory_cgroup_v1)
    jvm.say("live 700")
    jvm.say("live 120")
    jvm.say("spin 40")  # the app works
    jvm.say("churn 20")
    cgroup = memory_cgroup(jvm.pid)
    assert cgroup is not None and cgroup.path == memory_cgroup_v1
    events = Events()
    # a generous calm headroom (6 x the live set), so that only pressure can take the heap down here
    supervisor = spec(headroom=5.0).make()
    assert isinstance(supervisor, DynamicHeapSupervisor)
    supervisor.start(jvm.pid, events)

    def ticking(check: Callable[[], bool], timeout: float) -> bool:
        def step() -> bool:
            supervisor.tick(time.monotonic())
            return check()
        return wait_for(step, timeout, step=0.5)

    def squeeze(share: float = 0.93) -> None:
        usage = cgroup.usage()  # what cannot be dropped at once (page cache left out)
        assert usage is not None
        limit_file.write_text(str(int(usage / share)))  # above it, past the 90 % high mark

    def settled() -> bool:
        first = cgroup.usage() or 0
        ticking(lambda: False, 1)
        return abs((cgroup.usage() or 0) - first) < 4 * MB

    try:
        ticking(lambda: False, 3)
        # G1 may have shrunk by itself after the burst (a remark keeps at most 70 % free: 120 MB live
        # leaves 400 MB or more); going below 300 MB below is the pressure's doing
        before = jvm.committed()
        assert before >= 400 * MB, f"{before // MB} MB committed before the limit dropped"
        squeeze()
        assert ticking(lambda: jvm.committed() < 300 * MB, 20), (
            f"committed {jvm.committed() // MB} MB, events {[e.line() for e in events.events]}")
        jvm.say("churn 0")  # hold the heap still while the limit follows it down
        jvm.say("spin 0")
        assert wait_for(settled, 10, step=0)  # G1 uncommits in the background
        squeeze(0.95)  # the pressure goes on
        assert ticking(lambda: "pressure for" in supervisor.decisions[-1].why, 10), (  # lasting pressure
            [(d.what, d.why, d.target // MB) for d in supervisor.decisions[-3:]], cgroup.limit(), cgroup.usage())
        pressed = supervisor.decisions[-1].target
        assert jvm.committed() >= jvm.used() >= 120 * MB  # never below the live set
        limit_file.write_text(str(3 * 1024 * MB))
        assert ticking(lambda: not supervisor.decisions[-1].pressure, 10)
        assert supervisor.decisions[-1].target > pressed  # room to grow again
        jvm.say("live 500")  # the app needs more: the heap grows with it
        assert ticking(lambda: jvm.committed() >= 500 * MB and supervisor.decisions[-1].target >= 500 * MB, 15)
    finally:
        supervisor.stop(exited=True)


def test_gc_time_past_the_limit_backs_off(start_holder: StartHolder) -> None:
    jvm = start_holder(*launch_options("-Xmx400m", "-XX:+UseG1GC"))
    jvm.say("live 150")
    events = Events()
    # the rule under test alone: without the one that hands sizing to the collector while the app works;
    # a 2 % limit: the churn's GC time depends on the machine (a fresh-clone run reached only 3.3 %)
    with SupervisorRunner([spec(work_collections=0, gc_limit=0.02)], events) as runner:
        runner.start(jvm.pid)
        assert wait_for(lambda: flag(jvm.pid, "MaxHeapFreeRatio") < 70, 10)  # quiet: shrinking
        jvm.say("spin 40")
        jvm.say("old 150")  # heavy old-generation churn in a small heap: GC time past the limit
        jvm.say("churn 300")
        assert wait_for(lambda: "backoff" in events.whats(), 15), [e.line() for e in events.events]
        backoff = next(e for e in events.events if e.what == "backoff")
        # the ratios went back to the JVM's own (40/70) at once: the collector sizes the heap again
        assert "GC time" in backoff.why
        assert re.search(r"MaxHeapFreeRatio \d+->70", backoff.why), backoff.why
        # MinHeapFreeRatio goes back to 40 too, unless it was there already
        assert "MinHeapFreeRatio" not in backoff.why or re.search(r"MinHeapFreeRatio \d+->40", backoff.why)


def test_an_app_that_works_hard_gets_the_collectors_sizing_and_the_lean_heap_after(
        start_holder: StartHolder) -> None:
    jvm = start_holder(*launch_options("-Xmx2g", "-XX:+UseG1GC"))
    jvm.say("live 300")
    jvm.say("live 50")
    events = Events()
    with SupervisorRunner([spec()], events) as runner:
        runner.start(jvm.pid)
        assert wait_for(lambda: flag(jvm.pid, "MaxHeapFreeRatio") < 70, 15)  # quiet: the lean heap
        jvm.say("spin 50")
        jvm.say("churn 300")  # a burst of allocation: young collections one after another
        assert wait_for(lambda: flag(jvm.pid, "MaxHeapFreeRatio") == 70, 15), [e.line() for e in events.events]
        assert any(e.what == "backoff" and "works" in e.why for e in events.events)
        jvm.say("churn 0")
        jvm.say("spin 0")
        assert wait_for(lambda: flag(jvm.pid, "MaxHeapFreeRatio") < 70, 15)  # quiet again: lean again


def test_detaching_puts_the_flags_back(start_holder: StartHolder) -> None:
    jvm = start_holder("-XX:+UseG1GC")  # a JVM started without our launch flags, as for `attach`
    jvm.say("live 300")
    jvm.say("live 20")
    before = {name: flag(jvm.pid, name) for name in ("MinHeapFreeRatio", "MaxHeapFreeRatio", "G1PeriodicGCInterval")}
    events = Events()
    runner = SupervisorRunner([spec("attach")], events)
    runner.start(jvm.pid)
    try:
        assert wait_for(lambda: flag(jvm.pid, "MaxHeapFreeRatio") != before["MaxHeapFreeRatio"], 10)
    finally:
        runner.stop(exited=False)
    after = {name: flag(jvm.pid, name) for name in before}
    assert after == before
    assert events.whats()[-1] == "restore"


def attach_failure(pid: int) -> str:
    """Why the supervisor's start on `pid` failed, as its first "failed" event says ("" if none)."""
    events = Events()
    runner = SupervisorRunner([spec("attach")], events)
    runner.start(pid)
    runner.stop(exited=False)
    failed = [e for e in events.events if e.what == "failed"]
    return failed[0].why if failed else ""


def test_attach_to_a_process_that_is_not_a_jvm_says_so() -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        assert "not a JVM" in attach_failure(sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_attach_to_a_jvm_that_refuses_attach_says_so(start_holder: StartHolder) -> None:
    jvm = start_holder("-XX:+DisableAttachMechanism")
    assert "does not accept attach" in attach_failure(jvm.pid)


def test_zgc_committed_heap_is_read_live_from_its_heap_file(start_holder: StartHolder) -> None:
    """ZGC's hsperfdata capacity is refreshed only when a collection ends and never by an uncommit; the
    stats (and so the controller) read its heap file and agree with the JVM's own GC.heap_info."""
    jvm = start_holder("-Xmx2g", "-XX:+UseZGC", "-XX:ZUncommitDelay=1")
    jvm.say("live 600")
    jvm.say("live 100")
    attach(jvm.pid).jcmd("GC.run")
    attach(jvm.pid).setflag("SoftMaxHeapSize", 256 * MB)

    def heap_info_capacity() -> int:
        text = attach(jvm.pid).jcmd("GC.heap_info")
        found = re.search(r"capacity (\d+)M", text)
        assert found, text
        return int(found.group(1)) * MB

    with PerfData.open(jvm.pid) as perf:
        stats = perf.stats()
        assert stats.generations and stats.collectors  # JDK 17's ZGC numbers them from 1 and 2
        assert stats.heap_capacity >= 500 * MB
        assert wait_for(lambda: heap_info_capacity() < 400 * MB, 20)  # the uncommitter ran (in steps)
        assert wait_for(lambda: abs(perf.stats().heap_capacity - heap_info_capacity()) <= 4 * MB, 10), (
            perf.stats().heap_capacity, heap_info_capacity())


JDKS = {17: Path("/usr/lib/jvm/java-17-openjdk-amd64"), 25: Path("/usr/lib/jvm/temurin-25-jdk-amd64")}


@pytest.mark.parametrize("jdk", sorted(JDKS))
@pytest.mark.parametrize("collector", ["-XX:+UseG1GC", "-XX:+UseParallelGC", "-XX:+UseSerialGC", "-XX:+UseZGC",
                                       "-XX:+UseShenandoahGC"])
def test_every_collector_starts_with_the_launch_flags(jdk: int, collector: str) -> None:
    """The flags the policy adds must be ones the JDK accepts: Shenandoah's uncommit delay is experimental."""
    java = JDKS[jdk] / "bin" / "java"
    if not java.exists():
        pytest.skip(f"JDK {jdk} not installed at {JDKS[jdk]}")
    options = [*DynamicHeap().jvm_options(Machine("process", None, 2, jdk, (collector,))), collector]
    proc = subprocess.run([str(java), *options, "-XX:+PrintFlagsFinal", "-version"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    if collector == "-XX:+UseShenandoahGC":
        assert re.search(r"ShenandoahUncommitDelay\s+= 1000 ", proc.stdout)
    if collector == "-XX:+UseZGC":
        assert re.search(r"ZUncommitDelay\s+= 1 ", proc.stdout)


def test_a_quiet_zgc_giving_memory_back_does_not_look_busy(start_holder: StartHolder) -> None:
    """ZGC's uncommitter takes CPU for a second or more after a burst (gigabytes given back): that is
    the collector's, not the app's, or a quiet JVM looks busy and the controller backs off mid-shrink."""
    jvm = start_holder("-Xmx3g", "-XX:+UseZGC", "-XX:ZUncommitDelay=3")
    jvm.say("live 1500")
    jvm.say("live 0")
    attach(jvm.pid).jcmd("GC.run")
    time.sleep(1)  # the collection is over; its memory goes back ZUncommitDelay (3 s) after it was freed
    reader = JvmReader(jvm.pid)
    try:
        before = reader.sample()
        window = Window()
        window.add(before)
        ticks = []
        for _ in range(14):
            time.sleep(0.5)
            window.add(reader.sample())
            ticks.append(window.busy())
        after = window.samples[-1]
    finally:
        reader.close()
    assert before.committed - after.committed >= 1000 * MB, "the uncommitter gave back too little to test"
    gc_cpu = after.gc_cpu_time - before.gc_cpu_time
    app_cpu = after.cpu_time - before.cpu_time - gc_cpu
    assert not any(ticks), f"busy ticks {ticks}; app CPU {app_cpu:.2f} s, GC CPU {gc_cpu:.2f} s"
