"""A QEMU without a guest, for what needs only its monitor and user-mode network."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel.vm import monitor


@pytest.fixture
def qemu_monitor(tmp_path: Path) -> Iterator[Path]:
    """The QMP socket of a QEMU running `-M none` with user-mode networking (no guest: starts at once)."""
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        pytest.skip("QEMU is not installed")
    path = tmp_path / "qmp.sock"
    proc = subprocess.Popen(
        [qemu, "-M", "none", "-nodefaults", "-nographic", "-netdev", f"user,id={monitor.NETDEV}",
         "-qmp", f"unix:{path},server=on,wait=off"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not path.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "QEMU did not open its monitor"
            time.sleep(0.02)
        yield path
    finally:
        proc.kill()
        proc.wait()
