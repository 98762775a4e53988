"""Extract a tar without letting any member land outside the destination.

Python 3.11.4+ has tarfile's "data" filter; Debian 12 ships 3.11.2, so the same rules are applied
here by hand when the filter is missing.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from jvmbridge.errors import OsvJavaError


def _check(member: tarfile.TarInfo, dest: Path, source: str) -> None:
    target = (dest / member.name).resolve()
    if member.name.startswith("/") or (target != dest and dest not in target.parents):
        raise OsvJavaError(f"{source}: member {member.name!r} would land outside {dest}",
                           hint="the archive is unsafe; rebuild it without absolute or '..' paths")
    if member.issym() or member.islnk():
        link = member.linkname
        base = target.parent if member.issym() else dest
        resolved = (base / link).resolve()
        if link.startswith("/") or (resolved != dest and dest not in resolved.parents):
            raise OsvJavaError(f"{source}: link {member.name!r} -> {link!r} points outside {dest}",
                               hint="the archive is unsafe; rebuild it without links that leave its folder")
    if member.isdev():
        raise OsvJavaError(f"{source}: member {member.name!r} is a device node",
                           hint="the archive is unsafe; rebuild it without device files")


def extract_all(tar: tarfile.TarFile, dest: Path, source: str) -> None:
    dest = dest.resolve()
    if hasattr(tarfile, "data_filter"):
        try:
            tar.extractall(dest, filter="data")
        except tarfile.FilterError as exc:
            raise OsvJavaError(f"{source}: {exc}", hint="the archive is unsafe; rebuild it") from exc
        return
    members = tar.getmembers()
    for member in members:
        _check(member, dest, source)
        member.mode &= 0o7777 & ~0o6000  # no setuid/setgid, as the data filter does
        member.uid = member.gid = os.getuid()
    tar.extractall(dest, members=members)
