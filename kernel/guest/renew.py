"""What a run must not inherit from a boot snapshot (kernel/vm/snapshot.py): the clock and the random state.

Every run restored from the same snapshot would otherwise start at the wall-clock time the snapshot
was taken, and draw the same "random" numbers from the kernel (ASLR, /dev/urandom, getrandom: all
come from the state saved with the machine). The host sends its time and fresh entropy with each
run request; PID 1 applies them before the JVM starts. Cold boots get them too, harmlessly.
"""

from __future__ import annotations

import binascii
import fcntl
import os

from kernel.guest import libc

SYS_CLOCK_SETTIME = 227
CLOCK_REALTIME = 0
RNDADDENTROPY = 0x40085203  # _IOW('R', 0x03, int[2])
RNDRESEEDCRNG = 0x5207  # _IO('R', 0x07)


def set_clock(epoch_ns: int) -> None:
    """Set the wall clock (the monotonic clock is the machine's own and goes on from the snapshot)."""
    timespec = (epoch_ns // 1_000_000_000).to_bytes(8, "little", signed=True) + (
        epoch_ns % 1_000_000_000
    ).to_bytes(8, "little")
    if libc.syscall(SYS_CLOCK_SETTIME, CLOCK_REALTIME, timespec) != 0:
        raise OSError(libc.errno(), f"setting the clock: {os.strerror(libc.errno())}")


def reseed(entropy: bytes) -> None:
    """Mix `entropy` into the kernel's pool, credited, and make every CPU's generator reseed from it."""
    fd = os.open("/dev/urandom", os.O_WRONLY | os.O_CLOEXEC)
    try:
        # struct rand_pool_info: entropy_count (bits), buf_size (bytes), buf
        info = (len(entropy) * 8).to_bytes(4, "little") + len(entropy).to_bytes(4, "little") + entropy
        fcntl.ioctl(fd, RNDADDENTROPY, info)
        fcntl.ioctl(fd, RNDRESEEDCRNG)
    finally:
        os.close(fd)


def apply(epoch_ns: str | None, entropy_hex: str | None) -> None:
    """Both, from the run request's fields (either may be absent: an older host, a cold boot)."""
    if entropy_hex:
        reseed(binascii.a2b_hex(entropy_hex))
    if epoch_ns:
        set_clock(int(epoch_ns))
