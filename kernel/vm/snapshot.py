"""Boot snapshots: a machine saved once its kernel and PID 1 are up, so later runs start from there.

A cold boot spends about three seconds under software emulation on the kernel, /init and PID 1
before the JVM can start; restoring the saved machine takes a fraction of that. The snapshot is
taken when PID 1 is ready and no JVM exists yet, so every run still starts its own JVM, with its own
arguments, environment and options. What runs share is the booted kernel and PID 1's idle state, and
two parts of that would otherwise repeat themselves: the clock, which PID 1 sets from the host's at
every run, and the kernel's random state, which PID 1 reseeds with fresh host entropy at every run
(kernel/guest/renew.py).

A snapshot is QEMU's migration stream written to a file. There is one per image and machine shape
(memory, CPUs, accelerator, QEMU); the newest KEEP are kept. The app is part of its image, so a
changed app is a new image: to keep an edit-and-run loop free of snapshots that would serve once,
the first run of a machine boots cold and only notes it was seen, the second saves the snapshot
(about a second more), and the runs after it start from there. Runs with volumes boot cold (their
disk is part of the machine), and so does `osv-java run --cold-boot`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import subprocess
import time
from pathlib import Path

from jvmbridge.errors import OsvJavaError
from kernel import cache
from kernel.vm import qemu
from kernel.vm.monitor import Monitor, MonitorError

FORMAT = 1  # of what PID 1 does between "snapshot" and "run"; a change makes old snapshots unused
KEEP = 8  # snapshots kept in the cache (each is the machine's used memory: about 150 MB)
SUFFIX = ".vmstate"
SEEN_SUFFIX = ".seen"  # an empty file: the machine has booted once (the next run saves its snapshot)
KEEP_SEEN = 256


class SnapshotError(OsvJavaError):
    """A snapshot could not be saved or restored; the run goes on without it."""


def key(image_key: str, machine: qemu.MachineConfig) -> str:
    """What the saved machine depends on: the image, QEMU, and the machine as QEMU is told it
    (MachineConfig.shape: memory, CPUs, accelerator, devices, kernel command line), so a new
    device or option makes a new snapshot rather than a failed restore."""
    binary = Path(qemu.qemu_binary())
    info = binary.stat()
    parts = [
        f"format={FORMAT}",
        f"image={image_key}",
        f"qemu={binary}:{info.st_size}:{info.st_mtime_ns}",
        f"machine={machine.shape()}",
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def path_for(snapshot_key: str) -> Path:
    return cache.ensure("snapshots") / f"{snapshot_key}{SUFFIX}"


def _wait_migration(monitor: Monitor, proc: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise SnapshotError(f"QEMU stopped while {what} (exit status {proc.returncode})")
        info = monitor.execute("query-migrate")
        if not isinstance(info, dict):
            raise SnapshotError(f"{what}: QEMU answered query-migrate with {info!r}")
        status = info.get("status")
        if status == "completed":
            return
        if status in ("failed", "cancelled"):
            raise SnapshotError(f"{what} failed: {info.get('error-desc', status)}")
        if time.monotonic() > deadline:
            raise SnapshotError(f"{what} took more than {timeout:g}s")
        time.sleep(0.01)


def save(monitor: Monitor, proc: subprocess.Popen[bytes], target: Path, timeout: float = 120.0) -> int:
    """Pause the machine, write it to `target` (atomically), resume it; returns the snapshot's size."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        monitor.execute("stop")
        try:
            monitor.execute("migrate", uri=f"exec:cat > {shlex.quote(str(tmp))}")
            _wait_migration(monitor, proc, "saving the boot snapshot", timeout)
            size = tmp.stat().st_size
            os.replace(tmp, target)
        finally:
            monitor.execute("cont")
    except (MonitorError, OSError) as exc:
        raise SnapshotError(f"saving the boot snapshot failed: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    prune()
    return size


def wait_restored(qmp_socket: Path, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Wait until QEMU has read the snapshot (started with MachineConfig.incoming), then resume the machine."""
    deadline = time.monotonic() + timeout
    while not qmp_socket.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SnapshotError(f"QEMU stopped before restoring the snapshot (exit status {proc.poll()})")
        time.sleep(0.005)
    try:
        with Monitor(qmp_socket) as monitor:
            _wait_migration(monitor, proc, "restoring the boot snapshot", timeout)
            monitor.execute("cont")
    except MonitorError as exc:
        raise SnapshotError(f"restoring the boot snapshot failed: {exc}") from exc


def seen_before(snapshot: Path) -> bool:
    """Whether the machine of `snapshot` has booted before; notes that it has, in any case."""
    marker = snapshot.with_suffix(SEEN_SUFFIX)
    if marker.exists():
        return True
    marker.touch()
    prune()
    return False


def prune(keep: int = KEEP) -> None:
    """Delete all but the `keep` most recently used snapshots (and all but the newest marks of machines seen)."""
    folder = cache.ensure("snapshots")
    for suffix, kept in ((SUFFIX, keep), (SEEN_SUFFIX, KEEP_SEEN)):
        files = []
        for path in folder.glob(f"*{suffix}"):
            with contextlib.suppress(OSError):  # another run may be pruning too
                files.append((path.stat().st_mtime, path))
        for _, old in sorted(files, reverse=True)[kept:]:
            old.unlink(missing_ok=True)


def touch(path: Path) -> None:
    """Mark a snapshot as just used (pruning keeps the most recently used)."""
    with contextlib.suppress(OSError):
        os.utime(path)
