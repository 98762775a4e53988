"""The startup-priority policy on real JVMs of the host (JDK 17, Debian's Clojure): C2's threads run
under SCHED_IDLE while the Clojure runtime loads and get their own scheduling back once it has, while
the JVM goes on; `osv-java run` runs it by default and `--startup-priority off` leaves the JVM alone."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from hookevents import Events
from osvtest import ROOT, Osv, explain, text

from gc_hooks.cpu_yield import can_restore
from gc_hooks.runner import SupervisorRunner
from gc_hooks.seam import HookEvent, Machine
from gc_hooks.startup_priority import C2_PREFIX, CompilerYield, StartupPriority

JAVA = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"
CLOJURE_CP = ":".join(f"/usr/share/java/{jar}" for jar in ("clojure.jar", "spec.alpha.jar", "core.specs.alpha.jar"))
CLOJURE = ROOT / "examples" / "lang" / "clojure"
# Loads the runtime and a few of its libraries (C1 busy), then idles for a while (C1 quiet), then ends.
PROBE = """(require 'clojure.pprint 'clojure.set 'clojure.walk 'clojure.data 'clojure.edn)
(println "loaded")
(flush)
(Thread/sleep 4000)
(println "done")
"""


def c2_scheduling(pid: int) -> list[tuple[int, int]]:
    """(policy, nice value) of each C2 thread."""
    values = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        if Path(f"/proc/{pid}/task/{tid}/comm").read_text().startswith(C2_PREFIX):
            values.append((os.sched_getscheduler(int(tid)), os.getpriority(os.PRIO_PROCESS, int(tid))))
    return values


@pytest.fixture(autouse=True)
def _can_put_priorities_back() -> None:
    if not can_restore(0):
        pytest.skip("the policy acts only where it may put a nice value back (root or RLIMIT_NICE)")


class SchedulingAtEvents(Events):
    """Events that also note the C2 threads' scheduling the moment each event is emitted."""

    def __init__(self, pid: int) -> None:
        super().__init__()
        self.pid = pid
        self.at: dict[str, list[tuple[int, int]]] = {}

    def emit(self, event: HookEvent) -> None:
        self.at.setdefault(event.what, c2_scheduling(self.pid))
        super().emit(event)


def test_c2_yields_while_the_runtime_loads_and_gets_its_priority_back(tmp_path: Path) -> None:
    """The mechanism on a real JVM: its C2 threads found by name, slowed, and put back while it lives.
    When C2 yields is the decision's (tests/unit/test_startup_priority_phase.py); here it yields as
    soon as the JVM runs at all (busy share 0), so a machine loaded by other work cannot keep it from
    yielding."""
    probe = tmp_path / "probe.clj"
    probe.write_text(PROBE)
    proc = subprocess.Popen([JAVA, "-cp", CLOJURE_CP, "clojure.main", str(probe)], stdout=subprocess.PIPE, text=True)
    spec = StartupPriority().supervisor(Machine("process", None, 2, 17))
    assert spec is not None
    events = SchedulingAtEvents(proc.pid)
    runner = SupervisorRunner([replace(spec, settings={"busy_share": 0.0})], events)
    runner.start(proc.pid)
    try:
        events.wait("yield", timeout=30)
        restored = events.wait("restore", timeout=30)
        after = c2_scheduling(proc.pid)
        alive = proc.poll() is None
        out, _ = proc.communicate(timeout=60)
    finally:
        runner.stop(exited=True)
        proc.kill()
        proc.wait()
    assert events.at["yield"] and all(policy == os.SCHED_IDLE for policy, _ in events.at["yield"]), events.at
    assert after and all(scheduling == (os.SCHED_OTHER, 0) for scheduling in after), (after, restored.line())
    assert alive, "start-up was over only when the JVM had exited"  # it sleeps 4 s after loading
    assert proc.returncode == 0 and out == "loaded\ndone\n"
    assert "failed" not in events.whats()


def decisions(stderr: str) -> list[str]:
    return re.findall(r"^\s+[\d:]+\s+(startup-priority: .*)$", stderr.partition("policy decisions")[2], re.M)


def test_run_applies_it_by_default_and_off_leaves_the_jvm_alone(osv: Osv) -> None:
    """Its supervisor runs beside the JVM by default: a JVM of C1 alone has no C2 to slow, and it says
    so; with --startup-priority off there is no such supervisor. (Whether it slows C2 depends on how
    busy the machine is: the decision is tests/unit's, the slowing the test above.)"""
    app = ["--jvm-opt=-XX:TieredStopAtLevel=1", "-e", "GREETING=Hello", str(CLOJURE / "main.clj"), "world"]
    expected = json.loads((CLOJURE / "expected.json").read_text())
    on = osv("run", "--target", "process", "--jdk", "17", "--bootchart", *app)
    off = osv("run", "--target", "process", "--jdk", "17", "--bootchart", "--startup-priority", "off", *app)
    for proc in (on, off):
        assert proc.returncode == expected["exit"] and text(proc.stdout) == expected["stdout"], explain(proc)
    assert decisions(text(on.stderr)) == ["startup-priority: leave (no C2 thread (C1 alone: -XX:TieredStopAtLevel=1, "
                                          "or a VM under TCG); C2 was not slowed)"], explain(on)
    assert decisions(text(off.stderr)) == [], explain(off)


def test_a_batch_thread_gets_batch_back_and_a_real_time_one_is_left_alone() -> None:
    """The mechanism on real threads (a sleeping process stands for a C2 thread): SCHED_IDLE while it
    yields, then the thread's own policy, whatever it was; a real-time thread is never touched."""
    batch = subprocess.Popen(["sleep", "30"])
    real_time = subprocess.Popen(["sleep", "30"])
    try:
        os.sched_setscheduler(batch.pid, os.SCHED_BATCH, os.sched_param(0))
        supervisor = CompilerYield({})
        assert supervisor._lower(batch.pid)
        assert os.sched_getscheduler(batch.pid) == os.SCHED_IDLE
        if os.geteuid() == 0:
            os.sched_setscheduler(real_time.pid, os.SCHED_FIFO, os.sched_param(1))
            assert not supervisor._lower(real_time.pid)
            assert os.sched_getscheduler(real_time.pid) == os.SCHED_FIFO
        supervisor._end("test")
        assert os.sched_getscheduler(batch.pid) == os.SCHED_BATCH
    finally:
        for proc in (batch, real_time):
            proc.kill()
            proc.wait()
