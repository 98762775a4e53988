"""Boot snapshots: a machine saved once its kernel and PID 1 are up, so later runs start from there.

A cold boot spends seconds under software emulation on the kernel, /init and PID 1 before the JVM
can start; restoring the saved machine takes a fraction of that. The snapshot is taken when PID 1 is
ready and neither the JVM nor the app is there yet: the machine boots the image's base initramfs
(kernel.build.image: everything but the app's own files), and after a restore the host sends the
app's files with the run request (PID 1 unpacks them: kernel/guest/unpack.py). So a snapshot belongs
to a runtime (kernel, base initramfs, JRE: Image.runtime_key) and a machine shape (memory, CPUs,
accelerator, devices, kernel command line, QEMU), not to an app: the first run of an edited jar
restores the snapshot its previous version used. What runs share is the booted kernel and PID 1's
idle state, and two parts of that would otherwise repeat themselves: the clock, which PID 1 sets from
the host's at every run, and the kernel's random state, which PID 1 reseeds with fresh host entropy
at every run (kernel/guest/renew.py).

A snapshot is a folder KEY.snapshot of two files, renamed into place whole so that a restore never
pairs one save's RAM with another's devices: the guest's RAM (`ram`, sparse: only the pages the
guest wrote hold data) and QEMU's migration stream without it (`state`, the devices' and vCPUs'
state, well under a megabyte): the machine's RAM is a shared memory backend and QEMU's
x-ignore-shared capability leaves it out of the stream. A restore copies the RAM file's data into a
memfd QEMU maps (a copy in the host's page cache, no parsing of a stream, made while QEMU starts)
and reads the small stream. A machine without a balloon maps the RAM file itself instead (privately:
its writes stay in its QEMU; no copy, a third of the restore's time); one with a balloon cannot, as
QEMU 7.2 frees a page the balloon reports or takes by punching a hole in the RAM's backing file even
when the mapping is private, which would cut holes into the saved snapshot.

The newest KEEP snapshots are kept. To keep one-off machines from costing a save, the first run of a
machine boots cold and only notes it was seen, the second saves the snapshot, and the runs after it
start from there. Runs with volumes boot cold (their disk is part of the machine), and so does
`osv-java run --cold-boot`.

Ready-point snapshots (kernel/vm/ready.py: a service's machine saved once the app is ready) are
saved and restored by the same functions, live in the same folder and count against the same KEEP.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import mmap
import os
import shlex
import shutil
import subprocess
import threading
import time
from pathlib import Path

from jvmbridge.errors import OsvJavaError
from kernel import cache
from kernel.vm import qemu
from kernel.vm.monitor import Monitor, MonitorError

FORMAT = 2  # of the snapshot's files and what PID 1 does between "snapshot" and "run"
KEEP = 8  # snapshots kept in the cache, boot and ready ones (each holds the machine's used memory: 150 MB and up)
SUFFIX = ".snapshot"  # a folder: STATE and RAM
STATE = "state"
RAM = "ram"
SEEN_SUFFIX = ".seen"  # an empty file: the machine has booted once (the next run saves its snapshot)
KEEP_SEEN = 256
RAM_COPY = "osv-java-snapshot-ram"  # the name of a restore's memfd (ram_copy)
CAPABILITIES = [{"capability": "x-ignore-shared", "state": True}]


class SnapshotError(OsvJavaError):
    """A snapshot could not be saved or restored; the run goes on without it."""


def key(runtime_key: str, machine: qemu.MachineConfig) -> str:
    """What the saved machine depends on: the runtime (Image.runtime_key), QEMU, and the machine as
    QEMU is told it (MachineConfig.shape: memory, CPUs, accelerator, devices, kernel command line), so
    a new device or option makes a new snapshot rather than a failed restore."""
    binary = Path(qemu.qemu_binary())
    info = binary.stat()
    parts = [
        f"format={FORMAT}",
        f"runtime={runtime_key}",
        f"qemu={binary}:{info.st_size}:{info.st_mtime_ns}",
        f"machine={machine.shape()}",
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def path_for(snapshot_key: str) -> Path:
    return cache.ensure("snapshots") / f"{snapshot_key}{SUFFIX}"


def ram_for(snapshot: Path) -> Path:
    return snapshot / RAM


def ram_file(snapshot: Path) -> Path:
    """The snapshot's RAM file, for QEMU to map; SnapshotError when it is missing (QEMU would make an
    empty one and restore a machine without memory)."""
    ram = ram_for(snapshot)
    if not ram.is_file():
        raise SnapshotError(f"the boot snapshot's RAM is missing ({ram})")
    return ram


def state_for(snapshot: Path) -> Path:
    return snapshot / STATE


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
        time.sleep(0.005)


def copy_data(source: int, target: int) -> int:
    """Copy the data of file `source` into file `target` at the same offsets, skipping holes (guest
    RAM the guest never wrote); returns the bytes copied."""
    size = os.fstat(source).st_size
    os.ftruncate(target, size)
    copied = position = 0
    while position < size:
        try:
            start = os.lseek(source, position, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole is left
                break
            raise
        end = os.lseek(source, start, os.SEEK_HOLE)
        os.lseek(target, start, os.SEEK_SET)
        offset = start
        while offset < end:
            sent = os.sendfile(target, source, offset, end - offset)
            if sent == 0:
                raise OSError(f"the RAM file ended at {offset} while copying it")
            offset += sent
        copied += end - start
        position = end
    return copied


def write_sparse(source: int, target: int, page: int = 4096) -> int:
    """Write the data of file `source` into file `target` at the same offsets, leaving out pages of
    zeros as well as holes (RAM the guest touched but never filled: a sixth of it after a boot);
    returns the bytes written."""
    size = os.fstat(source).st_size
    os.ftruncate(target, size)
    if size == 0:
        return 0
    zero = bytes(page)
    written = 0
    with mmap.mmap(source, size, prot=mmap.PROT_READ) as memory:
        view = memoryview(memory)
        try:
            position = 0
            while position < size:
                try:
                    start = os.lseek(source, position, os.SEEK_DATA)
                except OSError as exc:
                    if exc.errno == errno.ENXIO:
                        break
                    raise
                end = os.lseek(source, start, os.SEEK_HOLE)
                run = None  # start of the current run of pages with data
                for offset in range(start, end + page, page):
                    if offset < end and view[offset:offset + page] != zero:
                        run = offset if run is None else run
                    elif run is not None:
                        written += os.pwrite(target, view[run:min(offset, end)], run)
                        run = None
                position = end
        finally:
            view.release()
    return written


def _qemu_ram(pid: int) -> Path:
    """QEMU's guest RAM, a memfd, as /proc shows its fd: QEMU's own (MachineConfig.snapshot_ram ==
    "memfd"), or the copy of a snapshot's RAM it restored into (ram_copy)."""
    folder = Path(f"/proc/{pid}/fd")
    for fd in folder.iterdir():
        with contextlib.suppress(OSError):
            if os.readlink(fd).startswith(("/memfd:memory-backend-memfd", f"/memfd:{RAM_COPY}")):
                return fd
    raise SnapshotError(f"QEMU (pid {pid}) has no memfd for its guest RAM")


