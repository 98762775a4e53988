"""A lease on one machine: a file lock under /run/osv-java that its holder's death releases.

JVMs of one `--stw-group`, and the servers of one HAProxy backend, take turns through it: whoever
holds the lease may stop the world (or take its server out), the others wait for a later moment.
flock(2) locks belong to the open file, so a holder that dies (even by SIGKILL) lets go at once and
nothing stale is ever left to clean. Standard library only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile

RUN_DIR = "/run/osv-java"


def folder() -> str:
    """/run/osv-java (root), else a folder of the user's own in the temporary folder.
    OSV_JAVA_RUN_DIR overrides both (tests use it)."""
    chosen = os.environ.get("OSV_JAVA_RUN_DIR")
    if chosen:
        os.makedirs(chosen, mode=0o700, exist_ok=True)
        return chosen
    try:
        os.makedirs(RUN_DIR, mode=0o755, exist_ok=True)
        if os.access(RUN_DIR, os.W_OK):
            return RUN_DIR
    except OSError:
        pass
    own = os.path.join(tempfile.gettempdir(), f"osv-java-{os.getuid()}")
    os.makedirs(own, mode=0o700, exist_ok=True)
    return own


def safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:120]


class Lease:
    """`try_acquire` without waiting; `release` (or the holder's exit) lets the next one in."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.path = os.path.join(folder(), f"stw-{safe(name)}.lock")
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        with contextlib.suppress(OSError):  # who holds it, for a person looking
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def holder(self) -> int | None:
        """The pid that last took the lease, if it still holds it (None when free)."""
        probe = Lease(self.name)
        if probe.try_acquire():
            probe.release()
            return None
        try:
            with open(self.path) as f:
                return int(f.read().strip() or 0) or None
        except (OSError, ValueError):
            return None
