"""Read a JVM's hsperfdata counters (what jstat reads) straight from the memory-mapped file.

The JVM publishes its counters in /tmp/hsperfdata_<user>/<pid> and updates them in place. Mapping
that file costs nothing to the JVM and, once the directory of counters is parsed, a read is a few
struct unpacks: cheap enough to sample many times a second.
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from jvmbridge.errors import JvmError
from jvmbridge.heapfile import HeapFile
from jvmbridge.proc import ProcessInfo, target

MAGIC = b"\xca\xfe\xc0\xc0"
PROLOGUE = struct.Struct("4sBBBBiiqii")  # magic, order, major, minor, accessible, used, overflow, mod, off, n
ENTRY = struct.Struct("iiiBBBBi")  # length, name_offset, vector_length, type, flags, units, variability, data
UNITS = {1: "none", 2: "bytes", 3: "ticks", 4: "events", 5: "string", 6: "hertz"}

Value = int | str


@dataclass(frozen=True)
class Counter:
    """Where one counter lives in the file and what it measures."""

    name: str
    offset: int
    kind: str  # "long" or "string"
    length: int  # bytes of a string counter
    units: str
    variable: bool


def find_file(tgt: ProcessInfo) -> Path | None:
    """The hsperfdata file of `tgt`, looked up in the target's own /tmp (any user folder)."""
    tmp = tgt.tmp
    try:
        folders = [p for p in tmp.iterdir() if p.name.startswith("hsperfdata_")]
    except OSError:
        return None
    candidates = [f / str(tgt.nspid) for f in folders]
    found = [c for c in candidates if c.is_file()]
    if len(found) > 1:
        owned = [c for c in found if c.stat().st_uid == tgt.uid]
        found = owned or found
    return found[0] if found else None


class PerfData:
    """A mapped hsperfdata file: counters by name, re-indexed only when the JVM adds some."""

    def __init__(self, path: Path, pid: int | None = None) -> None:
        self.path = Path(path)
        self.pid = pid
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError as exc:
            raise JvmError(f"no hsperfdata file {self.path}: the JVM has exited") from exc
        except OSError as exc:
            raise JvmError(
                f"cannot open {self.path}: {exc.strerror}", hint="run as the JVM's user or root"
            ) from exc
        try:
            size = os.fstat(fd).st_size
            if size < PROLOGUE.size:
                raise JvmError(f"{self.path} is not hsperfdata: {size} bytes")
            self._map = mmap.mmap(fd, size, prot=mmap.PROT_READ)
        finally:
            os.close(fd)
        if self._map[:4] != MAGIC:
            self._map.close()
            raise JvmError(f"{self.path} is not hsperfdata (bad magic)")
        self._order = "<" if self._map[4] == 1 else ">"
        self._prologue = struct.Struct(self._order + PROLOGUE.format)
        self._entry = struct.Struct(self._order + ENTRY.format)
        self._long = struct.Struct(self._order + "q")
        self.major = self._map[5]
        self.minor = self._map[6]
        self._indexed = -1
        self._counters: dict[str, Counter] = {}
        self._heap_file: HeapFile | None = None

    @classmethod
    def open(cls, pid: int) -> PerfData:
        """Map the counters of JVM `pid`; JvmError naming why when there are none."""
        tgt = target(pid)
        path = find_file(tgt)
        if path is None:
            hint = "it may run with -XX:-UsePerfData or -XX:+PerfDisableSharedMem, or not be a JVM"
            raise JvmError(f"process {pid} ({tgt.name}) publishes no hsperfdata in {tgt.tmp}", hint=hint)
        return cls(path, pid)

    def close(self) -> None:
        self._map.close()

    def heap_file_committed(self) -> int | None:
        """The committed heap from the heap's file (ZGC's), exact where the counters lag; None when the
        JVM has no heap file or it cannot be read from here. Looked for again until found."""
        if self._heap_file is None and self.pid is not None:
            self._heap_file = HeapFile.find(self.pid)
        return None if self._heap_file is None else self._heap_file.committed()

    def __enter__(self) -> PerfData:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _header(self) -> tuple[int, int, int]:
        _, _, _, _, accessible, used, _, _, entry_offset, num_entries = self._prologue.unpack_from(
            self._map, 0
        )
        return accessible, entry_offset, num_entries

    def _index(self) -> dict[str, Counter]:
        accessible, offset, count = self._header()
        if count == self._indexed:
            return self._counters
        if not accessible:
            raise JvmError(f"{self.path} is not ready yet (the JVM is still starting)", hint="try again")
        counters: dict[str, Counter] = {}
        mm = self._map
        size = len(mm)
        for _ in range(count):
            if offset + self._entry.size > size:
                break
            length, name_off, vlen, dtype, _flags, units, variability, data_off = self._entry.unpack_from(
                mm, offset
            )
            if length <= 0:
                break
            name_start = offset + name_off
            name_end = mm.find(b"\0", name_start, offset + length)
            name = mm[name_start:name_end].decode("ascii", errors="replace")
            if vlen == 0 and dtype == ord("J"):
                kind = "long"
            elif vlen > 0 and dtype == ord("B"):
                kind = "string"
            else:
                kind = "other"
            counters[name] = Counter(
                name=name,
                offset=offset + data_off,
                kind=kind,
                length=vlen,
                units=UNITS.get(units, str(units)),
                variable=variability != 1,
            )
            offset += length
        self._counters = counters
        self._indexed = count
        return counters

    def counters(self) -> dict[str, Counter]:
        return dict(self._index())

    def _value(self, c: Counter) -> Value:
        if c.kind == "long":
            return int(self._long.unpack_from(self._map, c.offset)[0])
        if c.kind == "string":
            raw = self._map[c.offset : c.offset + c.length]
            return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")
        return ""

    def get(self, name: str, default: Value | None = None) -> Value | None:
        c = self._index().get(name)
        return default if c is None else self._value(c)

    def long(self, name: str, default: int = 0) -> int:
        value = self.get(name)
        return value if isinstance(value, int) else default

    def string(self, name: str, default: str = "") -> str:
        value = self.get(name)
        return value if isinstance(value, str) else default

    def snapshot(self, prefix: str = "") -> dict[str, Value]:
        """Every counter (or those under `prefix`) with its current value."""
        return {n: self._value(c) for n, c in self._index().items() if n.startswith(prefix)}

    def __iter__(self) -> Iterator[str]:
        return iter(self._index())

    def stats(self) -> JvmStats:
        return read_stats(self)


