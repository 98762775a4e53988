"""Dynamic heap against the JDK's defaults and a hand-tuned static -Xmx, in one run: process target, and
a VM for the memory QEMU gives back to the host.

Workload: examples/bursty (each burst builds a large live set and churns it, then drops it; a quiet
phase follows). Cases, interleaved per JDK and collector (G1 and ZGC, JDK 17 and 25 where present):

  default  the JDK's own sizing
  static   -Xmx set by hand to twice the burst's live set
  dynamic  what `osv-java run --target process` applies by default: the dynamic heap and huge pages,
           their launch flags and their supervisors beside the JVM (gc_hooks.runner.SupervisorRunner)
  dynamic-heap  the dynamic heap alone (`--hugepages off`)          } only with --configs: what each
  hugepages     huge pages alone (`--dynamic-heap off`)             } of the two brings

Per case: peak and mean PSS (/proc/PID/smaps_rollup, sampled every 0.25 s), committed heap 10 s
after each burst, seconds from a burst's end until the committed heap is back within
max(1.5 x live set, 64 MB), throughput in each burst (the workload's ops/s), OOM.

VM (one burst in `osv-java run -m 1G`, dynamic heap on and off): how much of the heap the guest JVM
gave up in the 30 s after the burst and how much of QEMU's resident set went back to the host
(`host_rss_returned_fraction_vm`; a share, since TCG times say nothing). `--only-vm` runs it alone.

Density: copies of the workload started a few seconds apart in one memory cgroup (v1 or v2, 2 GiB
by default) so their bursts are staggered; how many complete under each configuration, and how many
the kernel's OOM killer ended.

The last line is JSON. Run timing benchmarks alone:

    flock /tmp/osv-bench.lock .venv/bin/python benchmarks/dynamic_heap.py [--quick]
    flock /tmp/osv-bench.lock .venv/bin/python benchmarks/dynamic_heap.py --repeat 3 --no-vm --no-density

With --repeat N each process case runs N rounds (the three configurations interleaved in each), and
its throughput is the median of all its bursts: one 5 s burst on a 2-core machine swings by 2x.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import math
import mmap
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gc_hooks import policies  # noqa: E402
from gc_hooks.runner import SupervisorRunner  # noqa: E402
from gc_hooks.seam import Machine  # noqa: E402
from jvmbridge import jdk as jdks  # noqa: E402
from jvmbridge.errors import JvmError  # noqa: E402
from jvmbridge.hsperf import PerfData  # noqa: E402
from kernel.vm import registry  # noqa: E402
from tests import memcg  # noqa: E402
from tests.hookevents import Events  # noqa: E402
from tests.osvtest import stop  # noqa: E402

JAR = ROOT / "examples" / "bursty" / "bursty.jar"
MB = 1024 * 1024
CONFIGS = ("default", "static", "dynamic")
HOOKS = {"dynamic": policies.HookSettings(), "dynamic-heap": policies.HookSettings(hugepages="off"),
         "hugepages": policies.HookSettings(dynamic_heap=False)}
COLLECTORS = {"G1": "-XX:+UseG1GC", "ZGC": "-XX:+UseZGC"}


@dataclass
class Run:
    """One JVM running the workload, with its samples."""

    config: str
    proc: subprocess.Popen[str]
    started: float
    lines: list[tuple[float, str]] = field(default_factory=list)
    pss: list[tuple[float, int]] = field(default_factory=list)
    cpu: list[tuple[float, float]] = field(default_factory=list)  # time, the JVM's CPU seconds so far
    heap: list[tuple[float, int, int]] = field(default_factory=list)  # time, committed, used
    runner: SupervisorRunner | None = None
    events: Events | None = None
    done: threading.Event = field(default_factory=threading.Event)


def pss_bytes(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process, its threads included (/proc/PID/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def heap_of(perf: PerfData) -> tuple[int, int]:
    committed = used = 0
    for g in range(3):
        committed += perf.long(f"sun.gc.generation.{g}.capacity")
        for s in range(perf.long(f"sun.gc.generation.{g}.spaces")):
            used += perf.long(f"sun.gc.generation.{g}.space.{s}.used")
    return perf.heap_file_committed() or committed, used  # ZGC's counter lags: its heap file does not


def launch(java: Path, config: str, collector: str, live_mb: int, workload: list[str], feature: int,
           cgroup: Path | None = None) -> Run:
    user = [collector]
    if config == "static":
        user.append(f"-Xmx{2 * live_mb}m")
    options = list(user)
    hooks = None
    if config in HOOKS:  # as `osv-java run --target process` plans them: the policies' flags before the user's
        machine = Machine("process", None, None, feature, tuple(user))
        hooks = policies.plan(policies.choose(HOOKS[config], machine), machine)
        options = [*hooks.jvm_options, *user]
    argv = [str(java), *options, "-jar", str(JAR), *workload]
    if cgroup is not None:
        argv = ["sh", "-c", f'echo $$ > {cgroup}/cgroup.procs && exec "$@"', "sh", *argv]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run = Run(config, proc, time.monotonic())
    threading.Thread(target=_read, args=(run,), daemon=True).start()
    if hooks is not None and hooks.supervisors:
        run.events = Events()
        run.runner = SupervisorRunner(hooks.supervisors, run.events)
        run.runner.start(proc.pid)
    threading.Thread(target=_sample, args=(run,), daemon=True).start()
    return run


def on_huge_pages(config: str) -> bool:
    """Whether the configuration's heap is on 2 MB pages: the huge-pages policy is among its hooks."""
    return config in HOOKS and HOOKS[config].hugepages != "off"


