"""The `startup-priority` Policy: while a JVM starts, its optimising compiler (C2) yields the CPUs to
the app and to C1.

During start-up the app meets new code at every step: HotSpot's C1 compiles it (interpreted code is
10-30 times slower than C1's), while its C2 threads recompile what was hot first (at once on JDK 25,
whose start-up archive holds the training run's profiles), code that is 2-3 times faster than C1's
and pays back only later. On a machine with few CPUs they all compete: a Clojure, JRuby or Groovy
hello spends a tenth to a fifth of its run waiting on C2. So while C1 is busy and the app's own threads
leave a CPU to share, each C2 thread runs under SCHED_IDLE: it compiles on CPU time the others leave
idle, and a thread that wakes preempts it at once (nice 19 still gives it a share: the JDK 17 Clojure
hello's JVM ran 7 % longer with its C2 threads at nice 19 than under SCHED_IDLE). Once C1 goes quiet,
or the app's threads ask for every CPU, the C2 threads go back to their own scheduling for good and
compile what start-up left queued.

A CPU-bound app (a compute loop on every CPU, many threads through megamorphic calls) never has C2
slowed: there a slowed C2 would get no CPU time at all, and its code is what the app waits for. The
policy watches the JVM's first LONGEST_S seconds at most; a JVM on a machine with CPUs to spare sees no
difference, and one without C2 (C1 alone, as under TCG) is left at once.

Only where the scheduling can be put back (gc_hooks.cpu_yield.can_restore: leaving SCHED_IDLE needs
root or an RLIMIT_NICE that allows the thread's nice value): a thread never stays slowed. Real-time
threads are left alone.
Not for `osv-java attach` (its JVM has started, gc_hooks.policies) nor when the user sets the compiler
threads' priority.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from gc_hooks.cpu_yield import can_restore
from gc_hooks.seam import Channel, HookEvent, Machine, Policy, Supervisor, SupervisorSpec, user_sets

NAME = "startup-priority"
# HotSpot names its compiler threads "C2 CompilerThread0", "C1 CompilerThread0", ...; Linux keeps 15 bytes
C2_PREFIX = "C2 CompilerThre"
C1_PREFIX = "C1 CompilerThre"
UNNAMED = "java"  # a thread the JVM has not named yet (the launcher's own is named so for good)
BUSY_SHARE, BUSY_WINDOW_S = 0.20, 0.1  # C1 at this share of a CPU or more: the app meets new code
QUIET_SHARE, QUIET_WINDOW_S = 0.10, 0.3  # C1 below this share over the window: start-up is over
# C2 starts to yield only while the app's threads (running or waiting for a CPU) ask for at most all CPUs
# but half of one, and stops for good once they ask for every CPU: a slowed C2 would then get no CPU
# time at all, and its code is what a CPU-bound app waits for.
SPARE_CPUS = 0.5
DEMAND_SAMPLES = 3  # the fewest counts of them to judge by (a thread blocks now and then)
LONGEST_S = 60.0
FIRST_INTERVAL_S = 0.02  # at the JVM's start, while C1 is busy and while C2 yields: a decision may be near
LATER_INTERVAL_S = 0.1  # while C1 is calm (new C2 threads of a larger machine are found meanwhile)
PROC = Path("/proc")
# the time-sharing policies a C2 thread may have (a real-time one is left alone); SCHED_IDLE: it runs only
# on CPU time no other thread wants, and any other thread that wakes preempts it
LOWERABLE = (os.SCHED_OTHER, os.SCHED_BATCH)
IDLE_TEXT = "under SCHED_IDLE"


class StartupPriority(Policy):
    name: ClassVar[str] = NAME

    def supervisor(self, machine: Machine) -> SupervisorSpec | None:
        if user_sets(machine.user_jvm_options, "-XX:CompilerThreadPriority="):
            return None
        return SupervisorSpec(NAME, __name__, "CompilerYield")


@dataclass
class Sample:
    at: float
    c1_seconds: float  # C1's CPU time so far
    runnable: int  # the JVM's other threads running or waiting for a CPU (state R): what the app asks for


@dataclass
class StartupPhase:
    """Whether C2 should yield: pure logic, fed by the supervisor's samples. `cpus`: the CPUs the JVM
    may run on (a quota of 1.5 CPUs is 1.5)."""

    started: float
    cpus: float
    busy_share: float = BUSY_SHARE
    yielding: bool = False
    ended: bool = False
    samples: list[Sample] = field(default_factory=list)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)
        while len(self.samples) > 2 and sample.at - self.samples[1].at >= QUIET_WINDOW_S:
            self.samples.pop(0)  # the oldest sample kept is the last one at least QUIET_WINDOW_S old

    def _window(self, seconds: float) -> list[Sample] | None:
        """The samples of the last `seconds` (or a little more); None before that long is sampled."""
        for i in range(len(self.samples) - 1, -1, -1):
            if self.samples[-1].at - self.samples[i].at >= seconds:
                return self.samples[i:]
        return None

    def c1_share(self, seconds: float) -> float | None:
        """C1's share of a CPU over the last `seconds`."""
        window = self._window(seconds)
        if window is None:
            return None
        return (window[-1].c1_seconds - window[0].c1_seconds) / (window[-1].at - window[0].at)

    def demand(self, seconds: float) -> float | None:
        """How many CPUs the JVM's threads other than its compilers asked for in the last `seconds`, from
        at least DEMAND_SAMPLES counts; else None."""
        if not self.samples:
            return None
        counted = [s.runnable for s in self.samples if self.samples[-1].at - s.at <= seconds + 1e-9]
        return sum(counted) / len(counted) if len(counted) >= DEMAND_SAMPLES else None

    def decide(self, now: float) -> tuple[str, str] | None:
        """("yield", why) when C2 should start to yield, ("over", why) once it should not any more (for
        good), else None."""
        if self.ended:
            return None
        why = self._over(now)
        if why is not None:
            self.ended = True
            return "over", why
        busy, demand = self.c1_share(BUSY_WINDOW_S), self.demand(BUSY_WINDOW_S)
        if not self.yielding and busy is not None and demand is not None and busy >= self.busy_share \
                and demand <= self.cpus - SPARE_CPUS:
            self.yielding = True
            return "yield", (f"start-up: C1 compiles new code for {busy:.0%} of a CPU while the app's threads "
                             f"leave {self.cpus - demand:.1f} of {self.cpus:g} CPUs")
        return None

    def _over(self, now: float) -> str | None:
        if now - self.started >= LONGEST_S:
            return f"start-up over: {LONGEST_S:.0f} s since the JVM started"
        quiet, demand = self.c1_share(QUIET_WINDOW_S), self.demand(BUSY_WINDOW_S)
        if quiet is not None and quiet < QUIET_SHARE:
            return f"start-up over after {now - self.started:.1f} s: C1 compiled for {quiet:.0%} of a CPU " \
                   f"in the last {QUIET_WINDOW_S} s"
        if demand is not None and demand >= self.cpus:
            return f"the app's threads ask for {demand:.1f} of {self.cpus:g} CPUs after {now - self.started:.1f} s"
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
        self.lowered: dict[int, int | None] = {}  # C2 tid -> its own scheduling policy (None: left alone)
        self.phase: StartupPhase | None = None
        self.why_yield = ""
        self.done = False

    def start(self, pid: int, channel: Channel) -> None:
        self.pid, self.channel = pid, channel
        self.ticks_per_s = float(os.sysconf("SC_CLK_TCK"))
        # a lower busy share (settings, for tests) makes C2 yield sooner; the default is what was measured
        busy_share = float(self.settings.get("busy_share", BUSY_SHARE))
        self.phase = StartupPhase(time.monotonic(), _cpus(pid), busy_share)

    def tick(self, now: float) -> None:
        if self.done or self.phase is None:
            return
        threads = self._threads()
        if now - self.phase.started >= QUIET_WINDOW_S and not any(n.startswith(C2_PREFIX) for n in threads.values()):
            self._end("no C2 thread (C1 alone: -XX:TieredStopAtLevel=1, or a VM under TCG)")
            return
        c1_seconds, runnable = 0.0, 0
        for tid, name in threads.items():
            task = f"/proc/{self.pid}/task/{tid}"
            with contextlib.suppress(OSError, ValueError, IndexError):  # a thread that ended meanwhile
                if name.startswith(C1_PREFIX):
                    c1_seconds += cpu_seconds(task, self.ticks_per_s)
                elif not name.startswith(C2_PREFIX) and _state(task) == "R":
                    runnable += 1
        self.phase.add(Sample(now, c1_seconds, runnable))
        busy = self.phase.c1_share(BUSY_WINDOW_S)
        calm = now - self.phase.started >= QUIET_WINDOW_S and not self.phase.yielding \
            and busy is not None and busy < self.phase.busy_share
        self.interval = LATER_INTERVAL_S if calm else FIRST_INTERVAL_S  # a decision may be near: look often
        decision = self.phase.decide(now)
        if decision is not None and decision[0] == "over":
            self._end(decision[1])
            return
        if decision is not None:
            self.why_yield = decision[1]
        if self.phase.yielding:
            lowered = [tid for tid, name in threads.items()
                       if name.startswith(C2_PREFIX) and tid not in self.lowered and self._lower(tid)]
            if lowered:
                self._emit("yield", self.why_yield, f"{len(lowered)} C2 thread(s) at their own priority",
                           IDLE_TEXT)

    def stop(self, exited: bool) -> None:
        if not exited and not self.done:  # detached from a JVM that goes on: it must not stay slowed
            self._end("detached")
        self.done = True

    def _threads(self) -> dict[int, str]:
        """tid -> name of the JVM's threads; UNNAMED for those the JVM has not named (its main thread)."""
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
        return {tid: self.names.get(tid, UNNAMED) for tid in tids}

    def _lower(self, tid: int) -> bool:
        """Whether thread `tid` now runs under SCHED_IDLE and can be put back; each thread is tried once."""
        self.lowered[tid] = None
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            policy = os.sched_getscheduler(tid)
            if policy in LOWERABLE and can_restore(os.getpriority(os.PRIO_PROCESS, tid)):
                os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
                self.lowered[tid] = policy
                return True
        return False

    def _end(self, why: str) -> None:
        restored = 0
        for tid, policy in self.lowered.items():
            if policy is not None:
                with contextlib.suppress(OSError):
                    os.sched_setscheduler(tid, policy, os.sched_param(0))
                    restored += 1
        if restored:
            self._emit("restore", why, f"{restored} C2 thread(s) {IDLE_TEXT}", "their own priority")
        else:
            self._emit("leave", f"{why}; C2 was not slowed", "", "")
        self.done = True
        self.interval = 3600.0

    def _emit(self, what: str, why: str, before: str, after: str) -> None:
        if self.channel is not None:
            self.channel.emit(HookEvent(NAME, what, why, before, after))


