"""What this kernel says about huge pages (sysfs, /proc/meminfo, /proc/vmstat, /proc/buddyinfo), and
why a heap may have too few of them. Reads only; standard library only (PID 1 runs it)."""

from __future__ import annotations

from dataclasses import dataclass

from gc_hooks.hugepages.plan import SHMEM_OK, THP_ENABLED, THP_SHMEM, KernelPages

MB = 1 << 20
HUGE_ORDER = 9  # 2 MB = 2^9 pages of 4 KB


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def bracketed(text: str) -> str:
    """The chosen word of a sysfs choice file: "always [madvise] never" -> "madvise"."""
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return text.strip()


def meminfo() -> dict[str, int]:
    values: dict[str, int] = {}
    for line in _read("/proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    return values


def vmstat() -> dict[str, int]:
    values: dict[str, int] = {}
    for line in _read("/proc/vmstat").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            values[key] = int(value)
    return values


def free_huge_blocks() -> int | None:
    """Free blocks of 2 MB or more in the buddy allocator, counted in 2 MB units (None: unknown)."""
    text = _read("/proc/buddyinfo")
    if not text:
        return None
    total = 0
    for line in text.splitlines():
        counts = line.split()[4:]
        for order, count in enumerate(counts):
            if order >= HUGE_ORDER and count.isdigit():
                total += int(count) << (order - HUGE_ORDER)
    return total


def hugetlbfs_mount() -> str:
    """A hugetlbfs mount point with the default (2 MB) page size, or ""."""
    for line in _read("/proc/mounts").splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] == "hugetlbfs" and ("pagesize=" not in parts[3] or "pagesize=2M" in parts[3]):
            return parts[1]
    return ""


def read_kernel() -> KernelPages:
    info = meminfo()
    return KernelPages(thp_enabled=bracketed(_read(THP_ENABLED)), shmem_enabled=bracketed(_read(THP_SHMEM)),
                       pool_free_pages=info.get("HugePages_Free", 0), hugetlbfs=hugetlbfs_mount())


@dataclass(frozen=True)
class Observed:
    """What a measurement saw, beside the share: the inputs of `diagnose`."""

    share: float
    kind: str  # anon, shmem, hugetlb
    advised: bool  # VmFlags hg on the heap
    forbidden: bool  # VmFlags nh on the heap
    region_size: int | None
    expected_kind: str  # what the plan asked for
    kernel: KernelPages
    free_huge_blocks: int | None
    fault_fallbacks: int  # thp_fault_fallback since the supervisor started


def diagnose(seen: Observed) -> list[str]:
    """Why a heap has too few huge pages, most telling first (pure: unit-tested)."""
    reasons: list[str] = []
    if seen.expected_kind == "hugetlb" and seen.kind != "hugetlb":
        reasons.append(f"the hugetlbfs pool is exhausted or too small ({seen.kernel.pool_free_pages} pages free): "
                       "the JVM fell back to 4 KB pages (raise vm.nr_hugepages)")
    if seen.forbidden:
        reasons.append("the heap is marked MADV_NOHUGEPAGE")
    if seen.kind == "shmem" and seen.kernel.shmem_enabled and seen.kernel.shmem_enabled not in SHMEM_OK:
        reasons.append(f"shmem_enabled is '{seen.kernel.shmem_enabled}': ZGC's memfd heap gets no huge pages "
                       f"(set {THP_SHMEM} to advise)")
    if seen.kind == "anon" and seen.kernel.thp_enabled == "never":
        reasons.append(f"THP is off in sysfs ({THP_ENABLED} is 'never')")
    elif seen.kind == "anon" and seen.kernel.thp_enabled == "madvise" and not seen.advised:
        reasons.append("the JVM did not ask for THP on its heap (no -XX:+UseTransparentHugePages) while THP "
                       "is 'madvise'")
    if seen.free_huge_blocks == 0 or seen.fault_fallbacks > 0:
        blocks = "none" if seen.free_huge_blocks == 0 else str(seen.free_huge_blocks)
        reasons.append(f"memory is fragmented: {seen.fault_fallbacks} huge-page faults fell back to 4 KB "
                       f"pages, free 2 MB blocks: {blocks}")
    if seen.region_size is not None and seen.region_size < 2 * MB:
        reasons.append(f"G1 regions of {seen.region_size // 1024} KB: uncommitting one splits a huge page "
                       "(-XX:G1HeapRegionSize=2m)")
    if not reasons:
        reasons.append("no cause found in sysfs, the pool or fragmentation counters")
    return reasons
