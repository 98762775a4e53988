"""-v/--volume HOST_DIR:GUEST_DIR[:ro] for VM runs: a folder travels as a tar.

In: the folders are packed into one tar (member vN/... for the N-th volume) attached as a read-only
virtio-blk disk that the guest reads as a tar stream. Out: the guest streams the writable folders as a
tar on a virtio-serial port into a host file; when the run has finished and the byte count matches,
each host folder is made to mirror the guest's (new and changed files written, deleted ones removed).

Limits: the folder is copied into guest memory (tmpfs), so it must fit in -m with room for the JVM;
copying costs time in proportion to its size (both ways); only regular files, folders and symlinks
travel; what the app wrote is applied only when the run ends normally.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jvmbridge.errors import OsvJavaError, UsageError
from kernel import safetar


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


def pack(volumes: list[Volume], disk: Path) -> None:
    """Write all volumes into one tar at `disk`, padded to whole 512-byte sectors."""
    with tarfile.open(disk, "w", format=tarfile.PAX_FORMAT) as tar:
        for i, volume in enumerate(volumes):
            tar.add(str(volume.host), arcname=f"v{i}", recursive=True)
    size = disk.stat().st_size
    with open(disk, "ab") as f:
        f.write(b"\0" * (-size % 512 + 1024))


def apply(volumes: list[tuple[int, Volume]], tar_path: Path, expected_bytes: int) -> None:
    """Mirror the guest's writable folders (from the tar it sent) into their host folders."""
    size = tar_path.stat().st_size if tar_path.exists() else 0
    if size != expected_bytes:
        raise OsvJavaError(
            f"the volumes came back incomplete ({size} of {expected_bytes} bytes); host folders left unchanged",
            hint="give the VM more memory (-m) or a longer --timeout, and try again",
        )
    with tempfile.TemporaryDirectory(prefix="osv-java-vol-") as tmp, tarfile.open(tar_path, "r") as tar:
        safetar.extract_all(tar, Path(tmp), str(tar_path))
        for volume_index, volume in volumes:
            received = Path(tmp) / f"v{volume_index}"
            if received.is_dir():
                _mirror(received, volume.host)


def _mirror(source: Path, target: Path) -> None:
    """Make `target` hold exactly what `source` holds (files replaced atomically, extras removed)."""
    wanted = {p.relative_to(source) for p in source.rglob("*")}
    for rel in sorted(wanted):
        src, dst = source / rel, target / rel
        if src.is_dir() and not src.is_symlink():
            if dst.is_symlink() or (dst.exists() and not dst.is_dir()):
                dst.unlink()
            dst.mkdir(parents=True, exist_ok=True)
            continue
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)
        if src.is_symlink():
            if dst.is_symlink() or dst.exists():
                dst.unlink()
            os.symlink(os.readlink(src), dst)
            continue
        if dst.is_file() and not dst.is_symlink() and dst.read_bytes() == src.read_bytes():
            shutil.copymode(src, dst)
            continue
        tmp = dst.with_name(f".{dst.name}.osv-tmp")
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    for path in sorted(target.rglob("*"), reverse=True):
        if path.relative_to(target) not in wanted:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