def save(monitor: Monitor, proc: subprocess.Popen[bytes], target: Path, timeout: float = 120.0,
         extra: dict[str, bytes] | None = None, what: str = "the boot snapshot") -> int:
    """Pause the machine, write it and its RAM to the folder `target` (renamed into place whole, with
    the `extra` files: name -> bytes), resume it; returns the snapshot's size (the RAM's data and the
    stream)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.mkdir()
        monitor.execute("stop")
        try:
            monitor.execute("migrate-set-capabilities", capabilities=CAPABILITIES)
            monitor.execute("migrate", uri=f"exec:cat > {shlex.quote(str(state_for(tmp)))}")
            _wait_migration(monitor, proc, f"saving {what}", timeout)
            # The guest is stopped: its RAM is what the stream's devices expect.
            source = os.open(_qemu_ram(proc.pid), os.O_RDONLY | os.O_CLOEXEC)
            try:
                with open(ram_for(tmp), "wb") as out:
                    size = write_sparse(source, out.fileno()) + state_for(tmp).stat().st_size
            finally:
                os.close(source)
            for name, data in (extra or {}).items():
                (tmp / name).write_bytes(data)
            try:
                os.rename(tmp, target)
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise  # else another run saved this machine meanwhile: its snapshot stays
        finally:
            monitor.execute("cont")
    except (MonitorError, OSError) as exc:
        raise SnapshotError(f"saving {what} failed: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    prune()
    return size


DISCARDING_DEVICES = ("virtio-balloon",)  # devices through which QEMU 7.2 punches holes in RAM's file


def can_map(machine: qemu.MachineConfig) -> bool:
    """Whether a restore may map the snapshot's RAM file privately: no device of the machine discards
    guest RAM (see the module's docstring)."""
    return not any(device in arg for arg in machine.extra_args for device in DISCARDING_DEVICES)


class RamCopy:
    """The snapshot's RAM copied into a memfd by a thread, so that the copy overlaps QEMU's start:
    QEMU maps the memfd as it starts but reads guest RAM only once it restores, and `wait_restored`
    waits for the copy before it lets QEMU restore. The caller closes it once QEMU has the memfd."""

    def __init__(self, snapshot: Path) -> None:
        try:
            source = os.open(ram_for(snapshot), os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise SnapshotError(f"the boot snapshot's RAM is missing ({exc})") from exc
        self._error: OSError | None = None
        try:
            self.fd = os.memfd_create(RAM_COPY, os.MFD_CLOEXEC)
        except OSError as exc:
            os.close(source)
            raise SnapshotError(f"no memory file for the boot snapshot's RAM: {exc}") from exc
        try:
            os.ftruncate(self.fd, os.fstat(source).st_size)  # its size, before QEMU maps it
        except OSError as exc:
            os.close(source)
            os.close(self.fd)
            raise SnapshotError(f"reading the boot snapshot's RAM failed: {exc}") from exc
        self._thread = threading.Thread(target=self._copy, args=(source,), name="snapshot-ram", daemon=True)
        self._thread.start()

    def _copy(self, source: int) -> None:
        try:
            copy_data(source, self.fd)
        except OSError as exc:
            self._error = exc
        finally:
            os.close(source)

    def wait(self) -> None:
        """Return once the copy is whole; SnapshotError if it failed."""
        self._thread.join()
        if self._error is not None:
            raise SnapshotError(f"reading the boot snapshot's RAM failed: {self._error}")

    def close(self) -> None:
        self._thread.join()  # not under a copy still writing to it
        os.close(self.fd)


def ram_copy(snapshot: Path) -> int:
    """A memfd holding the snapshot's whole RAM (the caller closes it). SnapshotError when the RAM
    file is missing or cannot be read."""
    copy = RamCopy(snapshot)
    try:
        copy.wait()
    except SnapshotError:
        copy.close()
        raise
    return copy.fd


def connect_monitor(qmp_socket: Path, proc: subprocess.Popen[bytes], deadline: float) -> Monitor:
    """QEMU's monitor, once it listens: its socket file appears a moment before it accepts."""
    while True:
        if proc.poll() is not None:
            raise SnapshotError(f"QEMU stopped before restoring the snapshot (exit status {proc.poll()})")
        if qmp_socket.exists():
            try:
                return Monitor(qmp_socket)
            except MonitorError:
                if time.monotonic() > deadline:
                    raise
        elif time.monotonic() > deadline:
            raise SnapshotError(f"QEMU's monitor did not appear at {qmp_socket}")
        time.sleep(0.002)


def wait_restored(qmp_socket: Path, proc: subprocess.Popen[bytes], snapshot: Path, timeout: float = 60.0,
                  ram: RamCopy | None = None) -> None:
    """Have QEMU (started with MachineConfig.incoming) read the snapshot's stream, then resume the
    machine; with `ram`, once that copy of the snapshot's RAM is whole."""
    try:
        with connect_monitor(qmp_socket, proc, time.monotonic() + timeout) as monitor:
            monitor.execute("migrate-set-capabilities", capabilities=CAPABILITIES)
            if ram is not None:
                ram.wait()
            monitor.execute("migrate-incoming", uri=f"exec:cat {shlex.quote(str(state_for(snapshot)))}")
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


def remove(snapshot: Path) -> None:
    """Forget a snapshot that failed to restore (its stream and its RAM)."""
    shutil.rmtree(snapshot, ignore_errors=True)


def prune(keep: int = KEEP) -> None:
    """Delete all but the `keep` most recently used snapshots (and all but the newest marks of
    machines seen), and what an interrupted save left behind."""
    folder = cache.ensure("snapshots")
    for suffix, kept in ((SUFFIX, keep), (SEEN_SUFFIX, KEEP_SEEN)):
        files = []
        for path in folder.glob(f"*{suffix}"):
            with contextlib.suppress(OSError):  # another run may be pruning too
                files.append((path.stat().st_mtime, path))
        for _, old in sorted(files, reverse=True)[kept:]:
            if suffix == SUFFIX:
                remove(old)
            else:
                old.unlink(missing_ok=True)
    for legacy in folder.glob("*.vmstate"):  # snapshots of one image each, from before FORMAT 2
        legacy.unlink(missing_ok=True)
    for partial in folder.glob(f".*{SUFFIX}.*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - partial.stat().st_mtime > 600:  # not one being saved right now
                shutil.rmtree(partial, ignore_errors=True)


def touch(path: Path) -> None:
    """Mark a snapshot as just used (pruning keeps the most recently used)."""
    with contextlib.suppress(OSError):
        os.utime(path)
