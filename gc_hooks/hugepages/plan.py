"""The huge-pages planner: a pure function from a run's facts to what each place must do.

Modes (`--hugepages`):
- auto (default): THP. Never a hugetlbfs pool when the heap is dynamic: pool pages cannot be given
  back, so a pool and a heap that shrinks for the machine defeat each other.
- thp: `-XX:+UseTransparentHugePages`; the kernel set to `madvise` (only what the JVM advises, the
  heap, gets 2 MB pages) with direct compaction for it; ZGC's memfd heap also needs `shmem_enabled`
  = `advise`. On a host whose sysfs we do not own (process, attach) the supervisor collapses what the
  kernel did not give (external MADV_COLLAPSE ignores the sysfs mode).
- pool: `-XX:+UseLargePages` on a hugetlbfs pool sized for the heap (`vm.nr_hugepages`); in a VM, the
  guest's RAM on the host's hugetlbfs too when the host has a pool that fits.
- off: nothing on huge pages (the guest's THP set to `never`).

G1 gets 2 MB regions (-XX:G1HeapRegionSize=2m) when its own choice would be 1 MB (heaps below 4 GB):
uncommitting a 1 MB region splits a huge page. Nothing the user set is overridden.

No I/O here: `KernelPages` is read by the caller (`system.read_kernel`), the planner only decides.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass, field

from gc_hooks.seam import RAM_MB, Machine, user_sets

MODES = ("auto", "thp", "pool", "off")
THP = "/sys/kernel/mm/transparent_hugepage"
THP_ENABLED = f"{THP}/enabled"
THP_DEFRAG = f"{THP}/defrag"
THP_SHMEM = f"{THP}/shmem_enabled"
NR_HUGEPAGES = "/proc/sys/vm/nr_hugepages"
HUGE_MB = 2
G1_AUTO_2M_FROM_MB = 4096  # G1 picks heap/2048 rounded down to a power of two, at least 1 MB
POOL_CODE_PAGES = 120  # the code cache (ReservedCodeCacheSize 240 MB) goes to the pool too, reserved whole
POOL_SLACK_PAGES = 8  # the JVM rounds the heap up and aligns it: a little more than the heap
RUNTIME_IMAGE_MB = 128  # QEMU's RAM is the memory asked for plus the runtime image's range (about 50-100 MB)
POOL_MAX_FRACTION = 0.8  # a pool larger than this share of the machine starves everything else
SHMEM_OK = ("advise", "always", "within_size", "force")
PAGE_FLAGS = ("-XX:+UseTransparentHugePages", "-XX:-UseTransparentHugePages", "-XX:+UseLargePages",
              "-XX:-UseLargePages", "-XX:LargePageSizeInBytes=")
COLLECTORS = {"-XX:+UseG1GC": "G1", "-XX:+UseZGC": "Z", "-XX:+UseShenandoahGC": "Shenandoah",
              "-XX:+UseParallelGC": "Parallel", "-XX:+UseSerialGC": "Serial", "-XX:+UseEpsilonGC": "Epsilon"}


@dataclass(frozen=True)
class KernelPages:
    """What the kernel offers where the JVM will run (the host for process/attach, the host's
    hugetlbfs for a VM's RAM). Unknown fields are empty."""

    thp_enabled: str = ""  # the bracketed word of .../transparent_hugepage/enabled
    shmem_enabled: str = ""
    pool_free_pages: int = 0  # HugePages_Free (2 MB pages)
    hugetlbfs: str = ""  # a hugetlbfs mount point with the default page size, "" if none


@dataclass(frozen=True)
class Plan:
    """What a run gets: `chosen` is thp, pool or off; `why` says why, in a line a user can read."""

    mode: str
    chosen: str
    why: str
    collector: str
    heap_mb: int | None
    jvm_options: tuple[str, ...] = ()
    guest_settings: dict[str, str] = field(default_factory=dict)
    qemu_args: tuple[str, ...] = ()
    heap_kind: str = "anon"  # where the heap's huge pages show: anon, shmem (ZGC) or hugetlb (pool)
    pool_pages: int = 0
    collapse: bool = False  # the supervisor collapses what the kernel left on 4 KB pages
    notes: tuple[str, ...] = ()

    def settings(self) -> dict[str, object]:
        """JSON-safe settings for the supervisor (SupervisorSpec.settings)."""
        return {"mode": self.chosen, "collapse": self.collapse, "heap_kind": self.heap_kind,
                "collector": self.collector, "pool_pages": self.pool_pages, "asked": self.mode, "why": self.why,
                "notes": list(self.notes)}


def parse_size(text: str) -> int | None:
    """Bytes of a HotSpot size ("512m", "2G", "1048576"); None when it is not one."""
    m = re.fullmatch(r"(\d+)([kKmMgGtT]?)", text.strip())
    if not m:
        return None
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2).lower()]
    return int(m.group(1)) * scale


