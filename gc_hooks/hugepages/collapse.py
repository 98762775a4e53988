"""External collapse: put an unmodified, running JVM's heap on huge pages from outside.

`process_madvise(pidfd, iovec, MADV_COLLAPSE)` (Linux 6.1) asks the kernel to collapse a range of
another process into 2 MB pages, synchronously, whatever the sysfs THP mode (only MADV_NOHUGEPAGE or
PR_SET_THP_DISABLE stop it). The kernel holds the target's mmap lock while it copies a 2 MB block, so
the work goes in steps of `step` bytes: the app is never held up longer than one step (measured and
reported). Chunks with no resident page are skipped, so collapsing never commits memory the JVM has
not touched (a dynamic heap stays as small as it is).

Needs CAP_SYS_NICE and ptrace read access to the target. Standard library only (PID 1 runs it).
"""

from __future__ import annotations

import errno
import os
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jvmbridge.errors import OsvJavaError

MADV_COLLAPSE = 25
HUGE = 2 << 20
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
DEFAULT_STEP = 8 << 20  # 4 huge pages a call: 10-40 ms measured on these machines
SYSCALLS = {"x86_64": (434, 440), "aarch64": (434, 440)}  # pidfd_open, process_madvise
RETRIES = 3  # EAGAIN: a step is tried this many times more
GIVE_UP_AFTER = 8  # refused steps in a row that end a pass
PRESENT = 1 << 63
SWAPPED = 1 << 62


class CollapseError(OsvJavaError):
    """The kernel refused the collapse; the message says why in one line."""

    def __init__(self, message: str, hint: str | None = None, err: int = 0) -> None:
        super().__init__(message, hint)
        self.errno = err


_libc: Any = None  # ctypes is loaded on the first collapse: a guest that only measures never needs it


def _syscall() -> Callable[..., int]:
    global _libc
    import ctypes

    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    fn = _libc.syscall
    fn.restype = ctypes.c_long
    return fn  # type: ignore[no-any-return]


def _numbers() -> tuple[int, int]:
    machine = os.uname().machine
    if machine not in SYSCALLS:
        raise CollapseError(f"external collapse is not wired for {machine}: only x86_64 and aarch64")
    return SYSCALLS[machine]


def _explain(err: int, pid: int, what: str) -> CollapseError:
    exc = _reason(err, pid, what)
    exc.errno = err
    return exc


def _reason(err: int, pid: int, what: str) -> CollapseError:
    release = os.uname().release
    if err == errno.ENOSYS:
        return CollapseError(f"{what}: this kernel ({release}) has no such system call; "
                             "external collapse needs Linux 6.1 or later")
    if err == errno.EPERM:
        return CollapseError(f"{what}: not permitted on process {pid}; external collapse needs "
                             "CAP_SYS_NICE and ptrace access to the JVM (run as root)")
    if err == errno.ESRCH:
        return CollapseError(f"{what}: process {pid} has exited")
    if err == errno.EINVAL:
        return CollapseError(f"{what}: the kernel ({release}) refused MADV_COLLAPSE for process {pid}: "
                             "the range is not eligible (MADV_NOHUGEPAGE, PR_SET_THP_DISABLE, or a "
                             "kernel older than 6.1)")
    if err == errno.ENOMEM:
        return CollapseError(f"{what}: no free 2 MB blocks (memory fragmented or short): "
                             "compaction could not make one")
    if err == errno.EAGAIN:
        return CollapseError(f"{what}: pages busy (locked or being migrated); try again")
    return CollapseError(f"{what} on process {pid}: {os.strerror(err)}")


def pidfd_open(pid: int) -> int:
    """A pidfd for `pid`; CollapseError when it cannot be had."""
    import ctypes

    nr, _ = _numbers()
    fd = _syscall()(ctypes.c_long(nr), ctypes.c_int(pid), ctypes.c_uint(0))
    if fd < 0:
        raise _explain(ctypes.get_errno(), pid, "pidfd_open")
    return int(fd)


def madvise_collapse(pidfd: int, pid: int, start: int, length: int) -> int:
    """One process_madvise(MADV_COLLAPSE) call over [start, start+length); returns the bytes done."""
    import ctypes

    _, nr = _numbers()
    iov = (ctypes.c_size_t * 2)(start, length)  # struct iovec {void *iov_base; size_t iov_len;}
    done = _syscall()(ctypes.c_long(nr), ctypes.c_int(pidfd), iov, ctypes.c_size_t(1),
                      ctypes.c_int(MADV_COLLAPSE), ctypes.c_uint(0))
    if done < 0:
        raise _explain(ctypes.get_errno(), pid, "process_madvise(MADV_COLLAPSE)")
    return int(done)


