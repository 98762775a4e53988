"""The huge-pages planner, the smaps parser, GC.heap_info's ranges and the diagnosis: pure logic."""

from __future__ import annotations

import pytest

from gc_hooks.hugepages import HugePages
from gc_hooks.hugepages.plan import (
    NR_HUGEPAGES,
    THP_DEFRAG,
    THP_ENABLED,
    THP_SHMEM,
    KernelPages,
    heap_mb,
    parse_size,
    plan,
)
from gc_hooks.hugepages.system import Observed, bracketed, diagnose
from gc_hooks.policies import HookSettings, choose
from gc_hooks.seam import Machine
from jvmbridge import smaps

MB = 1 << 20


def machine(target: str = "vm", memory: int | None = 2048, *options: str, cpus: int = 2) -> Machine:
    return Machine(target=target, memory_mb=memory, cpus=cpus, jdk_feature=17, user_jvm_options=options)


def test_auto_is_thp_with_2m_g1_regions_and_the_guest_kernel_set() -> None:
    p = plan("auto", machine("vm", 2048, "-Xmx512m"))
    assert p.chosen == "thp" and p.collector == "G1" and p.heap_mb == 512
    assert p.jvm_options == ("-XX:+UseTransparentHugePages", "-XX:G1HeapRegionSize=2m")
    assert p.guest_settings == {THP_ENABLED: "madvise", THP_DEFRAG: "madvise"}
    assert p.qemu_args == () and not p.collapse  # QEMU madvises guest RAM itself


def test_auto_never_takes_a_pool_with_the_dynamic_heap() -> None:
    rich = KernelPages(thp_enabled="madvise", pool_free_pages=100000, hugetlbfs="/dev/hugepages")
    assert plan("auto", machine("vm"), dynamic_heap=True, kernel=rich).chosen == "thp"
    assert "never a pool" in plan("auto", machine("vm"), dynamic_heap=True, kernel=rich).why
    assert plan("auto", machine("process"), dynamic_heap=False, kernel=rich).chosen == "thp"


def test_g1_region_size_only_when_g1_would_choose_1m_and_the_user_did_not() -> None:
    assert "-XX:G1HeapRegionSize=2m" not in plan("auto", machine("vm", 32768, "-Xmx8g")).jvm_options
    assert "-XX:G1HeapRegionSize=2m" in plan("auto", machine("vm", 8192)).jvm_options  # 2 GB heap
    user = plan("auto", machine("vm", 2048, "-XX:G1HeapRegionSize=4m")).jvm_options
    assert not any(o.startswith("-XX:G1HeapRegionSize=2m") for o in user)
    assert "-XX:G1HeapRegionSize=2m" not in plan("auto", machine("vm", 2048, "-XX:+UseParallelGC")).jvm_options
    # a small machine gets Serial from HotSpot's ergonomics: no G1 flag there
    small = plan("auto", machine("vm", 1024))
    assert small.collector == "Serial" and "-XX:G1HeapRegionSize=2m" not in small.jvm_options
    assert plan("auto", machine("attach", None)).jvm_options == ()


def test_user_page_flags_are_kept() -> None:
    p = plan("thp", machine("vm", 2048, "-XX:-UseTransparentHugePages"))
    assert "-XX:+UseTransparentHugePages" not in p.jvm_options
    assert any("kept" in n for n in p.notes)


def test_zgc_needs_shmem_advise_in_the_guest_and_collapse_on_a_host_that_denies_it() -> None:
    p = plan("auto", machine("vm", 4096, "-XX:+UseZGC"))
    assert p.heap_kind == "shmem" and p.guest_settings[THP_SHMEM] == "advise"
    host = plan("auto", machine("process", None, "-XX:+UseZGC"), kernel=KernelPages("madvise", "never"))
    assert host.collapse and any("shmem_enabled is 'never'" in n for n in host.notes)
    assert host.guest_settings == {}


def test_a_host_with_thp_never_gets_collapse_and_no_flag_that_would_only_warn() -> None:
    p = plan("auto", machine("process", None, "-Xmx512m"), kernel=KernelPages("never", "never"))
    assert p.collapse and "-XX:+UseTransparentHugePages" not in p.jvm_options
    assert any("'never' on this host" in n for n in p.notes)
    assert "-XX:+UseTransparentHugePages" in plan("auto", machine("vm"), kernel=KernelPages("never")).jvm_options