def collector(machine: Machine) -> str:
    """The collector the JVM will use: the user's last -XX:+Use...GC, else HotSpot's ergonomics
    (G1 on a "server class" machine, 2 CPUs and 1792 MB or more; Serial below)."""
    chosen = ""
    for option in machine.user_jvm_options:
        chosen = COLLECTORS.get(option, chosen)
    if chosen:
        return chosen
    small = (machine.cpus is not None and machine.cpus < 2) or (
        machine.memory_mb is not None and machine.memory_mb < 1792)
    return "Serial" if small else "G1"


def heap_mb(machine: Machine) -> int | None:
    """The maximum heap the JVM will take: the user's -Xmx, else a quarter of the memory (HotSpot's
    MaxRAMPercentage default, or the user's own percentage), else unknown."""
    size: int | None = None
    percent = 25.0
    for option in machine.user_jvm_options:
        if option.startswith("-Xmx"):
            size = parse_size(option[4:]) or size
        elif option.startswith("-XX:MaxHeapSize="):
            size = parse_size(option.split("=", 1)[1]) or size
        elif option.startswith("-XX:MaxRAMPercentage="):
            with contextlib.suppress(ValueError):
                percent = float(option.split("=", 1)[1])
    if size is not None:
        return math.ceil(size / (1 << 20))
    if machine.memory_mb is not None:
        return int(machine.memory_mb * percent / 100)
    return None


def region_options(machine: Machine, gc: str, heap: int | None) -> list[str]:
    """-XX:G1HeapRegionSize=2m when G1 would pick 1 MB regions and the user chose none."""
    if gc != "G1" or user_sets(machine.user_jvm_options, "-XX:G1HeapRegionSize="):
        return []
    if heap is None or heap >= G1_AUTO_2M_FROM_MB:
        return []
    return ["-XX:G1HeapRegionSize=2m"]


