"""When the startup-priority policy slows C2 and when start-up is over, from C1's CPU time (pure logic;
the real JVM's side: tests/process/test_startup_priority.py)."""

from __future__ import annotations

from pathlib import Path

from gc_hooks.policies import HookSettings, choose
from gc_hooks.seam import Machine
from gc_hooks.startup_priority import (
    BUSY_SHARE,
    BUSY_WINDOW_S,
    LONGEST_S,
    QUIET_SHARE,
    QUIET_WINDOW_S,
    Sample,
    StartupPhase,
    StartupPriority,
    cpu_quota,
    cpu_seconds,
)

STEP = 0.02  # the supervisor's first interval


def feed(phase: StartupPhase, shares: list[tuple[float, float]], runnable: int = 1) -> list[tuple[float, str]]:
    """Feed C1 at `share` of a CPU for `seconds`, for each (seconds, share), with `runnable` of the app's
    threads running or waiting for a CPU; the decisions with their times."""
    now = phase.samples[-1].at if phase.samples else phase.started  # a second feed goes on from the first
    cpu = phase.samples[-1].c1_seconds if phase.samples else 0.0
    decisions = []
    for seconds, share in shares:
        for _ in range(round(seconds / STEP)):
            now += STEP
            cpu += share * STEP
            phase.add(Sample(now, cpu, runnable))
            decision = phase.decide(now)
            if decision is not None:
                decisions.append((round(now - phase.started, 2), decision[0]))
    return decisions


def test_a_busy_c1_makes_c2_yield_until_it_goes_quiet() -> None:
    phase = StartupPhase(started=100.0, cpus=2)
    decisions = feed(phase, [(2.0, 0.5), (0.5, 0.0)])
    assert [what for _, what in decisions] == ["yield", "over"]
    assert decisions[0][0] <= 0.1 + 2 * STEP  # within the first busy window (sampled from the first tick)
    assert 2.0 < decisions[1][0] <= 2.0 + QUIET_WINDOW_S + 2 * STEP


def test_a_compute_loop_that_quiets_c1_at_once_never_slows_c2() -> None:
    # the JVM's own start keeps C1 at about 10 %, then the hot loop runs compiled code
    decisions = feed(StartupPhase(started=0.0, cpus=2), [(0.2, QUIET_SHARE), (1.0, 0.0)])
    assert [what for _, what in decisions] == ["over"]
    assert decisions[0][0] <= 0.2 + QUIET_WINDOW_S


def test_c2_is_not_slowed_while_the_apps_threads_ask_for_every_cpu() -> None:
    # many threads through new code (C1 busy): a slowed C2 would get no CPU time at all
    for cpus, runnable in ((2, 3), (2, 2), (4, 4)):
        decisions = feed(StartupPhase(started=0.0, cpus=cpus), [(2.0, 0.5)], runnable=runnable)
        assert [what for _, what in decisions] == ["over"], (cpus, runnable)  # never "yield"
    assert [what for _, what in feed(StartupPhase(started=0.0, cpus=4), [(0.5, 0.5)], runnable=3)] == ["yield"]


def test_start_up_is_over_once_the_apps_threads_ask_for_every_cpu() -> None:
    phase = StartupPhase(started=0.0, cpus=2)
    assert [what for _, what in feed(phase, [(0.5, 0.5)], runnable=1)] == ["yield"]
    decisions = feed(phase, [(1.0, 0.5)], runnable=2)
    assert [what for _, what in decisions] == ["over"] and decisions[0][0] <= 0.5 + BUSY_WINDOW_S + STEP


def test_start_up_between_the_thresholds_goes_on_without_a_decision() -> None:
    middle = (QUIET_SHARE + BUSY_SHARE) / 2
    assert feed(StartupPhase(started=0.0, cpus=2), [(3.0, middle)]) == []


def test_short_dips_of_c1_do_not_end_start_up() -> None:
    # JDK 17's Clojure: C1 falls to a few percent for a tenth of a second between namespaces
    decisions = feed(StartupPhase(started=0.0, cpus=2), [(0.5, 0.5), (0.1, 0.0), (0.5, 0.4), (0.1, 0.05), (0.5, 0.5)])
    assert [what for _, what in decisions] == ["yield"]


