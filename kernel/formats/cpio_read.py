"""Read a "newc" cpio archive (an initramfs) without trusting it.

The validator unpacks an image to check what the guest will really see, so the reader refuses what
the kernel would refuse or what could escape the folder it unpacks into: bad magic, truncated
headers or bodies, names with `..` or NUL bytes, and archives past a size limit. Regular files are
written under a host folder; symlinks are only recorded (never created on the host), so looking a
path up follows them inside the archive, the way the guest would after a chroot.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

MAGICS = (b"070701", b"070702")
HEADER_SIZE = 110
TRAILER = "TRAILER!!!"
MAX_NAME = 4096
MAX_ENTRIES = 1_000_000
MAX_TOTAL_BYTES = 16 << 30  # far more than any initramfs the kernel could unpack into memory
MAX_LINK_HOPS = 40


class CpioError(Exception):
    """The archive is malformed or unsafe; the message says where."""


@dataclass(frozen=True)
class Member:
    """One archive entry: `path` is relative to the root, without a leading '/'."""

    path: str
    mode: int
    size: int
    link: str | None = None  # symlink target

    @property
    def is_file(self) -> bool:
        return stat.S_ISREG(self.mode)

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)


@dataclass
class Tree:
    """An unpacked archive: members by path, regular files stored under `root` on the host."""

    root: Path
    members: dict[str, Member] = field(default_factory=dict)
    _folders: set[str] | None = field(default=None, repr=False)

    def host_path(self, path: str) -> Path | None:
        """Where the regular file at guest `path` was unpacked, following symlinks inside the tree."""
        real = self.resolve(path)
        if real is None:
            return None
        member = self.members.get(real)
        if member is None or not member.is_file:
            return None
        return self.root / real

    def resolve(self, path: str) -> str | None:
        """The symlink-free form of guest `path` (no leading '/'), or None when it leads nowhere."""
        parts = [p for p in path.split("/") if p not in ("", ".")]
        done: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = "/".join([*done, part])
            member = self.members.get(candidate)
            if member is None:
                if candidate in self.folders():
                    done.append(part)
                    continue
                return None
            if member.link is not None:
                hops += 1
                if hops > MAX_LINK_HOPS:
                    return None
                target = [p for p in member.link.split("/") if p not in ("", ".")]
                parts = target + parts
                if member.link.startswith("/"):
                    done = []
                continue
            done.append(part)
        return "/".join(done)

    def folders(self) -> set[str]:
        """Folders explicitly in the archive or implied by a member's path."""
        cached = self._folders
        if cached is None:
            cached = set()
            for path, member in self.members.items():
                if member.is_dir:
                    cached.add(path)
                parent = path.rpartition("/")[0]
                while parent and parent not in cached:
                    cached.add(parent)
                    parent = parent.rpartition("/")[0]
            self._folders = cached
        return cached

    def files(self) -> dict[str, Path]:
        """Every regular file: guest path (with a leading '/') -> host path."""
        return {"/" + p: self.root / p for p, m in self.members.items() if m.is_file}


