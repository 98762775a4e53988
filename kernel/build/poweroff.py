"""A tiny static x86-64 ELF whose only job is reboot(POWER_OFF): the init of probe and floor boots.

It measures (or probes) the kernel and QEMU alone: no loader, no libraries, no interpreter.
"""

from __future__ import annotations

from kernel.formats import cpio, tinyelf

# mov edi,0xfee1dead; mov esi,0x28121969; mov edx,0x4321fedc; mov eax,169 (reboot); syscall; jmp $
CODE = bytes.fromhex("bfaddee1fe" "be69191228" "badcfe2143" "b8a9000000" "0f05" "ebfe")


def elf() -> bytes:
    return tinyelf.elf(CODE)


def initramfs(path: str) -> None:
    """Write an initramfs whose /init powers the machine off at once."""
    with open(path, "wb") as out:
        cpio.write([cpio.Entry.file("init", elf(), 0o755), cpio.Entry.char_device("dev/console", 5, 1)], out)
