"""STW coordination: the JVM collects when its server is out of the load balancer, and JVMs of one
machine take turns (Blade, Terei & Levy 2015; Finagle's GC avoidance: drain, collect, resume).

`--stw-lb haproxy:SOCKET:BACKEND/SERVER`: when the next collection is near (predicted from eden's
and the old generation's occupancy and the allocation rate, hsperfdata), the supervisor drains the
server through HAProxy's runtime API, waits until its sessions and queue are empty (bounded),
causes the collection (attach `GC.run`, a full collection for Serial, Parallel and G1) at the lowest
CPU priority (gc_hooks.cpu_yield: the JVMs still serving come first), and puts the server back.
One server of a backend out at a time (a lease per backend, and HAProxy's own view:
no other server drained or in maintenance), and never the last one up.

`--stw-group NAME`: JVMs of one group on this machine never run the collections they cause at the
same time (a lease per group, gc_hooks.lease).

HAProxy unreachable, a wrong backend or server, a socket without admin level: one line on stderr
and the app runs on, uncoordinated. Beside a host JVM (--target process) a supervisor does the work;
for a VM a host monitor does (HAProxy's socket and the leases are on the host), through the run's
relay. Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gc_hooks.cpu_yield import LOWEST, lowest_priority
from gc_hooks.haproxy import HaproxyError, Runtime, parse_target
from gc_hooks.lease import Lease
from gc_hooks.pauses import HeapSample, Prediction, Predictor
from gc_hooks.seam import (
    Channel,
    HookEvent,
    HostMonitor,
    Machine,
    Policy,
    Supervisor,
    SupervisorSpec,
    VmSide,
    user_sets,
)
from jvmbridge.errors import JvmError, UsageError

NAME = "stw-lb"
LEAD = 1.0  # seconds before a predicted collection, beyond the time the last sequence took, to begin
QUIET_RATE = 1 << 20  # bytes/s: below this the JVM is idle, a quiet moment to collect a half-full eden
MIN_GAP = 1.0  # seconds between two collections we cause
DRAIN_TIMEOUT = 10.0  # seconds to wait for the server's sessions to end before collecting anyway
MIN_FREE_SHARE = 0.1  # do not collect when eden is still this empty (a prediction from noise)
MB = 1 << 20


@dataclass(frozen=True)
class LbTarget:
    socket: str
    backend: str
    server: str

    def __str__(self) -> str:
        return f"{self.backend}/{self.server}"


def due(prediction: Prediction | None, sample: HeapSample, lead: float, since_last: float) -> str | None:
    """Why a collection should be caused now (None: not yet). Pure, for tests."""
    if prediction is None or since_last < MIN_GAP:
        return None
    if prediction.eden_moves and prediction.eden_free > (1 - MIN_FREE_SHARE) * sample.eden_capacity:
        return None
    rate = prediction.allocation_rate or 0.0
    if prediction.next_major is not None and prediction.next_major <= lead:
        return (f"major collection due in {prediction.next_major:.2f}s (old gen {sample.old_used / MB:.0f}/"
                f"{sample.old_capacity / MB:.0f} MB, promoting {(prediction.promotion_rate or 0) / MB:.1f} MB/s)")
    if prediction.next_young is not None and prediction.next_young <= lead:
        return (f"young collection due in {prediction.next_young:.2f}s (eden {sample.eden_used / MB:.0f}/"
                f"{sample.eden_capacity / MB:.0f} MB, allocating {rate / MB:.1f} MB/s)")
    if (prediction.eden_moves and prediction.allocation_rate is not None and rate < QUIET_RATE
            and sample.eden_used > sample.eden_capacity // 2 and since_last > 10 * MIN_GAP):
        return f"a quiet moment (allocating {rate / MB:.2f} MB/s) with eden {sample.eden_used / MB:.0f} MB full"
    return None


def choose_server(stats: list[Any], me: str) -> str | None:
    """Why `me` must stay in (None: it may go out): another server out, or no other one up."""
    others = [s for s in stats if s.server != me]
    out = [s.server for s in others if s.status.startswith(("DRAIN", "MAINT"))]
    if out:
        return f"{', '.join(out)} of the backend is out already"
    if not any(s.up for s in others):
        return "it is the last server up in its backend"
    return None


class Coordinator:
    """The decision and the sequence, apart from how the JVM is sampled and collected.

    `collect()` causes a full collection and returns when it is done.
    """

    def __init__(self, lb: LbTarget | None, group: str | None, emit: Callable[[HookEvent], None],
                 collect: Callable[[], None], lead: float = LEAD, drain_timeout: float = DRAIN_TIMEOUT,
                 collector_pid: Callable[[], int | None] = lambda: None) -> None:
        self.lb = lb
        self.collector_pid = collector_pid  # the process whose threads collect (the JVM, or QEMU)
        self.runtime = Runtime(lb.socket) if lb else None
        self.group_lease = Lease(f"group-{group}") if group else None
        self.backend_lease = Lease(f"lb-{lb.socket}-{lb.backend}") if lb else None
        self.emit = emit
        self.collect = collect
        self.lead = lead
        self.drain_timeout = drain_timeout
        self.predictor = Predictor()
        self.last_collection = -1e9
        self.last_out = 0.5  # seconds the last sequence took before the collection began
        self.last_gc = 0.5  # seconds the last collection we caused took
        self.drained = False
        self.collections = 0
        self._held_back: str | None = None

    def check(self) -> str:
        """Refuse now (HaproxyError) what would fail at every collection."""
        if self.runtime is None or self.lb is None:
            return "no load balancer"
        stat = self.runtime.check(self.lb.backend, self.lb.server)
        return f"{self.lb} is {stat.status}"

    def observe(self, sample: HeapSample, now: float) -> None:
        self.predictor.add(sample)
        # time enough to take the server out and collect, and for one other member's turn before ours
        lead = self.lead + 1.5 * (self.last_out + self.last_gc)
        why = due(self.predictor.predict(), sample, lead, now - self.last_collection)
        if why is not None:
            self.coordinate(why, now)

    def _hold(self, why: str, cause: str) -> None:
        if cause != self._held_back:  # said once per cause, not at every tick
            self._held_back = cause
            self.emit(HookEvent(NAME, "wait", f"{why}; {cause}"))

    def coordinate(self, why: str, now: float) -> bool:
        """Drain, wait, collect, restore; False when a lease or HAProxy says not now."""
        leases = [lease for lease in (self.group_lease, self.backend_lease) if lease is not None]
        taken: list[Lease] = []
        for lease in leases:
            if not lease.try_acquire():
                # held back: try again at the next tick, not after MIN_GAP. Waiting MIN_GAP would lock
                # this JVM in phase with the holder, whose next turn also comes MIN_GAP after its last:
                # it would find the lease taken every time and never collect.
                self._hold(why, f"another JVM holds lease {lease.name}")
                for held in taken:
                    held.release()
                return False
            taken.append(lease)
        try:
            began = time.monotonic()
            if self.lb is not None and self.runtime is not None:
                reason = choose_server(self.runtime.stats(self.lb.backend), self.lb.server)
                if reason is not None:
                    self._hold(why, f"{self.lb} stays in: {reason}")
                    return False
                self.runtime.set_state(self.lb.backend, self.lb.server, "drain")
                self.drained = True
                self.emit(HookEvent(NAME, "drain", why, "ready", "drain"))
                waited = self._wait_empty()
                if waited is not None:
                    self.emit(HookEvent(NAME, "drained", f"sessions ended after {waited * 1e3:.0f} ms"))
            self._held_back = None
            self.last_out = time.monotonic() - began
            t0 = time.monotonic()
            self.predictor.induced()
            pid = self.collector_pid() if self.drained else None
            # out of the load balancer nobody waits on this collection: it takes only the CPU the
            # serving JVMs leave (gc_hooks.cpu_yield); in a group alone, clients wait on it: full speed
            with lowest_priority(pid) if pid else contextlib.nullcontext(0) as lowered:
                self.collect()
            took = self.last_gc = time.monotonic() - t0
            self.collections += 1
            at = f" at nice {LOWEST}" if lowered else ""
            self.emit(HookEvent(NAME, "collect", f"full collection (GC.run){at} took {took * 1e3:.0f} ms"))
            return True
        except HaproxyError as exc:
            self.emit(HookEvent(NAME, "warning", str(exc)))
            return False
        finally:
            self.last_collection = now
            self.restore()
            for lease in taken:
                lease.release()

    def _wait_empty(self) -> float | None:
        """Seconds until the server had no session nor queued request; None when the bound passed."""
        assert self.lb is not None and self.runtime is not None
        t0 = time.monotonic()
        while True:
            stat = self.runtime.server(self.lb.backend, self.lb.server)
            if stat.busy == 0:
                return time.monotonic() - t0
            if time.monotonic() - t0 > self.drain_timeout:
                self.emit(HookEvent(NAME, "warning", f"{self.lb} still had {stat.current_sessions} sessions and "
                                    f"{stat.queued} queued after {self.drain_timeout:.0f}s; collecting anyway"))
                return None
            time.sleep(0.01)

    def restore(self) -> None:
        if self.drained and self.lb is not None and self.runtime is not None:
            try:
                self.runtime.set_state(self.lb.backend, self.lb.server, "ready")
                self.drained = False
                self.emit(HookEvent(NAME, "ready", "collection done", "drain", "ready"))
            except HaproxyError as exc:
                self.emit(HookEvent(NAME, "warning", f"could not put {self.lb} back: {exc}"))

    def close(self) -> None:
        self.restore()
        for lease in (self.group_lease, self.backend_lease):
            if lease is not None:
                lease.release()


def heap_sample(stats: Any, at: float) -> HeapSample:
    """A HeapSample from jvmbridge.hsperf.JvmStats: eden is the young generation's first space."""
    young = stats.generations[0]
    old = stats.generations[1] if len(stats.generations) > 1 else young
    eden = young.spaces[0] if young.spaces else None
    return HeapSample(at=at, eden_used=eden.used if eden else young.used,
                      eden_capacity=eden.capacity if eden else young.capacity, old_used=old.used,
                      old_capacity=old.capacity,
                      young_count=stats.collectors[0].invocations if stats.collectors else 0,
                      full_count=stats.collectors[1].invocations if len(stats.collectors) > 1 else 0)