def test_start_up_ends_after_the_longest_even_with_c1_busy() -> None:
    decisions = feed(StartupPhase(started=0.0, cpus=2), [(LONGEST_S + 1.0, 0.6)])
    assert [what for _, what in decisions][:2] == ["yield", "over"]
    assert abs(decisions[1][0] - LONGEST_S) <= STEP


def test_cpu_time_from_schedstat_or_else_from_stat(tmp_path: Path) -> None:
    with_schedstat = tmp_path / "1"
    with_schedstat.mkdir()
    (with_schedstat / "schedstat").write_text("1500000000 20000 31\n")
    assert cpu_seconds(str(with_schedstat), 100.0) == 1.5
    stat_only = tmp_path / "2"
    stat_only.mkdir()
    # a thread name with spaces and a parenthesis: the fields are counted after the last ')'
    fields = ["S"] + ["0"] * 10 + ["120", "30"] + ["0"] * 30
    (stat_only / "stat").write_text(f"4242 (C1 Compiler) x) {' '.join(fields)}\n")
    assert cpu_seconds(str(stat_only), 100.0) == 1.5


def test_not_for_an_attached_jvm_which_has_started() -> None:
    assert "startup-priority" in [p.name for p in choose(HookSettings(), Machine("process", None, 2, 25))]
    assert "startup-priority" not in [p.name for p in choose(HookSettings(), Machine("attach", None, None, 25))]


def test_a_user_who_sets_the_compiler_threads_priority_keeps_it() -> None:
    policy = StartupPriority()
    assert policy.supervisor(Machine("process", None, 2, 25)) is not None
    assert policy.supervisor(Machine("vm", 1024, 2, 17, ("-XX:CompilerThreadPriority=5",))) is None


def _fake_proc(tmp: Path, cgroup_lines: str, mountinfo: str) -> Path:
    proc = tmp / "proc"
    (proc / "42").mkdir(parents=True)
    (proc / "self").mkdir(exist_ok=True)
    (proc / "42" / "cgroup").write_text(cgroup_lines)
    (proc / "self" / "mountinfo").write_text(mountinfo)
    return proc


def test_a_cpu_quota_up_the_cgroup_path_counts_as_fewer_cpus(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    (v2 / "kube" / "pod" / "app").mkdir(parents=True)
    (v2 / "cpu.max").write_text("max 100000\n")
    (v2 / "kube" / "pod" / "cpu.max").write_text("250000 100000\n")  # 2.5 CPUs for the pod
    (v2 / "kube" / "pod" / "app" / "cpu.max").write_text("max 100000\n")
    unified = f"41 31 0:38 / {v2} rw,relatime - cgroup2 cgroup2 rw\n"
    assert cpu_quota(42, _fake_proc(tmp_path / "a", "0::/kube/pod/app\n", unified)) == 2.5
    assert cpu_quota(42, _fake_proc(tmp_path / "b", "0::/\n", unified)) is None
    # in a cgroup namespace the process's path is relative to the mount's root: /kube/pod is mounted
    namespaced = f"41 31 0:38 /kube/pod {v2 / 'kube' / 'pod'} rw,relatime - cgroup2 cgroup2 rw\n"
    assert cpu_quota(42, _fake_proc(tmp_path / "c", "0::/kube/pod/app\n", namespaced)) == 2.5
    v1 = tmp_path / "v1" / "cpu,cpuacct"
    (v1 / "docker" / "c1").mkdir(parents=True)
    (v1 / "docker" / "c1" / "cpu.cfs_quota_us").write_text("150000\n")
    (v1 / "docker" / "c1" / "cpu.cfs_period_us").write_text("100000\n")
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    hierarchies = (f"35 31 0:32 / {v1} rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
                   f"36 31 0:33 / {tmp_path / 'v1' / 'memory'} rw,relatime - cgroup cgroup rw,memory\n")
    lines = "4:memory:/docker/c1\n2:cpu,cpuacct:/docker/c1\n0::/\n"
    assert cpu_quota(42, _fake_proc(tmp_path / "d", lines, hierarchies)) == 1.5
    assert cpu_quota(42, _fake_proc(tmp_path / "e", "2:cpu,cpuacct:/\n", hierarchies)) is None
    assert cpu_quota(42, tmp_path / "no-proc") is None
