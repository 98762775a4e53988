"""Runs the supervisors of a run beside its JVM: in PID 1, in osv-java for --target process, and for
`osv-java attach`. One thread; each supervisor ticks at its own interval. A supervisor that raises is
reported as an event and dropped: a policy's failure never harms the app. Standard library only."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence

from gc_hooks.seam import Channel, HookEvent, Supervisor, SupervisorSpec


class SupervisorRunner:
    """Start with `start(pid)`, end with `stop(exited)`; usable as a context manager."""

    def __init__(self, specs: Sequence[SupervisorSpec], channel: Channel) -> None:
        self.channel = channel
        self._entries: list[tuple[str, Supervisor]] = []
        for spec in specs:
            try:
                self._entries.append((spec.policy, spec.make()))
            except Exception as exc:  # noqa: BLE001 - a policy that cannot load is reported, the run goes on
                self._failed(spec.policy, "load", exc)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _failed(self, policy: str, where: str, exc: BaseException) -> None:
        import traceback  # here: a run without a failing policy does not pay for it

        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        with contextlib.suppress(Exception):  # the channel itself is gone: nothing left to tell
            self.channel.emit(HookEvent(policy, "failed", f"{where}: {last}; the policy is off for this run"))

    def _call(self, policy: str, supervisor: Supervisor, where: str, *args: object) -> bool:
        try:
            getattr(supervisor, where)(*args)
            return True
        except Exception as exc:  # noqa: BLE001
            self._failed(policy, where, exc)
            return False

    def start(self, pid: int) -> None:
        with self._lock:
            self._entries = [(p, s) for p, s in self._entries if self._call(p, s, "start", pid, self.channel)]
        if self._entries:
            self._thread = threading.Thread(target=self._loop, name="gc-hooks", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        due = {id(s): time.monotonic() + s.interval for _, s in self._entries}
        while not self._stop.is_set():
            with self._lock:
                now = time.monotonic()
                for policy, supervisor in list(self._entries):
                    if now >= due[id(supervisor)]:
                        due[id(supervisor)] = now + supervisor.interval
                        if not self._call(policy, supervisor, "tick", now):
                            self._entries.remove((policy, supervisor))
                wait = min((due[id(s)] for _, s in self._entries), default=now + 1.0) - time.monotonic()
            self._stop.wait(max(0.01, wait))

    def stop(self, exited: bool) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
        with self._lock:
            for policy, supervisor in self._entries:
                self._call(policy, supervisor, "stop", exited)
            self._entries = []

    @property
    def active(self) -> list[str]:
        return [policy for policy, _ in self._entries]

    def __enter__(self) -> SupervisorRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(exited=True)