@dataclass(frozen=True)
class Space:
    name: str
    capacity: int  # bytes committed
    used: int
    max_capacity: int


@dataclass(frozen=True)
class Generation:
    name: str
    capacity: int
    max_capacity: int
    spaces: list[Space] = field(default_factory=list)

    @property
    def used(self) -> int:
        return sum(s.used for s in self.spaces)


@dataclass(frozen=True)
class Collector:
    name: str
    invocations: int
    time: float  # seconds accumulated


@dataclass(frozen=True)
class JvmStats:
    """One consistent-enough sample of the counters jstat -gc and -gcutil show."""

    pid: int | None
    uptime: float  # seconds since the JVM started
    generations: list[Generation]
    collectors: list[Collector]
    metaspace_capacity: int
    metaspace_used: int
    class_space_capacity: int
    class_space_used: int
    safepoints: int
    safepoint_time: float  # seconds spent at safepoints
    safepoint_sync_time: float  # seconds spent reaching them
    attachable: bool
    file_committed: int | None = None  # ZGC: the committed heap from its heap file (see heapfile)

    @property
    def heap_capacity(self) -> int:
        if self.file_committed is not None:
            return self.file_committed
        return sum(g.capacity for g in self.generations)

    @property
    def heap_used(self) -> int:
        return sum(g.used for g in self.generations)

    @property
    def heap_max(self) -> int:
        """G1, ZGC and Shenandoah give every generation the whole heap as maximum; others split it."""
        maxima = [g.max_capacity for g in self.generations if g.max_capacity > 0]
        if maxima and max(maxima) - min(maxima) <= max(maxima) // 100:
            return max(maxima) & ~4095  # G1 adds a few bytes of survivor bookkeeping; heaps are page-aligned
        return sum(maxima)

    def space(self, generation: int, space: int) -> Space:
        return self.generations[generation].spaces[space]


def read_stats(pd: PerfData) -> JvmStats:
    """Typed view of the GC counters; times converted from ticks with sun.os.hrt.frequency."""
    freq = pd.long("sun.os.hrt.frequency", 1_000_000_000) or 1_000_000_000
    generations = []
    # probe the names: sun.gc.policy.generations and .collectors are not always right, and numbers can
    # be skipped (JDK 17's ZGC publishes generation 1 and collector 2 only)
    for g in range(8):
        prefix = f"sun.gc.generation.{g}"
        if pd.get(f"{prefix}.name") is None:
            continue
        spaces = []
        for s in range(pd.long(f"{prefix}.spaces")):
            sp = f"{prefix}.space.{s}"
            spaces.append(
                Space(
                    name=pd.string(f"{sp}.name"),
                    capacity=pd.long(f"{sp}.capacity"),
                    used=pd.long(f"{sp}.used"),
                    max_capacity=pd.long(f"{sp}.maxCapacity"),
                )
            )
        generations.append(
            Generation(
                name=pd.string(f"{prefix}.name"),
                capacity=pd.long(f"{prefix}.capacity"),
                max_capacity=pd.long(f"{prefix}.maxCapacity"),
                spaces=spaces,
            )
        )
    collectors = []
    for i in range(8):
        prefix = f"sun.gc.collector.{i}"
        if pd.get(f"{prefix}.name") is None:
            continue
        collectors.append(
            Collector(
                name=pd.string(f"{prefix}.name"),
                invocations=pd.long(f"{prefix}.invocations"),
                time=pd.long(f"{prefix}.time") / freq,
            )
        )
    caps = pd.string("sun.rt.jvmCapabilities")
    began = pd.long("sun.rt.createVmBeginTime")  # ms since the epoch
    # sun.os.hrt.ticks is only refreshed by a periodic sampler that newer JDKs no longer run
    uptime = max(pd.long("sun.os.hrt.ticks") / freq, time.time() - began / 1e3 if began else 0.0)
    return JvmStats(
        pid=pd.pid,
        uptime=uptime,
        generations=generations,
        collectors=collectors,
        metaspace_capacity=pd.long("sun.gc.metaspace.capacity"),
        metaspace_used=pd.long("sun.gc.metaspace.used"),
        class_space_capacity=pd.long("sun.gc.compressedclassspace.capacity"),
        class_space_used=pd.long("sun.gc.compressedclassspace.used"),
        safepoints=pd.long("sun.rt.safepoints"),
        safepoint_time=pd.long("sun.rt.safepointTime") / freq,
        safepoint_sync_time=pd.long("sun.rt.safepointSyncTime") / freq,
        attachable=caps[:1] == "1" if caps else True,
        file_committed=pd.heap_file_committed() if any(c.name.startswith("Z") for c in collectors) else None,
    )


def attachable(pid: int) -> bool | None:
    """What the JVM says about its attach listener (sun.rt.jvmCapabilities), None when unknown."""
    try:
        with PerfData.open(pid) as pd:
            caps = pd.string("sun.rt.jvmCapabilities")
    except JvmError:
        return None
    return caps[:1] == "1" if caps else None