def _read(run: Run) -> None:
    assert run.proc.stdout is not None
    for line in run.proc.stdout:
        run.lines.append((time.monotonic(), line.rstrip("\n")))


def _sample(run: Run) -> None:
    perf: PerfData | None = None
    while run.proc.poll() is None:
        now = time.monotonic()
        pss = pss_bytes(run.proc.pid)
        if pss is not None:
            run.pss.append((now, pss))
        cpu = cpu_seconds(run.proc.pid)
        if cpu is not None:
            run.cpu.append((now, cpu))
        try:
            perf = perf or PerfData.open(run.proc.pid)
            committed, used = heap_of(perf)
            run.heap.append((now, committed, used))
        except (JvmError, OSError, ValueError):
            pass
        time.sleep(0.25)
    if perf is not None:
        perf.close()
    run.done.set()


def finish(run: Run, timeout: float) -> int:
    try:
        status = run.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        run.proc.kill()
        status = run.proc.wait()
    run.done.wait(5)
    if run.runner is not None:
        run.runner.stop(exited=True)
    return status


@dataclass
class CaseResult:
    config: str
    jdk: int
    gc: str
    peak_pss_mb: float
    mean_pss_mb: float
    committed_10s_after_mb: list[float]
    reclaim_s: list[float | None]
    ops_per_s: list[float]
    ops_per_cpu_s: list[float]
    oom: bool
    status: int
    decisions: int
    quiet_min_used_mb: float  # the least heap in use in the quiet phases: the live set between bursts
    committed_afresh_mb: list[float] = field(default_factory=list)  # heap committed during each burst
    heap: list[tuple[float, int, int]] = field(default_factory=list, repr=False)
    ends: list[float] = field(default_factory=list, repr=False)

    def fields(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k not in ("heap", "ends")}

    def measure_reclaim(self, live_mb: float) -> None:
        """Seconds from each burst's end until the committed heap is within max(1.5 x live, 64 MB)."""
        goal = max(1.5 * live_mb, 64.0) * MB
        self.reclaim_s = []
        for end in self.ends:
            back = next((round(t - end, 2) for t, committed, _ in self.heap if t >= end and committed <= goal), None)
            self.reclaim_s.append(back)


