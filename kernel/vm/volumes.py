"""-v/--volume HOST_DIR:GUEST_DIR[:ro] for VM runs: the host folder itself, shared live over virtiofs.

Each volume gets its own virtiofsd (QEMU's vhost-user file system daemon) serving the host folder on
a socket in the run's work folder, and a vhost-user-fs device with tag `osvvolN` that PID 1 mounts
(`-t virtiofs`, read-only for :ro) before the JVM starts. Nothing is copied, before or after: the
app reads and writes the host's files, so its size is not limited by guest memory, and every write
the app has returned from (a memory-mapped file's changes once forced) is in the host's file system,
even if osv-java is killed the next moment. vhost-user needs guest RAM that virtiofsd can map:
runs with -v get a shared memfd memory backend (kernel.vm.qemu), runs without keep plain RAM.

virtiofsd's options, and why:
- sandbox=namespace (its default): it pivots into the shared folder inside new mount, PID and
  network namespaces, so the guest cannot reach any host path outside the folder (`..`, symlinks);
- cache=auto: the guest may cache data and metadata for a second and revalidates on open (close-to-
  open, like NFS): a file the host writes is seen by the app's next open; cache=none would also
  forbid shared writable mmap (MappedByteBuffer) on this kernel;
- no writeback cache (its default): a write() leaves the guest at once, so nothing the app wrote
  waits in guest memory when the VM is killed;
- a :ro volume is also read-only on the host's side (a read-only bind mount in a mount namespace
  of virtiofsd's own): the guest's root could remount its side read-write;
- it runs as root, as it must to switch to the guest's file owners; the JVM in the guest runs as
  root, so when osv-java runs as root the app's files belong to root, the user who ran osv-java. Run
  as another user, osv-java runs virtiofsd in a user namespace that maps the guest's root to that
  user: the app's files then belong to that user (files of other owners read as nobody).

virtiofsd dies with osv-java (PR_SET_PDEATHSIG, as QEMU does), and also exits when QEMU hangs up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from jvmbridge.errors import BootError, DependencyError, UsageError

TAG_PREFIX = "osvvol"  # the N-th volume's virtiofs tag is osvvolN
VIRTIOFSD_PLACES = ("/usr/lib/qemu/virtiofsd", "/usr/libexec/virtiofsd")
SOCKET_WAIT_S = 10.0


@dataclass(frozen=True)
class Volume:
    host: Path
    guest: str
    readonly: bool = False


def parse(spec: str) -> Volume:
    """Parse HOST_DIR:GUEST_DIR[:ro|:rw]."""
    parts = spec.split(":")
    mode = ""
    if len(parts) == 3 and parts[2] in ("ro", "rw"):
        mode = parts.pop()
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise UsageError(f"volume {spec!r} is not HOST_DIR:GUEST_DIR[:ro]", hint="e.g. -v ./data:/data:ro")
    host, guest = Path(parts[0]).expanduser(), parts[1]
    if not host.exists():
        raise UsageError(f"volume folder {host} does not exist", hint="create it first, or check the path")
    if not host.is_dir():
        raise UsageError(f"volume {host} is not a folder", hint="give -v a folder (HOST_DIR:GUEST_DIR)")
    if not guest.startswith("/") or ".." in guest.split("/") or guest.rstrip("/") in ("", "/osv", "/proc", "/sys",
                                                                                      "/dev"):
        raise UsageError(
            f"volume guest path {guest!r} must be an absolute folder outside /osv, /proc, /sys and /dev",
            hint="e.g. -v ./data:/data",
        )
    return Volume(host=host.resolve(), guest=guest.rstrip("/") or "/", readonly=mode == "ro")


def tag(index: int) -> str:
    return f"{TAG_PREFIX}{index}"


def virtiofsd_binary() -> str:
    """virtiofsd's path; one clear error when it is not installed."""
    for place in (*VIRTIOFSD_PLACES, shutil.which("virtiofsd")):
        if place and os.access(place, os.X_OK):
            return place
    raise DependencyError("-v needs virtiofsd, which is not installed",
                          hint="apt-get install qemu-system-common (it ships /usr/lib/qemu/virtiofsd)")


