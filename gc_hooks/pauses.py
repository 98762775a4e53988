"""The pause picture: what the kernel knows about a JVM's stop-the-world pauses, live.

Pure logic, fed from outside (the -Xlog event stream and hsperfdata samples), so it is unit-tested
without a JVM and runs anywhere (standard library only, like every supervisor):

- `PauseWindows`: each pause (cause, time to safepoint, duration), percentiles of pause durations
  and the share of time stopped over sliding windows;
- `Predictor`: the allocation rate from eden's occupancy and the promotion rate from the old
  generation's, and from them when the next young and the next major collection are due
  (Twitter util-jvm's GcPredictor: next GC ≈ now + (eden capacity − eden used) / allocation rate);
- `Lateness`: how late the kernel learned that a pause began and ended (read time − JVM time).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

WINDOWS = (10.0, 60.0, 600.0)  # seconds


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) of already sorted values, nearest-rank; None when empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(frozen=True)
class Pause:
    """One stop-the-world pause, in the JVM's uptime (seconds)."""

    start: float
    duration: float
    cause: str = ""
    name: str = ""
    time_to_safepoint: float | None = None
    gc_id: int | None = None

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True)
class WindowStats:
    window: float  # seconds
    count: int
    p50: float | None  # seconds
    p90: float | None
    p99: float | None
    max: float | None
    stopped: float  # seconds stopped within the window
    share: float  # stopped / window (of the part of the window the JVM has lived)

    def fields(self) -> dict[str, object]:
        return {"window_s": self.window, "count": self.count, "p50_ms": _ms(self.p50), "p90_ms": _ms(self.p90),
                "p99_ms": _ms(self.p99), "max_ms": _ms(self.max), "stopped_s": round(self.stopped, 6),
                "stopped_share": round(self.share, 6)}


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1e3, 3)


class PauseWindows:
    """Pauses kept for the longest window; statistics over each window ending at `now` (JVM uptime).

    `pauses` are the GC pauses (percentiles); the stopped share counts every safepoint when the log
    has safepoint lines (`stopped`), else the GC pauses themselves.
    """

    def __init__(self, windows: Iterable[float] = WINDOWS) -> None:
        self.windows = tuple(sorted(windows))
        self.pauses: deque[Pause] = deque()
        self.stops: deque[Pause] = deque()  # safepoints (every stop, GC or not)
        self.total = 0

    def add(self, pause: Pause) -> None:
        self.pauses.append(pause)
        self.total += 1

    def add_stop(self, stop: Pause) -> None:
        self.stops.append(stop)

    def _trim(self, now: float) -> None:
        horizon = now - self.windows[-1]
        for queue in (self.pauses, self.stops):
            while queue and queue[0].end < horizon:
                queue.popleft()

    def stats(self, now: float) -> list[WindowStats]:
        self._trim(now)
        out = []
        for window in self.windows:
            begin = now - window
            inside = sorted(p.duration for p in self.pauses if p.end > begin and p.start <= now)
            stops = self.stops if self.stops else self.pauses
            stopped = sum(max(0.0, min(p.end, now) - max(p.start, begin)) for p in stops)
            span = min(window, now) if now > 0 else window
            out.append(WindowStats(window, len(inside), percentile(inside, 50), percentile(inside, 90),
                                   percentile(inside, 99), inside[-1] if inside else None, stopped,
                                   stopped / span if span > 0 else 0.0))
        return out

    def last(self, n: int) -> list[Pause]:
        return list(self.pauses)[-n:]


@dataclass(frozen=True)
class HeapSample:
    """What hsperfdata says at one moment (bytes; `at` in seconds on any steady clock)."""

    at: float
    eden_used: int
    eden_capacity: int
    old_used: int
    old_capacity: int
    young_count: int  # collections of the young collector so far
    full_count: int  # collections of the old (full) collector so far


@dataclass(frozen=True)
class Prediction:
    allocation_rate: float | None  # bytes/s into eden
    promotion_rate: float | None  # bytes/s into the old generation (between full collections)
    next_young: float | None  # seconds from the last sample; None when nothing allocates
    next_major: float | None
    eden_free: int
    old_free: int
    eden_moves: bool = True  # False: the JVM updates eden's counter only at collections (by intervals)

    def fields(self) -> dict[str, object]:
        return {"allocation_mb_s": _per_mb(self.allocation_rate), "promotion_mb_s": _per_mb(self.promotion_rate),
                "next_young_s": _round(self.next_young), "next_major_s": _round(self.next_major),
                "eden_free_mb": round(self.eden_free / (1 << 20), 1),
                "old_free_mb": round(self.old_free / (1 << 20), 1)}


