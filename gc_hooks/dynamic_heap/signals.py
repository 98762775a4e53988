"""Signal readers for the dynamic heap: the machine's memory (/proc/meminfo, PSI), the JVM's memory
cgroup (v1 and v2), and the JVM itself (hsperfdata counters, its CPU time in /proc).

Standard library and jvmbridge.hsperf only: PID 1 runs this in the guest.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from jvmbridge.errors import JvmError
from jvmbridge.hsperf import PerfData
from jvmbridge.proc import cgroup_folders, stat_cpu_seconds

PROC = Path("/proc")
# GC worker threads by name (comm): their CPU is GC work even when no pause runs (ZGC, Shenandoah).
# The collectors' threads, by name (/proc/PID/task/TID/comm, cut at 15 characters). ZGC's uncommitter
# counts: after a burst it gives gigabytes back, and its CPU taken for the app's made a quiet JVM look busy.
GC_THREAD_PREFIXES = ("GC Thread", "G1 ", "ZWorker", "ZDriver", "ZDirector", "ZUnmapper", "ZUncommitter",
                      "ZStat", "XWorker", "XDriver", "XDirector", "XUnmapper", "XUncommitter", "XStat",
                      "Shenandoah", "Parallel GC", "VM Thread")
GC_THREAD_RESCAN_S = 2.0  # HotSpot starts GC workers as it needs them (UseDynamicNumberOfGCThreads)
ALLOCATING = 1024 * 1024  # heap use growing by more than this in a tick means the app allocates
UNLIMITED = 1 << 60  # cgroup v1 says 9223372036854771712 for "no limit"


def meminfo(path: Path = PROC / "meminfo") -> dict[str, int]:
    """/proc/meminfo in bytes."""
    values: dict[str, int] = {}
    for line in path.read_text().splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0]) * (1024 if parts[1:2] == ["kB"] else 1)
    return values


def psi_some_avg10(path: Path = PROC / "pressure" / "memory") -> float | None:
    """The share of time (percent, last 10 s) some task stalled on memory; None without PSI."""
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("some "):
            for field in line.split()[1:]:
                key, _, value = field.partition("=")
                if key == "avg10":
                    return float(value)
    return None


@dataclass(frozen=True)
class CgroupMemory:
    """The memory cgroup a process is in: its folder and the cgroup version."""

    path: Path
    version: int  # 1 or 2
    root: Path  # the mount point: limits are looked up to here

    def limit(self) -> int | None:
        """The effective limit (the least of this cgroup's and its ancestors'), None when unlimited."""
        if self.version == 1:
            stat = _kv(self.path / "memory.stat")
            value = stat.get("hierarchical_memory_limit") or _int(self.path / "memory.limit_in_bytes")
            return value if value and value < UNLIMITED else None
        least: int | None = None
        folder = self.path
        while True:
            raw = _read(folder / "memory.max")
            if raw and raw != "max" and raw.isdigit():
                least = int(raw) if least is None else min(least, int(raw))
            if folder == self.root or folder.parent == folder:
                break
            folder = folder.parent
        return least

    def usage(self) -> int | None:
        """Memory charged to the cgroup minus inactive page cache (what the kernel cannot drop at once)."""
        if self.version == 1:
            used = _int(self.path / "memory.usage_in_bytes")
            inactive = _kv(self.path / "memory.stat").get("total_inactive_file", 0)
        else:
            used = _int(self.path / "memory.current")
            inactive = _kv(self.path / "memory.stat").get("inactive_file", 0)
        return None if used is None else max(0, used - inactive)

    def psi_some_avg10(self) -> float | None:
        return psi_some_avg10(self.path / "memory.pressure") if self.version == 2 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _int(path: Path) -> int | None:
    raw = _read(path)
    return int(raw) if raw and raw.isdigit() else None


def _kv(path: Path) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in (_read(path) or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            values[key] = int(value)
    return values


def memory_cgroup(pid: int | str = "self", proc: Path = PROC) -> CgroupMemory | None:
    """The memory cgroup of `pid`, v1 (memory controller) or v2 (unified), None when there is none."""
    for found in cgroup_folders(pid, "memory", proc):
        marker = "memory.limit_in_bytes" if found.version == 1 else "memory.current"
        if (found.path / marker).exists() or (found.version == 2 and (found.path / "memory.max").exists()):
            return CgroupMemory(found.path, found.version, found.mount)
    return None


@dataclass(frozen=True)
class JvmSample:
    """One reading of a JVM."""

    time: float  # monotonic seconds
    collector: str  # "g1", "zgc", "shenandoah", "parallel", "serial" or "unknown"
    committed: int
    used: int
    old_used: int  # old generation plus survivors: what survived collections (generational heaps)
    max_heap: int
    gc_pause_time: float  # seconds in GC pauses since start
    gc_count: int
    young_count: int  # young collections of a generational heap (G1, Parallel, Serial), else 0
    cpu_time: float  # process CPU seconds
    gc_cpu_time: float  # CPU seconds of GC threads


def collector_of(policy_name: str, collector_names: list[str]) -> str:
    """The collector from hsperfdata: sun.gc.policy.name, else the collectors' names (ZGC and
    Shenandoah publish no policy name)."""
    name = policy_name.lower()
    if "garbagefirst" in name:
        return "g1"
    if name.startswith("parscav"):
        return "parallel"
    if name.startswith("copy"):
        return "serial"
    joined = " ".join(collector_names).lower()
    if "shenandoah" in joined:
        return "shenandoah"
    if joined.startswith("z") or " z" in f" {joined}":
        return "zgc"
    if "g1" in joined:
        return "g1"
    if "parallel" in joined:
        return "parallel"
    if "serial" in joined:
        return "serial"
    return "unknown"


class JvmReader:
    """Samples one JVM: hsperfdata for the heap and GC counters, /proc for CPU time."""

    def __init__(self, pid: int, proc: Path = PROC) -> None:
        self.pid = pid
        self.proc = proc
        self.perf = PerfData.open(pid)
        self._freq = self.perf.long("sun.os.hrt.frequency", 1_000_000_000) or 1_000_000_000
        names = [self.perf.string(f"sun.gc.collector.{i}.name") for i in range(8)]
        self.collector = collector_of(self.perf.string("sun.gc.policy.name"), [n for n in names if n])
        self._gc_tids: set[str] = set()
        self._last_thread_scan = -1e9

    def close(self) -> None:
        self.perf.close()

    def sample(self) -> JvmSample:
        pd = self.perf
        committed = used = old_used = max_heap = 0
        for g in range(4):
            prefix = f"sun.gc.generation.{g}"
            if pd.get(f"{prefix}.name") is None:
                continue
            committed += pd.long(f"{prefix}.capacity")
            max_heap = max(max_heap, pd.long(f"{prefix}.maxCapacity"))
            for s in range(pd.long(f"{prefix}.spaces")):
                space_used = pd.long(f"{prefix}.space.{s}.used")
                used += space_used
                if pd.string(f"{prefix}.space.{s}.name") != "eden":
                    old_used += space_used
        if self.collector in ("parallel", "serial"):
            max_heap = sum(pd.long(f"sun.gc.generation.{g}.maxCapacity") for g in range(2))
        if self.collector == "shenandoah":
            committed = pd.long("sun.gc.generation.1.capacity") or committed
        if self.collector == "zgc":  # its counter lags (refreshed at a collection's end only)
            committed = pd.heap_file_committed() or committed
        pause = count = 0
        for i in range(8):
            if pd.get(f"sun.gc.collector.{i}.name") is None:
                continue
            pause += pd.long(f"sun.gc.collector.{i}.time")
            count += pd.long(f"sun.gc.collector.{i}.invocations")
        # collector 0 is the young collector of G1, Parallel and Serial: allocation causes each of them
        young = pd.long("sun.gc.collector.0.invocations") if self.collector in ("g1", "parallel", "serial") else 0
        total_gc_cpu = pd.get("sun.threads.total_gc_cpu_time")
        cpu, gc_cpu = self._cpu()
        if isinstance(total_gc_cpu, int) and total_gc_cpu > 0:
            gc_cpu = max(gc_cpu, total_gc_cpu / 1e9)
        return JvmSample(time=time.monotonic(), collector=self.collector, committed=committed, used=used,
                         old_used=old_used, max_heap=max_heap & ~4095, gc_pause_time=pause / self._freq,
                         gc_count=count, young_count=young, cpu_time=cpu, gc_cpu_time=gc_cpu)

    def _cpu(self) -> tuple[float, float]:
        """(process CPU seconds, GC threads' CPU seconds) from /proc/PID/stat and its tasks."""
        base = self.proc / str(self.pid)
        cpu = _stat_cpu(base / "stat")
        now = time.monotonic()
        if now - self._last_thread_scan > GC_THREAD_RESCAN_S:
            self._last_thread_scan = now
            tids = set()
            try:
                for task in (base / "task").iterdir():
                    comm = _read(task / "comm") or ""
                    if comm.startswith(GC_THREAD_PREFIXES):
                        tids.add(task.name)
            except OSError:
                pass
            self._gc_tids = tids
        gc = sum(_stat_cpu(base / "task" / tid / "stat") for tid in self._gc_tids)
        return cpu, gc


def _stat_cpu(path: Path) -> float:
    raw = _read(path)
    if not raw:
        return 0.0
    try:
        return stat_cpu_seconds(raw)
    except (IndexError, ValueError):
        return 0.0


class Window:
    """Samples of the last `seconds`, for shares of time (GC time over wall time)."""

    def __init__(self, seconds: float = 10.0) -> None:
        self.seconds = seconds
        self.samples: deque[JvmSample] = deque()

    def add(self, sample: JvmSample) -> None:
        self.samples.append(sample)
        while len(self.samples) > 2 and sample.time - self.samples[1].time >= self.seconds:
            self.samples.popleft()

    def gc_share(self, cpus: int) -> float:
        """GC pause time over wall time; for concurrent collectors (ZGC, Shenandoah) the GC threads'
        CPU over the CPU the machine has, since their cost is CPU rather than pauses."""
        if len(self.samples) < 2:
            return 0.0
        first, last = self.samples[0], self.samples[-1]
        wall = last.time - first.time
        if wall <= 0:
            return 0.0
        pause = (last.gc_pause_time - first.gc_pause_time) / wall
        if last.collector in ("zgc", "shenandoah"):
            concurrent = (last.gc_cpu_time - first.gc_cpu_time) / (wall * max(1, cpus))
            return max(pause, concurrent)
        return pause

    def young_collections(self, seconds: float) -> int:
        """Young collections in the last `seconds` of samples: the app's allocation caused them. With
        one sample, all since the JVM began: a supervisor meets most JVMs as they start, and an
        overcount costs one tick of the collector's own sizing."""
        if not self.samples:
            return 0
        last = self.samples[-1]
        if len(self.samples) == 1:
            return last.young_count
        first = next((s for s in self.samples if last.time - s.time <= seconds), last)
        return last.young_count - first.young_count

    def busy(self, quiet_cpu: float = 0.15, ours: bool = False) -> bool:
        """The app worked in the last tick: its threads (GC threads left out) used more than
        `quiet_cpu` of a core, or it allocated (the heap's use grew), or enough to cause a
        collection (`ours`: we asked for the collections of this tick, so they say nothing)."""
        if len(self.samples) < 2:
            return True
        prev, last = self.samples[-2], self.samples[-1]
        wall = last.time - prev.time
        if wall <= 0:
            return True
        app_cpu = (last.cpu_time - prev.cpu_time) - (last.gc_cpu_time - prev.gc_cpu_time)
        allocated = last.used - prev.used > ALLOCATING and last.gc_count == prev.gc_count
        # a young collection of a generational heap comes from allocation; a concurrent collector's
        # cycle may still be finishing the work of a burst that is over
        young = last.collector in ("g1", "parallel", "serial") and last.gc_count > prev.gc_count and not ours
        return app_cpu / wall > quiet_cpu or allocated or young


def peers_idle(cgroup: CgroupMemory | None, tmp: Path = Path("/tmp"), proc: Path = PROC) -> int:
    """Idle heap (committed - used) of every JVM on this machine publishing hsperfdata in `tmp`; only
    those in `cgroup` (or below it) when given, since only they share its limit."""
    total = 0
    try:
        folders = [p for p in tmp.iterdir() if p.name.startswith("hsperfdata_")]
    except OSError:
        return 0
    for folder in folders:
        try:
            files = list(folder.iterdir())
        except OSError:
            continue
        for file in files:
            if not file.name.isdigit():
                continue
            if cgroup is not None:
                theirs = memory_cgroup(file.name, proc)
                if theirs is None or not (theirs.path == cgroup.path or cgroup.path in theirs.path.parents):
                    continue
            try:
                with PerfData(file) as pd:
                    committed = used = 0
                    for g in range(4):
                        committed += pd.long(f"sun.gc.generation.{g}.capacity")
                        for s in range(pd.long(f"sun.gc.generation.{g}.spaces")):
                            used += pd.long(f"sun.gc.generation.{g}.space.{s}.used")
            except (JvmError, OSError, ValueError):
                continue
            total += max(0, committed - used)
    return total