class StwSupervisor(Supervisor):
    """Beside the JVM: samples hsperfdata every tick and runs the Coordinator."""

    interval = 0.1

    def __init__(self, settings: dict[str, Any]) -> None:
        super().__init__(settings)
        lb = settings.get("lb")
        self.lb = LbTarget(*lb) if lb else None
        self.group = settings.get("group")
        self.lead = float(settings.get("lead", LEAD))
        self.coordinator: Coordinator | None = None
        self.pid = 0
        self._perf: Any = None
        self._jvm: Any = None

    def start(self, pid: int, channel: Channel) -> None:
        self.pid = pid
        self.coordinator = Coordinator(self.lb, self.group, channel.emit, self._collect, self.lead,
                                       collector_pid=lambda: self.pid)
        state = self.coordinator.check()
        where = f"{self.lb} through HAProxy at {self.lb.socket}" if self.lb else "no load balancer"
        group = f", group {self.group}" if self.group else ""
        channel.emit(HookEvent(NAME, "start", f"coordinating {where}{group} ({state})"))

    def _collect(self) -> None:
        from jvmbridge.attach import attach

        if self._jvm is None:
            self._jvm = attach(self.pid, timeout=60.0)
        self._jvm.jcmd("GC.run")

    def tick(self, now: float) -> None:
        from jvmbridge import hsperf

        assert self.coordinator is not None
        if self._perf is None:
            try:
                self._perf = hsperf.PerfData.open(self.pid)
            except JvmError:
                return  # not published yet
        try:
            stats = self._perf.stats()
        except JvmError:
            return
        try:
            self.coordinator.observe(heap_sample(stats, now), now)
        except JvmError as exc:
            self.coordinator.emit(HookEvent(NAME, "warning", f"collection failed: {exc.message}"))

    def stop(self, exited: bool) -> None:
        if self.coordinator is not None:
            self.coordinator.close()
        if self._perf is not None:
            with contextlib.suppress(Exception):
                self._perf.close()


