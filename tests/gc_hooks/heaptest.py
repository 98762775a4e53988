"""Helpers of the dynamic heap's real-JVM tests: a HeapHolder JVM, polling."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from jvmbridge.hsperf import PerfData

MB = 1024 * 1024


@dataclass
class Holder:
    """A running HeapHolder JVM."""

    proc: subprocess.Popen[str]
    pid: int
    perf: PerfData | None = None
    lines: list[str] = field(default_factory=list)

    def say(self, command: str, timeout: float = 20.0) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"the JVM exited; said {self.lines[-5:]}")
            self.lines.append(line)
            if line.strip() == f"ok {command}":
                return
        raise AssertionError(f"no answer to {command!r}")

    def committed(self) -> int:
        if self.perf is None:
            self.perf = PerfData.open(self.pid)
        return self.perf.heap_file_committed() or sum(self.perf.long(f"sun.gc.generation.{g}.capacity")
                                                      for g in range(3))

    def used(self) -> int:
        if self.perf is None:
            self.perf = PerfData.open(self.pid)
        return sum(self.perf.long(f"sun.gc.generation.{g}.space.{s}.used") for g in range(3) for s in range(3))


def wait_for(check: Callable[[], bool], timeout: float, step: float = 0.25) -> bool:
    """Poll `check()` until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return bool(check())
