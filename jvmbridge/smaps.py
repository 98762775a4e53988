"""What /proc/PID/smaps says about a process's memory, and where a JVM's Java heap is in it.

Huge pages are verified, never assumed: the kernel counts, per mapping, how much of the resident
memory sits on 2 MB pages (AnonHugePages for anonymous memory, ShmemPmdMapped for ZGC's memfd heap,
Private_/Shared_Hugetlb for a hugetlbfs pool). This module reads those counters and finds the mappings
of the Java heap, so a caller can say which share of the heap is on huge pages.

Finding the heap, best first:
1. ZGC's heap is a memfd named "java_heap": its mappings carry that name.
2. `GC.heap_info` (attach; JDK 17 and later) prints the reserved range of every other collector.
3. Without attach: the run of adjacent anonymous mappings whose span matches the maximum heap size
   from hsperfdata (the heap is reserved in one piece), else the largest anonymous mapping.

Standard library only: PID 1 uses it in the guest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from jvmbridge.errors import JvmError

KB = 1024
HUGE = 2 << 20
_HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) (\S+) (\d+)\s*(.*)$")
_RANGE = re.compile(r"\[(0x[0-9a-fA-F]+),\s*(0x[0-9a-fA-F]+)(?:,\s*(0x[0-9a-fA-F]+))?\)")
_REGION = re.compile(r"region size (\d+)K")
ZGC_HEAP_NAME = "memfd:java_heap"  # JDK 17: "/memfd:java_heap (deleted)"; hugetlbfs: "java_heap.hugetlb"


@dataclass(frozen=True)
class Mapping:
    """One line of /proc/PID/maps with its smaps counters (in bytes) and VmFlags."""

    start: int
    end: int
    perms: str
    offset: int
    inode: int
    path: str
    counters: dict[str, int] = field(default_factory=dict)
    flags: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return self.end - self.start

    def get(self, name: str) -> int:
        return self.counters.get(name, 0)

    @property
    def anonymous(self) -> bool:
        return self.inode == 0 and not self.path

    @property
    def shmem_heap(self) -> bool:
        return ZGC_HEAP_NAME in self.path or "java_heap" in self.path

    @property
    def in_pool(self) -> bool:
        """Memory of the hugetlbfs pool (MAP_HUGETLB shows as /anon_hugepage)."""
        return self.hugetlb > 0 or "anon_hugepage" in self.path

    @property
    def rss(self) -> int:
        """Resident bytes, hugetlb pages included (smaps counts those apart from Rss)."""
        return self.get("Rss") + self.get("Private_Hugetlb") + self.get("Shared_Hugetlb")

    @property
    def huge(self) -> int:
        """Resident bytes on 2 MB (or larger) pages, whatever kind."""
        return (self.get("AnonHugePages") + self.get("ShmemPmdMapped") + self.get("FilePmdMapped")
                + self.get("Private_Hugetlb") + self.get("Shared_Hugetlb"))

    @property
    def hugetlb(self) -> int:
        return self.get("Private_Hugetlb") + self.get("Shared_Hugetlb")

    @property
    def committed(self) -> bool:
        """Readable or writable: the JVM committed it (reserved-only ranges are ---p)."""
        return self.perms[:2] != "--"


def parse(text: str) -> list[Mapping]:
    """Parse the text of /proc/PID/smaps (or /proc/PID/maps: then without counters)."""
    mappings: list[Mapping] = []
    current: dict[str, object] | None = None
    counters: dict[str, int] = {}
    flags: tuple[str, ...] = ()

    def close() -> None:
        if current is not None:
            mappings.append(Mapping(counters=dict(counters), flags=flags, **current))  # type: ignore[arg-type]

    for line in text.splitlines():
        header = _HEADER.match(line)
        if header:
            close()
            start, end, perms, offset, _dev, inode, path = header.groups()
            current = {"start": int(start, 16), "end": int(end, 16), "perms": perms, "offset": int(offset, 16),
                       "inode": int(inode), "path": path.strip()}
            counters = {}
            flags = ()
            continue
        key, sep, value = line.partition(":")
        if not sep or current is None:
            continue
        if key == "VmFlags":
            flags = tuple(value.split())
            continue
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            counters[key] = int(parts[0]) * KB
        elif len(parts) == 1 and parts[0].isdigit():
            counters[key] = int(parts[0])
    close()
    return mappings


def read(pid: int | str) -> list[Mapping]:
    """The mappings of process `pid` ("self" works too); JvmError when smaps cannot be read."""
    path = f"/proc/{pid}/smaps"
    try:
        with open(path) as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError) as exc:
        raise JvmError(f"no process {pid}: it has exited or never existed") from exc
    except PermissionError as exc:
        raise JvmError(f"not allowed to read {path}", hint="run as the process's user or as root") from exc
    except OSError as exc:
        raise JvmError(f"cannot read {path}: {exc.strerror}") from exc
    return parse(text)


@dataclass(frozen=True)
class HeapInfo:
    """What `GC.heap_info` tells about the heap's place: its reserved range and G1's region size."""

    start: int
    end: int
    region_size: int | None = None  # bytes; G1 only


def parse_heap_info(text: str) -> HeapInfo | None:
    """The heap's reserved range from `jcmd PID GC.heap_info` output (None for ZGC: it prints none).

    Every collector but ZGC prints its spaces as `[low, high)` or `[low, top, high)`; the heap runs
    from the lowest of these to the highest. Lines from "Metaspace" on are about class metadata.
    """
    low: int | None = None
    high: int | None = None
    region: int | None = None
    for line in text.splitlines():
        if line.strip().startswith(("Metaspace", "class space")):
            break
        m = _REGION.search(line)
        if m and region is None:
            region = int(m.group(1)) * KB
        for found in _RANGE.finditer(line):
            values = [int(v, 16) for v in found.groups() if v is not None]
            low = min(values) if low is None else min(low, *values)
            high = max(values) if high is None else max(high, *values)
    if low is None or high is None or high <= low:
        return None
    return HeapInfo(low, high, region)


def heap_info(pid: int, timeout: float = 5.0) -> HeapInfo | None:
    """Ask the JVM itself (attach, GC.heap_info); None when it cannot say (ZGC) or cannot be asked."""
    from jvmbridge.attach import attach

    try:
        return parse_heap_info(attach(pid, timeout).jcmd("GC.heap_info"))
    except (JvmError, OSError):
        return None


def in_range(mappings: Iterable[Mapping], start: int, end: int) -> list[Mapping]:
    """Mappings inside [start, end) that hold heap memory: anonymous or the memfd heap.

    CDS archives map a few file pages into the top of the heap (JDK 17's archived objects): those
    cannot be on huge pages and are not the heap's memory proper, so they are left out.
    """
    return [m for m in mappings if m.start < end and m.end > start and (m.anonymous or m.shmem_heap or m.in_pool)]


def guess_heap(mappings: Sequence[Mapping], max_heap: int | None) -> list[Mapping]:
    """The heap without asking the JVM: adjacent anonymous mappings whose span matches `max_heap`
    (reserved in one piece, committed parts rw, the rest ---p); else the largest anonymous rw one."""
    runs: list[list[Mapping]] = []
    for m in sorted(mappings, key=lambda m: m.start):
        if not (m.anonymous or m.in_pool or m.path.endswith(".jsa")):
            continue
        if runs and runs[-1][-1].end == m.start:
            runs[-1].append(m)
        else:
            runs.append([m])
    if max_heap:
        # the run may also hold neighbours (class space right after the heap): take the smallest
        # window of a run that starts or ends on a mapping edge and spans the heap's size
        best: tuple[int, list[Mapping]] | None = None
        for run in runs:
            for i in range(len(run)):
                for j in range(i, len(run)):
                    span = run[j].end - run[i].start
                    if span > max_heap + HUGE:
                        break
                    off = abs(span - max_heap)
                    if off <= HUGE and any(m.committed for m in run[i:j + 1]) and (best is None or off < best[0]):
                        best = (off, [m for m in run[i:j + 1] if m.anonymous or m.in_pool])
        if best is not None:
            return best[1]
    candidates = [m for m in mappings if m.anonymous and m.committed]
    return [max(candidates, key=lambda m: m.rss)] if candidates else []


@dataclass(frozen=True)
class HeapPages:
    """How much of a Java heap is resident, and how much of that on huge pages."""

    pid: int
    mappings: tuple[Mapping, ...]
    source: str  # how the heap was found: "memfd", "heap_info", "hsperfdata", "largest"
    region_size: int | None = None

    @property
    def rss(self) -> int:
        return sum(m.rss for m in self.mappings)

    @property
    def huge(self) -> int:
        return sum(m.huge for m in self.mappings)

    @property
    def share(self) -> float:
        """Fraction of the resident heap on huge pages (0.0 when nothing is resident)."""
        return self.huge / self.rss if self.rss else 0.0

    @property
    def kind(self) -> str:
        """"shmem" (ZGC), "hugetlb" (a pool) or "anon"."""
        if any(m.in_pool or "hugetlb" in m.path for m in self.mappings):
            return "hugetlb"
        if any(m.shmem_heap for m in self.mappings):
            return "shmem"
        return "anon"

    @property
    def advised(self) -> bool:
        """Whether the JVM asked for THP on its heap (VmFlags "hg" on a resident mapping)."""
        return any("hg" in m.flags for m in self.mappings if m.rss)

    @property
    def forbidden(self) -> bool:
        """Whether THP is forbidden on the heap (VmFlags "nh": MADV_NOHUGEPAGE)."""
        return any("nh" in m.flags for m in self.mappings if m.rss)

    @property
    def start(self) -> int:
        return min(m.start for m in self.mappings) if self.mappings else 0

    @property
    def end(self) -> int:
        return max(m.end for m in self.mappings) if self.mappings else 0

    def describe(self) -> str:
        mb = 1 << 20
        return (f"{self.huge / mb:.0f} MB of {self.rss / mb:.0f} MB resident heap on huge pages "
                f"({self.share:.0%}, {self.kind})")


def heap_pages(pid: int, info: HeapInfo | None = None, ask: bool = True,
               max_heap: int | None = None) -> HeapPages:
    """The heap of JVM `pid` and its page sizes. `info` is a known range (it does not move while the
    JVM runs); with `ask`, GC.heap_info is asked over attach when no range is known."""
    mappings = read(pid)
    shm = [m for m in mappings if m.shmem_heap]
    if shm:
        return HeapPages(pid, tuple(shm), "memfd")
    if info is None and ask:
        info = heap_info(pid)
    if info is not None:
        return HeapPages(pid, tuple(in_range(mappings, info.start, info.end)), "heap_info", info.region_size)
    if max_heap is None:
        max_heap = _hsperf_max_heap(pid)
    found = guess_heap(mappings, max_heap)
    return HeapPages(pid, tuple(found), "hsperfdata" if max_heap else "largest")


def _hsperf_max_heap(pid: int) -> int | None:
    from jvmbridge import hsperf

    try:
        with hsperf.PerfData.open(pid) as pd:
            return pd.stats().heap_max or None
    except (JvmError, OSError, ValueError):
        return None


def mapping_of(mappings: Sequence[Mapping], size: int, slack: int = 4 * HUGE) -> Mapping | None:
    """The writable mapping of `size` bytes (give or take `slack`): a VM's guest RAM in QEMU, whatever backs
    it (anonymous memory, a memfd of a boot snapshot, hugetlbfs, the snapshot's RAM file)."""
    fits = [m for m in mappings if m.perms.startswith("rw") and abs(m.size - size) <= slack]
    return max(fits, key=lambda m: m.rss) if fits else None


def guest_ram(mappings: Sequence[Mapping], at_least: int = 0) -> Mapping | None:
    """QEMU's guest RAM: its largest writable, not executable mapping (TCG's code buffer is executable),
    of `at_least` bytes; None when there is none."""
    fits = [m for m in mappings if m.perms.startswith("rw") and m.perms[2] != "x" and m.size >= at_least]
    return max(fits, key=lambda m: m.size) if fits else None