class StwHostMonitor(HostMonitor):
    """For a VM: the coordinator runs on the host (HAProxy's socket and the leases are here), follows
    the guest JVM's counters through the run's relay and asks PID 1 for `GC.run`."""

    interval = 0.2  # the counters cross the relay: a little slower than beside the JVM

    def __init__(self, lb: LbTarget | None, group: str | None, lead: float = LEAD) -> None:
        self.lb = lb
        self.group = group
        self.lead = lead
        self.coordinator: Coordinator | None = None
        self.vm: VmSide | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._folder = ""

    def start(self, vm: VmSide | None) -> None:
        if vm is None:
            return
        self.vm = vm
        coordinator = Coordinator(self.lb, self.group, self.report, self._collect, self.lead,
                                  collector_pid=lambda: vm.qemu_pid)
        try:
            state = coordinator.check()
        except HaproxyError as exc:
            self.report(HookEvent(NAME, "failed", f"start: {exc}; the policy is off for this run"))
            return
        self.coordinator = coordinator
        where = f"{self.lb} through HAProxy at {self.lb.socket}" if self.lb else "no load balancer"
        group = f", group {self.group}" if self.group else ""
        self.report(HookEvent(NAME, "start", f"coordinating {where}{group} from the host ({state})"))
        self._folder = tempfile.mkdtemp(prefix="osv-java-stw-")
        self._thread = threading.Thread(target=self._loop, name="stw-lb", daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        assert self.vm is not None
        self.vm.request("jcmd GC.run", timeout=120.0)

    def _loop(self) -> None:
        from jvmbridge import hsperf

        assert self.vm is not None and self.coordinator is not None
        path = os.path.join(self._folder, "hsperfdata")
        while not self._stop.wait(self.interval):
            try:
                data = self.vm.request("hsperf", timeout=10.0)
                with open(path, "wb") as f:
                    f.write(data)
                with hsperf.PerfData(Path(path)) as pd:
                    stats = pd.stats()
            except (JvmError, OSError):
                continue  # the JVM has not started yet, or has exited
            now = time.monotonic()
            try:
                self.coordinator.observe(heap_sample(stats, now), now)
            except JvmError as exc:
                self.report(HookEvent(NAME, "warning", f"collection failed: {exc.message}"))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=130.0)
        if self.coordinator is not None:
            self.coordinator.close()
        if self._folder:
            shutil.rmtree(self._folder, ignore_errors=True)


