"""Run a host program that sees some files as the image shows them: same paths, same bytes, mtime 0.

Images store every file with a fixed mtime (reproducible builds), and CDS records each class path
jar's size and mtime: an archive made against the host's jars would not match the guest's. A copy
of each jar with the image's mtime is bind-mounted over the original in a private mount namespace
of the child only; the host's files and every other process are untouched. Root enters the mount
namespace directly; other users get one inside a user namespace that maps them to themselves.
"""

from __future__ import annotations

import ctypes
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from kernel.formats.cpio import IMAGE_MTIME

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18


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


def _fail(message: str) -> None:
    os.write(2, f"osv-java: {message}\n".encode())
    os._exit(125)


def _enter_namespace(libc: ctypes.CDLL) -> None:
    if os.geteuid() == 0:
        if libc.unshare(CLONE_NEWNS) != 0:
            _fail(f"cannot create a mount namespace: {os.strerror(ctypes.get_errno())}")
        return
    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
        _fail(f"cannot create a user and mount namespace: {os.strerror(ctypes.get_errno())}")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def binder(pairs: list[tuple[Path, Path]]) -> Callable[[], None]:
    """A preexec_fn: a private mount namespace with each copy bound over its original."""

    def bind() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        _enter_namespace(libc)
        libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None)
        for copy, original in pairs:
            if libc.mount(str(copy).encode(), str(original).encode(), None, MS_BIND, None) != 0:
                _fail(f"cannot bind {copy} over {original}: {os.strerror(ctypes.get_errno())}")

    return bind
