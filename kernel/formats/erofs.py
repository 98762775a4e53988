"""A reproducible, uncompressed EROFS image writer, in pure Python.

The JRE travels as this image rather than in the initramfs: the guest kernel copies every initramfs
byte at boot (about a second for a JRE under software emulation), while this image is placed in
guest memory by QEMU and mounted with DAX, so the JVM maps its files where they lie (see
kernel/vm/qemu.py, pmem_region). EROFS because it is read-only and simple, keeps file data in whole
4 KiB blocks as DAX needs, and is in Debian's kernel.

Layout (4 KiB blocks): block 0 holds the superblock at byte 1024; the inodes follow from block 1
(32-byte "compact" inodes, nid = byte offset / 32 from there); then each file, folder and symlink's
data in contiguous blocks (FLAT_PLAIN). Entries are sorted, owners are root, all times are the build
time (fixed), so the same tree gives the same bytes.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

BLOCK = 4096
MAGIC = 0xE0F5E1E2
SUPERBLOCK_OFFSET = 1024
META_BLOCK = 1  # inodes start here
INODE_SIZE = 32
MAX_FILE = 2**32 - 1  # a compact inode's size field

# Directory entry file types.
FT_REG, FT_DIR, FT_SYMLINK = 1, 2, 7
DIRENT = struct.Struct("<QHBB")  # nid, name offset, file type, reserved


@dataclass
class _Node:
    name: bytes
    mode: int
    source: Path | None = None  # a regular file's contents
    data: bytes = b""  # a symlink's target, or a folder's entries once laid out
    children: dict[bytes, _Node] = field(default_factory=dict)
    nid: int = 0
    ino: int = 0
    size: int = 0
    block: int = 0

    @property
    def file_type(self) -> int:
        if stat.S_ISDIR(self.mode):
            return FT_DIR
        return FT_SYMLINK if stat.S_ISLNK(self.mode) else FT_REG


def _scan(folder: Path, name: bytes = b"") -> _Node:
    info = folder.lstat()
    node = _Node(name, stat.S_IFDIR | (info.st_mode & 0o7777))
    for entry in sorted(os.scandir(folder), key=lambda e: os.fsencode(e.name)):
        path = Path(entry.path)
        child_info = path.lstat()
        key = os.fsencode(entry.name)
        if stat.S_ISDIR(child_info.st_mode):
            node.children[key] = _scan(path, key)
        elif stat.S_ISLNK(child_info.st_mode):
            node.children[key] = _Node(key, stat.S_IFLNK | 0o777, data=os.fsencode(os.readlink(path)))
        elif stat.S_ISREG(child_info.st_mode):
            if child_info.st_size > MAX_FILE:
                raise ValueError(f"{path} is {child_info.st_size} bytes; an image file holds at most 4 GiB")
            node.children[key] = _Node(key, stat.S_IFREG | (child_info.st_mode & 0o7777), source=path)
        else:
            raise ValueError(f"{path} is not a file, folder or symlink: it cannot go into a read-only image")
    return node


def _walk(node: _Node) -> list[_Node]:
    """Pre-order, children in byte order: the order inodes and data are laid out in."""
    nodes = [node]
    for child in node.children.values():
        nodes += _walk(child) if stat.S_ISDIR(child.mode) else [child]
    return nodes


def _dir_blocks(entries: list[tuple[bytes, int, int]]) -> bytes:
    """Pack (name, nid, type) sorted by name into blocks: entries first, then their names.

    The kernel binary-searches blocks and entries by name, so order is byte order throughout; the
    last name of a block runs to the block's end or the first NUL.
    """
    blocks: list[bytes] = []
    current: list[tuple[bytes, int, int]] = []

    def flush() -> None:
        head = len(current) * DIRENT.size
        names = b""
        dirents = b""
        for name, nid, ftype in current:
            dirents += DIRENT.pack(nid, head + len(names), ftype, 0)
            names += name
        blocks.append(dirents + names)

    used = 0
    for entry in entries:
        need = DIRENT.size + len(entry[0])
        if current and used + need > BLOCK:
            flush()
            current, used = [], 0
        current.append(entry)
        used += need
    flush()
    # Every block but the last is padded to a full block; the folder's size ends with its last name.
    return b"".join(block.ljust(BLOCK, b"\0") for block in blocks[:-1]) + blocks[-1]


def _inode(node: _Node) -> bytes:
    nlink = 2 + sum(stat.S_ISDIR(c.mode) for c in node.children.values()) if stat.S_ISDIR(node.mode) else 1
    # i_format: version 0 (compact), data layout 0 (FLAT_PLAIN: data in contiguous blocks at i_u).
    return struct.pack("<HHHHIIIIHHI", 0, 0, node.mode, nlink, node.size, 0, node.block, node.ino, 0, 0, 0)


def _add_file(root: _Node, relative: str, content: Path | bytes) -> None:
    """Put a regular file (0644) at `relative` under `root`, making its folders (0755)."""
    *folders, name = [os.fsencode(part) for part in relative.strip("/").split("/")]
    node = root
    for folder in folders:
        node = node.children.setdefault(folder, _Node(folder, stat.S_IFDIR | 0o755))
        if not stat.S_ISDIR(node.mode):
            raise ValueError(f"{relative}: {folder.decode()} is not a folder in the image")
    if isinstance(content, Path):
        node.children[name] = _Node(name, stat.S_IFREG | 0o644, source=content)
    else:
        node.children[name] = _Node(name, stat.S_IFREG | 0o644, data=content)


def _sort_children(node: _Node) -> None:
    node.children = dict(sorted(node.children.items()))
    for child in node.children.values():
        if stat.S_ISDIR(child.mode):
            _sort_children(child)


def write(tree: Path, out: BinaryIO, volume_name: str, build_time: int = 0,
          extra: dict[str, Path | bytes] | None = None) -> int:
    """Write the folder `tree` as an EROFS image to `out`, plus the `extra` files (relative path ->
    a host file or the bytes); returns the bytes written."""
    label = volume_name.encode()
    if len(label) > 16:
        raise ValueError(f"volume name {volume_name!r} is longer than 16 bytes")
    root = _scan(tree)
    for relative, content in sorted((extra or {}).items()):
        _add_file(root, relative, content)
    _sort_children(root)
    nodes = _walk(root)
    total_blocks = _lay_out(nodes)
    superblock = _superblock(root, len(nodes), total_blocks, build_time, label)
    out.write(b"\0" * SUPERBLOCK_OFFSET + superblock)
    out.write(b"\0" * (BLOCK - SUPERBLOCK_OFFSET - len(superblock)))
    metadata = b"".join(_inode(node) for node in nodes)
    out.write(metadata.ljust(-(-len(metadata) // BLOCK) * BLOCK, b"\0"))
    _write_data(nodes, out)
    return total_blocks * BLOCK


def _lay_out(nodes: list[_Node]) -> int:
    """Number the inodes, size every node (folders get their entry blocks) and place its data after the
    metadata; returns the image's size in blocks."""
    for index, node in enumerate(nodes):
        node.nid = index  # INODE_SIZE apart, from the start of the metadata block
        node.ino = index + 1
    parents = {id(child): node for node in nodes for child in node.children.values()}
    for node in nodes:
        if stat.S_ISDIR(node.mode):
            parent = parents.get(id(node), node)
            entries = [(b".", node.nid, FT_DIR), (b"..", parent.nid, FT_DIR)]
            entries += [(c.name, c.nid, c.file_type) for c in node.children.values()]
            node.data = _dir_blocks(sorted(entries))
            node.size = len(node.data)
        elif stat.S_ISLNK(node.mode):
            node.size = len(node.data)
        elif node.source is not None:
            node.size = node.source.stat().st_size
        else:  # an extra file given as bytes
            node.size = len(node.data)
    next_block = META_BLOCK + -(-len(nodes) * INODE_SIZE // BLOCK)
    for node in nodes:
        node.block = next_block if node.size else 0
        next_block += -(-node.size // BLOCK)
    return next_block


def _superblock(root: _Node, inodes: int, total_blocks: int, build_time: int, label: bytes) -> bytes:
    return struct.pack(
        "<IIIBBHQQIIII16s16sI",
        MAGIC,
        0,  # checksum: not used (feature off)
        0,  # compat features
        12,  # log2 of the block size
        0,  # superblock extension slots
        root.nid,
        inodes,
        build_time,
        0,
        total_blocks,
        META_BLOCK,
        0,  # no shared xattrs
        b"\0" * 16,  # uuid: fixed, for reproducibility
        label,
        0,  # incompat features: none
    ).ljust(128, b"\0")


def _write_data(nodes: list[_Node], out: BinaryIO) -> None:
    """Each node's data in node order, every one padded to a whole block (empty ones take none)."""
    for node in nodes:
        if not node.size:
            continue
        if node.source is not None:
            written = _copy(node.source, out, node.size)
        else:
            out.write(node.data)
            written = len(node.data)
        out.write(b"\0" * (-written % BLOCK))


def _copy(source: Path, out: BinaryIO, size: int) -> int:
    written = 0
    with open(source, "rb") as f:
        while chunk := f.read(1 << 20):
            out.write(chunk)
            written += len(chunk)
    if written != size:
        raise ValueError(f"{source} changed size while the image was written ({size} -> {written} bytes)")
    return written

