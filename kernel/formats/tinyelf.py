"""Static x86-64 ELF executables from a few bytes of machine code: no loader, no libraries.

The guest's smallest programs (the power-off init of probe and floor boots, the JVM launcher) are
written this way, so building an image needs no compiler.
"""

from __future__ import annotations

import struct

BASE = 0x400000
HEADER_SIZE, PHDR_SIZE = 64, 56
ENTRY = BASE + HEADER_SIZE + PHDR_SIZE  # the code follows the one program header


def elf(code: bytes) -> bytes:
    """An executable whose one loadable segment (read + execute) is `code`, entered at its first byte."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8  # 64-bit, little-endian, System V
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH", 2, 62, 1, ENTRY, HEADER_SIZE, 0, 0, HEADER_SIZE, PHDR_SIZE, 1, 0, 0, 0
    )
    size = HEADER_SIZE + PHDR_SIZE + len(code)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, BASE, BASE, size, size, 0x1000)
    return header + phdr + code
