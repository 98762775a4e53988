"""The host side of a run's policies: their monitors, and every decision (HookEvent) of the run.

One object per run, for a VM (the guest's supervisors reach it through kernel.vm), for --target
process and for `osv-java attach` (the supervisors run in this process and use it as their Channel).
"""

from __future__ import annotations

import sys
import threading

from gc_hooks.policies import Plan
from gc_hooks.seam import HookEvent, VmSide


class HostSide:
    """Routes supervisors' messages to their policy's monitor and keeps the run's events."""

    def __init__(self, plan: Plan, verbose: bool = False) -> None:
        self.monitors = plan.monitors
        self.verbose = verbose
        self.events: list[HookEvent] = []
        self._lock = threading.Lock()
        self._started: list[str] = []

    def start(self, vm: VmSide | None) -> None:
        for name, monitor in self.monitors.items():
            monitor.report = self.emit  # type: ignore[method-assign]
            monitor.start(vm)
            self._started.append(name)

    def emit(self, event: HookEvent) -> None:
        with self._lock:
            self.events.append(event)
            for monitor in self.monitors.values():
                monitor.event(event)
        if self.verbose or event.what in ("failed", "warning"):
            print(f"osv-java: {event.line()}", file=sys.stderr, flush=True)

    def send(self, policy: str, kind: str, data: str) -> None:
        monitor = self.monitors.get(policy)
        if monitor is not None:
            with self._lock:
                monitor.message(kind, data)

    def stop(self) -> None:
        """Stop every monitor that started, even when one of them fails."""
        errors: list[BaseException] = []
        for name in reversed(self._started):
            try:
                self.monitors[name].stop()
            except Exception as exc:  # noqa: BLE001 - the others still stop; the first error is raised
                errors.append(exc)
        self._started = []
        if errors:
            raise errors[0]

    def __enter__(self) -> HostSide:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
