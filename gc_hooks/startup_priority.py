"""The `startup-priority` Policy: while a JVM starts, its optimising compiler (C2) yields the CPUs to
the app and to C1.

During start-up the app meets new code at every step: HotSpot's C1 compiles it (interpreted code is
10-30 times slower than C1's), while its C2 threads recompile what was hot first (at once on JDK 25,
whose start-up archive holds the training run's profiles), code that is 2-3 times faster than C1's
and pays back only later. On a machine with few CPUs they all compete: a Clojure, JRuby or Groovy
hello spends a fifth of its run waiting on C2. So while C1 is busy, each C2 thread runs at nice 19 (it
compiles on CPU time the others leave idle), and once C1 goes quiet the C2 threads go back to their own
nice value for good and compile what start-up left queued.

A workload that quiets C1 at once (a compute loop: its hot methods are few) never has C2 slowed: C2's
code is what it waits for. The policy watches the JVM's first LONGEST_S seconds at most; a JVM on a
machine with CPUs to spare sees no difference at all.

Only where the nice values can be put back (gc_hooks.cpu_yield.can_restore): a thread never stays slowed.
Not for `osv-java attach` (its JVM has started, gc_hooks.policies) nor when the user sets the compiler
threads' priority.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from gc_hooks.cpu_yield import LOWEST, can_restore
from gc_hooks.seam import Channel, HookEvent, Machine, Policy, Supervisor, SupervisorSpec, user_sets

NAME = "startup-priority"
# HotSpot names its compiler threads "C2 CompilerThread0", "C1 CompilerThread0", ...; Linux keeps 15 bytes
C2_PREFIX = "C2 CompilerThre"
C1_PREFIX = "C1 CompilerThre"
UNNAMED = "java"  # a thread the JVM has not named yet (the launcher's own is named so for good)
BUSY_SHARE, BUSY_WINDOW_S = 0.20, 0.1  # C1 at this share of a CPU or more: the app meets new code
QUIET_SHARE, QUIET_WINDOW_S = 0.10, 0.3  # C1 below this share over the window: start-up is over
LONGEST_S = 60.0
FIRST_INTERVAL_S = 0.02  # C2 threads appear within tens of milliseconds of the JVM's start
LATER_INTERVAL_S = 0.1  # later ones (a larger machine adds them as the queue grows) are found meanwhile


class StartupPriority(Policy):
    name: ClassVar[str] = NAME

    def supervisor(self, machine: Machine) -> SupervisorSpec | None:
        if user_sets(machine.user_jvm_options, "-XX:CompilerThreadPriority="):
            return None
        return SupervisorSpec(NAME, __name__, "CompilerYield")


@dataclass
class StartupPhase:
    """Whether C2 should yield, from C1's CPU time: pure logic, fed by the supervisor's samples."""

    started: float
    yielding: bool = False
    ended: bool = False
    samples: list[tuple[float, float]] = field(default_factory=list)  # (time, C1's CPU seconds so far)

    def add(self, now: float, c1_seconds: float) -> None:
        self.samples.append((now, c1_seconds))
        while len(self.samples) > 2 and now - self.samples[1][0] >= QUIET_WINDOW_S:
            self.samples.pop(0)  # the oldest sample kept is the last one at least QUIET_WINDOW_S old

    def c1_share(self, window: float) -> float | None:
        """C1's share of a CPU over the last `window` seconds (or a little more); None before that long."""
        if not self.samples:
            return None
        last, last_cpu = self.samples[-1]
        for at, cpu in reversed(self.samples):
            if last - at >= window:
                return (last_cpu - cpu) / (last - at)
        return None

    def decide(self, now: float) -> tuple[str, str] | None:
        """("yield", why) when C2 should start to yield, ("over", why) once start-up is over, else None."""
        if self.ended:
            return None
        quiet = self.c1_share(QUIET_WINDOW_S)
        if now - self.started >= LONGEST_S or (quiet is not None and quiet < QUIET_SHARE):
            self.ended = True
            if now - self.started >= LONGEST_S:
                return "over", f"start-up over: {LONGEST_S:.0f} s since the JVM started"
            return "over", (f"start-up over after {now - self.started:.1f} s: C1 compiled for {quiet:.0%} of a CPU "
                            f"in the last {QUIET_WINDOW_S} s")
        busy = self.c1_share(BUSY_WINDOW_S)
        if not self.yielding and busy is not None and busy >= BUSY_SHARE:
            self.yielding = True
            return "yield", f"start-up: C1 compiles new code for {busy:.0%} of a CPU"
        return None


