"""Actuators: what each collector honours at run time, set through dynamic attach.

- G1: Min/MaxHeapFreeRatio (applied at a full GC or at Remark), then a collection when a shrink is
  due, and G1PeriodicGCInterval so an idle JVM keeps running the concurrent cycles that shrink it.
- ZGC and Shenandoah: SoftMaxHeapSize, and a (concurrent) collection when a shrink is due; the memory
  goes back after ZUncommitDelay / ShenandoahUncommitDelay (launch flags: see the policy).
- Parallel and Serial: the free ratios and a (full) collection.

Every flag changed is remembered with its value before the first change, so `restore` puts the JVM
back as it was when the controller detaches. Standard library only.
"""

from __future__ import annotations

from typing import Protocol

from gc_hooks.dynamic_heap.decide import MB, flag_order, free_ratios

PERIODIC_GC_MS = 10_000  # G1PeriodicGCInterval while we steer a G1 heap


class Attached(Protocol):
    """What an actuator needs of jvmbridge.attach.AttachedJvm."""

    def setflag(self, name: str, value: str | int | bool) -> str: ...

    def printflag(self, name: str) -> str: ...

    def jcmd(self, line: str) -> str: ...


def flag_value(printed: str) -> str:
    """`-XX:Name=value` -> value; `-XX:+Name` -> "1"; `-XX:-Name` -> "0"."""
    text = printed.strip().splitlines()[0] if printed.strip() else ""
    if "=" in text:
        return text.split("=", 1)[1].strip()
    if text.startswith("-XX:+"):
        return "1"
    if text.startswith("-XX:-"):
        return "0"
    return text


class Actuator:
    """Turns a target committed heap into flag changes for one collector."""

    def __init__(self, vm: Attached, collector: str) -> None:
        self.vm = vm
        self.collector = collector
        self.original: dict[str, int] = {}  # flag -> value before our first change
        self.current: dict[str, int] = {}

    def _flag(self, name: str) -> int:
        if name not in self.current:
            value = int(flag_value(self.vm.printflag(name)))
            self.original.setdefault(name, value)
            self.current[name] = value
        return self.current[name]

    def _set(self, name: str, value: int, changes: list[str]) -> None:
        before = self._flag(name)
        if before == value:
            return
        self.vm.setflag(name, value)
        self.current[name] = value
        changes.append(f"{name} {_show(name, before)}->{_show(name, value)}")

    def concurrent_collect(self) -> bool:
        """Whether GC.run is a concurrent cycle (ZGC, Shenandoah, G1 with ExplicitGCInvokesConcurrent)."""
        if self.collector in ("zgc", "shenandoah"):
            return True
        if self.collector == "g1":
            return flag_value(self.vm.printflag("ExplicitGCInvokesConcurrent")) == "1"
        return False

    def apply(self, target: int, live: int, collect: bool, backoff: bool, compact: bool = False) -> list[str]:
        """Steer to `target` bytes (or hand sizing back to the collector when `backoff`); ask for a
        collection when `collect`, a compacting one when `compact`. Returns what changed, for the event."""
        changes: list[str] = []
        if self.collector in ("g1", "parallel", "serial"):
            self._ratios(target, live, backoff, changes)
            if self.collector == "g1":
                self._flag("G1PeriodicGCInterval")
                original = self.original["G1PeriodicGCInterval"]
                wanted = original if backoff or original else PERIODIC_GC_MS  # the user's own interval wins
                self._set("G1PeriodicGCInterval", wanted, changes)
        elif self.collector in ("zgc", "shenandoah"):
            self._flag("SoftMaxHeapSize")
            wanted = self.original["SoftMaxHeapSize"] if backoff else min(
                self.original["SoftMaxHeapSize"], _round_up(target, 2 * MB))
            self._set("SoftMaxHeapSize", wanted, changes)
        if collect and compact and self.collector == "g1":
            # GC.class_histogram collects with a full (compacting) GC whatever ExplicitGCInvokesConcurrent
            # says; its output is not needed
            self.vm.jcmd("GC.class_histogram")
            changes.append("full GC (GC.class_histogram)")
        elif collect:
            self.vm.jcmd("GC.run")
            changes.append("GC.run")
        return changes

    def _ratios(self, target: int, live: int, backoff: bool, changes: list[str]) -> None:
        cur = (self._flag("MinHeapFreeRatio"), self._flag("MaxHeapFreeRatio"))
        orig = (self.original["MinHeapFreeRatio"], self.original["MaxHeapFreeRatio"])
        wanted = orig if backoff else free_ratios(target, live, *orig)
        for name, value in flag_order(cur, wanted):
            self._set(name, value, changes)

    def restore(self) -> list[str]:
        """Every flag back to its value before we changed it (ratios in an order HotSpot accepts)."""
        changes: list[str] = []
        if "MinHeapFreeRatio" in self.original and "MaxHeapFreeRatio" in self.original:
            cur = (self.current["MinHeapFreeRatio"], self.current["MaxHeapFreeRatio"])
            orig = (self.original["MinHeapFreeRatio"], self.original["MaxHeapFreeRatio"])
            for name, value in flag_order(cur, orig):
                self._set(name, value, changes)
        for name, value in self.original.items():
            if name not in ("MinHeapFreeRatio", "MaxHeapFreeRatio"):
                self._set(name, value, changes)
        return changes


def _round_up(value: int, unit: int) -> int:
    return max(unit, -(-value // unit) * unit)


def _show(name: str, value: int) -> str:
    return f"{value // MB}M" if name.endswith("Size") else str(value)
