"""The dynamic heap's host side for VMs: when the host (or the memory cgroup QEMU runs in) runs short,
the VMs osv-java runs give memory back through their balloons, the one with the most idle heap first.

A guest sees only its own memory, so without this a host under pressure would never reach the JVMs
inside its VMs. Each VM's monitor reads its guest JVM's idle heap (committed - used, from the guest's
hsperfdata through the run's relay) and publishes it under the run folder (gc_hooks.lease.folder),
so every monitor on the machine sees all of them. Under pressure (the same rules as the guest's
controller: MemAvailable, PSI, the cgroup's limit) each VM gives its share of the deficit, in
proportion to its idle heap and never more than that heap. The guest's free memory is already off the
host (free page reporting), so the balloon first takes what the guest has available beyond a small
reserve (the balloon's statistics say how much), then the share: the guest falls under its own
pressure mark, its controller shrinks the heap by the share, and those pages leave QEMU's resident
set (deflate-on-oom keeps the guest safe). Once the host's pressure has been gone for `release_s`,
the balloon gives the guest all its memory back.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from gc_hooks import lease
from gc_hooks.dynamic_heap import signals
from gc_hooks.dynamic_heap.decide import MB, HostSignals, Settings, pressure_deficit
from gc_hooks.seam import HookEvent, HostMonitor, VmSide
from jvmbridge.errors import JvmError
from jvmbridge.hsperf import PerfData
from jvmbridge.proc import is_alive

POLICY = "dynamic-heap"
MIN_GUEST = 256 * MB  # a balloon never leaves a guest less than this
RESERVE = 0.08  # of the guest's memory left available before the share: below the guest controller's 10 % mark
STATS_INTERVAL = 2  # seconds between the guest's balloon statistics


def share_of(deficit: int, idle: int, peers_idle: int) -> int:
    """Bytes this VM gives of `deficit`: in proportion to its idle heap among all VMs', at most that heap."""
    if deficit <= 0 or idle <= 0 or peers_idle <= 0:
        return 0
    return min(idle, int(deficit * min(1.0, idle / peers_idle)))


