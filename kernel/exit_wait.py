"""Waiting for a child process to exit without polling.

`Popen.wait(timeout)` sleeps in steps that grow to 50 ms, so a run that waits for its JVM (or its
QEMU) to exit learns of it up to 50 ms late, every run. A pidfd becomes readable the moment the
process exits.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """True once `proc` has exited (and is reaped), False if it still runs after `timeout` seconds."""
    if proc.poll() is not None:
        return True
    try:
        pidfd = os.pidfd_open(proc.pid)
    except OSError:  # a kernel without pidfds (before 5.3): Popen's own wait
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
        return proc.poll() is not None
    try:
        select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    return proc.poll() is not None
