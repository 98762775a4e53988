"""A reproducible initramfs writer: the "newc" cpio format the kernel unpacks at boot.

Entries are written sorted by path, with fixed owners (root), fixed mtimes and sequential inode
numbers, so the same inputs give the same bytes. Parent folders are added when missing.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

TRAILER = "TRAILER!!!"
# Every entry's mtime: the image's files all look this old in the guest (start-up archives depend on it).
IMAGE_MTIME = 0
MAGIC = b"070701"


@dataclass(frozen=True)
class Entry:
    """One file, folder or symlink in the archive; `path` is relative to the root (no leading '/')."""

    path: str
    mode: int  # file type and permission bits, as in st_mode
    data: bytes = b""  # contents of a regular file, or the target of a symlink
    source: Path | None = None  # read the contents from here instead of `data`
    rdev: tuple[int, int] = (0, 0)  # major, minor of a device node

    @staticmethod
    def char_device(path: str, major: int, minor: int, perm: int = 0o600) -> Entry:
        return Entry(path, stat.S_IFCHR | perm, rdev=(major, minor))

    @staticmethod
    def folder(path: str, perm: int = 0o755) -> Entry:
        return Entry(path, stat.S_IFDIR | perm)

    @staticmethod
    def file(path: str, data: bytes, perm: int = 0o644) -> Entry:
        return Entry(path, stat.S_IFREG | perm, data)

    @staticmethod
    def from_host(path: str, source: Path, perm: int | None = None) -> Entry:
        if perm is None:
            perm = 0o755 if source.stat().st_mode & 0o111 else 0o644
        return Entry(path, stat.S_IFREG | perm, source=source)

    @staticmethod
    def symlink(path: str, target: str) -> Entry:
        return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def _normalise(path: str) -> str:
    parts = [p for p in path.strip("/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(f"bad archive path {path!r}")
    return "/".join(parts)


def _header(
    name: bytes, ino: int, mode: int, nlink: int, size: int, mtime: int, rdev: tuple[int, int] = (0, 0)
) -> bytes:
    fields = (ino, mode, 0, 0, nlink, mtime, size, 0, 0, rdev[0], rdev[1], len(name) + 1, 0)
    return MAGIC + b"".join(b"%08X" % f for f in fields) + name + b"\0"


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


def collect(entries: Iterable[Entry], existing: frozenset[str] = frozenset()) -> dict[str, Entry]:
    """`entries` by normalised path, with the parent folders they need that are not in `existing`."""
    by_path: dict[str, Entry] = {}
    for entry in entries:
        path = _normalise(entry.path)
        if path in by_path and by_path[path] != entry:
            raise ValueError(f"two different entries for {path!r}")
        by_path[path] = Entry(path, entry.mode, entry.data, entry.source, entry.rdev)
        parent = path.rpartition("/")[0]
        while parent and parent not in by_path and parent not in existing:
            by_path[parent] = Entry.folder(parent)
            parent = parent.rpartition("/")[0]
    return by_path


def write(entries: Iterable[Entry], out: BinaryIO, mtime: int = IMAGE_MTIME, first_ino: int = 1,
          existing: frozenset[str] = frozenset(), trailer: bool = True) -> int:
    """Write `entries` as a newc archive to `out`; returns the number of bytes written.

    An archive can be written in parts: a first part without its trailer, then one with `first_ino`
    past the first's entries and `existing` its folders (written once, as the kernel sets a folder's
    mode again each time it meets it).
    """
    by_path = collect(entries, existing)
    written = 0
    for ino, path in enumerate(sorted(by_path), start=first_ino):
        entry = by_path[path]
        body = entry.source.read_bytes() if entry.source is not None else entry.data
        if not (stat.S_ISREG(entry.mode) or stat.S_ISLNK(entry.mode)):
            body = b""
        nlink = 2 if stat.S_ISDIR(entry.mode) else 1
        head = _header(path.encode(), ino, entry.mode, nlink, len(body), mtime, entry.rdev)
        chunk = head + _pad(len(head)) + body + _pad(len(body))
        out.write(chunk)
        written += len(chunk)
    if trailer:
        out.write(TRAILER_BYTES)
        written += len(TRAILER_BYTES)
    return written


_TRAILER_HEAD = _header(TRAILER.encode(), 0, 0, 1, 0, 0)
TRAILER_BYTES = _TRAILER_HEAD + _pad(len(_TRAILER_HEAD))  # what ends every archive
