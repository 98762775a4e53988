"""The dynamic heap's decision: a pure function from signals to a target committed heap.

No I/O here, so every rule is unit-tested without a JVM. The supervisor reads the signals, calls
`decide`, and turns the decision into flag changes (`actuate`).

Rules, in order:
- The app works hard (its allocation caused `work_collections` young collections in the last
  seconds; generational collectors only, where a lean heap means more of them): the collector
  sizes the heap, as it would without us, so a burst pays no collections for a lean heap; the lean
  target comes back as soon as the app is quiet (`quiet_s`). Memory pressure overrides this.
- GC time share above the limit (5 %) while the app works: back off, unless memory pressure has
  lasted `escalate_s` (then memory comes first). Stop shrinking for a while and
  let the heap grow (the collector's own sizing takes over again), so throughput stays near the
  default's. Once the app is quiet the back-off ends: an idle JVM costs no throughput.
- Memory pressure (MemAvailable low, PSI, the cgroup near its limit): shrink harder. First each JVM
  gives a share of the deficit proportional to its idle heap (committed - used), so the JVM with the
  most idle heap gives first; pressure that lasts `escalate_s` takes every JVM down to a small
  headroom over its live set.
- Otherwise: the target is the live set plus headroom, at least `min_heap`; shrink when the committed
  heap exceeds it by more than `slack`, with a collection once the JVM has been quiet for `quiet_s`.
- Never below the live set plus the pressure headroom; never above the JVM's maximum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

MB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    gc_limit: float = 0.05  # GC time share above which we back off
    headroom: float = 0.25  # target = live * (1 + headroom) when there is no pressure
    min_headroom: int = 16 * MB  # ... and at least live + this
    min_heap: int = 48 * MB  # ... and at least this
    pressure_headroom: float = 0.10  # under pressure: live * (1 + this)
    pressure_min_headroom: int = 8 * MB
    pressure_min_heap: int = 32 * MB
    low_available: float = 0.10  # MemAvailable below this share of MemTotal is pressure
    psi_limit: float = 10.0  # PSI memory "some" avg10 (percent) above this is pressure
    cgroup_high: float = 0.90  # cgroup usage above this share of its limit is pressure
    slack: float = 0.15  # shrink only when committed > target * (1 + slack)
    backoff_s: float = 30.0  # how long to hold off shrinking after the GC share passed the limit
    quiet_s: float = 1.0  # how long the JVM must be quiet before we ask for a collection
    collect_every_s: float = 2.0  # at most one requested collection per this many seconds
    grow_factor: float = 1.5  # how far a back-off lets the target grow at once
    probe_every_s: float = 10.0  # an idle spell gets a collection if none came for this long: it refreshes
    # the live set, which otherwise is only what the last collection left (garbage of a burst included)
    compact_max_live: int = 1024 * MB  # compact an idle heap only while a full GC's pause stays short
    escalate_s: float = 3.0  # pressure that lasts this long takes every JVM down to the pressure floor
    # young collections the app caused in the supervisor's work window (10 s) that mean it works: a
    # lean heap would make it collect more often still; 0 turns the rule off
    work_collections: int = 3

    @classmethod
    def from_fields(cls, fields: dict[str, object]) -> Settings:
        known = {k: v for k, v in fields.items() if k in cls.__dataclass_fields__}
        return replace(cls(), **known)  # type: ignore[arg-type]


@dataclass(frozen=True)
class HeapSignals:
    """What the JVM says about its heap (hsperfdata) and its work (/proc)."""

    committed: int
    used: int
    live: int  # estimate of the live set: what survived the last collection
    max_heap: int
    gc_share: float  # share of recent wall time spent in GC (0..1)
    busy: bool  # the JVM did real work in the last tick (CPU or collections)
    collections: int = 0  # young collections the app caused (not ours) in the last few seconds


@dataclass(frozen=True)
class HostSignals:
    """What the machine says about its memory; None where a signal is not available."""

    mem_total: int
    mem_available: int
    psi_some_avg10: float | None = None
    cgroup_limit: int | None = None
    cgroup_usage: int | None = None
    peers_idle: int = 0  # idle heap (committed - used) of every JVM sharing this memory, us included


@dataclass(frozen=True)
class State:
    """What the controller remembers between ticks."""

    target: int | None = None
    backoff_until: float = -math.inf
    last_collect: float = -math.inf
    quiet_since: float | None = None
    pressed_since: float | None = None  # when the current spell of memory pressure began
    compacted: bool = False  # an idle heap was compacted since the app last worked


@dataclass(frozen=True)
class Decision:
    what: str  # "shrink", "grow", "hold", "backoff"
    target: int  # committed heap we steer to
    collect: bool  # ask the JVM for a collection now (a shrink applies at a collection)
    why: str
    pressure: bool
    state: State
    compact: bool = False  # the collection should be a compacting (full) one: the app is idle


def pressure_deficit(host: HostSignals, settings: Settings) -> tuple[int, str]:
    """Bytes the machine is short of, and why; (0, "") without pressure."""
    deficit, why = 0, ""
    low_water = int(host.mem_total * settings.low_available)
    if host.mem_total > 0 and host.mem_available < low_water:
        deficit, why = low_water - host.mem_available, (
            f"MemAvailable {host.mem_available // MB} MB < {low_water // MB} MB")
    if host.cgroup_limit and host.cgroup_usage is not None:
        high = int(host.cgroup_limit * settings.cgroup_high)
        if host.cgroup_usage > high and host.cgroup_usage - high > deficit:
            deficit, why = host.cgroup_usage - high, (
                f"cgroup at {host.cgroup_usage // MB} of {host.cgroup_limit // MB} MB")
    if host.psi_some_avg10 is not None and host.psi_some_avg10 > settings.psi_limit and deficit == 0:
        # PSI says tasks stall on memory but not by how much: ask for a tenth of the idle heap
        deficit, why = max(host.peers_idle // 10, 1), f"memory PSI some avg10 {host.psi_some_avg10:.1f} %"
    return deficit, why


def floor(live: int, settings: Settings, pressure: bool) -> int:
    """The least heap we steer to: the live set plus headroom."""
    if pressure:
        return max(int(live * (1 + settings.pressure_headroom)), live + settings.pressure_min_headroom,
                   settings.pressure_min_heap)
    return max(int(live * (1 + settings.headroom)), live + settings.min_headroom, settings.min_heap)


def decide(now: float, heap: HeapSignals, host: HostSignals, state: State, settings: Settings) -> Decision:
    """The target committed heap from the signals; `now` is a monotonic clock in seconds."""
    live = max(0, min(heap.live, heap.used) if heap.used > 0 else heap.live)
    quiet_since = None if heap.busy else (state.quiet_since if state.quiet_since is not None else now)
    if heap.busy:
        state = replace(state, compacted=False)
    deficit, pressure_why = pressure_deficit(host, settings)
    pressure = deficit > 0
    pressed_since = (state.pressed_since if state.pressed_since is not None else now) if pressure else None
    state = replace(state, pressed_since=pressed_since)
    normal = min(floor(live, settings, False), heap.max_heap)
    hard = min(floor(live, settings, True), heap.max_heap)
    current = state.target if state.target is not None else heap.committed

    # pressure that lasts wins over throughput: a machine short of memory would otherwise kill the JVM
    # (or its whole VM) to get it back
    lasting = pressure and pressed_since is not None and now - pressed_since >= settings.escalate_s
    if heap.busy and heap.gc_share > settings.gc_limit and not lasting:
        # throughput first: let the collector grow the heap, stop shrinking while the app works
        grown = max(heap.committed, current, normal)
        target = grown if pressure else min(heap.max_heap, int(grown * settings.grow_factor))
        new = replace(state, target=target, backoff_until=now + settings.backoff_s, quiet_since=quiet_since)
        why = f"GC time {heap.gc_share:.1%} > {settings.gc_limit:.0%}"
        if pressure:
            why += f"; holding under pressure ({pressure_why})"
        return Decision("backoff", target, False, why, pressure, new)

    quiet_now = quiet_since is not None and now - quiet_since >= settings.quiet_s
    working = settings.work_collections > 0 and heap.collections >= settings.work_collections and not quiet_now
    if working and not pressure:
        # the collector sizes the heap for throughput while the app works hard; we hold what it has
        target = max(normal, min(max(current, heap.committed), heap.max_heap))
        new = replace(state, target=target, backoff_until=now + settings.backoff_s, quiet_since=quiet_since)
        why = f"the app works ({heap.collections} young collections in 10 s): the collector sizes the heap"
        return Decision("backoff", target, False, why, False, new)

    if pressure:
        idle = max(0, heap.committed - heap.used)
        share = deficit if host.peers_idle <= 0 else int(deficit * min(1.0, idle / host.peers_idle))
        lasted = now - (pressed_since if pressed_since is not None else now)
        if lasted >= settings.escalate_s:  # our share was not enough: every JVM goes to the pressure floor
            target = hard
            why = f"pressure for {lasted:.0f} s: {pressure_why}"
        else:  # first each gives a share proportional to its idle heap: the most idle gives most
            target = max(hard, min(normal, heap.committed - share))
            why = f"pressure: {pressure_why}; our share {share // MB} MB of {deficit // MB} MB"
    elif heap.busy and (now < state.backoff_until or heap.gc_share > settings.gc_limit / 2):
        # the app works and GC is near the limit (or was above it lately): leave sizing to the collector
        target = max(normal, min(max(current, heap.committed), heap.max_heap))
        why = (f"backing off for {state.backoff_until - now:.0f} s more" if now < state.backoff_until
               else f"GC time {heap.gc_share:.1%} near the limit")
        new = replace(state, target=target, quiet_since=quiet_since)
        return Decision("hold", target, False, why, False, new)
    else:
        target = normal
        why = f"live set {live // MB} MB + headroom"

    due = heap.committed > target * (1 + settings.slack)
    quiet_long = quiet_since is not None and now - quiet_since >= settings.quiet_s
    may_collect = now - state.last_collect >= settings.collect_every_s
    collect = due and (quiet_long or pressure) and may_collect
    probe = (not collect and quiet_long and may_collect and quiet_since is not None
             and state.last_collect < quiet_since and now - state.last_collect >= settings.probe_every_s
             and heap.committed > settings.min_heap * (1 + settings.slack))
    if probe:
        collect = True
        why += "; idle: a collection to learn the live set"
    # A concurrent cycle frees only the regions left empty; the garbage of partly used ones stays
    # until mixed collections, which an idle app never causes. Once per idle spell, after a
    # concurrent cycle, compact the heap: the app is idle, and the live set small enough.
    compact = (not collect and quiet_long and may_collect and not state.compacted and quiet_since is not None
               and state.last_collect >= quiet_since and live <= settings.compact_max_live
               and heap.committed > settings.min_heap * (1 + settings.slack))
    if compact:
        collect = True
        why += "; idle: compacting what a concurrent cycle left"
    if due or compact or probe:
        what = "shrink"
    elif target > current * (1 + settings.slack):
        what = "grow"
    else:
        what = "hold"
    new = replace(state, target=target, quiet_since=quiet_since, backoff_until=(
        state.backoff_until if heap.busy else -math.inf), last_collect=now if collect else state.last_collect,
        compacted=state.compacted or compact)
    return Decision(what, target, collect, why, pressure, new, compact)


def free_ratios(target: int, live: int, default_min: int = 40, default_max: int = 70) -> tuple[int, int]:
    """(MinHeapFreeRatio, MaxHeapFreeRatio) that make G1, Parallel and Serial size the heap to about
    `target` for `live` bytes after a collection: they shrink to used / (1 - Max/100) and grow to
    used / (1 - Min/100). Never above the defaults (we only ever ask for less idle heap)."""
    if target <= 0:
        return default_min, default_max
    max_free = int(100 * (1 - min(live, target) / target))
    max_free = max(1, min(default_max, max_free))
    min_free = max(0, min(default_min, max_free - 10))
    return min_free, max_free


def flag_order(current: tuple[int, int], wanted: tuple[int, int]) -> list[tuple[str, int]]:
    """The order HotSpot accepts the two ratios in (each is checked against the other when it
    changes): Min first while the new Min fits under the current Max (lowering), else Max first."""
    (cur_min, cur_max), (new_min, new_max) = current, wanted
    if new_min > new_max:
        raise ValueError(f"MinHeapFreeRatio {new_min} > MaxHeapFreeRatio {new_max}")
    first_min = new_min <= cur_max
    steps = [("MinHeapFreeRatio", new_min, cur_min), ("MaxHeapFreeRatio", new_max, cur_max)]
    if not first_min:
        steps.reverse()
    return [(name, new) for name, new, cur in steps if new != cur]