def balloon_target(actual: int, full: int, available: int | None, share: int) -> int:
    """The guest's new memory: what it has available beyond the reserve, and `share`, less than now;
    never below MIN_GUEST nor a quarter of its memory. Nothing taken without a share."""
    if share <= 0:
        return actual
    spare = max(0, available - int(RESERVE * full)) if available is not None else 0
    return max(MIN_GUEST, full // 4, actual - spare - share)


class BalloonMonitor(HostMonitor):
    """One per VM run with the dynamic heap: sets the balloon from the host's memory and every VM's idle heap."""

    essential = False  # without it the guest's controller still steers the heap; only host-wide sharing is lost

    def __init__(self, interval: float = 2.0, release_s: float = 10.0) -> None:
        self.interval = interval
        self.release_s = release_s
        self.settings = Settings()
        self.vm: VmSide | None = None
        self.full = 0
        self.actual = 0
        self.idle = 0
        self._calm_since: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._scratch = ""
        self._published: Path | None = None
        self._device: str | None = None

    def start(self, vm: VmSide | None) -> None:
        if vm is None:
            return
        self.vm = vm
        self._scratch = tempfile.mkdtemp(prefix="osv-java-balloon-")
        self._published = Path(lease.folder()) / "dynamic-heap" / f"{vm.qemu_pid}.json"
        self._published.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._loop, name="dynamic-heap-balloon", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        failure = ""
        while not self._stop.wait(self.interval):
            try:
                if not self.full:  # the guest loads the balloon's driver during its boot
                    self.full = self.actual = int(self._qmp("query-balloon")["actual"])
                    self._device = self._stats_device()
                self.step(time.monotonic())
            except JvmError:
                continue  # the guest's JVM has not started yet, or has exited
            except Exception as exc:  # noqa: BLE001 - never the app's problem; said once, tried again
                if str(exc) != failure and self.full and not self._stop.is_set():
                    failure = str(exc)
                    self.report(HookEvent(POLICY, "warning", f"balloon: {exc}"))

    def step(self, now: float) -> None:
        assert self.vm is not None
        self.idle = self._guest_idle()
        host, scope = self._host()
        self._publish(scope)
        deficit, why = pressure_deficit(host, self.settings)
        if deficit > 0:
            self._calm_since = None
            share = share_of(deficit, self.idle, self._peers_idle(scope))
            self.actual = int(self._qmp("query-balloon")["actual"])  # where the guest has got to
            available = self._guest_available()
            target = balloon_target(self.actual, self.full, available, share)
            if target < self.actual - 4 * MB:
                spare = "unknown" if available is None else f"{available // MB} MB"
                self._set(target, f"host pressure: {why}; this VM's share {share // MB} MB of its "
                                  f"{self.idle // MB} MB idle heap (guest available {spare})")
        elif self.actual < self.full:
            self._calm_since = self._calm_since if self._calm_since is not None else now
            if now - self._calm_since >= self.release_s:
                self._set(self.full, f"no host pressure for {self.release_s:.0f} s: the guest gets its memory back")

    def _qmp(self, command: str, **arguments: object) -> Any:
        assert self.vm is not None
        return self.vm.qmp(command, **arguments)

    def _set(self, target: int, why: str) -> None:
        assert self.vm is not None
        before = self.actual
        self._qmp("balloon", value=target)
        self.actual = target
        self.report(HookEvent(POLICY, "balloon", why, before=f"{before // MB}M", after=f"{target // MB}M"))

    def _stats_device(self) -> str | None:
        """The balloon's QOM path, with its statistics turned on; None when QEMU has none to give."""
        assert self.vm is not None
        try:
            children = self._qmp("qom-list", path="/machine/peripheral-anon")
            name = next(c["name"] for c in children if "virtio-balloon" in c["type"])
            path = f"/machine/peripheral-anon/{name}"
            self._qmp("qom-set", path=path, property="guest-stats-polling-interval", value=STATS_INTERVAL)
            return path
        except Exception:  # noqa: BLE001 - without statistics the share alone is taken
            return None

    def _guest_available(self) -> int | None:
        """The guest's MemAvailable from the balloon's statistics (None before the first report)."""
        if self._device is None:
            return None
        assert self.vm is not None
        stats = self._qmp("qom-get", path=self._device, property="guest-stats").get("stats", {})
        available = stats.get("stat-available-memory")
        return int(available) if isinstance(available, int) and available >= 0 else None

    def _guest_idle(self) -> int:
        assert self.vm is not None
        path = os.path.join(self._scratch, "hsperfdata")
        with open(path, "wb") as f:
            f.write(self.vm.request("hsperf", timeout=10.0))
        with PerfData(Path(path)) as pd:
            stats = pd.stats()
        return max(0, stats.heap_capacity - stats.heap_used)

    def _host(self) -> tuple[HostSignals, str | None]:
        """The machine's memory signals, and the memory cgroup QEMU runs in when it has a limit (then
        only the VMs in it share that limit)."""
        assert self.vm is not None
        info = signals.meminfo()
        cgroup = signals.memory_cgroup(self.vm.qemu_pid)
        limit = usage = psi = None
        if cgroup is not None:
            limit, usage, psi = cgroup.limit(), cgroup.usage(), cgroup.psi_some_avg10()
        host = HostSignals(mem_total=info.get("MemTotal", 0), mem_available=info.get("MemAvailable", 0),
                           psi_some_avg10=psi if psi is not None else signals.psi_some_avg10(),
                           cgroup_limit=limit, cgroup_usage=usage, peers_idle=self.idle)
        return host, (str(cgroup.path) if cgroup is not None and limit is not None else None)

    def _publish(self, cgroup: str | None) -> None:
        assert self._published is not None
        temporary = self._published.with_suffix(".tmp")
        temporary.write_text(json.dumps({"idle": self.idle, "cgroup": cgroup}))
        temporary.replace(self._published)

    def _peers_idle(self, scope: str | None) -> int:
        """Idle heap of every VM that publishes one (us included) and shares our memory: all of this
        machine's, or those in our limited cgroup or below it. Records of dead VMs are removed."""
        assert self._published is not None
        total = 0
        for path in self._published.parent.glob("*.json"):
            if not (path.stem.isdigit() and is_alive(int(path.stem))):  # its QEMU is gone
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                record = json.loads(path.read_text())
                theirs = str(record.get("cgroup") or "")
                if scope is None or theirs == scope or theirs.startswith(scope + "/"):
                    total += int(record["idle"])
        return total

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15.0)
        if self._published is not None:
            with contextlib.suppress(OSError):
                self._published.unlink()
        if self._scratch:
            with contextlib.suppress(OSError):
                for name in os.listdir(self._scratch):
                    os.unlink(os.path.join(self._scratch, name))
                os.rmdir(self._scratch)
