"""One entry of a zip archive (a jar's manifest), read without parsing the whole central directory.

`zipfile.ZipFile` builds an object for every entry to read one: a language runtime's jar has
thousands (13 ms for Clojure's), and every run that resolves the runtime reads its jars' manifests.
Here the entry's name is looked up in the central directory's bytes and only its own header parsed.
What this reader does not handle (zip64, encryption, a compression other than stored or deflated, a
damaged archive) raises ZipEntryError, and the caller reads the archive with zipfile instead.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

END_OF_DIRECTORY = struct.Struct("<4s4H2LH")  # signature, disks, entry counts, size, offset, comment length
DIRECTORY_HEADER = struct.Struct("<4s6H3L5H2L")
LOCAL_HEADER = struct.Struct("<4s5H3L2H")
MAX_COMMENT = 0xFFFF
ZIP64_MARK = 0xFFFFFFFF
STORED, DEFLATED = 0, 8


class ZipEntryError(ValueError):
    """The archive is one this reader leaves to zipfile (or is damaged)."""


def read_entry(path: Path, name: str, max_size: int = 1 << 20) -> bytes | None:
    """The uncompressed bytes of entry `name`; None when the archive has no such entry."""
    key = name.encode()
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        tail_start = max(0, size - END_OF_DIRECTORY.size - MAX_COMMENT)
        f.seek(tail_start)
        tail = f.read()
        at = _end_of_directory(tail)
        if at is None:
            raise ZipEntryError(f"{path}: no end of central directory")
        _, _, _, _, count, dir_size, dir_offset, _ = END_OF_DIRECTORY.unpack_from(tail, at)
        if count == 0xFFFF or dir_offset == ZIP64_MARK or dir_size == ZIP64_MARK:
            raise ZipEntryError(f"{path}: zip64")
        # bytes before the archive (a launcher script prepended to a jar) shift every offset
        shift = tail_start + at - dir_size - dir_offset
        if shift < 0:
            raise ZipEntryError(f"{path}: central directory out of place")
        f.seek(dir_offset + shift)
        directory = f.read(dir_size)
        if len(directory) < dir_size:
            raise ZipEntryError(f"{path}: central directory truncated")
        header = _find_header(directory, key)
        if header is None:
            return None
        (_, _, _, flags, method, _, _, crc, packed, unpacked, _, _, _, _, _, _,
         local_offset) = DIRECTORY_HEADER.unpack_from(directory, header)
        if flags & 1 or ZIP64_MARK in (packed, unpacked, local_offset):
            raise ZipEntryError(f"{path}: {name} is encrypted or zip64")
        if unpacked > max_size:
            raise ZipEntryError(f"{path}: {name} is {unpacked} bytes")
        f.seek(local_offset + shift)
        local = f.read(LOCAL_HEADER.size)
        if len(local) < LOCAL_HEADER.size or local[:4] != b"PK\x03\x04":
            raise ZipEntryError(f"{path}: no local header for {name}")
        name_length, extra_length = LOCAL_HEADER.unpack(local)[-2:]
        f.seek(name_length + extra_length, os.SEEK_CUR)
        data = f.read(packed)
    if len(data) < packed:
        raise ZipEntryError(f"{path}: {name} is truncated")
    if method == DEFLATED:
        try:
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            data = inflater.decompress(data, max_size + 1) + inflater.flush()
        except zlib.error as exc:
            raise ZipEntryError(f"{path}: {name}: {exc}") from None
    elif method != STORED:
        raise ZipEntryError(f"{path}: {name} uses compression method {method}")
    if len(data) != unpacked or zlib.crc32(data) != crc:
        raise ZipEntryError(f"{path}: {name} fails its checksum")
    return data


def _end_of_directory(tail: bytes) -> int | None:
    """Offset of the end-of-central-directory record in the archive's last bytes: the last signature
    whose comment length reaches the end exactly (a comment may hold the signature's bytes too)."""
    at = len(tail)
    while (at := tail.rfind(b"PK\x05\x06", 0, at)) >= 0:
        if at + END_OF_DIRECTORY.size <= len(tail):
            comment_length = END_OF_DIRECTORY.unpack_from(tail, at)[-1]
            if at + END_OF_DIRECTORY.size + comment_length == len(tail):
                return at
    return None


def _find_header(directory: bytes, key: bytes) -> int | None:
    """Offset of the central directory header whose name is `key` (the name follows its 46-byte
    header; the same bytes inside a longer name, or in an extra field, are skipped)."""
    start = 0
    while (found := directory.find(key, start)) >= 0:
        header = found - DIRECTORY_HEADER.size
        if header >= 0 and directory[header:header + 4] == b"PK\x01\x02":
            name_length = struct.unpack_from("<H", directory, header + 28)[0]
            if name_length == len(key):
                return header
        start = found + 1
    return None
