"""Huge pages on the process target: the TLB-heavy workload (examples/tlb) under each configuration,
against the baseline of a plain JVM, in one run.

off:      plain `java` (what the policy gives in mode off: no flags): the baseline.
raw:      plain `java -XX:+UseTransparentHugePages`: the raw gain this machine offers.
thp:      ours by default: the HugePages policy's flags for mode auto, and its supervisor beside the
          JVM (gc_hooks.runner.SupervisorRunner), as the process target runs it.
pool:     the policy in mode pool (-XX:+UseLargePages) on a hugetlbfs pool reserved for this run
          (vm.nr_hugepages raised, given back at the end); left out when the pool cannot be had.
collapse: a plain JVM started without flags, its heap collapsed from outside (process_madvise,
          MADV_COLLAPSE) once its data is built and before the clock starts.

Each JVM builds its data, stops (`--wait`), the heap's huge-page share is read from smaps (and the
collapse done), then it times random reads (array) and pointer chasing (graph) in the thread's CPU
time (waits for a CPU on a shared machine are not page costs). Configurations alternate within each
round, in a rotated order, so drift hits all alike; speedups are medians of per-round ratios
off/config of the geometric mean of the two workloads' ns per access; thp_gain_captured is
(speedup_thp - 1) / (raw_thp_speedup - 1). Every JVM run holds /tmp/osv-bench.lock (shared with
other benchmarks on this machine) while it runs (--hold-lock: the whole run): do not wrap the script
in flock. JDK 17 and 25 when present. The last line is JSON; --from-log summarizes the whole rounds
of an interrupted run.

--vm (or --vm-only) adds the shares in a VM, booted cold and restored from its boot snapshot: the
guest heap's and that of QEMU's guest RAM on the host's huge pages (shares only: under TCG times say
nothing about TLBs).

    .venv/bin/python benchmarks/hugepages.py [--runs 3] [--quick] [--jdk 17 --jdk 25] [--vm | --vm-only]
        [--from-log ERR]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gc_hooks.hugepages import HugePages, KernelPages  # noqa: E402
from gc_hooks.hugepages.supervisor import once  # noqa: E402
from gc_hooks.hugepages.system import meminfo, read_kernel  # noqa: E402
from gc_hooks.runner import SupervisorRunner  # noqa: E402
from gc_hooks.seam import Machine, SupervisorSpec  # noqa: E402
from jvmbridge import smaps  # noqa: E402
from jvmbridge.jdk import find_all  # noqa: E402
from tests.hookevents import Events  # noqa: E402

JAR = ROOT / "examples" / "tlb" / "tlb.jar"
LOCK = "/tmp/osv-bench.lock"
NR_HUGEPAGES = Path("/proc/sys/vm/nr_hugepages")
CONFIGS = ("off", "raw", "thp", "pool", "collapse")
RESULT = re.compile(r"RESULT (?:workload=(\w+) )?ns_per_access=([\d.]+)")


@dataclass
class Sizes:
    heap_mb: int
    array_mb: int
    graph_mb: int
    accesses: int


FULL = Sizes(heap_mb=1536, array_mb=1024, graph_mb=96, accesses=20_000_000)
QUICK = Sizes(heap_mb=768, array_mb=512, graph_mb=32, accesses=8_000_000)


@dataclass
class Run:
    config: str
    jdk: int
    ns: float  # geometric mean of the workloads
    workloads: dict[str, float]
    share: float  # the heap's huge-page share when the clock started
    share_before: float | None = None  # collapse: before it
    collapse_s: float | None = None
    longest_step_ms: float | None = None
    events: list[str] = field(default_factory=list)


_held = 0  # depth of bench_lock in this process: --hold-lock takes it once around the whole run


@contextlib.contextmanager
def bench_lock() -> Iterator[None]:
    global _held
    if _held:
        _held += 1
        try:
            yield
        finally:
            _held -= 1
        return
    with open(LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        _held = 1
        try:
            yield
        finally:
            _held = 0
            fcntl.flock(f, fcntl.LOCK_UN)


def machine(jdk: int, sizes: Sizes) -> Machine:
    heap = (f"-Xms{sizes.heap_mb}m", f"-Xmx{sizes.heap_mb}m")
    return Machine(target="process", memory_mb=None, cpus=os.cpu_count(), jdk_feature=jdk, user_jvm_options=heap)


def options(config: str, jdk: int, sizes: Sizes) -> tuple[list[str], SupervisorSpec | None]:
    m = machine(jdk, sizes)
    if config == "raw":
        return ["-XX:+UseTransparentHugePages"], None
    if config in ("off", "collapse"):
        return HugePages("off").jvm_options(m), None
    policy = HugePages("auto" if config == "thp" else "pool", dynamic_heap=config == "thp", kernel=read_kernel())
    planned = policy.plan(m)
    if config == "pool" and planned.chosen != "pool":
        raise SystemExit(f"pool run planned as {planned.chosen}: {planned.why}")
    spec = policy.supervisor(m)
    if spec is not None:
        spec = SupervisorSpec(spec.policy, spec.module, spec.cls, {**spec.settings, "first": 0.5, "interval": 2.0})
    return list(planned.jvm_options), spec


def run_one(java: Path, jdk: int, config: str, sizes: Sizes) -> Run:
    flags, spec = options(config, jdk, sizes)
    argv = [str(java), f"-Xms{sizes.heap_mb}m", f"-Xmx{sizes.heap_mb}m", *flags, "-jar", str(JAR),
            "--array-mb", str(sizes.array_mb), "--graph-mb", str(sizes.graph_mb),
            "--accesses", str(sizes.accesses), "--wait"]
    channel = Events()
    with bench_lock():
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        runner = SupervisorRunner([spec] if spec else [], channel)
        try:
            runner.start(proc.pid)
            assert proc.stdin is not None and proc.stdout is not None
            said = []
            for line in proc.stdout:  # the JVM's own warnings come first, on stdout
                if line.startswith("READY"):
                    break
                said.append(line)
            else:
                raise SystemExit(f"{config} on JDK {jdk} did not start: {''.join(said)} ({' '.join(argv)})")
            run = Run(config, jdk, 0.0, {}, 0.0)
            run.events += [f"JVM: {line.strip()}" for line in said]
            if config == "collapse":
                before, after, result = once(proc.pid, do_collapse=True)
                assert after is not None and result is not None
                run.share_before = before.share
                run.share = after.share
                run.collapse_s = result.seconds
                run.longest_step_ms = result.longest_step * 1e3
                if result.error:
                    run.events.append(f"collapse: {result.line()}")
            else:
                run.share = smaps.heap_pages(proc.pid).share
            proc.stdin.write("\n")
            proc.stdin.flush()
            out = proc.stdout.read()
            if proc.wait(timeout=600) != 0:
                raise SystemExit(f"{config} on JDK {jdk} failed ({proc.returncode}): {out[-500:]}")
        finally:
            runner.stop(exited=True)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for workload, ns in RESULT.findall(out):
        if workload:
            run.workloads[workload] = float(ns)
        else:
            run.ns = float(ns)
    run.events += [e.line() for e in channel.events if e.what in ("warning", "collapse", "failed")]
    return run


@contextlib.contextmanager
def pool(pages: int) -> Iterator[bool]:
    """Raise vm.nr_hugepages by `pages` for the run and give them back after; False when not had."""
    try:
        before = int(NR_HUGEPAGES.read_text())
        NR_HUGEPAGES.write_text(str(before + pages))
    except OSError as exc:
        print(f"pool: cannot set vm.nr_hugepages ({exc.strerror}): no pool runs", file=sys.stderr)
        yield False
        return
    try:
        free = meminfo().get("HugePages_Free", 0)
        if free < pages:
            print(f"pool: only {free} of {pages} huge pages could be reserved: no pool runs", file=sys.stderr)
            yield False
        else:
            yield True
    finally:
        NR_HUGEPAGES.write_text(str(before))


def ratio(runs: list[Run], config: str, base: str = "off") -> float | None:
    """Median over rounds of base/config (rounds pair by position)."""
    a = [r.ns for r in runs if r.config == base]
    b = [r.ns for r in runs if r.config == config]
    pairs = [x / y for x, y in zip(a, b, strict=False) if y > 0]
    return statistics.median(pairs) if pairs else None


def workload_ratio(runs: list[Run], config: str, workload: str) -> float | None:
    a = [r.workloads.get(workload, 0.0) for r in runs if r.config == "off"]
    b = [r.workloads.get(workload, 0.0) for r in runs if r.config == config]
    pairs = [x / y for x, y in zip(a, b, strict=False) if y > 0]
    return statistics.median(pairs) if pairs else None


def geomean(values: list[float]) -> float | None:
    values = [v for v in values if v and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


LOG_LINE = re.compile(r"round (\d+) JDK (\d+) (\w+)\s+([\d.]+) ns/access \(array ([\d.]+), graph ([\d.]+)\) "
                      r"heap on huge pages (\d+)%"
                      r"(?: \(collapse (\d+)% -> (\d+)% in ([\d.]+)s, longest step (\d+) ms\))?")


def from_log(path: Path) -> list[Run]:
    """The runs of an earlier (perhaps interrupted) run, from its stderr: measured rounds are not lost."""
    runs: list[Run] = []
    for line in path.read_text().splitlines():
        m = LOG_LINE.match(line)
        if not m:
            continue
        _, jdk, config, ns, array, graph, share, before, after, seconds, step = m.groups()
        run = Run(config, int(jdk), float(ns), {"array": float(array), "graph": float(graph)}, int(share) / 100)
        if before is not None:
            run.share_before, run.share = int(before) / 100, int(after) / 100
            run.collapse_s, run.longest_step_ms = float(seconds), float(step)
        runs.append(run)
    # only whole rounds of each JDK: every configuration measured
    counts = {(r.jdk, r.config): 0 for r in runs}
    for r in runs:
        counts[(r.jdk, r.config)] += 1
    whole = {jdk: min(n for (j, _), n in counts.items() if j == jdk) for jdk, _ in counts}
    kept: list[Run] = []
    seen: dict[tuple[int, str], int] = {}
    for r in runs:
        seen[(r.jdk, r.config)] = seen.get((r.jdk, r.config), 0) + 1
        if seen[(r.jdk, r.config)] <= whole[r.jdk]:
            kept.append(r)
    return kept


def vm_share(boot: str, memory_mb: int, heap_mb: int, settle: float) -> dict[str, object]:
    """One VM run of the workload (`osv-java run`, no huge-page options; `boot` cold or restored from the
    boot snapshot): the guest heap's share (the kernel services read the guest's smaps: `jvm stats --vm`)
    and the share of QEMU's guest RAM on the host's huge pages (QEMU's smaps), `settle` seconds after the
    data is built (the host side collapses a restored machine's RAM every 10 s)."""
    osv = str(Path(sys.executable).parent / "osv-java")
    name = f"hugepages-bench-{boot}-{os.getpid()}"
    app = [str(JAR), "--graph-mb", "0", "--accesses", "100000", "--rounds", "1"]
    with bench_lock():
        if boot == "restored":  # a machine's first run boots cold, its second saves the snapshot
            for _ in range(2):
                subprocess.run([osv, "run", "-m", str(memory_mb), *app, "--array-mb", "8"], cwd=ROOT, check=True,
                               capture_output=True, timeout=600)
        proc = subprocess.Popen(
            [osv, "run", "-m", str(memory_mb), "--name", name, f"--jvm-opt=-Xms{heap_mb}m",
             f"--jvm-opt=-Xmx{heap_mb}m", *(["--cold-boot"] if boot == "cold" else []), *app,
             "--array-mb", str(heap_mb // 2), "--wait"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            assert proc.stdin is not None and proc.stdout is not None
            if not proc.stdout.readline().startswith("READY"):
                raise SystemExit(f"the VM run did not start: {proc.communicate(timeout=60)[1][-800:]}")
            time.sleep(settle)
            stats = json.loads(subprocess.run([osv, "jvm", "stats", "--vm", name, "--json"], capture_output=True,
                                              text=True, check=True, timeout=180).stdout)
            children = subprocess.run(["pgrep", "-P", str(proc.pid), "qemu"], capture_output=True, text=True).stdout
            ram = smaps.mapping_of(smaps.read(int(children.split()[0])), memory_mb << 20, slack=128 << 20)
            proc.stdin.write("\n")
            proc.stdin.flush()
            proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return {"heap": float(stats["heap_hugepage_share"]),
            "guest_ram": round(ram.huge / ram.rss, 4) if ram and ram.rss else 0.0,
            "backing": "anonymous" if ram is not None and ram.anonymous else (ram.path if ram else "not found")}


def vm_shares(memory_mb: int = 1024, heap_mb: int = 384, settle: float = 15.0) -> dict[str, object]:
    """The policy's default in a VM, booted cold and restored from its boot snapshot (what every run
    after a machine's second does): the lower of the two shares of each kind, and both."""
    runs = {boot: vm_share(boot, memory_mb, heap_mb, settle) for boot in ("cold", "restored")}
    for boot, seen in runs.items():
        print(f"VM ({boot}, {seen['backing']}): guest heap on huge pages {seen['heap']:.1%}, QEMU's guest RAM on "
              f"the host's huge pages {seen['guest_ram']:.1%} ({settle:g} s after the data was built)",
              file=sys.stderr)
    return {"heap_hugepage_fraction_vm": min(float(str(r["heap"])) for r in runs.values()),
            "guest_ram_host_hugepage_fraction": min(float(str(r["guest_ram"])) for r in runs.values()),
            "vm_by_boot": runs}


def summarize(all_runs: list[Run], features: list[int], runs_per: int, quick: bool, sizes: Sizes,
              thp_enabled: str, vm: dict[str, object] | None = None) -> None:
    """Per-JDK figures on stderr, the JSON line on stdout."""
    by_jdk: dict[str, dict[str, object]] = {}
    for feature in features:
        runs = [r for r in all_runs if r.jdk == feature]
        thp_shares = [r.share for r in runs if r.config == "thp"]
        collapsed = [r for r in runs if r.config == "collapse"]
        entry: dict[str, object] = {
            "speedup_thp": rounded(ratio(runs, "thp")),
            "speedup_pool": rounded(ratio(runs, "pool")),
            "speedup_collapse": rounded(ratio(runs, "collapse")),
            "raw_thp_speedup": rounded(ratio(runs, "raw")),
            "heap_hugepage_fraction_process": rounded(min(thp_shares) if thp_shares else None, 4),
            "collapse_fraction_before": rounded(max((r.share_before or 0.0) for r in collapsed), 4) if collapsed
            else None,
            "collapse_fraction_after": rounded(min(r.share for r in collapsed), 4) if collapsed else None,
            "collapse_seconds": rounded(statistics.median(r.collapse_s or 0.0 for r in collapsed)) if collapsed
            else None,
            "collapse_longest_step_ms": rounded(max(r.longest_step_ms or 0.0 for r in collapsed), 1) if collapsed
            else None,
            "ns_per_access": {c: rounded(statistics.median(r.ns for r in runs if r.config == c), 2)
                              for c in CONFIGS if any(r.config == c for r in runs)},
            "speedup_by_workload": {w: {c: rounded(workload_ratio(runs, c, w)) for c in CONFIGS if c != "off"}
                                    for w in ("array", "graph")},
        }
        by_jdk[str(feature)] = entry
        print(f"JDK {feature}: " + ", ".join(f"{k} {v}" for k, v in entry.items() if not isinstance(v, dict)),
              file=sys.stderr)

    def across(key: str) -> float | None:
        values = [v for e in by_jdk.values() if isinstance(v := e.get(key), float)]
        return rounded(geomean(values))

    def lowest(key: str) -> float | None:
        values = [v for e in by_jdk.values() if isinstance(v := e.get(key), float)]
        return rounded(min(values), 4) if values else None

    speedup_thp = across("speedup_thp")
    raw = across("raw_thp_speedup")
    capture = None
    if speedup_thp is not None and raw is not None and raw > 1.0:
        capture = round((speedup_thp - 1.0) / (raw - 1.0), 3)
    print(json.dumps({
        "speedup_thp": speedup_thp,
        "speedup_pool": across("speedup_pool"),
        "speedup_collapse": across("speedup_collapse"),
        "heap_hugepage_fraction_process": lowest("heap_hugepage_fraction_process"),
        "raw_thp_speedup": raw,
        "thp_gain_captured": capture,  # (speedup_thp - 1) / (raw_thp_speedup - 1)
        "collapse_fraction_before": lowest("collapse_fraction_before"),
        "collapse_fraction_after": lowest("collapse_fraction_after"),
        **(vm or {}),
        "by_jdk": by_jdk,
        "runs": runs_per,
        "quick": quick,
        "heap_mb": sizes.heap_mb,
        "thp_enabled": thp_enabled,
        "kernel": os.uname().release,
        "cpus": os.cpu_count(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }))


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed run still gives the pool back
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds of every configuration (default 3)")
    parser.add_argument("--quick", action="store_true", help="one round, smaller heap and data")
    parser.add_argument("--jdk", action="append", type=int, help="feature release (default: 17 and 25 where present)")
    parser.add_argument("--from-log", type=Path, metavar="STDERR", help="summarize the rounds an earlier run printed")
    parser.add_argument("--vm", action="store_true",
                        help="also the shares in a VM (guest heap, guest RAM; booted cold and restored)")
    parser.add_argument("--vm-only", action="store_true", help="only the shares in a VM")
    parser.add_argument("--hold-lock", action="store_true",
                        help=f"hold {LOCK} for the whole run, not one JVM at a time (a busy queue of other "
                             "benchmarks then cannot come in between)")
    args = parser.parse_args()
    with bench_lock() if args.hold_lock else contextlib.nullcontext():
        measure(args)


def measure(args: argparse.Namespace) -> None:
    vm = vm_shares() if args.vm or args.vm_only else None
    if args.vm_only:
        print(json.dumps(vm))
        return
    sizes = QUICK if args.quick else FULL
    runs_per = 1 if args.quick else args.runs
    if args.from_log is not None:
        runs = from_log(args.from_log)
        features = sorted({r.jdk for r in runs})
        rounds = min((sum(1 for r in runs if r.jdk == f and r.config == "off") for f in features), default=0)
        summarize(runs, features, rounds, args.quick, sizes, read_kernel().thp_enabled, vm)
        return

    subprocess.run([sys.executable, "-m", "examples.build", "--quiet"], cwd=ROOT, check=True)
    wanted = args.jdk or [17, 25]
    jdks = {}
    for found in find_all():
        if found.feature in wanted and found.feature not in jdks:
            jdks[found.feature] = found.tool("java")
    if not jdks:
        raise SystemExit(f"no JDK {wanted} found")
    kernel = read_kernel()
    print(f"host: {os.uname().release}, THP enabled={kernel.thp_enabled} shmem={kernel.shmem_enabled}; "
          f"JDKs {sorted(jdks)}; heap {sizes.heap_mb} MB, array {sizes.array_mb} MB, graph {sizes.graph_mb} MB",
          file=sys.stderr)

    planned = HugePages("pool", dynamic_heap=False, kernel=KernelPages(pool_free_pages=1 << 30)).plan(
        machine(17, sizes))
    pages = planned.pool_pages  # what the policy asks of the pool (heap, code cache, bitmaps)
    all_runs: list[Run] = []
    with pool(pages) as have_pool:
        configs = [c for c in CONFIGS if c != "pool" or have_pool]
        for i in range(runs_per):
            for feature, java in sorted(jdks.items()):
                order = configs[i % len(configs):] + configs[:i % len(configs)]  # rotate: no config always first
                for config in order:
                    run = run_one(java, feature, config, sizes)
                    all_runs.append(run)
                    extra = (f" (collapse {run.share_before:.0%} -> {run.share:.0%} in {run.collapse_s:.2f}s, "
                             f"longest step {run.longest_step_ms:.0f} ms)" if run.collapse_s is not None else "")
                    print(f"round {i + 1} JDK {feature} {config:<8} {run.ns:8.2f} ns/access "
                          f"(array {run.workloads.get('array', 0):.2f}, graph {run.workloads.get('graph', 0):.2f}) "
                          f"heap on huge pages {run.share:.0%}{extra}", file=sys.stderr)
                    for line in run.events:
                        print(f"    {line}", file=sys.stderr)

    summarize(all_runs, sorted(jdks), runs_per, args.quick, sizes, kernel.thp_enabled, vm)


if __name__ == "__main__":
    main()
