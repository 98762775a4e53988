"""Read back an EROFS image as kernel/formats/erofs.py writes it (for `osv-java validate` and the tests).

Handles compact and extended inodes with the FLAT_PLAIN data layout; anything else (compression,
inline tails, chunks, xattrs) is reported as unsupported. Every offset is checked against the
image's size and every folder is visited once, so a damaged image gives an ErofsError, not a hang.
"""

from __future__ import annotations

import stat
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from kernel.formats.cpio_read import Member, Tree

MAGIC = 0xE0F5E1E2
SUPERBLOCK_OFFSET = 1024
MAX_ENTRIES = 200_000


class ErofsError(Exception):
    """The image is malformed or uses a feature this reader does not know; the message says which."""


class _Image:
    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f = f
        self.size = size
        head = self.read(SUPERBLOCK_OFFSET, 128, "superblock")
        magic, _, _, blkszbits, _, root_nid = struct.unpack_from("<IIIBBH", head)
        if magic != MAGIC:
            raise ErofsError("no EROFS superblock at byte 1024")
        if blkszbits != 12:
            raise ErofsError(f"block size 2^{blkszbits} is not supported (4096 only)")
        self.meta = struct.unpack_from("<I", head, 40)[0] * 4096
        incompat = struct.unpack_from("<I", head, 80)[0]
        if incompat:
            raise ErofsError(f"incompatible features {incompat:#x} are not supported")
        self.root_nid = root_nid

    def read(self, offset: int, length: int, what: str) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ErofsError(f"{what} at byte {offset} (+{length}) is past the end of the image ({self.size} bytes)")
        self.f.seek(offset)
        return self.f.read(length)

    def inode(self, nid: int) -> tuple[int, int, int]:
        """(mode, size, data offset) of inode `nid`."""
        offset = self.meta + nid * 32
        raw = self.read(offset, 32, f"inode {nid}")
        i_format, xattr_count, mode = struct.unpack_from("<HHH", raw)
        extended = i_format & 1
        layout = (i_format >> 1) & 7
        if layout != 0:
            raise ErofsError(f"inode {nid} uses data layout {layout}; only FLAT_PLAIN (0) is supported")
        if xattr_count:
            raise ErofsError(f"inode {nid} has extended attributes, which are not supported")
        if extended:
            raw = self.read(offset, 64, f"inode {nid}")
            size, block = struct.unpack_from("<QI", raw, 8)
        else:
            size, _, block = struct.unpack_from("<III", raw, 8)
        data = block * 4096
        if size:
            self.read(data, 0, f"data of inode {nid}")
            if data + size > self.size:
                raise ErofsError(f"data of inode {nid} ({size} bytes at byte {data}) is past the end of the image")
        return mode, size, data

    def entries(self, nid: int, size: int, data: int) -> Iterator[tuple[bytes, int]]:
        """(name, nid) of a folder's entries, without '.' and '..'."""
        for start in range(0, size, 4096):
            block = self.read(data + start, min(4096, size - start), f"folder {nid}")
            if len(block) < 12:
                raise ErofsError(f"folder {nid} has a block too short for an entry")
            first_name = struct.unpack_from("<H", block, 8)[0]
            count = first_name // 12
            if count == 0 or first_name > len(block):
                raise ErofsError(f"folder {nid} has a malformed entry block at byte {data + start}")
            for i in range(count):
                child, name_at = struct.unpack_from("<QH", block, 12 * i)
                name_end = struct.unpack_from("<H", block, 12 * (i + 1) + 8)[0] if i + 1 < count else len(block)
                if not first_name <= name_at <= name_end <= len(block):
                    raise ErofsError(f"folder {nid} has an entry whose name is out of its block")
                name = block[name_at:name_end].split(b"\0", 1)[0]
                if name not in (b".", b".."):
                    yield name, child


def unpack_into(tree: Tree, image: Path, prefix: str) -> None:
    """Add the image's files to `tree` under `prefix` (no leading '/'), unpacking regular files."""
    with open(image, "rb") as f:
        disk = _Image(f, image.stat().st_size)
        pending = [(prefix, disk.root_nid)]
        seen: set[int] = set()
        while pending:
            path, nid = pending.pop()
            if nid in seen:
                raise ErofsError(f"folder {nid} appears twice: the image's tree has a loop")
            seen.add(nid)
            mode, size, data = disk.inode(nid)
            if not stat.S_ISDIR(mode):
                raise ErofsError(f"the image's root inode {nid} is not a folder")
            (tree.root / path).mkdir(parents=True, exist_ok=True)
            tree.members[path] = Member(path=path, mode=mode, size=0)
            for raw_name, child in disk.entries(nid, size, data):
                name = raw_name.decode("utf-8", errors="replace")
                if "/" in name or not name:
                    raise ErofsError(f"folder {nid} has an entry named {name!r}")
                if len(tree.members) > MAX_ENTRIES:
                    raise ErofsError(f"the image has over {MAX_ENTRIES} entries")
                child_path = f"{path}/{name}"
                child_mode, child_size, child_data = disk.inode(child)
                if stat.S_ISDIR(child_mode):
                    pending.append((child_path, child))
                elif stat.S_ISLNK(child_mode):
                    target = disk.read(child_data, child_size, f"symlink {child_path}").decode(errors="replace")
                    tree.members[child_path] = Member(path=child_path, mode=child_mode, size=child_size, link=target)
                elif stat.S_ISREG(child_mode):
                    with open(tree.root / child_path, "wb") as out:
                        left, at = child_size, child_data
                        while left:
                            chunk = disk.read(at, min(left, 1 << 20), f"file {child_path}")
                            out.write(chunk)
                            left -= len(chunk)
                            at += len(chunk)
                    tree.members[child_path] = Member(path=child_path, mode=child_mode, size=child_size)
                else:
                    tree.members[child_path] = Member(path=child_path, mode=child_mode, size=0)