def summarize(run: Run, status: int, jdk: int, gc: str) -> CaseResult:
    ends = [t for t, line in run.lines if line.startswith("RESULT ")]
    starts = [t for t, line in run.lines if line.startswith("BURST ")]
    ops = [float(line.split("ops_per_s=")[1]) for _, line in run.lines if line.startswith("RESULT ")]
    counts = [int(line.split("ops=")[1].split()[0]) for _, line in run.lines if line.startswith("RESULT ")]
    ops_per_cpu = []  # the same work per CPU second (GC threads included): steadier than wall time on a busy machine
    for start, end, count in zip(starts, ends, counts, strict=False):
        before = [c for t, c in run.cpu if t <= start]
        after = [c for t, c in run.cpu if t >= end]
        if before and after and after[0] > before[-1]:
            ops_per_cpu.append(round(count / (after[0] - before[-1]), 1))
    committed_after: list[float] = []
    for end in ends:
        later = [(t, c) for t, c, _ in run.heap if t >= end + 10]
        if later:
            committed_after.append(round(later[0][1] / MB, 1))
    afresh = []  # every rise of the committed heap inside a burst: memory the JVM had to fault in again
    for start, end in zip(starts, ends, strict=False):
        inside = [c for t, c, _ in run.heap if start <= t <= end]
        afresh.append(round(sum(max(0, b - a) for a, b in zip(inside, inside[1:], strict=False)) / MB, 1))
    quiet_used = [u for t, _, u in run.heap if any(e <= t and not any(e < b <= t for b in starts) for e in ends)]
    pss = [p for _, p in run.pss]
    text = "\n".join(line for _, line in run.lines)
    return CaseResult(config=run.config, jdk=jdk, gc=gc,
                      peak_pss_mb=round(max(pss) / MB, 1) if pss else 0.0,
                      mean_pss_mb=round(statistics.fmean(pss) / MB, 1) if pss else 0.0,
                      committed_10s_after_mb=committed_after, reclaim_s=[], ops_per_s=ops, ops_per_cpu_s=ops_per_cpu,
                      oom="OutOfMemoryError" in text or status == -signal.SIGKILL, status=status,
                      decisions=sum(1 for e in run.events.events if e.policy == "dynamic-heap") if run.events else 0,
                      quiet_min_used_mb=round(min(quiet_used) / MB, 1) if quiet_used else 0.0,
                      committed_afresh_mb=afresh,
                      heap=list(run.heap), ends=ends)


def later_bursts_afresh_gb(results: list[CaseResult], feature: int, gc: str, config: str) -> float:
    """GB of heap a case committed afresh per burst after the first (which commits its heap afresh in
    every configuration)."""
    values = [v for r in results if (r.jdk, r.gc, r.config) == (feature, gc, config) for v in r.committed_afresh_mb[1:]]
    return statistics.fmean(values) / 1024 if values else 0.0


def geomean(values: list[float]) -> float | None:
    good = [v for v in values if v > 0]
    return round(math.exp(statistics.fmean(math.log(v) for v in good)), 3) if good else None


# -- what a heap pays for memory it commits afresh -------------------------------------------

def fault_in_seconds(size: int, huge: bool = False) -> float:
    """Seconds to write every page of `size` fresh anonymous bytes: on 4 KB pages, or with `huge` on the
    2 MB pages a JVM asks for with -XX:+UseTransparentHugePages (madvise)."""
    area = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        if huge:
            area.madvise(mmap.MADV_HUGEPAGE)
        pointer = ctypes.addressof(ctypes.c_char.from_buffer(area))
        began = time.perf_counter()
        ctypes.memset(pointer, 1, size)
        return time.perf_counter() - began
    finally:
        area.close()


def fault_in_price(size_mb: int = 512, rounds: int = 2, huge: bool = False, idle_s: float = 10.0) -> float:
    """CPU seconds per GB to fault in anonymous memory that was freed `idle_s` before (median of
    `rounds`): what a heap pays for every GB it commits again in a burst after a quiet phase. The
    wait matters on a machine whose kernel reports free memory to its hypervisor (virtio-balloon free
    page reporting, as in our own VMs): the 2 MB blocks reported meanwhile cost the hypervisor's
    faults as well when they come back."""
    seconds = []
    for _ in range(rounds):
        fault_in_seconds(size_mb * MB, huge)
        time.sleep(idle_s)
        seconds.append(fault_in_seconds(size_mb * MB, huge))
    return round(statistics.median(seconds) * 1024 / size_mb, 3)


# -- memory back to the host from a VM --------------------------------------------------------------

