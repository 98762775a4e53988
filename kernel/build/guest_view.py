"""Run a host program that sees some files as the image shows them: same paths, same bytes, mtime 0.

Images store every file with a fixed mtime (reproducible builds), and CDS records each class path
jar's size and mtime: an archive made against the host's jars would not match the guest's. A copy
of each jar with the image's mtime (`stage`) is bind-mounted over the original in a private mount
namespace of the child only (kernel.build.sandbox); the host's files and every other process are
untouched. Root enters the namespaces directly; other users get them inside a user namespace that
maps them to themselves (`enter_namespace`).
"""

from __future__ import annotations

import ctypes
import os
import shutil
from pathlib import Path
from typing import NoReturn

from kernel.formats.cpio import IMAGE_MTIME

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000


def stage(files: list[Path], folder: Path) -> list[tuple[Path, Path]]:
    """Copy each regular file into `folder` with the image's mtime; (copy, original) pairs."""
    pairs = []
    for index, original in enumerate(files):
        if not original.is_file():
            continue
        copy = folder / f"{index}-{original.name}"
        shutil.copyfile(original, copy)
        os.utime(copy, (IMAGE_MTIME, IMAGE_MTIME))
        pairs.append((copy, original))
    return pairs


def fail(message: str) -> NoReturn:
    os.write(2, f"osv-java: {message}\n".encode())
    os._exit(125)


def enter_namespace(libc: ctypes.CDLL, more: int = 0) -> None:
    """A private mount namespace (and the namespaces in `more`) for this process."""
    if os.geteuid() == 0:
        if libc.unshare(CLONE_NEWNS | more) != 0:
            fail(f"cannot create a mount namespace: {os.strerror(ctypes.get_errno())}")
        return
    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | more) != 0:
        fail(f"cannot create a user and mount namespace: {os.strerror(ctypes.get_errno())}")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
