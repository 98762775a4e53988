"""The huge-pages policy's host side for VMs: QEMU's guest RAM on the host's huge pages, measured and
repaired.

A guest huge page gains little when the host backs it with 4 KB pages. A cold boot's RAM is anonymous
memory that QEMU madvises for THP, but a machine saved as or restored from a boot snapshot has its RAM
in a memfd: shared memory, which gets huge pages only where the host's `shmem_enabled` allows (Debian
says `never`). So every `interval` seconds the monitor reads QEMU's smaps, reports the share of the
guest RAM on huge pages (an event: the bootchart shows it beside the guest heap's), and below the
target collapses its wholly resident 2 MB blocks from outside (MADV_COLLAPSE ignores `shmem_enabled`), in
steps of `step` bytes so a vCPU that faults waits at most one step, and at most `budget` seconds a
round (with blocks left, the next round comes `again` seconds later). Host only (not in the guest's zip).
"""

from __future__ import annotations

import threading
import time

from gc_hooks.hugepages import collapse as collapsing
from gc_hooks.seam import HookEvent, HostMonitor, VmSide
from jvmbridge import smaps
from jvmbridge.errors import JvmError

POLICY = "hugepages"
MB = 1 << 20
HUGE = 2 * MB


def describe(ram: smaps.Mapping) -> str:
    """One line on QEMU's guest RAM mapping and its huge pages."""
    share = ram.huge / ram.rss if ram.rss else 0.0
    return (f"QEMU's guest RAM on the host: {ram.huge / MB:.0f} MB of {ram.rss / MB:.0f} MB resident on huge pages "
            f"({share:.0%}, {backing(ram)})")


def backing(ram: smaps.Mapping) -> str:
    """What backs the guest RAM: anonymous memory, a memfd (snapshots), hugetlbfs or a file."""
    if ram.anonymous:
        return "anonymous"
    if ram.in_pool:
        return "hugetlbfs"
    if "memfd:" in ram.path:
        return "memfd"
    return f"file {ram.path}"


def not_collapsible(ram: smaps.Mapping) -> str:
    """Why MADV_COLLAPSE cannot put this mapping on huge pages, or "" when it can."""
    if ram.anonymous or ram.in_pool:
        return ""
    if "s" not in ram.perms[3:]:
        return ("a private mapping of a file (the boot snapshot's RAM, --dynamic-heap off): the guest's writes are "
                "copies on 4 KB pages the kernel does not collapse; --cold-boot gives anonymous RAM on huge pages")
    if (ram.start - ram.offset) % HUGE:
        return ("QEMU mapped it 4 KB-aligned (the run that saves a boot snapshot), so no 2 MB page fits it; the "
                "runs that restore the snapshot map it 2 MB-aligned")
    return ""


class GuestRamMonitor(HostMonitor):
    """Measures QEMU's guest RAM (`memory_mb` or more) on the host's huge pages, collapses it below `target`."""

    essential = False  # the guest's heap is on guest huge pages either way

    def __init__(self, memory_mb: int, interval: float = 10.0, first: float = 2.0, target: float = 0.9,
                 step: int = collapsing.DEFAULT_STEP, budget: float = 2.0, again: float = 1.0,
                 retry: float = 60.0) -> None:
        self.memory = memory_mb * MB
        self.interval = interval
        self.first = first
        self.target = target
        self.step_bytes = step
        self.budget = budget
        self.again = again  # seconds to the next round when a collapse ran out of budget
        self.retry = retry
        self.pid = 0
        self.refused_until = 0.0
        self.said = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, vm: VmSide | None) -> None:
        if vm is None:
            return
        self.pid = vm.qemu_pid
        self._thread = threading.Thread(target=self._loop, name="hugepages-guest-ram", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.budget + 5)

    def _loop(self) -> None:
        wait = self.first
        while not self._stop.wait(wait):
            try:
                wait = self.again if self.step(time.monotonic()) else self.interval
            except JvmError:
                return  # QEMU has exited
            except Exception as exc:  # noqa: BLE001 - never the app's problem: said once
                self._say(f"guest RAM: {exc}")

    def ram(self) -> smaps.Mapping | None:
        return smaps.guest_ram(smaps.read(self.pid), self.memory)

    def step(self, now: float) -> bool:
        """Measure, and collapse below the target; True when a collapse left blocks for the next round."""
        ram = self.ram()
        if ram is None:
            self._say(f"QEMU's guest RAM ({self.memory // MB} MB or more) was not found in /proc/{self.pid}/smaps")
            return False
        share = ram.huge / ram.rss if ram.rss else 0.0
        self.report(HookEvent(POLICY, "host-ram", describe(ram), after=f"{share:.1%}"))
        if share >= self.target or ram.rss - ram.huge < 4 * self.step_bytes or now < self.refused_until:
            return False
        why_not = not_collapsible(ram)
        if why_not:
            self.refused_until = float("inf")
            self._say(f"{describe(ram)}: {why_not}")
            return False
        try:
            # whole blocks only: a block with pages the balloon gave back, or the guest never touched,
            # would come back into QEMU's resident set
            result = collapsing.collapse(self.pid, [(ram.start, ram.end)], step=self.step_bytes, pause=0.005,
                                         budget=self.budget, whole=True)
        except collapsing.CollapseError as exc:
            self.refused_until = now + self.retry
            self._say(f"{describe(ram)}; external collapse of QEMU's RAM refused: {exc.message}")
            return False
        if result.error and not result.collapsed:  # refused throughout: wait before the next try
            self.refused_until = now + self.retry
        if not result.requested:
            return False  # no block wholly resident on 4 KB pages: nothing to say
        after = self.ram()
        done = f"{after.huge / after.rss:.1%}" if after is not None and after.rss else "?"
        self.report(HookEvent(POLICY, "collapse", f"QEMU's guest RAM on the host: {result.line()}",
                              f"{share:.1%}", done))
        return result.unfinished and not result.error

    def _say(self, why: str) -> None:
        # an event, not a warning on the app's stderr: the guest's heap is on huge pages either way, and
        # a run that saves a snapshot, or a user without CAP_SYS_NICE, would hear it on every run
        if why != self.said:  # again only when the cause changes
            self.said = why
            self.report(HookEvent(POLICY, "host-ram", why))
