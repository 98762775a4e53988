"""Real JVMs (JDK 17) steered by the dynamic heap's supervisor: a helper program compiled once, each
JVM killed after its test, and memory cgroups (v1) made for a test and removed after it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gc_hooks.seam import HookEvent
from jvmbridge.hsperf import PerfData

JDK17 = Path("/usr/lib/jvm/java-17-openjdk-amd64")
JAVA_SOURCES = Path(__file__).parent / "java"
MB = 1024 * 1024


@pytest.fixture(scope="session")
def holder_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (JDK17 / "bin" / "java").exists():
        pytest.skip(f"JDK 17 not installed at {JDK17}")
    out = tmp_path_factory.mktemp("holder")
    subprocess.run([str(JDK17 / "bin" / "javac"), "--release", "17", "-d", str(out),
                    *map(str, JAVA_SOURCES.glob("*.java"))], check=True)
    return out


class Events:
    """A Channel that keeps what the supervisor says."""

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
        return sum(self.perf.long(f"sun.gc.generation.{g}.capacity") for g in range(3))

    def used(self) -> int:
        if self.perf is None:
            self.perf = PerfData.open(self.pid)
        return sum(self.perf.long(f"sun.gc.generation.{g}.space.{s}.used") for g in range(3) for s in range(3))


@pytest.fixture
def start_holder(holder_classes: Path) -> Iterator[object]:
    started: list[Holder] = []

    def start(*options: str, cgroup: Path | None = None) -> Holder:
        argv = [str(JDK17 / "bin" / "java"), *options, "-cp", str(holder_classes), "HeapHolder"]
        if cgroup is not None:  # enter the cgroup before exec: the JVM sees its limit from the start
            argv = ["sh", "-c", f'echo $$ > {cgroup}/cgroup.procs && exec "$@"', "sh", *argv]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        first = proc.stdout.readline().split()
        assert first[:1] == ["ready"], first
        holder = Holder(proc, int(first[1]))
        started.append(holder)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                holder.committed()
                break
            time.sleep(0.05)
        return holder

    yield start
    for holder in started:
        if holder.perf is not None:
            holder.perf.close()
        if holder.proc.poll() is None:
            holder.proc.kill()
        holder.proc.wait(timeout=30)


def _memory_root() -> Path | None:
    """Our own v1 memory cgroup, where a child can be made."""
    from gc_hooks.dynamic_heap.signals import memory_cgroup

    cg = memory_cgroup(os.getpid())
    if cg is None or cg.version != 1 or not os.access(cg.path, os.W_OK):
        return None
    return cg.path


@pytest.fixture
def memory_cgroup_v1() -> Iterator[Path]:
    root = _memory_root()
    if root is None:
        pytest.skip("no writable cgroup v1 memory controller")
    folder = root / f"osv-test-{os.getpid()}-{time.monotonic_ns()}"
    folder.mkdir()
    try:
        yield folder
    finally:
        for pid in (folder / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 9)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                folder.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def wait_for(check: object, timeout: float, step: float = 0.25) -> bool:
    """Poll `check()` until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(step)
    return bool(check())  # type: ignore[operator]
