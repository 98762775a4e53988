"""Host memory as tests and benchmarks watch it: a child memory cgroup made for one test (or one
benchmark phase) and removed after it, whatever it left running, and the resident set of the QEMU that
an `osv-java run` started."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from gc_hooks.dynamic_heap.signals import CgroupMemory, memory_cgroup


def own_memory_cgroup(version: int | None = None) -> CgroupMemory | None:
    """Our own memory cgroup when a child can be made in it (of that cgroup `version` when given)."""
    own = memory_cgroup(os.getpid())
    if own is None or not os.access(own.path, os.W_OK) or version not in (None, own.version):
        return None
    return own


def make_child(root: Path, prefix: str) -> Path:
    """A new cgroup below `root`, named so that parallel runs and reruns never meet."""
    folder = root / f"{prefix}-{os.getpid()}-{time.monotonic_ns()}"
    folder.mkdir()
    return folder


def remove(folder: Path, timeout: float = 10) -> None:
    """Kill what is left in the cgroup and remove it: rmdir fails until the kernel has reaped them."""
    with contextlib.suppress(OSError):
        for pid in (folder / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            folder.rmdir()
            return
        except OSError:
            time.sleep(0.1)


@contextlib.contextmanager
def child(root: Path, prefix: str) -> Iterator[Path]:
    """A child cgroup for the block, removed after it (see `remove`)."""
    folder = make_child(root, prefix)
    try:
        yield folder
    finally:
        remove(folder)


def qemu_of(osv_pid: int) -> int | None:
    """The pid of the QEMU that the osv-java process `osv_pid` started, or None while (or once) it
    has none."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            status = (entry / "status").read_text().splitlines()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        if parent == osv_pid and status and "qemu-system" in status[0]:
            return int(entry.name)
    return None


def qemu_rss(osv_pid: int) -> int | None:
    """The resident set, in bytes, of the QEMU that the osv-java process `osv_pid` started, or None
    while (or once) it has none."""
    pid = qemu_of(osv_pid)
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines() if pid is not None else []
    except OSError:
        return None
    return next((int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:")), None)