def test_off() -> None:
    p = plan("off", machine("vm"))
    assert p.chosen == "off" and p.jvm_options == ()
    assert p.guest_settings == {THP_ENABLED: "never", THP_SHMEM: "never"}
    assert plan("off", machine("process")).guest_settings == {}
    assert HugePages("off").supervisor(machine("process")) is None


def test_pool_in_a_vm_sizes_vm_nr_hugepages_and_backs_guest_ram_only_when_the_host_can() -> None:
    none = plan("pool", machine("vm", 2048, "-Xmx512m"), dynamic_heap=False)
    assert none.chosen == "pool" and none.heap_kind == "hugetlb"
    assert none.guest_settings == {NR_HUGEPAGES: str(256 + 8 + 120 + 8)}  # heap, bitmaps, code cache, slack
    assert none.jvm_options[0] == "-XX:+UseLargePages" and none.qemu_args == ()
    assert "-XX:-UseTransparentHugePages" not in none.jvm_options  # JDK 17 drops large pages with it
    host = KernelPages(pool_free_pages=1024 + 64, hugetlbfs="/dev/hugepages")  # the runtime image's range too
    backed = plan("pool", machine("vm", 2048, "-Xmx512m"), dynamic_heap=False, kernel=host)
    assert "memory-backend=osv-ram" in backed.qemu_args
    assert any("mem-path=/dev/hugepages" in a and "size={ram_mb}M" in a for a in backed.qemu_args)
    short = KernelPages(pool_free_pages=1024, hugetlbfs="/dev/hugepages")
    assert plan("pool", machine("vm", 2048, "-Xmx512m"), dynamic_heap=False, kernel=short).qemu_args == ()
    # explicit pool with the dynamic heap: granted, with the cost said
    assert any("cannot be given back" in n for n in plan("pool", machine("vm", 2048, "-Xmx512m")).notes)


def test_pool_falls_back_to_thp_and_says_why() -> None:
    assert "raise vm.nr_hugepages" in plan("pool", machine("process", None, "-Xmx512m")).why
    too_big = plan("pool", machine("vm", 1024, "-Xmx600m"))
    assert too_big.chosen == "thp" and "more than 80%" in too_big.why
    assert plan("pool", machine("attach", None)).collapse


def test_attach_collapses_and_sets_nothing() -> None:
    p = plan("thp", machine("attach", None))
    assert p.collapse and p.jvm_options == () and p.guest_settings == {}


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="auto, thp, pool, off"):
        plan("always", machine())


def test_sizes_and_heap_estimate() -> None:
    assert parse_size("512m") == 512 * MB and parse_size("2G") == 2 << 30 and parse_size("x") is None
    assert heap_mb(machine("vm", 4096)) == 1024
    assert heap_mb(machine("vm", 4096, "-XX:MaxRAMPercentage=50")) == 2048
    assert heap_mb(machine("vm", 4096, "-XX:MaxHeapSize=300m")) == 300
    assert heap_mb(machine("attach", None)) is None


def test_choose_gives_the_hugepages_policy() -> None:
    alone = HookSettings(dynamic_heap=False, startup_priority=False)
    assert [p.name for p in choose(alone, machine("process"))] == ["hugepages"]
    off = HookSettings(dynamic_heap=False, hugepages="off", startup_priority=False)
    assert choose(off, machine("process")) == []
    assert [p.name for p in choose(off, machine("vm"))] == ["hugepages"]


SMAPS = """\
e0000000-ffe00000 rw-p 00000000 00:00 0
Size:             522240 kB
Rss:              393216 kB
AnonHugePages:    389120 kB
ShmemPmdMapped:        0 kB
Private_Hugetlb:       0 kB
THPeligible:    1
VmFlags: rd wr mr mw me ac hg
ffe00000-ffe75000 rw-p 00c77000 fe:00 328258                             /usr/lib/jvm/x/lib/server/classes.jsa
Rss:                 468 kB
AnonHugePages:         0 kB
VmFlags: rd wr mr mw me ac
ffe75000-100000000 ---p 00000000 00:00 0
Rss:                   0 kB
VmFlags: mr mw me ac
7f0000000000-7f0000200000 rw-p 00000000 00:00 0
Rss:                2048 kB
AnonHugePages:         0 kB
VmFlags: rd wr mr mw me ac
"""


