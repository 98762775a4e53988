"""What one run says about itself: its GC log, its output and its exit (pure: text in, figures out).

The app's own figure is any line of its stdout of the form `RESULT name=value` (several name=value
pairs may share a line; value a plain number): `RESULT ops_per_s=123456`, `RESULT p99_ms=1.8`.
Names ending in `_per_s` are taken as higher-is-better, all others as lower-is-better.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from gc_hooks.experiment.stats import percentile
from jvmbridge.gclog import CYCLE, PAUSE, STALL, GcEvent, parse_lines, split_line

OK, OOM, CRASH, TIMEOUT, FAILED, ERROR = "ok", "oom", "crash", "timeout", "failed", "error"
INTERRUPTED = "interrupted"
OUTCOMES = (OK, OOM, CRASH, TIMEOUT, FAILED, ERROR, INTERRUPTED)
EXIT_OSV_FAILURE = 125

_RESULT_LINE = re.compile(r"^RESULT\s+(.*)$")
_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)=([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
_SIZE = {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
_USING = re.compile(r"^Using (?:The )?(.+?)(?: Garbage Collector)?$")
# the heap summary printed at exit (JDK 17; JDK 25 prints none at gc+heap+exit=info)
_EXIT_TOTAL = re.compile(r"^ ?(?:garbage-first heap|PSYoungGen|ParOldGen|def new generation|tenured generation)"
                         r"\s+total (\d+)([KMG])")
_EXIT_CAPACITY = re.compile(r"ZHeap\s+used \d+[KMG], capacity (\d+)([KMG])")
_EXIT_COMMITTED = re.compile(r"(\d+)([KMG]) committed")


def app_results(stdout: str) -> dict[str, float]:
    """The app's `RESULT name=value` figures (the last value of a name wins)."""
    found: dict[str, float] = {}
    for line in stdout.splitlines():
        m = _RESULT_LINE.match(line.strip())
        if m:
            for name, value in _PAIR.findall(m.group(1)):
                found[name] = float(value)
    return found


def higher_is_better(name: str) -> bool:
    return name.endswith("_per_s") or name in ("ops", "throughput", "score")


def classify(status: int | None, stderr: str, timed_out: bool) -> tuple[str, str]:
    """(outcome, why) of a run from its exit status and stderr; why is "" for a clean run."""
    lines = [x.strip() for x in stderr.splitlines() if x.strip()]

    def first(*needles: str) -> str:
        return next((x for x in lines if any(n in x for n in needles)), "")

    oom = first("OutOfMemoryError", "insufficient memory for the Java Runtime", "Out of Memory Error",
                "Too small maximum heap", "Too small initial heap")
    if timed_out or (status == EXIT_OSV_FAILURE and first("--timeout")):
        return TIMEOUT, first("--timeout") or "stopped at the time limit"
    if oom:
        return OOM, oom[:200]
    if status == 0:
        return OK, ""
    if status is None:
        return ERROR, "no exit status"
    fatal = first("A fatal error has been detected", "SIGSEGV", "SIGBUS", "Internal Error")
    if status > 128 and status != EXIT_OSV_FAILURE or fatal:
        return CRASH, (fatal or f"killed by signal {status - 128}")[:200]
    if status == EXIT_OSV_FAILURE:
        return ERROR, (first("osv-java: error:") or "osv-java failed (exit 125)")[:200]
    return FAILED, (first("Exception", "Error", "error") or f"exit status {status}")[:200]