def _per_mb(value: float | None) -> float | None:
    return None if value is None else round(value / (1 << 20), 2)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class Predictor:
    """Allocation and promotion rates over the last `horizon` seconds of samples, and the next
    collections they lead to.

    Between two samples the bytes allocated are eden's growth; across a young collection (its count
    moved) eden filled up first, so they are what was free before plus what is used now (hsperfdata
    can show eden full for a moment after the collection: then what is used counts at the next sample). Promotion is
    the old generation's growth between samples that no full collection separates. The next major
    collection is due when the old generation's free space no longer holds what one young
    collection promotes (Parallel and Serial collect the whole heap then), or when it is full.
    """

    def __init__(self, horizon: float = 5.0) -> None:
        self.horizon = horizon
        self.samples: deque[HeapSample] = deque()
        # (previous sample's time, this sample's time, bytes in between)
        self._allocated: deque[tuple[float, float, int]] = deque()
        self._promoted: deque[tuple[float, float, int]] = deque()
        self._promoted_per_young: deque[int] = deque(maxlen=8)
        self._old_at_young: int | None = None
        self._induced = False
        self._last_collection: float | None = None
        self._natural_intervals: deque[float] = deque(maxlen=4)
        self.eden_moves = False  # whether eden's `used` counter moves between collections

    def induced(self) -> None:
        """The next collection seen was caused from outside: eden had not filled up."""
        self._induced = True

    def add(self, sample: HeapSample) -> None:
        if self.samples:
            prev = self.samples[-1]
            if sample.at <= prev.at:
                return
            emptied = sample.eden_used < prev.eden_used  # a collection emptied eden in between
            collected = sample.young_count != prev.young_count or sample.full_count != prev.full_count
            if not collected:
                allocated = sample.eden_used if emptied else sample.eden_used - prev.eden_used
                self.eden_moves = self.eden_moves or allocated > 0
            elif self._induced:  # we caused it: eden held what it held, no more
                allocated = sample.eden_used if emptied else max(0, sample.eden_used - prev.eden_used)
            else:  # eden filled first; hsperfdata may still show it full right after the collection
                allocated = max(0, prev.eden_capacity - prev.eden_used) + (sample.eden_used if emptied else 0)
            if collected:
                if not self._induced and self._last_collection is not None:
                    count = (sample.young_count - prev.young_count) + (sample.full_count - prev.full_count)
                    self._natural_intervals.append((sample.at - self._last_collection) / max(1, count))
                self._last_collection = sample.at
                self._induced = False
            self._allocated.append((prev.at, sample.at, allocated))
            if sample.full_count == prev.full_count:
                self._promoted.append((prev.at, sample.at, max(0, sample.old_used - prev.old_used)))
                if sample.young_count != prev.young_count:
                    if self._old_at_young is not None:
                        self._promoted_per_young.append(max(0, sample.old_used - self._old_at_young))
                    self._old_at_young = sample.old_used
            else:
                self._promoted.clear()
                self._old_at_young = sample.old_used
        self.samples.append(sample)
        horizon = sample.at - self.horizon
        while len(self.samples) > 2 and self.samples[0].at < horizon:
            self.samples.popleft()
        for queue in (self._allocated, self._promoted):
            while len(queue) > 1 and queue[0][1] < horizon:
                queue.popleft()

    @staticmethod
    def _rate(queue: deque[tuple[float, float, int]]) -> float | None:
        """Bytes per second over the intervals in `queue` (None before two samples)."""
        if not queue:
            return None
        span = queue[-1][1] - queue[0][0]
        return sum(b for _, _, b in queue) / span if span > 0 else None

    def predict(self) -> Prediction | None:
        if not self.samples:
            return None
        last = self.samples[-1]
        alloc = self._rate(self._allocated)
        promo = self._rate(self._promoted)
        eden_free = max(0, last.eden_capacity - last.eden_used)
        old_free = max(0, last.old_capacity - last.old_used)
        next_young = eden_free / alloc if alloc else None
        if not self.eden_moves and self._natural_intervals and self._last_collection is not None:
            # JDKs without the periodic counter sampler (newer than 17) update `used` only at a
            # collection: then go by the time between collections that eden's filling up caused
            interval = sum(self._natural_intervals) / len(self._natural_intervals)
            next_young = max(0.0, self._last_collection + interval - last.at)
            alloc = last.eden_capacity / interval if interval > 0 else alloc
        per_young = max(self._promoted_per_young) if self._promoted_per_young else None
        next_major: float | None = None
        if per_young is not None and next_young is not None and old_free < per_young:
            next_major = next_young
        elif promo:
            next_major = old_free / promo
            if next_young is not None and per_young and alloc:
                # at the young collection where what is left no longer holds one more promotion
                young_interval = max(1.0, last.eden_capacity) / alloc
                youngs = max(0, math.floor((old_free - per_young) / per_young))
                next_major = min(next_major, next_young + youngs * young_interval)
        return Prediction(alloc, promo, next_young, next_major, eden_free, old_free, self.eden_moves)


@dataclass(frozen=True)
class Lateness:
    """How late the kernel learned of pauses: read time minus the JVM's time of the event (seconds)."""

    began: list[float]
    ended: list[float]

    def fields(self) -> dict[str, object]:
        def summary(values: list[float]) -> dict[str, object]:
            ordered = sorted(values)
            return {"count": len(ordered), "p50_ms": _ms(percentile(ordered, 50)),
                    "p99_ms": _ms(percentile(ordered, 99)), "max_ms": _ms(ordered[-1] if ordered else None)}
        return {"began": summary(self.began), "ended": summary(self.ended)}