def test_smaps_parse_and_share() -> None:
    maps = smaps.parse(SMAPS)
    assert [m.start for m in maps] == [0xE0000000, 0xFFE00000, 0xFFE75000, 0x7F0000000000]
    assert maps[0].rss == 393216 * 1024 and maps[0].huge == 389120 * 1024 and maps[0].flags[-1] == "hg"
    assert maps[1].path.endswith("classes.jsa") and not maps[1].anonymous and not maps[2].committed
    heap = smaps.in_range(maps, 0xE0000000, 0x100000000)
    assert [m.start for m in heap] == [0xE0000000, 0xFFE75000]  # the CDS file pages left out
    pages = smaps.HeapPages(1, tuple(heap), "heap_info")
    assert pages.share == pytest.approx(389120 / 393216) and pages.kind == "anon" and pages.advised
    guessed = smaps.guess_heap(maps, 512 * MB)
    assert [m.start for m in guessed] == [0xE0000000, 0xFFE75000]
    assert smaps.guess_heap(maps, None)[0].start == 0xE0000000  # the largest resident one


def test_hugetlb_counts_as_resident_and_huge() -> None:
    maps = smaps.parse("7f0000000000-7f0020000000 rw-p 00000000 00:10 5 /anon_hugepage (deleted)\n"
                       "Rss:                   0 kB\nPrivate_Hugetlb:  524288 kB\n")
    pages = smaps.HeapPages(1, tuple(maps), "largest")
    assert pages.share == 1.0 and pages.kind == "hugetlb"


@pytest.mark.parametrize("text, low, high, region", [
    (" garbage-first heap   total 524288K, used 393244K [0x00000000e0000000, 0x0000000100000000)\n"
     "  region size 1024K, 2 young (2048K), 1 survivors (1024K)\n"
     " Metaspace       used 78K, committed 320K, reserved 1114112K [0x0000000800000000, 0x0000000900000000)\n",
     0xE0000000, 0x100000000, 1024 * 1024),
    (" PSYoungGen      total 152576K, used 5243K [0x00000000f5580000, 0x0000000100000000, 0x0000000100000000)\n"
     "  eden space 131072K, 4% used [0x00000000f5580000,0x00000000f5a9ed10,0x00000000fd580000)\n"
     " ParOldGen       total 348160K, used 0K [0x00000000e0000000, 0x00000000f5400000, 0x00000000f5580000)\n",
     0xE0000000, 0x100000000, None),
    ("Shenandoah Heap\n 524288K max, 524288K soft max, 524288K committed, 1234K used\n"
     " Reserved region:\n - [0x00000000e0000000, 0x0000000100000000) \n", 0xE0000000, 0x100000000, None),
])
def test_heap_info_ranges(text: str, low: int, high: int, region: int | None) -> None:
    assert smaps.parse_heap_info(text) == smaps.HeapInfo(low, high, region)


def test_zgc_heap_info_has_no_range() -> None:
    assert smaps.parse_heap_info(" ZHeap           used 8M, capacity 512M, max capacity 512M\n") is None


def observed(**changes: object) -> Observed:
    base: dict[str, object] = dict(share=0.1, kind="anon", advised=True, forbidden=False, region_size=2 * MB,
                                   expected_kind="anon", kernel=KernelPages("madvise", "never", 0),
                                   free_huge_blocks=100, fault_fallbacks=0)
    base.update(changes)
    return Observed(**base)  # type: ignore[arg-type]


def test_diagnose_names_the_cause() -> None:
    assert "THP is off in sysfs" in diagnose(observed(kernel=KernelPages("never")))[0]
    assert "-XX:+UseTransparentHugePages" in diagnose(observed(advised=False))[0]
    assert "shmem_enabled is 'never'" in diagnose(observed(kind="shmem"))[0]
    assert "pool is exhausted" in diagnose(observed(expected_kind="hugetlb"))[0]
    assert "fragmented" in diagnose(observed(fault_fallbacks=12))[0]
    assert "fragmented" in diagnose(observed(free_huge_blocks=0))[0]
    assert "G1 regions of 1024 KB" in diagnose(observed(region_size=MB))[0]
    assert "no cause found" in diagnose(observed())[0]


def test_bracketed() -> None:
    assert bracketed("always [madvise] never\n") == "madvise"
    assert bracketed("") == ""


