"""A drained JVM collects at the lowest CPU priority.

Once the load balancer has taken a JVM's server out, nobody waits on its collection, while the JVMs
still serving need the CPUs for their requests: a parallel full collection on every core of a small
machine would otherwise slow them all for as long as it runs. So every thread of the collecting
process (the JVM, or QEMU's for a VM) runs at nice 19 for the collection, and goes back to its own
nice value after.

Only where the nice values can be put back: lowering a nice value needs CAP_SYS_NICE (root) or a
RLIMIT_NICE that allows it; elsewhere this does nothing, so a JVM never stays slowed.
"""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Iterator
from pathlib import Path

LOWEST = 19


def can_restore(nice: int = 0) -> bool:
    """True when this process may set a thread's nice value back down to `nice`."""
    if os.geteuid() == 0:
        return True
    soft, _ = resource.getrlimit(resource.RLIMIT_NICE)  # the ceiling is 20 - soft
    return 20 - soft <= nice


def _threads(pid: int) -> list[int]:
    try:
        return [int(name) for name in os.listdir(Path(f"/proc/{pid}/task"))]
    except OSError:
        return []


@contextlib.contextmanager
def lowest_priority(pid: int) -> Iterator[int]:
    """Every thread of `pid` at nice 19 inside the block (the number of threads changed), back after."""
    saved: dict[int, int] = {}
    try:
        for tid in _threads(pid):
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                nice = os.getpriority(os.PRIO_PROCESS, tid)
                if nice < LOWEST and can_restore(nice):
                    os.setpriority(os.PRIO_PROCESS, tid, LOWEST)
                    saved[tid] = nice
        yield len(saved)
    finally:
        for tid, nice in saved.items():
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, tid, nice)
