"""A training run without side effects: the app runs on this host, in namespaces of its own.

- network: a network namespace with only loopback, up. A server binds its ports there: no clash with
  a copy already running, nothing for a load balancer's health checks to find; nothing leaves the
  machine (an app that needs a remote service fails early, and its archive covers less);
- files: every mount read-only but the training's own folder (where the archive is written) and a
  tmpfs of the run's own over the JVM's hsperfdata folder. Jars shown as the image shows them
  (guest_view) are bound first. A write anywhere else fails with EROFS, inside the run only; /tmp
  stays as it is, read-only, since the app's own files may be there.

The host's files, ports and every other process are untouched. Root enters the namespaces directly,
other users inside a user namespace (guest_view.enter_namespace).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import pwd
import socket
import struct
from collections.abc import Callable
from pathlib import Path

from jvmbridge.proc import mounts
from kernel.build import guest_view

CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
# mounts a remount would wake (autofs: it would mount what it stands for)
_LEFT_AS_THEY_ARE = ("autofs",)
# a remount keeps what it does not name: the flags of each mount are named again (in a user namespace
# the kernel refuses a remount that would drop the ones locked by the namespace's owner)
_KEPT_FLAGS = {"nosuid": 2, "nodev": 4, "noexec": 8, "noatime": 1024, "nodiratime": 2048, "relatime": 1 << 21,
               "strictatime": 1 << 24}


def mount_points(mountinfo: str) -> list[tuple[str, str, int]]:
    """(mount point, file system type, its flags to keep) of each line of /proc/self/mountinfo."""
    return [(m.point, m.fstype, sum(_KEPT_FLAGS.get(option, 0) for option in m.options.split(",")))
            for m in mounts(mountinfo)]


def _check(result: int, what: str) -> None:
    if result != 0:
        guest_view.fail(f"training sandbox: cannot {what}: {os.strerror(ctypes.get_errno())}")


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))


def perf_folder() -> Path:
    """Where HotSpot puts this user's hsperfdata (its temporary folder is /tmp on Linux, whatever
    java.io.tmpdir says)."""
    return Path("/tmp") / f"hsperfdata_{pwd.getpwuid(os.geteuid()).pw_name}"


def isolating(pairs: list[tuple[Path, Path]], writable: Path) -> Callable[[], None]:
    """A preexec_fn: the namespaces above, each copy of `pairs` bound over its original, `writable`
    (the training's folder) left writable, and a tmpfs of its own for the JVM's hsperfdata (its
    class count tells when the start-up is over)."""

    def enter() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        perf = perf_folder()
        perf.mkdir(mode=0o755, exist_ok=True)  # what the JVM would create anyway, before it is read-only
        guest_view.enter_namespace(libc, CLONE_NEWNET)
        _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make the mounts private")
        for copy, original in pairs:
            _check(libc.mount(str(copy).encode(), str(original).encode(), None, MS_BIND, None),
                   f"bind {copy} over {original}")
        # the writable folder becomes a mount of its own, left out below so it stays writable
        _check(libc.mount(str(writable).encode(), str(writable).encode(), None, MS_BIND, None),
               f"bind {writable} to itself")
        with open("/proc/self/mountinfo") as f:
            points = mount_points(f.read())
        where = os.path.realpath(writable)  # as mountinfo shows it
        own = max((i for i, (point, _, _) in enumerate(points) if point == where), default=-1)  # the newest
        if own < 0:
            guest_view.fail(f"training sandbox: {where} is not among the mounts after binding it")
        for index, (point, fstype, flags) in reversed(list(enumerate(points))):  # deepest first
            if index == own or fstype in _LEFT_AS_THEY_ARE:
                continue
            # MS_BIND: this mount's flags only, never the file system's (which the host shares)
            _check(libc.mount(None, point.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, None),
                   f"make {point} read-only")
        _check(libc.mount(b"tmpfs", str(perf).encode(), b"tmpfs", 0, b"mode=755"),
               f"mount a tmpfs on {perf}")
        _loopback_up()

    return enter