def plan(mode: str, machine: Machine, dynamic_heap: bool = True, kernel: KernelPages | None = None) -> Plan:
    """Decide a run's huge pages. `kernel` is the host's state (None: unknown, assume a usual one)."""
    if mode not in MODES:
        raise ValueError(f"hugepages mode must be one of {', '.join(MODES)}, not {mode!r}")
    kernel = kernel or KernelPages()
    gc = collector(machine)
    heap = heap_mb(machine)
    in_vm = machine.target == "vm"
    running = machine.target == "attach"  # the JVM runs already: no flags, no kernel settings
    kind = "shmem" if gc == "Z" else "anon"
    user_chose = user_sets(machine.user_jvm_options, *PAGE_FLAGS)
    notes: list[str] = []

    if mode == "off":
        off = {THP_ENABLED: "never", THP_SHMEM: "never"} if in_vm else {}
        return Plan(mode, "off", "huge pages off as asked", gc, heap, guest_settings=off, heap_kind=kind)

    chosen = "thp"
    why = "THP by default: the JVM madvises its heap, the kernel backs it with 2 MB pages"
    pool_pages = 0
    if mode == "pool":
        # JDK 17 reserves and commits the whole maximum heap in the pool at start, the code cache and
        # G1's two mark bitmaps (1/64 of the heap each) with it; short of that, all goes on 4 KB pages
        pool_pages = (math.ceil(heap / HUGE_MB) + math.ceil(heap / 64) + POOL_CODE_PAGES + POOL_SLACK_PAGES
                      if heap else 0)
        limit = (machine.memory_mb or 0) * POOL_MAX_FRACTION / HUGE_MB
        if running:
            why = "a running JVM cannot move its heap to a pool: THP through external collapse instead"
        elif heap is None:
            why = "no heap size known to size a pool (-Xmx or the memory): THP instead"
        elif machine.memory_mb is not None and pool_pages > limit:
            why = (f"a pool of {pool_pages * HUGE_MB} MB for the heap is more than {POOL_MAX_FRACTION:.0%} "
                   f"of the {machine.memory_mb} MB machine: THP instead")
        elif not in_vm and kernel.pool_free_pages < pool_pages:
            why = (f"the host's hugetlbfs pool has {kernel.pool_free_pages} free 2 MB pages, the heap needs "
                   f"{pool_pages} (raise vm.nr_hugepages): THP instead")
        else:
            chosen = "pool"
            why = f"a hugetlbfs pool of {pool_pages} pages ({pool_pages * HUGE_MB} MB) for the heap, as asked"
            if dynamic_heap:
                notes.append("pool pages cannot be given back: the dynamic heap cannot return this memory")
        if chosen != "pool":
            pool_pages = 0
    elif mode == "auto" and dynamic_heap:
        why += " (never a pool with the dynamic heap: pool pages cannot be given back)"

    options: list[str] = []
    settings: dict[str, str] = {}
    qemu: list[str] = []
    collapse = False
    if chosen == "pool":
        kind = "hugetlb"
        if not user_chose:  # only this: JDK 17 turns large pages off when -XX:-UseTransparentHugePages is given
            options.append("-XX:+UseLargePages")
        if in_vm:
            settings[NR_HUGEPAGES] = str(pool_pages)
            if (machine.memory_mb and kernel.hugetlbfs
                    and kernel.pool_free_pages * HUGE_MB >= machine.memory_mb + RUNTIME_IMAGE_MB):
                qemu += ["-object", f"memory-backend-file,id=osv-ram,size={RAM_MB}M,"
                         f"mem-path={kernel.hugetlbfs},share=off,prealloc=on",
                         "-machine", "memory-backend=osv-ram"]
                notes.append(f"guest RAM on the host's hugetlbfs ({kernel.hugetlbfs})")
            else:
                notes.append("guest RAM on the host's THP (QEMU madvises it): the host has no hugetlbfs "
                             "pool that holds the whole guest")
    elif not running:
        host_never = not in_vm and kernel.thp_enabled == "never"
        if not user_chose and not host_never:  # with THP 'never' HotSpot would only print a warning on stdout
            options.append("-XX:+UseTransparentHugePages")
        if in_vm:
            settings[THP_ENABLED] = "madvise"
            settings[THP_DEFRAG] = "madvise"  # faults in advised ranges compact for a 2 MB page at once
            if gc == "Z":
                settings[THP_SHMEM] = "advise"
        else:
            # the host's sysfs is not ours: repair from outside what its settings deny
            if kernel.thp_enabled == "never":
                notes.append("THP is 'never' on this host: the heap is put on huge pages by external collapse")
            if gc == "Z" and kernel.shmem_enabled and kernel.shmem_enabled not in SHMEM_OK:
                notes.append(f"shmem_enabled is '{kernel.shmem_enabled}' on this host: ZGC's memfd heap gets "
                             "huge pages only by external collapse")
            collapse = True
    else:
        collapse = True
        why = "the JVM runs already: its heap is put on huge pages by external collapse (MADV_COLLAPSE)"
    if user_chose and not running:
        notes.append("the user's own page-size flags are kept")
    if chosen != "off" and not running:
        options += region_options(machine, gc, heap)
    return Plan(mode, chosen, why, gc, heap, tuple(options), settings, tuple(qemu), kind, pool_pages,
                collapse, tuple(notes))