def virtiofsd_argv(binary: str, volume: Volume, socket: Path) -> list[str]:
    source = str(volume.host).replace("\\", "\\\\").replace(",", "\\,")  # -o takes a comma-separated list
    argv = [binary, f"--socket-path={socket}", "-o", f"source={source}", "-o", "cache=auto",
            "-o", "sandbox=namespace", "-o", "no_writeback", "-o", "log_level=warn"]
    steps = []  # shell commands in a mount namespace of virtiofsd's own, before it starts
    if os.geteuid() != 0:
        # With a user namespace (below): a private /run, where virtiofsd keeps its lock file.
        steps += ["mount -t tmpfs tmpfs /run", "mkdir /run/virtiofsd"]
    if volume.readonly:
        # :ro is the host's to enforce too: the guest's root could remount its side read-write.
        steps += ['mount --bind "$1" "$1"', 'mount -o remount,bind,ro "$1" "$1"']
    if not steps:
        return argv
    script = " && ".join([*steps, 'shift', 'exec "$@"'])
    prelude = ["unshare", "--mount", "--"]
    if os.geteuid() != 0:
        # Root in a user namespace of ours, so the guest's root (the JVM) is this user on the host.
        # Entering it clears the parent-death signal, so setpriv sets it again.
        prelude = ["unshare", "--user", "--map-root-user", "--mount", "--", "setpriv", "--pdeathsig", "KILL", "--"]
    return [*prelude, "sh", "-c", script, "virtiofsd", str(volume.host), *argv]


class FileServers:
    """One virtiofsd per volume, for one run; stopped when the run ends, killed if osv-java is."""

    def __init__(self, volumes: list[Volume], workdir: Path) -> None:
        self.volumes = volumes
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def sockets(self) -> list[tuple[str, Path]]:
        """(tag, vhost-user socket) of each volume, for QEMU."""
        return [(tag(i), self.workdir / f"fs{i}.sock") for i in range(len(self.volumes))]

    def start(self) -> None:
        """Start every virtiofsd and wait until each listens on its socket."""
        if not self.volumes:
            return
        from kernel.vm import qemu  # here: a --target process run parses volumes and starts sooner without it

        binary = virtiofsd_binary()
        for volume, (_, sock) in zip(self.volumes, self.sockets(), strict=True):
            sock.unlink(missing_ok=True)
            log = open(self.workdir / f"{sock.stem}.log", "wb")  # noqa: SIM115 - closed right after start
            with log:
                self.procs.append(subprocess.Popen(virtiofsd_argv(binary, volume, sock), stdin=subprocess.DEVNULL,
                                                   stdout=log, stderr=log, start_new_session=True,
                                                   preexec_fn=qemu.die_with_parent))
        deadline = time.monotonic() + SOCKET_WAIT_S
        for proc, (_, sock) in zip(self.procs, self.sockets(), strict=True):
            while not sock.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise self._failure(sock)
                time.sleep(0.005)

    def failure(self) -> str | None:
        """What went wrong when a virtiofsd has exited while the app runs (its volume is then gone:
        the app's next access to it would wait forever), else None."""
        for proc, (_, sock), volume in zip(self.procs, self.sockets(), self.volumes, strict=False):
            if proc.poll() is not None:
                log = (self.workdir / f"{sock.stem}.log").read_text(errors="replace").strip()
                last = log.splitlines()[-1] if log else f"exit status {proc.returncode}"
                return f"virtiofsd serving {volume.host} exited while the app ran: {last}"
        return None

    def _failure(self, sock: Path) -> BootError:
        log = (self.workdir / f"{sock.stem}.log").read_text(errors="replace").strip()
        last = log.splitlines()[-1] if log else "no output"
        return BootError(f"virtiofsd did not start for a volume: {last}",
                         hint="virtiofsd must run as root (or in a user namespace); check the folder's permissions")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