class PausePicture:
    """Everything `osv-java jvm pauses` shows, fed with GC events (jvmbridge.gclog.GcEvent) and heap
    samples. `read_at` is time.monotonic() when the event was read: with the JVM's own nanoTime on its
    log lines (decorations `timenanos,uptimenanos`, same host) it measures how late we learn of pauses.
    """

    def __init__(self, windows: Iterable[float] = WINDOWS, recent: int = 8) -> None:
        self.windows = PauseWindows(windows)
        self.predictor = Predictor()
        self.began: deque[float] = deque(maxlen=1000)
        self.ended: deque[float] = deque(maxlen=1000)
        self.recent: deque[Pause] = deque(maxlen=recent)
        self.uptime = 0.0  # the JVM's latest known uptime
        self.last_sample: HeapSample | None = None

    def event(self, event: object, read_at: float | None = None) -> Pause | None:
        """Take one GcEvent; the Pause it adds to the picture, if it is a GC pause."""
        kind = getattr(event, "kind", "")
        start = getattr(event, "start", None)
        logged = getattr(event, "logged_at", None)
        late = None if logged is None or read_at is None else max(0.0, read_at - logged)
        if kind == "pause-start":
            if late is not None:
                self.began.append(late)
            return None
        if start is None or kind not in ("pause", "safepoint"):
            return None
        pause = Pause(start=start, duration=getattr(event, "duration", 0.0), cause=getattr(event, "cause", "") or "",
                      name=getattr(event, "name", ""), time_to_safepoint=getattr(event, "time_to_safepoint", None),
                      gc_id=getattr(event, "gc_id", None))
        self.uptime = max(self.uptime, pause.end)
        if kind == "safepoint":
            self.windows.add_stop(pause)
            if late is not None:
                self.ended.append(late)  # the safepoint line is printed as the world restarts
            return None
        self.windows.add(pause)
        self.recent.append(pause)
        return pause

    def sample(self, sample: HeapSample, uptime: float | None = None) -> None:
        self.predictor.add(sample)
        self.last_sample = sample
        if uptime is not None:
            self.uptime = max(self.uptime, uptime)

    def lateness(self) -> Lateness:
        return Lateness(list(self.began), list(self.ended))

    def summary(self) -> dict[str, object]:
        prediction = self.predictor.predict()
        return {"uptime_s": round(self.uptime, 3), "pauses": self.windows.total,
                "windows": [w.fields() for w in self.windows.stats(self.uptime)],
                "prediction": prediction.fields() if prediction else None,
                "lateness": self.lateness().fields()}

    def table(self, title: str) -> str:
        """The picture as text, one screen."""
        lines = [f"{title}  uptime {self.uptime:.1f}s  pauses {self.windows.total}"]
        lines.append(f"{'window':>8} {'count':>6} {'p50':>9} {'p90':>9} {'p99':>9} {'max':>9} {'stopped':>9}")
        for w in self.windows.stats(self.uptime):
            name = f"{w.window / 60:.0f}m" if w.window >= 60 else f"{w.window:.0f}s"
            lines.append(f"{name:>8} {w.count:>6} {_fmt(w.p50):>9} {_fmt(w.p90):>9} {_fmt(w.p99):>9} {_fmt(w.max):>9}"
                         f" {w.share * 100:>8.2f}%")
        p = self.predictor.predict()
        s = self.last_sample
        if p is not None and s is not None:
            mb = 1 << 20
            young = "unknown (nothing allocates)" if p.next_young is None else f"in {p.next_young:.1f}s"
            major = "not in sight" if p.next_major is None else f"in {p.next_major:.1f}s"
            how = "" if p.eden_moves else ", by intervals"
            lines.append(f"next young {young}  (eden {s.eden_used / mb:.0f}/{s.eden_capacity / mb:.0f} MB, "
                         f"allocating {(p.allocation_rate or 0) / mb:.1f} MB/s{how})")
            lines.append(f"next major {major}  (old {s.old_used / mb:.0f}/{s.old_capacity / mb:.0f} MB, "
                         f"promoting {(p.promotion_rate or 0) / mb:.2f} MB/s)")
        late = self.lateness()
        if late.began or late.ended:
            b, e = late.fields()["began"], late.fields()["ended"]
            assert isinstance(b, dict) and isinstance(e, dict)
            lines.append(f"learned late by: begin p50 {b['p50_ms']} ms, max {b['max_ms']} ms; "
                         f"end p50 {e['p50_ms']} ms, max {e['max_ms']} ms")
        if self.recent:
            lines.append("recent pauses:")
            for pause in reversed(self.recent):
                ttsp = "" if pause.time_to_safepoint is None else f"  ttsp {pause.time_to_safepoint * 1e3:.2f}ms"
                gc_id = f"GC({pause.gc_id})" if pause.gc_id is not None else ""
                lines.append(f"  {pause.start:10.3f}s {gc_id:<8} {pause.name} ({pause.cause}) "
                             f"{pause.duration * 1e3:.2f}ms{ttsp}")
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value * 1e3:.2f}ms"