class StwLoadBalancer(Policy):
    """`--stw-lb haproxy:SOCKET:BACKEND/SERVER` and/or `--stw-group NAME`."""

    name = NAME

    def __init__(self, lb: str | None, group: str | None) -> None:
        self.target: tuple[str, str, str] | None = None
        if lb is not None:
            try:
                self.target = parse_target(lb)
            except ValueError as exc:
                raise UsageError(f"--stw-lb {exc}", hint="e.g. --stw-lb haproxy:/run/haproxy/admin.sock:web/app1") \
                    from None
        self.group = group

    def jvm_options(self, machine: Machine) -> list[str]:
        # The collections we induce stand in for the collector's own, so they must feed its sizing:
        # Parallel's adaptive size policy ignores explicit ones by default, so an old generation the
        # live set had outgrown never grew (our full collection always came before its own would have),
        # and a backend took a full collection every second
        flag = "UseAdaptiveSizePolicyWithSystemGC"
        if user_sets(machine.user_jvm_options, f"-XX:+{flag}", f"-XX:-{flag}"):
            return []
        return [f"-XX:+{flag}"]

    def supervisor(self, machine: Machine) -> SupervisorSpec | None:
        if machine.target == "vm":
            return None  # the host monitor coordinates: HAProxy's socket and the leases are on the host
        return SupervisorSpec(NAME, __name__, "StwSupervisor",
                              {"lb": list(self.target) if self.target else None, "group": self.group})

    def host_monitor(self, machine: Machine) -> HostMonitor | None:
        if machine.target != "vm":
            return None
        return StwHostMonitor(LbTarget(*self.target) if self.target else None, self.group)
