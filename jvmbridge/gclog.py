"""Turn HotSpot unified-logging lines (-Xlog:gc,gc+phases,safepoint) into typed GC events.

One parser serves a live stream and a log file written earlier, for G1, Parallel, Serial, ZGC and
Shenandoah on JDK 17 and 25. A pause line is printed while the world is still stopped and the
safepoint line right after it, so pauses are held until that safepoint line arrives and carry its
time-to-safepoint.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from jvmbridge.errors import JvmError

PAUSE, CONCURRENT, CYCLE, SAFEPOINT, STALL = "pause", "concurrent", "cycle", "safepoint", "stall"
PAUSE_START = "pause-start"  # a pause has begun (its gc+start line); only from GcLogParser(starts=True)
KINDS = (PAUSE, CONCURRENT, CYCLE, SAFEPOINT, STALL, PAUSE_START)

# tag sets whose lines are events; other tag sets (gc+heap, gc+stats, ...) repeat or summarise them
EVENT_TAGS = {("gc",), ("gc", "start"), ("gc", "phases"), ("safepoint",)}
LEVELS = {"trace", "debug", "info", "warning", "error"}
# parenthesised words that qualify a phase rather than name its cause
MODIFIERS = {
    "normal",
    "concurrent start",
    "prepare mixed",
    "mixed",
    "major",
    "minor",
    "mark",
    "evacuation",
    "update refs",
    "outside of cycle",
    "young",
    "old",
}
CYCLE_NAMES = {"Garbage Collection", "Major Collection", "Minor Collection"}
UNITS = {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}

_GC_ID = re.compile(r"^GC\((\d+)\)\s+(.*)$")
_DURATION = re.compile(r"\s+(\d+(?:\.\d+)?)(ms|us|ns|s)$")
_SIZE = r"(\d+(?:\.\d+)?)([BKMGT])"
_HEAP = re.compile(rf"\s+{_SIZE}(?:\(\d+%\))?->{_SIZE}(?:\(\d+%\))?(?:\({_SIZE}\))?$")
_GROUP = re.compile(r"\s*\(((?:[^()]|\([^()]*\))*)\)$")
_STALL = re.compile(r"^(Allocation|Relocation) Stall \((.*)\)$")
_SAFEPOINT = re.compile(r'^Safepoint "([^"]+)"')
_NS_FIELD = re.compile(r"([A-Za-z][A-Za-z ]*?): (\d+) ns")
_GENERATION = {"Y": "young", "O": "old", "y": "young", "o": "old"}  # ZGC: y/o in minor cycles


@dataclass(frozen=True)
class GcEvent:
    """One pause, concurrent phase, collection cycle, stall or safepoint, in seconds and bytes."""

    kind: str
    name: str
    cause: str | None
    gc_id: int | None
    start: float | None  # JVM uptime at which it began, when the log has an uptime decoration
    duration: float
    heap_before: int | None = None
    heap_after: int | None = None
    heap_capacity: int | None = None
    time_to_safepoint: float | None = None
    generation: str | None = None  # ZGC's generational collector: "young" or "old"
    # when the JVM printed the line, on its System.nanoTime() clock (CLOCK_MONOTONIC, seconds): with
    # decorations `timenanos,uptimenanos`; comparable with time.monotonic() of a process on the same host
    logged_at: float | None = None

    @property
    def end(self) -> float | None:
        return None if self.start is None else self.start + self.duration

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LogLine:
    uptime: float | None  # seconds
    nanotime: float | None  # the JVM's System.nanoTime() in seconds (CLOCK_MONOTONIC), from `timenanos`
    level: str | None
    tags: tuple[str, ...] | None
    message: str


def split_line(line: str) -> LogLine:
    """Separate the [decorations] of a unified-logging line from its message."""
    uptime: float | None = None
    nanotime: float | None = None
    nanos: list[int] = []
    level: str | None = None
    tags: tuple[str, ...] | None = None
    rest = line.rstrip("\r\n")
    while rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            break
        token = rest[1:end].strip()
        rest = rest[end + 1 :]
        if token in LEVELS:
            level = token
        elif token.endswith("ns") and token[:-2].isdigit():
            value = int(token[:-2])
            nanos.append(value)
            if len(nanos) == 2:  # timenanos comes before uptimenanos (HotSpot's fixed order)
                nanotime, uptime = nanos[0] / 1e9, value / 1e9
            elif value < 10**15:  # larger is a clock (timenanos), not uptime
                uptime = value / 1e9
        elif token.endswith("ms") and token[:-2].isdigit():
            value = int(token[:-2])
            if value < 10**12:
                uptime = value / 1e3
        elif token.endswith("s") and re.fullmatch(r"\d+\.\d+s", token):
            uptime = float(token[:-1])
        elif re.fullmatch(r"[a-z0-9]+(,[a-z0-9]+)*", token) and not token.isdigit():
            tags = tuple(token.split(","))
    return LogLine(uptime, nanotime, level, tags, rest.lstrip(" "))


def _size(number: str, unit: str) -> int:
    return int(float(number) * UNITS[unit])


@dataclass
class _Cycle:
    first_seen: float | None = None
    cause: str | None = None


@dataclass(frozen=True)
class _Phase:
    """What a `GC(N) ...` line says after its id: the phase, its cause, duration and heap sizes."""

    base: str  # the phase without its parenthesised groups
    name: str  # the phase with its modifiers, e.g. "Pause Young (Normal)"
    cause: str | None
    generation: str | None
    duration: float | None
    before: int | None
    after: int | None
    capacity: int | None


def _parse_phase(text: str) -> _Phase:
    """Peel a GC line from the right: duration, heap sizes, then the parenthesised groups."""
    generation = None
    if len(text) > 3 and text[1:3] == ": " and text[0] in _GENERATION:
        generation = _GENERATION[text[0]]
        text = text[3:]
    duration = None
    dm = _DURATION.search(text)
    if dm:
        duration = float(dm.group(1)) * TIME_UNITS[dm.group(2)]
        text = text[: dm.start()]
    before = after = capacity = None
    hm = _HEAP.search(text)
    if hm:
        before = _size(hm.group(1), hm.group(2))
        after = _size(hm.group(3), hm.group(4))
        if hm.group(5):
            capacity = _size(hm.group(5), hm.group(6))
        text = text[: hm.start()]
    groups: list[str] = []
    while True:
        gm = _GROUP.search(text)
        if not gm or gm.start() == 0:
            break
        groups.insert(0, gm.group(1))
        text = text[: gm.start()]
    base = text.strip()
    cause = None
    modifiers = []
    for group in groups:
        # JDK 25's G1 adds "(Evacuation Failure: Allocation)" after the cause: a qualifier, not a cause
        if (group.lower() in MODIFIERS or group[:1].islower() or group[:1].isdigit()
                or group.startswith("Evacuation Failure")):
            modifiers.append(group)
        else:
            cause = group
    name = base + "".join(f" ({m})" for m in modifiers)
    return _Phase(base, name, cause, generation, duration, before, after, capacity)


def _phase_kind(base: str) -> str | None:
    """PAUSE, CONCURRENT or CYCLE for a measured phase; None for sub-phases, which are not events."""
    if base.startswith("Pause"):
        return PAUSE
    if base in ("Concurrent Mark Cycle", "Concurrent Undo Cycle"):
        return CYCLE
    if base.startswith("Concurrent"):
        return CONCURRENT
    return None


class GcLogParser:
    """Feed lines, get events. `hold_pauses`: keep pauses until their safepoint line gives TTSP.
    `starts`: also report the start of each pause (PAUSE_START, from gc+start lines) as soon as it is read.
    """

    def __init__(self, hold_pauses: bool = True, starts: bool = False) -> None:
        self.hold_pauses = hold_pauses
        self.starts = starts
        self.saw_safepoints = False  # the log has safepoint lines: every pause gets one
        self._queue: list[GcEvent] = []
        self._cycles: dict[int, _Cycle] = {}
        self._trigger: str | None = None
        self._last_id = -1

    def feed(self, line: str) -> list[GcEvent]:
        """Parse one line; return the events it completes (possibly none)."""
        parsed = split_line(line)
        if parsed.tags is not None and parsed.tags not in EVENT_TAGS:
            return []
        msg = parsed.message
        if msg.startswith("Safepoint "):
            return self._safepoint(parsed)
        event = self._gc(parsed)
        if event is None:
            return []
        if parsed.nanotime is not None:
            event = dataclasses.replace(event, logged_at=parsed.nanotime)
        if event.kind == PAUSE_START:
            return [event]
        if event.kind == PAUSE and self.hold_pauses:
            self._queue.append(event)
            return []
        if self._queue:
            self._queue.append(event)
            return []
        return [event]

    @property
    def holding(self) -> bool:
        """Whether events wait for a safepoint line (see `flush`)."""
        return bool(self._queue)

    def flush(self) -> list[GcEvent]:
        """Release held events (at the end of a file, or when a stream goes quiet)."""
        out, self._queue = self._queue, []
        return out

    def _safepoint(self, line: LogLine) -> list[GcEvent]:
        match = _SAFEPOINT.match(line.message)
        if not match:
            return []
        self.saw_safepoints = True
        fields = {k.strip().lower(): int(v) for k, v in _NS_FIELD.findall(line.message)}
        total = fields.get("total", 0) / 1e9
        ttsp = fields.get("reaching safepoint")
        start = None if line.uptime is None else round(line.uptime - total, 9)
        event = GcEvent(
            SAFEPOINT,
            match.group(1),
            None,
            None,
            start,
            total,
            time_to_safepoint=None if ttsp is None else ttsp / 1e9,
            logged_at=line.nanotime,
        )
        released = []
        for held in self._queue:
            if held.kind == PAUSE and held.time_to_safepoint is None and _inside(held, event):
                held = dataclasses.replace(held, time_to_safepoint=event.time_to_safepoint)
            released.append(held)
        self._queue = []
        return [*released, event]

    def _gc(self, line: LogLine) -> GcEvent | None:
        msg = line.message
        match = _GC_ID.match(msg)
        if not match:
            if msg.startswith("Trigger: "):
                self._trigger = msg[len("Trigger: ") :].strip()
                return None
            return self._stall(line)
        gc_id = int(match.group(1))
        cycle = self._cycle(gc_id, line)
        phase = _parse_phase(match.group(2).strip())
        if phase.cause and cycle.cause is None and (phase.base in CYCLE_NAMES or phase.base.startswith("Pause")):
            cycle.cause = phase.cause
        cause = phase.cause or cycle.cause
        if phase.base in CYCLE_NAMES:
            return self._whole_cycle(phase, cause, cycle, gc_id, line)
        if phase.duration is None:
            if self.starts and phase.base.startswith("Pause") and line.tags in (None, ("gc", "start")):
                return GcEvent(PAUSE_START, phase.name, cause, gc_id, line.uptime, 0.0, generation=phase.generation)
            return None  # a start line (gc+start) or a line without a measure
        kind = _phase_kind(phase.base)
        if kind is None:
            return None  # sub-phases (G1 "Evacuate Collection Set:", ZGC "Young Generation", ...)
        return self._event(kind, phase.name, cause, gc_id, line, phase.duration, phase.before, phase.after,
                           phase.capacity, phase.generation)

    def _cycle(self, gc_id: int, line: LogLine) -> _Cycle:
        """The cycle of GC(gc_id); a new one takes the pending trigger as its cause and old ones are dropped."""
        cycle = self._cycles.get(gc_id)
        if cycle is None:
            cycle = self._cycles[gc_id] = _Cycle(first_seen=line.uptime, cause=self._trigger)
            self._trigger = None
            self._last_id = max(self._last_id, gc_id)
            for old in [i for i in self._cycles if i < gc_id - 16]:
                del self._cycles[old]
        return cycle

    def _whole_cycle(
        self, phase: _Phase, cause: str | None, cycle: _Cycle, gc_id: int, line: LogLine
    ) -> GcEvent | None:
        """A line naming a whole collection: its start (remembered) or its end (a CYCLE event)."""
        duration = phase.duration
        if duration is None and phase.before is None:
            if line.uptime is not None and (cycle.first_seen is None or line.uptime < cycle.first_seen):
                cycle.first_seen = line.uptime
            return None  # the cycle's start line
        if duration is None:  # ZGC on 17 prints no duration: measure from the first line of the cycle
            if line.uptime is None or cycle.first_seen is None:
                return None
            duration = line.uptime - cycle.first_seen
        return self._event(CYCLE, phase.name, cause, gc_id, line, duration, phase.before, phase.after,
                           phase.capacity, phase.generation)

    def _stall(self, line: LogLine) -> GcEvent | None:
        dm = _DURATION.search(line.message)
        if not dm:
            return None
        sm = _STALL.match(line.message[: dm.start()])
        if not sm:
            return None
        duration = float(dm.group(1)) * TIME_UNITS[dm.group(2)]
        start = None if line.uptime is None else round(line.uptime - duration, 9)
        return GcEvent(STALL, f"{sm.group(1)} Stall", sm.group(2), None, start, duration)

    @staticmethod
    def _event(
        kind: str,
        name: str,
        cause: str | None,
        gc_id: int,
        line: LogLine,
        duration: float,
        before: int | None,
        after: int | None,
        capacity: int | None,
        generation: str | None,
    ) -> GcEvent:
        start = None if line.uptime is None else round(line.uptime - duration, 9)
        return GcEvent(
            kind, name, cause, gc_id, start, round(duration, 9), before, after, capacity, None, generation
        )


def _inside(pause: GcEvent, safepoint: GcEvent) -> bool:
    """Could `pause` have been logged during `safepoint`? False only when it began clearly later.

    The slack covers millisecond decorations and the VM thread's work between the two lines.
    """
    if pause.end is None or safepoint.start is None:
        return True
    return safepoint.start <= pause.end + 5e-3


def parse_lines(lines: Iterable[str], hold_pauses: bool = True) -> Iterator[GcEvent]:
    parser = GcLogParser(hold_pauses)
    for line in lines:
        yield from parser.feed(line)
    yield from parser.flush()


def parse_file(path: Path | str) -> list[GcEvent]:
    """Events of a GC log written earlier (any decorations; needs -Xlog:gc, better with safepoint)."""
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise JvmError(f"cannot read GC log {path}: {exc.strerror}") from exc
    lines = text.splitlines()
    hold = any('Safepoint "' in line for line in lines)
    return list(parse_lines(lines, hold_pauses=hold))
