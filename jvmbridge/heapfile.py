"""The committed heap of a JVM whose heap lives in a file: ZGC keeps it in a memfd named java_heap
(java_heap.hugetlb on a huge-page pool), commits with fallocate and uncommits by punching holes, so
the file's allocated blocks are the committed heap, exact at any moment.

hsperfdata cannot say this for ZGC: its capacity counter is refreshed only when a collection ends, and
an uncommit (which ZGC's uncommitter does between collections) never refreshes it, so an idle JVM's
counter can stay hundreds of MB off for as long as it stays idle.
"""

from __future__ import annotations

import os
from pathlib import Path

from jvmbridge.proc import PROC

HEAP_FILE_PREFIX = "/memfd:java_heap"


class HeapFile:
    """The heap file of one process, found once among its open files and read with a stat."""

    def __init__(self, path: Path) -> None:
        self.path = path  # /proc/PID/fd/N

    @classmethod
    def find(cls, pid: int, proc: Path = PROC) -> HeapFile | None:
        """The heap file among `pid`'s open files, or None (another collector, or not ours to read)."""
        fds = proc / str(pid) / "fd"
        try:
            names = os.listdir(fds)
        except OSError:
            return None
        for name in names:
            try:
                if os.readlink(fds / name).startswith(HEAP_FILE_PREFIX):
                    return cls(fds / name)
            except OSError:
                continue
        return None

    def committed(self) -> int | None:
        """Bytes the heap file holds now; None once the file or the process is gone."""
        try:
            return os.stat(self.path).st_blocks * 512
        except OSError:
            return None