@dataclass
class GcSummary:
    """The figures of one run's GC log."""

    collector: str | None = None
    pauses: int = 0
    pause_total_ms: float = 0.0
    pause_p50_ms: float | None = None
    pause_p99_ms: float | None = None
    pause_max_ms: float | None = None
    stalls: int = 0
    stall_total_ms: float = 0.0
    # ZGC's pauses are tiny, but a thread that allocates faster than it collects stalls: for latency,
    # pauses and stalls together are what the app waits on
    stop_p99_ms: float | None = None
    stop_max_ms: float | None = None
    cycles: int = 0
    uptime_s: float | None = None  # the JVM's uptime at its last log line
    gc_share_pct: float | None = None  # pause time / uptime
    heap_committed_mb: float | None = None  # the largest heap capacity the log shows
    pause_ms: list[float] = field(default_factory=list)
    stall_ms: list[float] = field(default_factory=list)
    heap_timeline: list[tuple[float, float, float | None]] = field(default_factory=list)  # (s, used MB, capacity MB)

    def figures(self) -> dict[str, float | None]:
        """The scalar figures, as reported per run."""
        return {"pauses": float(self.pauses), "pause_total_ms": self.pause_total_ms,
                "pause_p50_ms": self.pause_p50_ms, "pause_p99_ms": self.pause_p99_ms,
                "pause_max_ms": self.pause_max_ms, "gc_share_pct": self.gc_share_pct,
                "stalls": float(self.stalls), "stall_total_ms": self.stall_total_ms,
                "stop_p99_ms": self.stop_p99_ms, "stop_max_ms": self.stop_max_ms,
                "heap_committed_mb": self.heap_committed_mb}


def exit_heap_committed(lines: Sequence[str]) -> int | None:
    """Bytes of heap committed at exit, from the gc+heap+exit summary, when the JVM printed one."""
    total = 0
    for raw in lines:
        line = split_line(raw)
        if line.tags != ("gc", "heap", "exit"):
            continue
        msg = line.message if line.message.startswith(" ") else " " + line.message
        for pattern in (_EXIT_TOTAL, _EXIT_CAPACITY, _EXIT_COMMITTED):
            m = pattern.search(msg) if pattern is not _EXIT_TOTAL else pattern.match(msg)
            if m:
                total += int(m.group(1)) * _SIZE[m.group(2)]
                break
    return total or None


def summarize(text: str) -> GcSummary:
    """Pauses, stalls, share of time in pauses and committed heap of one GC log (`--gc-log` output)."""
    lines = text.splitlines()
    hold = any('Safepoint "' in line for line in lines)
    events: list[GcEvent] = list(parse_lines(lines, hold_pauses=hold))
    summary = GcSummary()
    uptimes = []
    for raw in lines:
        line = split_line(raw)
        if line.uptime is not None:
            uptimes.append(line.uptime)
        if summary.collector is None and line.tags == ("gc",):
            m = _USING.match(line.message)
            if m:
                summary.collector = m.group(1)
    pauses = [e.duration * 1e3 for e in events if e.kind == PAUSE]
    summary.pause_ms = pauses
    summary.pauses = len(pauses)
    summary.pause_total_ms = sum(pauses)
    if pauses:
        summary.pause_p50_ms = percentile(pauses, 0.50)
        summary.pause_p99_ms = percentile(pauses, 0.99)
        summary.pause_max_ms = max(pauses)
    stalls = [e.duration * 1e3 for e in events if e.kind == STALL]
    summary.stall_ms = stalls
    summary.stalls, summary.stall_total_ms = len(stalls), sum(stalls)
    if pauses or stalls:
        summary.stop_p99_ms = percentile(pauses + stalls, 0.99)
        summary.stop_max_ms = max(pauses + stalls)
    summary.cycles = len({e.gc_id for e in events if e.gc_id is not None and e.kind in (PAUSE, CYCLE)})
    if uptimes:
        summary.uptime_s = max(uptimes)
        if summary.uptime_s > 0:
            summary.gc_share_pct = 100 * summary.pause_total_ms / 1e3 / summary.uptime_s
    capacities = [e.heap_capacity for e in events if e.heap_capacity]
    at_exit = exit_heap_committed(lines)
    if capacities or at_exit:
        summary.heap_committed_mb = max([*capacities, at_exit or 0]) / (1 << 20)
    for e in events:
        if e.heap_after is not None and e.end is not None:
            summary.heap_timeline.append((e.end, e.heap_after / (1 << 20),
                                          None if e.heap_capacity is None else e.heap_capacity / (1 << 20)))
    return summary