def _clean_name(raw: bytes, offset: int) -> str:
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CpioError(f"entry at byte {offset} has a name that is not UTF-8") from exc
    if "\0" in name:
        raise CpioError(f"entry at byte {offset} has a NUL byte in its name")
    if name.startswith("/"):
        raise CpioError(f"entry {name!r} at byte {offset} is an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise CpioError(f"entry {name!r} at byte {offset} escapes the archive root with '..'")
    return "/".join(parts)


def _read_exact(stream: BinaryIO, size: int, what: str, offset: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise CpioError(f"archive is truncated in the {what} at byte {offset}")
    return data


def unpack(stream: BinaryIO, dest: Path, max_total: int = MAX_TOTAL_BYTES) -> Tree:
    """Unpack a newc archive into `dest` (an empty folder); CpioError when it is malformed or unsafe."""
    tree = Tree(root=dest)
    offset = 0
    total = 0
    while True:
        if len(tree.members) > MAX_ENTRIES:
            raise CpioError(f"archive has over {MAX_ENTRIES} entries")
        mode, size, raw_name = _read_header(stream, offset)
        if raw_name == TRAILER.encode():
            return tree
        name = _clean_name(raw_name, offset)
        total += size
        if total > max_total:
            raise CpioError(f"archive holds over {max_total} bytes of files, past the limit")
        name_end = HEADER_SIZE + len(raw_name) + 1
        body_at = offset + name_end + (-name_end % 4)
        link = _unpack_body(stream, dest, name, mode, size, offset, body_at)
        _read_exact(stream, -size % 4, "body padding", body_at)
        tree.members[name] = Member(path=name, mode=mode, size=size, link=link)
        offset = body_at + size + (-size % 4)


def _read_header(stream: BinaryIO, offset: int) -> tuple[int, int, bytes]:
    """The mode, body size and name (without its NUL) of the entry at `offset`, read up to its body."""
    head = stream.read(HEADER_SIZE)
    if len(head) == 0:
        raise CpioError(f"archive ends at byte {offset} without the {TRAILER} entry (truncated)")
    if len(head) != HEADER_SIZE:
        raise CpioError(f"archive is truncated in a header at byte {offset}")
    if head[:6] not in MAGICS:
        raise CpioError(f"no newc header at byte {offset} (found {head[:6]!r})")
    try:
        fields = [int(head[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
    except ValueError as exc:
        raise CpioError(f"header at byte {offset} has a field that is not hexadecimal") from exc
    mode, size, namesize = fields[1], fields[6], fields[11]
    if namesize < 1 or namesize > MAX_NAME:
        raise CpioError(f"header at byte {offset} has a bad name length {namesize}")
    raw_name = _read_exact(stream, namesize, "name", offset)
    _read_exact(stream, -(HEADER_SIZE + namesize) % 4, "name padding", offset)
    if raw_name[-1:] != b"\0":
        raise CpioError(f"entry at byte {offset} has a name without its NUL terminator")
    return mode, size, raw_name[:-1]


def _unpack_body(
    stream: BinaryIO, dest: Path, name: str, mode: int, size: int, offset: int, body_at: int
) -> str | None:
    """Write one entry's file or folder under `dest` (or skip its body); a symlink's target is returned."""
    if not name:
        _skip(stream, size, body_at)
    elif stat.S_ISREG(mode):
        target = dest / name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir() or target.is_symlink():
                raise IsADirectoryError(str(target))
            with open(target, "wb") as out:
                _copy(stream, out, size, body_at)
        except (NotADirectoryError, FileExistsError, IsADirectoryError) as exc:
            raise CpioError(f"entry {name!r} at byte {offset} clashes with another entry's path") from exc
    elif stat.S_ISLNK(mode):
        if size > MAX_NAME:
            raise CpioError(f"symlink {name!r} at byte {offset} has a {size}-byte target")
        raw = _read_exact(stream, size, "symlink target", body_at)
        return raw.decode("utf-8", errors="replace").rstrip("\0")
    else:
        _skip(stream, size, body_at)
        if stat.S_ISDIR(mode):
            try:
                (dest / name).mkdir(parents=True, exist_ok=True)
            except (NotADirectoryError, FileExistsError) as exc:
                raise CpioError(f"folder {name!r} at byte {offset} clashes with a file's path") from exc
    return None


def _copy(stream: BinaryIO, out: BinaryIO, size: int, offset: int) -> None:
    left = size
    while left:
        block = stream.read(min(left, 1 << 20))
        if not block:
            raise CpioError(f"archive is truncated in a file body at byte {offset}")
        out.write(block)
        left -= len(block)


def _skip(stream: BinaryIO, size: int, offset: int) -> None:
    left = size
    while left:
        block = stream.read(min(left, 1 << 20))
        if not block:
            raise CpioError(f"archive is truncated at byte {offset}")
        left -= len(block)


def unpack_file(archive: Path, dest: Path) -> Tree:
    """Unpack the archive file `archive` into `dest`; gzip-compressed archives are not supported."""
    with open(archive, "rb") as f:
        magic = f.read(2)
        f.seek(0)
        if magic == b"\x1f\x8b":
            raise CpioError("archive is gzip-compressed; osv-java images hold an uncompressed newc archive")
        return unpack(f, dest)


def within(root: Path, path: Path) -> bool:
    """True when `path` (made absolute, without following symlinks) lies inside `root`."""
    root_s = os.path.abspath(root)
    path_s = os.path.abspath(path)
    return path_s == root_s or path_s.startswith(root_s.rstrip("/") + "/")
