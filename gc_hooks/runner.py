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
        self._waiting = [spec for spec in specs if spec.delay > 0]  # loaded `delay` seconds after start
        for spec in specs:
            if spec.delay <= 0:
                self._load(spec)
        self._pid = 0
        self._started = 0.0
        self._due: dict[int, float] = {}  # id(supervisor): when it ticks next
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _load(self, spec: SupervisorSpec) -> Supervisor | None:
        try:
            supervisor = spec.make()
        except Exception as exc:  # noqa: BLE001 - a policy that cannot load is reported, the run goes on
            self._failed(spec.policy, "load", exc)
            return None
        self._entries.append((spec.policy, supervisor))
        return supervisor

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
            self._pid = pid
            self._started = time.monotonic()
            self._entries = [(p, s) for p, s in self._entries if self._call(p, s, "start", pid, self.channel)]
            self._due = {id(s): self._started + s.interval for _, s in self._entries}
        if self._entries or self._waiting:
            self._thread = threading.Thread(target=self._loop, name="gc-hooks", daemon=True)
            self._thread.start()

    def _start_waiting(self, now: float) -> None:
        """Load and start the supervisors whose delay has passed; each ticks at once."""
        for spec in [spec for spec in self._waiting if now >= self._started + spec.delay]:
            self._waiting.remove(spec)
            supervisor = self._load(spec)
            if supervisor is None:
                continue
            if self._call(spec.policy, supervisor, "start", self._pid, self.channel):
                self._due[id(supervisor)] = now
            else:
                self._entries.remove((spec.policy, supervisor))

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._start_waiting(time.monotonic())
                now = time.monotonic()
                for policy, supervisor in list(self._entries):
                    if now >= self._due[id(supervisor)]:
                        self._due[id(supervisor)] = now + supervisor.interval
                        if not self._call(policy, supervisor, "tick", now):
                            self._entries.remove((policy, supervisor))
                wakes = [*(self._due[id(s)] for _, s in self._entries),
                         *(self._started + spec.delay for spec in self._waiting)]
                wait = min(wakes, default=now + 1.0) - time.monotonic()
            self._stop.wait(max(0.01, wait))

    def stop(self, exited: bool) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
        with self._lock:
            for policy, supervisor in self._entries:
                self._call(policy, supervisor, "stop", exited)
            self._entries = []
            self._waiting = []  # the run ended before they were due: never loaded

    @property
    def active(self) -> list[str]:
        return [policy for policy, _ in self._entries]

    def __enter__(self) -> SupervisorRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(exited=True)