QEMU_SMAPS = """\
7f71585ff000-7f719c9ff000 rw-s 00000000 00:01 1064 /memfd:memory-backend-memfd (deleted)
Rss:              443904 kB
ShmemPmdMapped:        0 kB
VmFlags: rd wr sh mr mw me ms dc hg
7f7200000000-7f7240000000 rwxp 00000000 00:00 0
Rss:               65536 kB
AnonHugePages:         0 kB
VmFlags: rd wr ex mr mw me ac
7f7300000000-7f7300200000 rw-p 00000000 00:00 0
Rss:                2048 kB
AnonHugePages:      2048 kB
VmFlags: rd wr mr mw me ac
"""


def test_guest_ram_is_qemus_largest_writable_mapping_whatever_backs_it() -> None:
    maps = smaps.parse(QEMU_SMAPS)
    ram = smaps.guest_ram(maps, 1024 * MB)
    assert ram is not None and ram.path.startswith("/memfd:memory-backend-memfd") and ram.huge == 0
    assert smaps.guest_ram(maps, 2048 * MB) is None
    assert smaps.guest_ram(maps[1:]) == maps[2]  # TCG's executable code buffer is never the RAM
    assert smaps.mapping_of(maps, 1024 * MB, slack=128 * MB) == ram  # a snapshot's memfd is found too


def test_guest_ram_collapse_is_refused_up_front_where_it_cannot_work() -> None:
    from gc_hooks.hugepages.host import not_collapsible

    header = "7f4154400000-7f4198600000 {perms} {offset} 00:01 1064 {path}\nRss: 4096 kB\n"
    aligned = smaps.parse(header.format(perms="rw-s", offset="00000000", path="/memfd:osv-java-snapshot-ram"))[0]
    assert not_collapsible(aligned) == ""  # a restored snapshot's memfd, mapped 2 MB-aligned
    misaligned = smaps.parse(header.replace("7f4154400000", "7f41545ff000").format(
        perms="rw-s", offset="00000000", path="/memfd:memory-backend-memfd"))[0]
    assert "4 KB-aligned" in not_collapsible(misaligned)
    private = smaps.parse(header.format(perms="rw-p", offset="00000000", path="/cache/snapshots/x/ram"))[0]
    assert "private mapping of a file" in not_collapsible(private)
    anonymous = smaps.parse("7f4154400000-7f4198600000 rw-p 00000000 00:00 0\nRss: 4096 kB\n")[0]
    assert not_collapsible(anonymous) == ""


def test_the_host_side_watches_guest_ram_only_for_a_vm_with_huge_pages() -> None:
    from gc_hooks.hugepages.host import GuestRamMonitor

    monitor = HugePages("auto").host_monitor(machine("vm", 1024))
    assert isinstance(monitor, GuestRamMonitor) and monitor.memory == 1024 * MB and not monitor.essential
    assert HugePages("off").host_monitor(machine("vm", 1024)) is None
    assert HugePages("auto").host_monitor(machine("process", None)) is None


class Heard:
    def __init__(self) -> None:
        self.events: list[object] = []

    def emit(self, event: object) -> None:
        self.events.append(event)

    def send(self, policy: str, kind: str, data: str) -> None:
        pass


def test_the_plans_reason_is_said_and_a_pool_not_honoured_is_a_warning() -> None:
    from gc_hooks.hugepages.supervisor import HugePagesSupervisor

    rich = KernelPages(thp_enabled="madvise", pool_free_pages=100000)
    fallback = plan("pool", machine("process", 512, "-Xmx400m"), kernel=rich)
    assert fallback.chosen == "thp"
    heard = Heard()
    HugePagesSupervisor(fallback.settings()).start(1, heard)
    warnings = [e for e in heard.events if getattr(e, "what", "") == "warning"]
    assert len(warnings) == 1 and "--hugepages pool not honoured" in warnings[0].why  # type: ignore[attr-defined]
    assert "more than 80% of the 512 MB machine" in warnings[0].why  # type: ignore[attr-defined]
    heard = Heard()
    HugePagesSupervisor(plan("auto", machine("process", None), kernel=rich).settings()).start(1, heard)
    assert [getattr(e, "what", "") for e in heard.events] == ["start"]
    assert "never a pool with the dynamic heap" in heard.events[0].why  # type: ignore[attr-defined]
