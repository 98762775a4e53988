"""Volumes in the guest: restored from a tar on a virtio disk, written back as a tar on a port.

The Debian cloud kernel has no 9p and Debian 12 no virtiofsd, so a folder travels as a tar: in
through a read-only virtio-blk disk holding the tar stream, out through a virtio-serial port.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable

MS_RDONLY, MS_REMOUNT, MS_BIND = 1, 32, 4096


def restore(disk: str, mount: Callable[[str, str, str, int], None], volumes: list[dict]) -> None:
    """Unpack member vN/... of the disk's tar into the N-th volume's guest folder; :ro ones read-only."""
    targets = {f"v{i}": str(v["guest"]) for i, v in enumerate(volumes)}
    for target in targets.values():
        os.makedirs(target, exist_ok=True)
    with open(disk, "rb") as device, tarfile.open(fileobj=device, mode="r|") as tar:
        for member in tar:
            key, _, rest = member.name.partition("/")
            if key not in targets or not rest:
                continue
            member.name = rest
            tar.extract(member, targets[key])  # our own tar of the user's folder
    for volume in volumes:
        if volume.get("readonly"):
            guest = str(volume["guest"])
            mount(guest, guest, "", MS_BIND)
            mount(guest, guest, "", MS_BIND | MS_REMOUNT | MS_RDONLY)


def save(volumes: list[dict], port: str | None) -> int:
    """Stream the writable volumes as one tar (member vN/...) to the port; returns the bytes sent."""
    if port is None:
        return 0
    with open(port, "wb", buffering=0) as raw:
        counter = _Counter(raw)
        with tarfile.open(fileobj=counter, mode="w|") as tar:  # type: ignore[call-overload]
            for volume in volumes:
                tar.add(str(volume["guest"]), arcname=f"v{volume['index']}", recursive=True)
        return counter.count


class _Counter:
    """A write-only file object that counts what passes through it."""

    def __init__(self, raw: object) -> None:
        self.raw = raw
        self.count = 0

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            n = self.raw.write(view)  # type: ignore[attr-defined]
            view = view[n:]
        self.count += len(data)
        return len(data)