def cpu_seconds(task: str, ticks_per_s: float) -> float:
    """CPU time of thread folder `task` (/proc/PID/task/TID): schedstat's nanoseconds where the kernel
    keeps them, else stat's utime + stime (fields 14 and 15, in clock ticks; the name may hold spaces)."""
    try:
        return int(_read(f"{task}/schedstat").split()[0]) / 1e9
    except FileNotFoundError:
        fields = _read(f"{task}/stat").rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / ticks_per_s


class CompilerYield(Supervisor):
    interval = FIRST_INTERVAL_S

    def __init__(self, settings: dict[str, Any]) -> None:
        super().__init__(settings)
        self.pid = 0
        self.channel: Channel | None = None
        self.ticks_per_s = 100.0
        self.names: dict[int, str] = {}  # tid -> name, once the JVM has named it
        self.lowered: dict[int, int] = {}  # C2 tid -> its own nice value (LOWEST: left alone)
        self.phase: StartupPhase | None = None
        self.why_yield = ""
        self.done = False

    def start(self, pid: int, channel: Channel) -> None:
        self.pid, self.channel = pid, channel
        self.ticks_per_s = float(os.sysconf("SC_CLK_TCK"))
        self.phase = StartupPhase(time.monotonic())

    def tick(self, now: float) -> None:
        if self.done or self.phase is None:
            return
        threads = self._threads()
        c1_seconds = 0.0
        for tid, name in threads.items():
            if name.startswith(C1_PREFIX):
                with contextlib.suppress(OSError, ValueError, IndexError):  # ended meanwhile
                    c1_seconds += cpu_seconds(f"/proc/{self.pid}/task/{tid}", self.ticks_per_s)
        self.phase.add(now, c1_seconds)
        if now - self.phase.started >= QUIET_WINDOW_S:
            self.interval = LATER_INTERVAL_S
        decision = self.phase.decide(now)
        if decision is not None and decision[0] == "over":
            self._over(decision[1])
            return
        if decision is not None:
            self.why_yield = decision[1]
        if self.phase.yielding:
            lowered = [tid for tid, name in threads.items()
                       if name.startswith(C2_PREFIX) and tid not in self.lowered and self._lower(tid)]
            if lowered:
                self._emit("yield", self.why_yield, f"{len(lowered)} C2 thread(s) at their own nice value",
                           f"nice {LOWEST}")

    def stop(self, exited: bool) -> None:
        if not exited and not self.done:  # detached from a JVM that goes on: it must not stay slowed
            self._over("detached")
        self.done = True

    def _threads(self) -> dict[int, str]:
        try:
            tids = [int(name) for name in os.listdir(f"/proc/{self.pid}/task")]
        except OSError:
            return {}
        for tid in tids:
            if tid not in self.names:
                with contextlib.suppress(OSError):
                    name = _read(f"/proc/{self.pid}/task/{tid}/comm").strip()
                    if name != UNNAMED:
                        self.names[tid] = name
        return {tid: self.names[tid] for tid in tids if tid in self.names}

    def _lower(self, tid: int) -> bool:
        """Whether thread `tid` now runs at LOWEST and can be put back; each thread is tried once."""
        self.lowered[tid] = LOWEST
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            nice = os.getpriority(os.PRIO_PROCESS, tid)
            if nice < LOWEST and can_restore(nice):
                os.setpriority(os.PRIO_PROCESS, tid, LOWEST)
                self.lowered[tid] = nice
                return True
        return False

    def _over(self, why: str) -> None:
        restored = 0
        for tid, nice in self.lowered.items():
            if nice < LOWEST:
                with contextlib.suppress(OSError):
                    os.setpriority(os.PRIO_PROCESS, tid, nice)
                    restored += 1
        if restored:
            self._emit("restore", why, f"{restored} C2 thread(s) at nice {LOWEST}", "their own nice value")
        self.done = True
        self.interval = 3600.0

    def _emit(self, what: str, why: str, before: str, after: str) -> None:
        if self.channel is not None:
            self.channel.emit(HookEvent(NAME, what, why, before, after))


def _read(path: str) -> str:
    with open(path) as file:
        return file.read()
