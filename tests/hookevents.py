"""A gc_hooks Channel for tests that drive a supervisor themselves: it keeps every event it is told."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from gc_hooks.seam import HookEvent


class Events:
    """A Channel that keeps what the supervisor says (the supervisor's thread emits, the test reads)."""

    def __init__(self) -> None:
        self.events: list[HookEvent] = []
        self.lock = threading.Lock()

    def emit(self, event: HookEvent) -> None:
        with self.lock:
            self.events.append(event)

    def send(self, policy: str, kind: str, data: str) -> None:
        pass

    def whats(self) -> list[str]:
        with self.lock:
            return [e.what for e in self.events]

    def wait(self, what: str, timeout: float = 20.0, until: Callable[[HookEvent], bool] = bool) -> HookEvent:
        """The latest `what` event that `until` accepts, waiting up to `timeout` seconds for one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [e for e in self.events if e.what == what and until(e)]
            if found:
                return found[-1]
            time.sleep(0.1)
        raise AssertionError(f"no {what!r} event in {timeout}s: {[e.line() for e in self.events]}")
