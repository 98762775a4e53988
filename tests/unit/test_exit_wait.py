"""wait_exit reports a child's exit (reaped, with its status) and a child still running."""

from __future__ import annotations

import subprocess
import sys

from kernel.exit_wait import wait_exit


def test_an_exit_is_reported_with_its_status() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(7)"])
    assert wait_exit(proc, 60.0)
    assert proc.returncode == 7
    assert wait_exit(proc, 0.0)  # and again, once reaped


def test_a_running_child_times_out() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert not wait_exit(proc, 0.05)
        assert proc.returncode is None
    finally:
        proc.kill()
        proc.wait()
