"""The dynamic heap's pure parts: the decision, the free-ratio mapping, the order of flag changes,
the signal parsers (on files written here), the policy's launch flags."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gc_hooks.dynamic_heap import signals
from gc_hooks.dynamic_heap.decide import (
    MB,
    HeapSignals,
    HostSignals,
    Settings,
    State,
    decide,
    flag_order,
    floor,
    free_ratios,
)
from gc_hooks.dynamic_heap.policy import DynamicHeap
from gc_hooks.policies import HookSettings, choose
from gc_hooks.seam import Machine

GB = 1024 * MB
S = Settings()
CALM = HostSignals(mem_total=24 * GB, mem_available=20 * GB)


def heap(committed: int, live: int, used: int | None = None, busy: bool = False, gc: float = 0.0,
         max_heap: int = 6 * GB, collections: int = 0) -> HeapSignals:
    return HeapSignals(committed=committed, used=live if used is None else used, live=live, max_heap=max_heap,
                       gc_share=gc, busy=busy, collections=collections)


def run_quiet(h: HeapSignals, host: HostSignals = CALM, seconds: int = 5, state: State | None = None,
              start: int = 0) -> list:
    """Tick once a second for `seconds` seconds from second `start` (and `state`) with the same
    signals; the decisions."""
    state, out = state if state is not None else State(), []
    for t in range(start, start + seconds):
        d = decide(float(t), h, host, state, S)
        state = d.state
        out.append(d)
    return out


def test_after_a_burst_the_target_is_within_one_and_a_half_live_sets_and_a_collection_follows() -> None:
    decisions = run_quiet(heap(committed=3 * GB, live=400 * MB))
    last = decisions[-1]
    assert last.target <= max(1.5 * 400 * MB, 64 * MB)
    assert last.target >= 400 * MB
    collects = [i for i, d in enumerate(decisions) if d.collect]
    assert collects and collects[0] <= S.quiet_s + 1  # a shrink needs a collection, soon once quiet
    assert all(d.what == "shrink" for d in decisions)


def test_small_live_set_goes_to_the_minimum_heap_and_not_below() -> None:
    last = run_quiet(heap(committed=2 * GB, live=5 * MB))[-1]
    assert last.target == S.min_heap
    assert last.target <= 64 * MB


def test_no_collection_while_the_app_works_without_pressure() -> None:
    decisions = run_quiet(heap(committed=3 * GB, live=400 * MB, busy=True))
    assert not any(d.collect for d in decisions)


def test_gc_time_above_the_limit_backs_off_and_lets_the_heap_grow() -> None:
    d = decide(0.0, heap(committed=600 * MB, live=400 * MB, busy=True, gc=0.08), CALM, State(), S)
    assert d.what == "backoff" and not d.collect
    assert d.target > 600 * MB
    # still working a little later, GC share now low: the back-off holds, no shrink
    later = decide(5.0, heap(committed=900 * MB, live=400 * MB, busy=True, gc=0.01), CALM, d.state, S)
    assert later.what == "hold" and later.target >= 900 * MB and not later.collect


def test_an_app_that_works_hard_gets_the_collectors_sizing_until_it_goes_quiet() -> None:
    lean = decide(0.0, heap(committed=100 * MB, live=60 * MB, busy=True, collections=S.work_collections - 1),
                  CALM, State(), S)
    assert lean.what != "backoff"  # a few collections: the lean target stays
    d = decide(1.0, heap(committed=100 * MB, live=60 * MB, busy=True, collections=S.work_collections), CALM,
               lean.state, S)
    assert d.what == "backoff" and not d.collect and "works" in d.why
    assert d.target >= 100 * MB
    # the burst ends: its collections are still in the window, but the app is quiet, so the lean target
    # comes back within quiet_s
    d = run_quiet(heap(committed=2 * GB, live=60 * MB, collections=20), seconds=3, state=d.state, start=2)[-1]
    assert d.what == "shrink" and d.target < 200 * MB


def test_an_app_that_works_hard_is_still_squeezed_under_pressure() -> None:
    host = HostSignals(mem_total=24 * GB, mem_available=20 * GB, cgroup_limit=1 * GB, cgroup_usage=990 * MB)
    d = decide(0.0, heap(committed=800 * MB, live=100 * MB, busy=True, collections=50), host, State(), S)
    assert d.pressure and d.what == "shrink" and d.target < 800 * MB


def test_gc_time_below_the_limit_does_not_back_off() -> None:
    d = decide(0.0, heap(committed=600 * MB, live=400 * MB, busy=True, gc=0.04), CALM, State(), S)
    assert d.what != "backoff"


def test_back_off_ends_when_the_app_goes_quiet() -> None:
    d = decide(0.0, heap(committed=3 * GB, live=400 * MB, busy=True, gc=0.2), CALM, State(), S)
    d = run_quiet(heap(committed=3 * GB, live=400 * MB, gc=0.2), state=d.state, start=1)[-1]
    assert d.what == "shrink" and d.target < 1 * GB


def test_never_below_the_live_set_even_under_heavy_pressure() -> None:
    starving = HostSignals(mem_total=24 * GB, mem_available=10 * MB, psi_some_avg10=80.0)
    for live in (1 * MB, 100 * MB, 900 * MB, 5 * GB):
        d = run_quiet(heap(committed=6 * GB, live=live), starving)[-1]
        assert d.target >= min(live, 6 * GB)
        assert d.pressure


def test_pressure_shrinks_harder_than_calm() -> None:
    h = heap(committed=2 * GB, live=400 * MB)
    calm = run_quiet(h)[-1]
    pressed = run_quiet(h, HostSignals(mem_total=24 * GB, mem_available=100 * MB))[-1]
    assert pressed.target < calm.target
    assert pressed.target >= 400 * MB


def test_cgroup_near_its_limit_is_pressure_and_collects_even_while_busy() -> None:
    host = HostSignals(mem_total=24 * GB, mem_available=20 * GB, cgroup_limit=1 * GB, cgroup_usage=990 * MB)
    d = decide(0.0, heap(committed=800 * MB, live=100 * MB, busy=True), host, State(), S)
    assert d.pressure and d.collect and d.target < 800 * MB


def test_cgroup_limit_far_away_is_no_pressure() -> None:
    host = HostSignals(mem_total=24 * GB, mem_available=20 * GB, cgroup_limit=8 * GB, cgroup_usage=1 * GB)
    assert not decide(0.0, heap(committed=800 * MB, live=100 * MB), host, State(), S).pressure


def test_the_jvm_with_most_idle_heap_gives_most() -> None:
    # two JVMs share a cgroup 500 MB over its high mark; idle heaps 1.5 GB and 100 MB
    host = HostSignals(mem_total=24 * GB, mem_available=20 * GB, cgroup_limit=4 * GB,
                       cgroup_usage=int(4 * GB * S.cgroup_high) + 500 * MB, peers_idle=1600 * MB)
    big = decide(0.0, heap(committed=2 * GB, live=600 * MB, used=500 * MB, busy=True), host, State(), S)
    small = decide(0.0, heap(committed=600 * MB, live=500 * MB, busy=True), host, State(), S)
    given_big = 2 * GB - big.target
    given_small = 600 * MB - small.target
    assert given_big > given_small


def test_lasting_pressure_takes_the_heap_down_to_the_pressure_floor() -> None:
    host = HostSignals(mem_total=24 * GB, mem_available=20 * GB, cgroup_limit=1 * GB,
                       cgroup_usage=int(1 * GB * S.cgroup_high) + 5 * MB, peers_idle=300 * MB)
    h = heap(committed=400 * MB, live=200 * MB, busy=True)
    first = decide(0.0, h, host, State(), S)
    assert first.target >= floor(200 * MB, S, pressure=False)  # a small deficit: a small share first
    later = decide(S.escalate_s + 1, h, host, first.state, S)
    assert later.target < first.target
    assert later.target <= 200 * MB * (1 + S.pressure_headroom) + S.pressure_min_headroom
    calm = decide(S.escalate_s + 2, h, CALM, later.state, S)
    assert calm.target > later.target and not calm.pressure and calm.state.pressed_since is None


def test_psi_alone_is_pressure() -> None:
    host = HostSignals(mem_total=24 * GB, mem_available=20 * GB, psi_some_avg10=40.0, peers_idle=2 * GB)
    assert decide(0.0, heap(committed=2 * GB, live=100 * MB), host, State(), S).pressure


def test_a_growing_live_set_raises_the_target() -> None:
    d1 = decide(0.0, heap(committed=100 * MB, live=60 * MB, busy=True), CALM, State(), S)
    d2 = decide(1.0, heap(committed=600 * MB, live=500 * MB, busy=True), CALM, d1.state, S)
    assert d2.what == "grow" and d2.target > d1.target and d2.target >= 500 * MB


@given(committed=st.integers(1 * MB, 64 * GB), live=st.integers(0, 64 * GB), busy=st.booleans(),
       gc=st.floats(0, 1), available=st.integers(0, 64 * GB), psi=st.one_of(st.none(), st.floats(0, 100)))
def test_the_target_stays_between_the_live_set_and_the_maximum(committed: int, live: int, busy: bool, gc: float,
                                                              available: int, psi: float | None) -> None:
    max_heap = 64 * GB
    h = heap(committed=committed, live=live, busy=busy, gc=gc, max_heap=max_heap)
    d = decide(10.0, h, HostSignals(mem_total=64 * GB, mem_available=available, psi_some_avg10=psi), State(), S)
    assert min(live, max_heap) <= d.target <= max_heap


@pytest.mark.parametrize("target,live", [(64 * MB, 10 * MB), (520 * MB, 400 * MB), (1 * GB, 1 * GB), (48 * MB, 0)])
def test_free_ratios_size_the_heap_near_the_target(target: int, live: int) -> None:
    min_free, max_free = free_ratios(target, live)
    assert 0 <= min_free <= max_free <= 70
    if live:
        shrunk_to = live / (1 - max_free / 100)  # what G1 keeps after a collection
        assert live <= shrunk_to <= target * 1.05 + MB


def test_free_ratios_never_exceed_the_defaults() -> None:
    assert free_ratios(10 * GB, 1 * MB) == (40, 70)


@given(cur=st.tuples(st.integers(0, 100), st.integers(0, 100)).filter(lambda t: t[0] <= t[1]),
       new=st.tuples(st.integers(0, 100), st.integers(0, 100)).filter(lambda t: t[0] <= t[1]))
def test_flag_order_keeps_min_at_most_max_at_every_step(cur: tuple[int, int], new: tuple[int, int]) -> None:
    values = {"MinHeapFreeRatio": cur[0], "MaxHeapFreeRatio": cur[1]}
    for name, value in flag_order(cur, new):
        values[name] = value
        assert values["MinHeapFreeRatio"] <= values["MaxHeapFreeRatio"]
    assert (values["MinHeapFreeRatio"], values["MaxHeapFreeRatio"]) == new


def test_meminfo_and_psi_parsers(tmp_path: Path) -> None:
    (tmp_path / "meminfo").write_text("MemTotal:       24684000 kB\nMemAvailable:   1000 kB\nHugePages_Total: 0\n")
    info = signals.meminfo(tmp_path / "meminfo")
    assert info["MemTotal"] == 24684000 * 1024 and info["MemAvailable"] == 1024000 and info["HugePages_Total"] == 0
    (tmp_path / "psi").write_text("some avg10=12.50 avg60=3.00 avg300=1.00 total=5\n"
                                  "full avg10=1.00 avg60=0.00 avg300=0.00 total=1\n")
    assert signals.psi_some_avg10(tmp_path / "psi") == 12.5
    assert signals.psi_some_avg10(tmp_path / "absent") is None


def _fake_proc(tmp: Path, cgroup_lines: str, mountinfo: str) -> Path:
    proc = tmp / "proc"
    (proc / "42").mkdir(parents=True)
    (proc / "self").mkdir()
    (proc / "42" / "cgroup").write_text(cgroup_lines)
    (proc / "self" / "mountinfo").write_text(mountinfo)
    return proc


def test_memory_cgroup_v1_limit_is_the_hierarchical_one(tmp_path: Path) -> None:
    mount = tmp_path / "memory"
    folder = mount / "jobs" / "one"
    folder.mkdir(parents=True)
    (folder / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (folder / "memory.usage_in_bytes").write_text(f"{300 * MB}\n")
    (folder / "memory.stat").write_text(f"hierarchical_memory_limit {2 * GB}\ntotal_inactive_file {100 * MB}\n")
    proc = _fake_proc(tmp_path, "9:name=systemd:/\n4:memory:/jobs/one\n0::/\n",
                      f"35 31 0:32 / {mount} rw,relatime - cgroup cgroup rw,memory\n")
    cg = signals.memory_cgroup(42, proc)
    assert cg is not None and cg.version == 1 and cg.path == folder
    assert cg.limit() == 2 * GB and cg.usage() == 200 * MB


def test_memory_cgroup_v2_limit_is_the_least_up_the_tree(tmp_path: Path) -> None:
    mount = tmp_path / "unified"
    folder = mount / "a" / "b"
    folder.mkdir(parents=True)
    (mount / "a" / "memory.max").write_text(f"{1 * GB}\n")
    (folder / "memory.max").write_text("max\n")
    (folder / "memory.current").write_text(f"{500 * MB}\n")
    (folder / "memory.stat").write_text("anon 1\ninactive_file 0\n")
    (folder / "memory.pressure").write_text("some avg10=3.00 avg60=0 avg300=0 total=0\n")
    proc = _fake_proc(tmp_path, "0::/a/b\n", f"41 31 0:38 / {mount} rw,relatime - cgroup2 cgroup2 rw\n")
    cg = signals.memory_cgroup(42, proc)
    assert cg is not None and cg.version == 2
    assert cg.limit() == 1 * GB and cg.usage() == 500 * MB and cg.psi_some_avg10() == 3.0


def test_collector_from_hsperf_names() -> None:
    assert signals.collector_of("GarbageFirst", ["G1 young collection pauses"]) == "g1"
    assert signals.collector_of("", ["Z concurrent cycle pauses"]) == "zgc"
    assert signals.collector_of("", ["ZGC minor collection pauses", "ZGC major collection pauses"]) == "zgc"
    assert signals.collector_of("", ["Shenandoah partial", "Shenandoah full"]) == "shenandoah"
    assert signals.collector_of("ParScav:MSC", []) == "parallel"
    assert signals.collector_of("Copy:MSC", []) == "serial"


def test_policy_launch_flags_leave_the_users_own_alone() -> None:
    policy = DynamicHeap()
    vm = Machine("vm", 2048, 2, 17)
    assert "-XX:MaxRAMPercentage=75" in policy.jvm_options(vm)
    assert "-XX:+ExplicitGCInvokesConcurrent" in policy.jvm_options(vm)
    mine = Machine("vm", 2048, 2, 17, ("-Xmx1g", "-XX:-ExplicitGCInvokesConcurrent"))
    assert policy.jvm_options(mine) == []
    zgc = policy.jvm_options(Machine("process", 2048, 2, 17, ("-XX:+UseZGC",)))
    assert "-XX:ZUncommitDelay=1" in zgc and "-XX:+ExplicitGCInvokesConcurrent" not in zgc
    assert not any(o.startswith("-XX:G1HeapRegionSize") for o in policy.jvm_options(vm))
    assert policy.guest_modules() == ("virtio_balloon",)
    assert policy.qemu_args(vm) == ["-device", "virtio-balloon-device,free-page-reporting=on,deflate-on-oom=on"]
    spec = policy.supervisor(vm)
    assert spec is not None
    assert type(spec.make()).__name__ == "DynamicHeapSupervisor"


def test_choose_gives_the_dynamic_heap_unless_turned_off() -> None:
    machine = Machine("process", None, 2, 17)
    assert [p.name for p in choose(HookSettings(), machine)] == ["dynamic-heap", "hugepages", "startup-priority"]
    assert [p.name for p in choose(HookSettings(dynamic_heap=False), machine)] == ["hugepages", "startup-priority"]
    assert choose(HookSettings(dynamic_heap=False, hugepages="off", startup_priority=False), machine) == []


def test_an_idle_heap_is_compacted_once_after_a_concurrent_cycle() -> None:
    state = State()
    decisions = []
    h = heap(committed=3 * GB, live=400 * MB)
    for t in range(12):
        d = decide(float(t), h, CALM, state, S)
        state = d.state
        decisions.append(d)
        if d.collect and not d.compact:  # the concurrent cycle freed the empty regions
            h = heap(committed=500 * MB, live=400 * MB)
    concurrent = [i for i, d in enumerate(decisions) if d.collect and not d.compact]
    compacting = [i for i, d in enumerate(decisions) if d.compact]
    assert concurrent and len(compacting) == 1 and compacting[0] > concurrent[0]
    assert decisions[compacting[0]].collect
    # the app works again: the next idle spell may compact again
    busy = decide(20.0, heap(committed=500 * MB, live=400 * MB, busy=True), CALM, state, S)
    assert not busy.state.compacted


def test_no_compaction_of_a_large_live_set_or_a_busy_app() -> None:
    assert not any(d.compact for d in run_quiet(heap(committed=8 * GB, live=3 * GB), seconds=12))
    busy = run_quiet(heap(committed=3 * GB, live=400 * MB, busy=True), seconds=12)
    assert not any(d.compact or d.collect for d in busy)


def test_an_idle_spell_gets_one_collection_even_when_the_estimate_says_no_shrink_is_due() -> None:
    # after a burst the old generation still holds its garbage: the estimate (660 MB) says 768 MB is
    # fine, but a collection would show the truth
    h = heap(committed=768 * MB, live=660 * MB)
    decisions = run_quiet(h, seconds=4)
    probes = [d for d in decisions if d.collect and not d.compact]
    assert len(probes) == 1 and "learn the live set" in probes[0].why


def test_lasting_pressure_wins_over_the_gc_time_back_off() -> None:
    host = HostSignals(mem_total=24 * GB, mem_available=20 * GB, cgroup_limit=1 * GB, cgroup_usage=990 * MB)
    h = heap(committed=800 * MB, live=300 * MB, used=600 * MB, busy=True, gc=0.3)
    first = decide(0.0, h, host, State(), S)
    assert first.what == "backoff"  # a moment of pressure: throughput still first
    later = decide(S.escalate_s + 1, h, host, first.state, S)
    assert later.pressure and later.what == "shrink" and later.collect
    assert later.target < 800 * MB and later.target >= 300 * MB


def test_a_vm_gives_its_share_of_the_hosts_deficit_by_its_idle_heap() -> None:
    from gc_hooks.dynamic_heap.balloon import MIN_GUEST, balloon_target, share_of

    assert share_of(100 * MB, idle=300 * MB, peers_idle=600 * MB) == 50 * MB  # half the idle heap: half the deficit
    assert share_of(900 * MB, idle=300 * MB, peers_idle=600 * MB) == 300 * MB  # never more than its idle heap
    assert share_of(100 * MB, idle=0, peers_idle=600 * MB) == 0
    full = 1 * GB
    # the guest's available memory beyond the reserve goes first (already off the host), then the share
    spare = 300 * MB - int(0.08 * full)
    assert balloon_target(full, full, available=300 * MB, share=50 * MB) == full - spare - 50 * MB
    assert balloon_target(full, full, available=None, share=50 * MB) == full - 50 * MB
    assert balloon_target(full, full, available=900 * MB, share=0) == full  # nothing to give: nothing taken
    assert balloon_target(300 * MB, full, available=200 * MB, share=200 * MB) == max(MIN_GUEST, full // 4)