def _cpus(pid: int) -> float:
    """The CPUs `pid` may run on: its affinity (taskset, a cpuset), or fewer under a CPU quota."""
    try:
        count = len(os.sched_getaffinity(pid))
    except OSError:
        count = os.cpu_count() or 1
    quota = cpu_quota(pid)
    return float(count) if quota is None else max(1.0, min(float(count), quota))


def cpu_quota(pid: int | str, proc: Path = PROC) -> float | None:
    """CPUs' worth of time `pid` may use: the tightest quota up its cgroups' paths (v2 cpu.max, v1
    cpu.cfs_quota_us over cpu.cfs_period_us), as a pod's limit sits above its container; None if none."""
    from jvmbridge.proc import cgroup_folders  # the supervisor's: a run's plan does not load it

    tightest = None
    for found in cgroup_folders(pid, "cpu", proc):
        folder = found.path
        while True:
            quota = _quota(str(folder), found.version)
            if quota is not None and (tightest is None or quota < tightest):
                tightest = quota
            if folder == found.mount or folder.parent == folder:
                break
            folder = folder.parent
    return tightest


def _quota(folder: str, version: int) -> float | None:
    try:
        if version == 2:
            limit, _, period = _read(f"{folder}/cpu.max").partition(" ")
        else:
            limit, period = _read(f"{folder}/cpu.cfs_quota_us"), _read(f"{folder}/cpu.cfs_period_us")
        limit, period = limit.strip(), period.strip()
        return None if limit in ("max", "-1") or not period else int(limit) / int(period)
    except (OSError, ValueError):
        return None


def _state(task: str) -> str:
    """A thread's state letter from its stat (R: running or waiting for a CPU)."""
    data = _read(f"{task}/stat")
    return data[data.rindex(")") + 2]


def _read(path: str) -> str:
    """A small /proc file, read raw: the supervisor reads every thread's files up to 50 times a second,
    and a buffered text file costs twice the time."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096).decode(errors="replace")
    finally:
        os.close(fd)