def _guest_committed(name: str) -> int | None:
    with contextlib.suppress(JvmError, OSError, ValueError):
        record = registry.lookup(name, missing_ok=True)
        if record is not None:
            with tempfile.NamedTemporaryFile() as file:
                file.write(registry.fetch_perfdata(record))
                file.flush()
                with PerfData(Path(file.name)) as perf:
                    return heap_of(perf)[0]
    return None


def vm_return(dynamic: bool, live_mb: int = 150, after_s: float = 30.0) -> dict[str, float | None]:
    """One burst in a VM (`osv-java run -m 1G`, JDK 17, the collector HotSpot picks there: Serial, since a
    machine under 1792 MB is not server-class; a live set that fits the JDK's own maximum,
    a quarter of the guest's memory, so the baseline runs too), then quiet: how much of the heap the guest
    JVM gave up within `after_s` of the burst's end, and how much of QEMU's resident set went back to
    the host in the same time. Under TCG: shares, not times."""
    osv = str(Path(sys.executable).parent / "osv-java")
    name = f"dynheap-bench-{os.getpid()}-{int(dynamic)}"
    argv = [osv, "run", "--name", name, "-m", "1G", "--jdk", "17", "--dynamic-heap", "on" if dynamic else "off",
            str(JAR), "1", str(live_mb), "4", str(after_s + 30)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("QUIET"):
                break
        else:
            raise SystemExit(f"the VM run ended early: {proc.communicate(timeout=60)[1][-800:]}")
        peak_rss, peak_heap = memcg.qemu_rss(proc.pid), _guest_committed(name)
        deadline = time.monotonic() + after_s
        while time.monotonic() < deadline:
            time.sleep(1)
        rss, heap = memcg.qemu_rss(proc.pid), _guest_committed(name)
    finally:
        stop(proc, 60)
    if None in (peak_rss, peak_heap, rss, heap):
        raise SystemExit(f"could not read the VM's memory: QEMU RSS {peak_rss} -> {rss}, heap {peak_heap} -> {heap}")
    assert peak_rss is not None and peak_heap is not None and rss is not None and heap is not None
    freed, returned = peak_heap - heap, peak_rss - rss
    return {"heap_freed_mb": round(freed / MB, 1), "qemu_rss_returned_mb": round(returned / MB, 1),
            "qemu_rss_after_mb": round(rss / MB, 1),
            "returned_fraction": round(returned / freed, 3) if freed > 16 * MB else None}


# -- density ---------------------------------------------------------------------------------------

def make_cgroup(limit: int) -> Path:
    own = memcg.own_memory_cgroup()
    if own is None:
        raise SystemExit("density needs a writable memory cgroup (run as root)")
    folder = memcg.make_child(own.path, "osv-bench-density")
    if own.version == 1:
        (folder / "memory.limit_in_bytes").write_text(str(limit))
        with contextlib.suppress(OSError):
            (folder / "memory.memsw.limit_in_bytes").write_text(str(limit))
    else:
        (folder / "memory.max").write_text(str(limit))
        (folder / "memory.swap.max").write_text("0")
    return folder


def oom_kills(folder: Path) -> int:
    for name in ("memory.oom_control", "memory.events"):
        with contextlib.suppress(OSError):
            for line in (folder / name).read_text().splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    return 0


def density(java: Path, feature: int, config: str, copies: int, stagger: float, limit: int, live_mb: int,
            workload: list[str], timeout: float) -> dict[str, object]:
    folder = make_cgroup(limit)
    runs: list[Run] = []
    try:
        for i in range(copies):
            if i:
                time.sleep(stagger)
            runs.append(launch(java, config, COLLECTORS["G1"], live_mb, workload, feature, cgroup=folder))
        statuses = [finish(run, timeout) for run in runs]
        completed = sum(1 for run, status in zip(runs, statuses, strict=True)
                        if status == 0 and any(line.startswith("DONE") for _, line in run.lines))
        kills = oom_kills(folder)
        peak = max((p for run in runs for _, p in run.pss), default=0)
    finally:
        for run in runs:
            if run.proc.poll() is None:
                run.proc.kill()
        memcg.remove(folder)
    return {"config": config, "copies": copies, "completed": completed, "oom_kills": kills,
            "killed": sum(1 for s in statuses if s == -signal.SIGKILL), "largest_pss_mb": round(peak / MB, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="JDK 17 only, shorter phases, fewer copies")
    parser.add_argument("--live-mb", type=int, default=None)
    parser.add_argument("--copies", type=int, default=None, help="copies started in the density cgroup")
    parser.add_argument("--cgroup-mb", type=int, default=2048)
    parser.add_argument("--no-density", action="store_true")
    parser.add_argument("--no-vm", action="store_true", help="leave out the VM case (QEMU's RSS after a burst)")
    parser.add_argument("--only-vm", action="store_true", help="the VM case alone")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of the process cases, interleaved (throughput in 5 s bursts is noisy: 3+)")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help="of default,static,dynamic,dynamic-heap,hugepages (each policy alone)")
    parser.add_argument("--collectors", default=",".join(COLLECTORS), help="of G1,ZGC")
    parser.add_argument("--jdks", default="17,25", help="feature releases, where installed")
    args = parser.parse_args()

    subprocess.run([sys.executable, "-m", "examples.build", "--quiet"], cwd=ROOT, check=True)
    live_mb = args.live_mb or (300 if args.quick else 400)
    bursts, burst_s, quiet_s = (2, 4, 16) if args.quick else (3, 5, 20)
    workload = [str(bursts), str(live_mb), str(burst_s), str(quiet_s)]
    found = {j.feature: j for j in jdks.find_all()}
    wanted = [int(f) for f in args.jdks.split(",")]
    features = [17] if args.quick else [f for f in wanted if f in found]
    collectors = {name: COLLECTORS[name] for name in args.collectors.split(",")}
    configs = [c for c in args.configs.split(",") if c]
    unknown = [c for c in configs if c not in (*CONFIGS, *HOOKS)]
    if unknown or "default" not in configs:
        parser.error(f"--configs {args.configs!r}: give default and any of static, dynamic, dynamic-heap, hugepages")
    if args.only_vm:
        features, args.no_density, args.no_vm = [], True, False
    if 17 not in found:
        raise SystemExit("JDK 17 not found")
    results: list[CaseResult] = []
    for feature in features:
        java = found[feature].tool("java")
        for gc, flag in collectors.items():
            pair = []
            for _ in range(args.repeat):
                for config in configs:  # interleaved: drift on the machine hits them all alike
                    run = launch(java, config, flag, live_mb, workload, feature)
                    status = finish(run, timeout=bursts * (burst_s + quiet_s) * 4 + 60)
                    pair.append(summarize(run, status, feature, gc))
            # the live set between bursts is the workload's, whatever the configuration: the least
            # heap in use any of them showed in a quiet phase (after a full collection, the true one)
            live_between = min(r.quiet_min_used_mb for r in pair if r.quiet_min_used_mb > 0)
            for result in pair:
                result.measure_reclaim(live_between)
                results.append(result)
                print(f"JDK {feature} {gc:3} {result.config:7}: PSS peak {result.peak_pss_mb:7.1f} MB mean "
                      f"{result.mean_pss_mb:7.1f} MB; committed 10 s after bursts {result.committed_10s_after_mb} MB; "
                      f"reclaim {result.reclaim_s} s; ops/s {[round(o) for o in result.ops_per_s]}; "
                      f"ops per CPU s {[round(o) for o in result.ops_per_cpu_s]}; "
                      f"oom {result.oom}; decisions {result.decisions}; live between bursts {live_between} MB",
                      file=sys.stderr)

    def pooled(feature: int, gc: str, config: str, metric: str) -> float:
        """One figure per case over its rounds: mean PSS averaged, throughput the median of all bursts."""
        cases = [r for r in results if r.jdk == feature and r.gc == gc and r.config == config]
        if not cases:
            return 0.0
        if metric == "pss":
            return statistics.fmean(r.mean_pss_mb for r in cases)
        values = [v for r in cases for v in (r.ops_per_s if metric == "ops" else r.ops_per_cpu_s)]
        return statistics.median(values) if values else 0.0

    def pairs(metric: str, config: str = "dynamic") -> list[float]:
        ratios = []
        for feature in features:
            for gc in collectors:
                base, other = pooled(feature, gc, "default", metric), pooled(feature, gc, config, metric)
                if base and other:
                    ratios.append(other / base)
        return ratios

    reclaims = [s for r in results if r.config == "dynamic" for s in r.reclaim_s]
    measured = [s for s in reclaims if s is not None]
    summary: dict[str, object] = {
        "mean_pss_ratio_dynamic_vs_default": geomean(pairs("pss")),
        "mean_pss_ratio_static_vs_default": geomean(pairs("pss", "static")),
        "reclaim_seconds_after_burst": max(measured) if measured and len(measured) == len(reclaims) else None,
        "reclaim_seconds_median": statistics.median(measured) if measured else None,
        "reclaim_bursts_not_reclaimed": len(reclaims) - len(measured),
        "throughput_ratio_dynamic_vs_default": geomean(pairs("ops")),
        "throughput_per_cpu_ratio_dynamic_vs_default": geomean(pairs("ops_cpu")),
        **{f"throughput_ratio_{config.replace('-', '_')}_alone_vs_default": geomean(pairs("ops", config))
           for config in ("dynamic-heap", "hugepages") if config in configs},
        "oom_dynamic": sum(1 for r in results if r.config == "dynamic" and r.oom),
    }
    if not args.no_vm:
        vm = {"dynamic": vm_return(True), "default": vm_return(False)}
        for config, figures in vm.items():
            print(f"VM {config:7}: {figures}", file=sys.stderr)
        summary.update({
            "host_rss_returned_fraction_vm": vm["dynamic"]["returned_fraction"],
            "host_rss_after_burst_mb_vm_dynamic": vm["dynamic"]["qemu_rss_after_mb"],
            "host_rss_after_burst_mb_vm_default": vm["default"]["qemu_rss_after_mb"],
        })
    if not args.no_density:
        copies = args.copies or (6 if args.quick else 7)
        d_live = 200 if args.quick else 250
        d_workload = ["2", str(d_live), "3", "12" if args.quick else "15"]
        stagger = 2.5
        timeout = 300.0
        dens = {}
        for config in CONFIGS:
            dens[config] = density(found[17].tool("java"), 17, config, copies, stagger, args.cgroup_mb * MB, d_live,
                                   d_workload, timeout)
            print(f"density {config:7}: {dens[config]}", file=sys.stderr)
        summary.update({
            "density_dynamic": dens["dynamic"]["completed"],
            "density_default": dens["default"]["completed"],
            "density_static": dens["static"]["completed"],
            "density_copies_started": copies,
            "oom_kills_dynamic": dens["dynamic"]["oom_kills"],
            "oom_kills_default": dens["default"]["oom_kills"],
            "oom_kills_static": dens["static"]["oom_kills"],
            "density_cgroup_mb": args.cgroup_mb,
        })
    summary["cases"] = [r.fields() for r in results]
    summary["workload"] = {"bursts": bursts, "live_mb": live_mb, "burst_s": burst_s, "quiet_s": quiet_s,
                           "rounds": args.repeat}
    price = fault_in_price() if features else None
    huge_price = fault_in_price(huge=True) if features else None
    for feature in features:
        for gc in collectors:
            ops = {config: round(pooled(feature, gc, config, "ops")) for config in configs}
            print(f"JDK {feature} {gc}: throughput in bursts, median of {args.repeat} round(s): "
                  + ", ".join(f"{config} {value} ops/s" for config, value in ops.items()), file=sys.stderr)
            if price:  # bursts after the first: the first one commits its heap afresh in every configuration
                afresh = {config: later_bursts_afresh_gb(results, feature, gc, config) for config in configs}
                cost = {config: gb * (huge_price if on_huge_pages(config) and huge_price else price)
                        for config, gb in afresh.items()}
                print(f"JDK {feature} {gc}: heap committed afresh per later burst: "
                      + ", ".join(f"{config} {gb:.2f} GB ({cost[config]:.1f} CPU s)" for config, gb in afresh.items())
                      + f"; memory freed 10 s before costs {price:.2f} CPU s per GB to fault in again here on "
                      f"4 KB pages, {huge_price} on 2 MB pages", file=sys.stderr)
    if price:
        summary["fault_in_cpu_s_per_gb"] = price
        summary["fault_in_cpu_s_per_gb_huge_pages"] = huge_price
    summary["cpus"] = os.cpu_count()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
