"""Volumes in the guest: each host folder mounted live over virtiofs (see kernel/vm/volumes.py).

The host gives each volume a vhost-user-fs device whose tag names it; the fuse and virtiofs modules
bind those devices, and the folder is mounted at its guest path, read-only for :ro.
"""

from __future__ import annotations

import time
from collections.abc import Callable

MS_RDONLY, MS_NOSUID, MS_NODEV = 1, 2, 4
ENOENT, EINVAL = 2, 22
DEVICE_WAIT_S = 10.0


def mount_all(volumes: list[dict], mount: Callable[[str, str, str, int], None]) -> None:
    """Mount each volume's virtiofs tag at its guest folder (the modules are loaded)."""
    for volume in volumes:
        flags = MS_NODEV | (MS_RDONLY if volume["readonly"] else 0)
        deadline = time.monotonic() + DEVICE_WAIT_S
        while True:
            try:
                mount(str(volume["tag"]), str(volume["guest"]), "virtiofs", flags)
                break
            except OSError as exc:
                # The tag is unknown until the driver has bound its device: a moment after loading.
                if exc.errno not in (ENOENT, EINVAL) or time.monotonic() > deadline:
                    raise
                time.sleep(0.002)
