"""Unpack the app's files into the guest's root file system, as the kernel unpacks an initramfs.

A machine restored from a runtime's boot snapshot booted without the app (kernel/vm/snapshot.py):
the host sends the app's files after the restore, as the newc cpio archive the image builder wrote
(kernel/formats/cpio.py), and PID 1 writes them at their host paths before it starts the JVM.
Standard library only (PID 1 imports it, and only in a restored machine).
"""

from __future__ import annotations

import os

MAGIC = b"070701"
HEADER_SIZE = 110
TRAILER = "TRAILER!!!"
S_IFMT, S_IFDIR, S_IFREG, S_IFLNK = 0o170000, 0o040000, 0o100000, 0o120000


def _aligned(n: int) -> int:
    return (n + 3) & ~3


def unpack(archive: bytes | bytearray, root: str = "/") -> int:
    """Write every entry of `archive` under `root`; returns how many. ValueError when it is not whole."""
    view = memoryview(archive)
    pos = count = 0
    while True:
        head = bytes(view[pos:pos + HEADER_SIZE])
        if len(head) < HEADER_SIZE or head[:6] != MAGIC:
            raise ValueError(f"the app's archive is not a whole newc cpio archive (byte {pos})")
        fields = [int(head[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        mode, mtime, size, name_size = fields[1], fields[5], fields[6], fields[11]
        name_at = pos + HEADER_SIZE
        name = bytes(view[name_at:name_at + name_size - 1]).decode("utf-8", "surrogateescape")
        body_at = _aligned(name_at + name_size)
        pos = _aligned(body_at + size)
        if pos > len(view) and name != TRAILER:
            raise ValueError(f"the app's archive is cut short in {name}")
        if name == TRAILER:
            return count
        if name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"the app's archive names a path outside the root: {name}")
        path = os.path.join(root, name)
        kind = mode & S_IFMT
        if kind == S_IFDIR:
            os.makedirs(path, mode & 0o7777, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if os.path.lexists(path) and not os.path.isdir(path):
                os.unlink(path)
            if kind == S_IFREG:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode & 0o7777)
                try:
                    body = view[body_at:body_at + size]
                    while body:
                        body = body[os.write(fd, body):]
                    # The archive's time, as the kernel gives the initramfs's files: a restored run sees
                    # the app's files as a cold boot does (a JVM archive checks its jars' mtimes).
                    os.utime(fd, (mtime, mtime))
                finally:
                    os.close(fd)
            elif kind == S_IFLNK:
                os.symlink(bytes(view[body_at:body_at + size]).decode("utf-8", "surrogateescape"), path)
        count += 1
