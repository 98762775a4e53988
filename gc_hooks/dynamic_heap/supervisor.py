"""The dynamic heap's Supervisor: every tick it reads the signals, decides, acts, and reports.

Runs in PID 1 inside a VM, in osv-java beside a --target process JVM, and for `osv-java attach`.
Standard library and the stdlib-only jvmbridge modules (attach, hsperf) only.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from gc_hooks.dynamic_heap import signals
from gc_hooks.dynamic_heap.actuate import Actuator
from gc_hooks.dynamic_heap.decide import MB, Decision, HeapSignals, HostSignals, Settings, State, decide
from gc_hooks.seam import Channel, HookEvent, Supervisor
from jvmbridge.attach import AttachedJvm
from jvmbridge.errors import JvmError
from jvmbridge.proc import is_alive

POLICY = "dynamic-heap"
READY_TIMEOUT = 60.0  # how long a new JVM may take to publish hsperfdata
ATTACH_TIMEOUT = 30.0  # GC.run on a large heap can take seconds under load
PEERS_EVERY = 5.0  # seconds between scans of the other JVMs' idle heap
WORK_WINDOW_S = 10.0  # the app's own young collections over this long tell whether it works hard


class DynamicHeapSupervisor(Supervisor):
    """Steers one JVM's committed heap to its live set plus headroom, within what the machine has."""

    def __init__(self, settings: dict[str, Any]) -> None:
        super().__init__(settings)
        self.interval = float(settings.get("interval", 0.5))
        self.config = Settings.from_fields(dict(settings.get("decide") or {}))
        self.cpus = int(settings.get("cpus") or os.cpu_count() or 1)
        self.window = signals.Window(float(settings.get("window_s", 10.0)))
        self.state = State()
        self.pid = 0
        self.channel: Channel | None = None
        self.reader: signals.JvmReader | None = None
        self.actuator: Actuator | None = None
        self.cgroup: signals.CgroupMemory | None = None
        self.live: int | None = None
        self._gc_count = -1
        self._started = 0.0
        self._peers = 0
        self._peers_at = -1e9
        self._last_what = ""
        self._collected = False  # we asked for a collection in the last tick
        self._collected_at = -1e9
        self._requests: list[float] = []  # when we asked for collections lately
        self.decisions: list[Decision] = []  # the last few, for tests and `jvm events`

    # -- seam ----------------------------------------------------------------------------------

    def start(self, pid: int, channel: Channel) -> None:
        self.pid = pid
        self.channel = channel
        self._started = time.monotonic()
        self.cgroup = signals.memory_cgroup(pid)
        if self.settings.get("target") == "attach":
            # a JVM that runs already: bad input (not a JVM, attach disabled, no counters) fails here,
            # with the error's own message and hint, before anything changes
            AttachedJvm(pid, timeout=ATTACH_TIMEOUT)
            self.reader = signals.JvmReader(pid)
            self._attach()
            return
        try:
            self.reader = signals.JvmReader(pid)
        except JvmError:
            self.reader = None  # a JVM just started: its counters come within a second or so

    def tick(self, now: float) -> None:
        try:
            self._tick(now)
        except (JvmError, OSError):
            if _exits_soon(self.pid):
                return  # the JVM exited between two ticks, or was exiting: nothing to steer, nothing went wrong
            raise

    def _tick(self, now: float) -> None:
        if self.reader is None:
            try:
                self.reader = signals.JvmReader(self.pid)
            except JvmError:
                if time.monotonic() - self._started > READY_TIMEOUT:
                    raise
                return
        sample = self.reader.sample()
        self.window.add(sample)
        self._collected = now - self._collected_at <= 2.5 * self.interval  # a concurrent cycle spans ticks
        heap = self._heap(sample)
        host = self._host(now, sample)
        decision = decide(now, heap, host, self.state, self.config)
        self.state = decision.state
        self.decisions = [*self.decisions[-99:], decision]
        # a back-off hands sizing back to the collector, but not under memory pressure: there the
        # ratios stay at the pressure target, so a remark does not grow the heap into the shortage
        backoff = not decision.pressure and (
            decision.what == "backoff" or (decision.what == "hold" and now < self.state.backoff_until))
        changes: list[str] = []
        if decision.what != "hold" or backoff or self.actuator is not None:
            actuator = self._attach()
            changes = actuator.apply(decision.target, heap.live, decision.collect, backoff, decision.compact)
            if decision.collect:
                self._collected_at = time.monotonic()
                self._requests.append(self._collected_at)
        if changes or decision.what != self._last_what:
            self._emit(HookEvent(POLICY, decision.what, decision.why + (f"; {', '.join(changes)}" if changes else ""),
                                 before=f"{sample.committed // MB}M", after=f"{decision.target // MB}M"))
            self._last_what = decision.what

    def stop(self, exited: bool) -> None:
        try:
            if not exited and self.actuator is not None:
                changes = self.actuator.restore()
                self._emit(HookEvent(POLICY, "restore", "detached: flags back as they were",
                                     after=", ".join(changes)))
        finally:
            if self.reader is not None:
                self.reader.close()
                self.reader = None

    # -- signals -------------------------------------------------------------------------------

    def _heap(self, sample: signals.JvmSample) -> HeapSignals:
        if sample.collector in ("g1", "parallel", "serial"):
            live = sample.old_used  # old generation + survivors: what survived the collections so far
        elif sample.gc_count != self._gc_count or self.live is None:
            live = sample.used  # the first reading after a cycle: its survivors plus a little allocation
        else:
            live = min(self.live, sample.used)
        self._gc_count = sample.gc_count
        self.live = live
        # a collection we asked for may begin with a young one: those are not the app's
        now = time.monotonic()
        self._requests = [t for t in self._requests if now - t <= WORK_WINDOW_S + self.interval]
        collections = max(0, self.window.young_collections(WORK_WINDOW_S) - len(self._requests))
        return HeapSignals(committed=sample.committed, used=sample.used, live=live, max_heap=sample.max_heap,
                           gc_share=self.window.gc_share(self.cpus), busy=self.window.busy(ours=self._collected),
                           collections=collections)

    def _host(self, now: float, sample: signals.JvmSample) -> HostSignals:
        info = signals.meminfo()
        limit = usage = None
        psi = None
        if self.cgroup is not None:
            limit, usage = self.cgroup.limit(), self.cgroup.usage()
            psi = self.cgroup.psi_some_avg10()
        if psi is None:
            psi = signals.psi_some_avg10()
        if now - self._peers_at >= PEERS_EVERY:
            self._peers_at = now
            scope = self.cgroup if limit is not None else None
            tmp = self.reader.perf.path.parent.parent if self.reader else Path("/tmp")
            self._peers = signals.peers_idle(scope, tmp)
        return HostSignals(mem_total=info.get("MemTotal", 0), mem_available=info.get("MemAvailable", 0),
                           psi_some_avg10=psi, cgroup_limit=limit, cgroup_usage=usage,
                           peers_idle=max(self._peers, sample.committed - sample.used))

    # -- actions -------------------------------------------------------------------------------

    def _attach(self) -> Actuator:
        if self.actuator is None:
            vm = AttachedJvm(self.pid, timeout=ATTACH_TIMEOUT)
            collector = self.reader.collector if self.reader is not None else "unknown"
            if collector == "unknown":
                collector = _collector_from_flags(vm)
            self.actuator = Actuator(vm, collector)
        return self.actuator

    def _emit(self, event: HookEvent) -> None:
        if self.channel is not None:
            self.channel.emit(event)


def _exits_soon(pid: int, within: float = 1.0) -> bool:
    """Whether the JVM is gone, or goes within `within` seconds: one on its way out closes the
    attach connection (and empties its counters) while it still exists."""
    deadline = time.monotonic() + within
    while is_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _collector_from_flags(vm: AttachedJvm) -> str:
    for flag, name in (("UseG1GC", "g1"), ("UseZGC", "zgc"), ("UseShenandoahGC", "shenandoah"),
                       ("UseParallelGC", "parallel"), ("UseSerialGC", "serial")):
        try:
            if vm.printflag(flag).startswith("-XX:+"):
                return name
        except JvmError:
            continue
    return "unknown"