def resident_chunks(pid: int, start: int, end: int, chunk: int = HUGE, whole: bool = False) -> list[int]:
    """The `chunk`-aligned addresses in [start, end) with at least one resident (or swapped) page, or
    with `whole` every page resident, from /proc/PID/pagemap (present bits are readable with ptrace
    read access, no CAP_SYS_ADMIN)."""
    first = start - start % chunk
    per = chunk // PAGE
    found: list[int] = []
    with open(f"/proc/{pid}/pagemap", "rb", buffering=0) as pagemap:
        address = first
        while address < end:
            pagemap.seek(address // PAGE * 8)
            raw = pagemap.read(per * 8)
            entries = struct.unpack(f"<{len(raw) // 8}Q", raw)
            if all(e & PRESENT for e in entries) if whole else any(e & (PRESENT | SWAPPED) for e in entries):
                found.append(address)
            address += chunk
    return found


@dataclass
class CollapseResult:
    """What one collapse pass did."""

    requested: int = 0  # bytes asked for
    collapsed: int = 0  # bytes the kernel reported done
    steps: int = 0
    longest_step: float = 0.0  # seconds: the longest the app's address space was held by one call
    seconds: float = 0.0
    failed: int = 0  # bytes of steps the kernel refused
    error: str | None = None  # the first refusal, one line
    unfinished: bool = False  # the pass ran out of its budget with blocks left

    def line(self) -> str:
        mb = 1 << 20
        text = (f"{self.collapsed / mb:.0f} of {self.requested / mb:.0f} MB in {self.steps} steps, "
                f"{self.seconds:.2f}s, longest step {self.longest_step * 1e3:.1f} ms")
        return text + (f"; {self.failed / mb:.0f} MB refused: {self.error}" if self.error else "")


def collapse(pid: int, ranges: Sequence[tuple[int, int]], step: int = DEFAULT_STEP, pause: float = 0.0,
             budget: float | None = None, strict: bool = False, whole: bool = False) -> CollapseResult:
    """Collapse the resident parts of `ranges` of process `pid` into huge pages, `step` bytes a call.

    A 2 MB block is collapsed when one of its pages is resident (the kernel fills in the rest), or
    with `whole` only when all are: then the resident set does not grow by a page, and pages that
    were given back (a VM's balloon) stay given back.

    `pause` seconds between steps leave the app room; `budget` bounds the whole pass (the rest waits
    for the next pass). A refusal that will not change (no permission, old kernel) raises
    CollapseError at once; with `strict` any refusal does. Otherwise a busy step (EAGAIN) is tried
    again, a refused one is counted in `failed` and `error`, and the pass ends after
    GIVE_UP_AFTER refusals in a row.
    """
    step = max(HUGE, step - step % HUGE)
    result = CollapseResult()
    began = time.monotonic()
    pidfd = pidfd_open(pid)
    try:
        chunks: list[int] = []
        for lo, hi in ranges:
            lo = (lo + HUGE - 1) // HUGE * HUGE  # only whole 2 MB blocks can become huge pages
            hi -= hi % HUGE
            if hi > lo:
                try:
                    chunks += resident_chunks(pid, lo, hi, whole=whole)
                except PermissionError as exc:
                    raise CollapseError(f"not allowed to read /proc/{pid}/pagemap; external collapse "
                                        "needs ptrace access to the JVM (run as root)") from exc
                except FileNotFoundError as exc:
                    raise CollapseError(f"process {pid} has exited") from exc
        # consecutive resident 2 MB blocks, cut into steps
        runs: list[tuple[int, int]] = []
        for c in chunks:
            if runs and runs[-1][1] == c and runs[-1][1] - runs[-1][0] < step:
                runs[-1] = (runs[-1][0], c + HUGE)
            else:
                runs.append((c, c + HUGE))
        failed_in_a_row = 0
        for lo, hi in runs:
            if budget is not None and time.monotonic() - began > budget:
                result.unfinished = True
                break
            result.requested += hi - lo
            for attempt in range(RETRIES + 1):
                t0 = time.monotonic()
                try:
                    result.collapsed += madvise_collapse(pidfd, pid, lo, hi - lo)
                    failed_in_a_row = 0
                    break
                except CollapseError as exc:
                    final = exc.errno in (errno.ENOSYS, errno.EPERM, errno.ESRCH)
                    if strict or final or (result.steps == 0 and exc.errno == errno.EINVAL):
                        raise
                    if exc.errno == errno.EAGAIN and attempt < RETRIES:
                        time.sleep(0.01)
                        continue  # pages busy for a moment (the GC, a migration): again, after a breath
                    result.error = result.error or exc.message
                    result.failed += hi - lo
                    failed_in_a_row += 1
                    break
                finally:
                    took = time.monotonic() - t0
                    result.longest_step = max(result.longest_step, took)
                    result.steps += 1
                    if pause:
                        time.sleep(pause)
            if failed_in_a_row >= GIVE_UP_AFTER:
                break  # the kernel keeps refusing (no free 2 MB blocks): the next pass tries again
    finally:
        os.close(pidfd)
        result.seconds = time.monotonic() - began
    return result
