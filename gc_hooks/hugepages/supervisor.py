"""The huge-pages supervisor: measures, after start-up and then at intervals, which share of the Java
heap sits on huge pages; warns below the target saying why; and, when the plan says so, collapses
what the kernel left on 4 KB pages (a JVM without flags, regions the GC uncommitted and committed
again). Every measurement and decision is a HookEvent. Standard library only: PID 1 runs it."""

from __future__ import annotations

from typing import Any

from gc_hooks.hugepages import collapse as collapsing
from gc_hooks.hugepages import system
from gc_hooks.seam import Channel, HookEvent, Supervisor
from jvmbridge import smaps
from jvmbridge.errors import JvmError

POLICY = "hugepages"
TARGET_SHARE = 0.9
MB = 1 << 20


class HugePagesSupervisor(Supervisor):
    """Settings (from `Plan.settings`, all optional): mode, collapse, heap_kind, interval (seconds
    between measurements), first (seconds before the first), target (share), min_resident_mb (below
    it nothing is judged), collapse_min_mb (4 KB-backed heap worth a collapse), step_mb (bytes a
    collapse call), budget (seconds of collapsing a tick), again (seconds to the next tick when a
    collapse ran out of budget), retry (seconds after a refused collapse)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        super().__init__(settings)
        self.mode = str(settings.get("mode", "thp"))
        self.asked_mode = str(settings.get("asked", self.mode))
        self.why = str(settings.get("why", ""))
        self.notes = [str(note) for note in settings.get("notes", [])]
        self.do_collapse = bool(settings.get("collapse", False))
        self.expected_kind = str(settings.get("heap_kind", "anon"))
        self.period = float(settings.get("interval", 10.0))
        self.interval = float(settings.get("first", 2.0))
        self.target = float(settings.get("target", TARGET_SHARE))
        self.min_resident = int(float(settings.get("min_resident_mb", 16)) * MB)
        self.collapse_min = int(float(settings.get("collapse_min_mb", 8)) * MB)
        self.step = int(float(settings.get("step_mb", collapsing.DEFAULT_STEP // MB)) * MB)
        self.budget = float(settings.get("budget", 1.0))
        self.retry = float(settings.get("retry", 60.0))
        self.again = float(settings.get("again", 1.0))
        self.unfinished = False
        self.pid = 0
        self.channel: Channel | None = None
        self.info: smaps.HeapInfo | None = None
        self.asked = False
        self.warned = ""
        self.refused_until = 0.0
        self.fallbacks0 = 0
        self.measurements: list[smaps.HeapPages] = []  # the last few, newest last

    def emit(self, what: str, why: str, before: str = "", after: str = "") -> None:
        if self.channel is not None:
            self.channel.emit(HookEvent(POLICY, what, why, before, after))

    def start(self, pid: int, channel: Channel) -> None:
        self.pid = pid
        self.channel = channel
        self.fallbacks0 = system.vmstat().get("thp_fault_fallback", 0)
        verb = "collapse what the kernel leaves on 4 KB pages" if self.do_collapse else "measure"
        said = "".join(f"; {text}" for text in (self.why, *self.notes) if text)
        self.emit("start", f"huge pages {self.mode}: {verb} every {self.period:g}s{said}")
        if self.asked_mode not in ("auto", self.mode):  # asked for a pool, got THP: say so without -v
            self.emit("warning", f"--hugepages {self.asked_mode} not honoured: {self.why}")

    def measure(self) -> smaps.HeapPages:
        if self.info is None and not self.asked:
            first = smaps.heap_pages(self.pid, None, ask=False)
            if first.source == "memfd":  # ZGC names its heap: nothing to ask
                self.measurements = [first]
                return first
            self.asked = True  # ask the JVM once; the heap's reserved range never moves
            self.info = smaps.heap_info(self.pid)
        pages = smaps.heap_pages(self.pid, self.info, ask=False)
        self.measurements = [*self.measurements[-9:], pages]
        return pages

    def tick(self, now: float) -> None:
        self.interval = self.period
        try:
            pages = self.measure()
        except JvmError:
            return  # the JVM is going away: the runner stops us
        share = f"{pages.share:.1%}"
        self.emit("measure", f"{pages.describe()}; heap found by {pages.source}", after=share)
        if pages.rss < self.min_resident:
            return
        small = pages.rss - pages.huge
        if self.do_collapse and small >= self.collapse_min and now >= self.refused_until:
            pages = self.repair(pages, now)
            if self.unfinished:  # blocks left when the budget ran out: go on soon, judge once done
                self.interval = self.again
                return
        if pages.share < self.target:
            self.warn(pages)
        else:
            self.warned = ""

    def repair(self, pages: smaps.HeapPages, now: float) -> smaps.HeapPages:
        self.unfinished = False
        ranges = [(m.start, m.end) for m in pages.mappings if m.rss > m.huge]
        try:
            result = collapsing.collapse(self.pid, ranges, step=self.step, pause=0.005, budget=self.budget)
        except collapsing.CollapseError as exc:
            self.refused_until = now + self.retry
            self.emit("warning", f"external collapse refused: {exc.message}")
            return pages
        if result.error and not result.collapsed:  # refused throughout: wait; a refused step among
            self.refused_until = now + self.retry  # others is most often the GC changing that range
        self.unfinished = result.unfinished and not result.error
        try:
            after = self.measure()
        except JvmError:
            return pages
        self.emit("collapse", result.line(), f"{pages.share:.1%}", f"{after.share:.1%}")
        return after

    def observed(self, pages: smaps.HeapPages) -> system.Observed:
        blocks = system.free_huge_blocks()
        return system.Observed(
            share=pages.share, kind=pages.kind, advised=pages.advised, forbidden=pages.forbidden,
            region_size=pages.region_size if self.info is not None else None, expected_kind=self.expected_kind,
            kernel=system.read_kernel(), free_huge_blocks=blocks,
            fault_fallbacks=system.vmstat().get("thp_fault_fallback", 0) - self.fallbacks0)

    def warn(self, pages: smaps.HeapPages) -> None:
        reasons = system.diagnose(self.observed(pages))
        why = "; ".join(reasons)
        if why == self.warned:
            return  # said already; again only when the cause changes
        self.warned = why
        self.emit("warning", f"only {pages.share:.0%} of the heap is on huge pages (target "
                  f"{self.target:.0%}): {why}", after=f"{pages.share:.1%}")

    def stop(self, exited: bool) -> None:
        if not exited and self.measurements:
            last = self.measurements[-1]
            self.emit("stop", f"detached; last: {last.describe()}")


Once = tuple[smaps.HeapPages, smaps.HeapPages | None, collapsing.CollapseResult | None]


def once(pid: int, do_collapse: bool, step_mb: int = collapsing.DEFAULT_STEP // MB) -> Once:
    """Measure JVM `pid` and, with `do_collapse`, collapse its heap once and measure again (CLI, benchmarks).
    CollapseError when the kernel refuses."""
    before = smaps.heap_pages(pid)
    if not do_collapse:
        return before, None, None
    info = smaps.HeapInfo(before.start, before.end, before.region_size) if before.source == "heap_info" else None
    ranges = [(m.start, m.end) for m in before.mappings if m.rss > m.huge]
    result = collapsing.collapse(pid, ranges, step=step_mb * MB)
    after = smaps.heap_pages(pid, info, ask=info is None)
    return before, after, result
