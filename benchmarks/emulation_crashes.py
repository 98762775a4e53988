"""How often a guest JVM dies in its own JIT code under software emulation, with and without the fix.

Under QEMU's multi-threaded TCG, osv-java starts the guest JVM with kernel.vm.qemu.TCG_JVM_OPTIONS (see
there why). This runs JIT-heavy programs in VMs with those options ("fixed") and without them
("unfixed": the hidden environment variable OSV_JAVA_TCG_JVM_OPTIONS=off), interleaved, and counts
the runs whose JVM crashed (exit status 134 or 139, or an hs_err report):

jitstress: examples/jitstress, compiled code replaced and deoptimised while three threads call it;
compute:   examples/compute, two threads of hot loops, sorting and string hashing for 4 s;
scala:     examples/lang/scala/main.scala, the Scala compiler compiling and running a script.

--runs N is the number of fixed runs per JDK (default 200), spread over the programs 4:3:1 (the
Scala compiler takes 25 s a run under emulation); --unfixed-runs M the unfixed runs per JDK, same
mix (the unfixed rate is high: fewer runs show it). Each JDK of --jdks (17 and 25) runs when
installed, else is skipped with the reason.

The price of the fix, measured in the same run: hello's median time from its boot snapshot, and
examples/compute's steady-state throughput (rounds in the second half of its time) for a short run
(4 s: JIT warm-up dominates) and a long one (--long-seconds, 40 s: C2's code in place), fixed vs
unfixed, and the long run also under `-accel tcg,thread=single` with C2 (the other safe setting).
"cost_ratio" is unfixed / fixed throughput for the long run (above 1: the fix slows compute down).

--experiments instead runs the crash workload (jitstress) --runs times per JDK under each of the
settings that narrow the cause down (tiered levels, C2 alone, OSR, code cache layout, vCPUs, guest
CPU, TCG's threads), each against the unfixed JVM, and prints the crashes of each.

    .venv/bin/python benchmarks/emulation_crashes.py [--runs 200] [--unfixed-runs 40] [--jdks 17,25]
    .venv/bin/python benchmarks/emulation_crashes.py --experiments --runs 10 --jdks 17

The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jvmbridge import jdk as jdks  # noqa: E402
from jvmbridge.errors import OsvJavaError  # noqa: E402
from kernel import linux  # noqa: E402
from kernel.vm import qemu  # noqa: E402

OSV = str(Path(sys.executable).parent / "osv-java")
HELLO = "examples/hello/hello.jar"
COMPUTE = "examples/compute/compute.jar"
PROGRAMS = {
    # name: (osv-java run arguments, expected exit status, what stdout must contain)
    "jitstress": (["examples/jitstress/jitstress.jar"], 0, "checksum 8122208049365433344"),
    "compute": ([COMPUTE, "4"], 0, "compute: "),
    "scala": (["-e", "GREETING=Hello", "examples/lang/scala/main.scala", "world"], 3, "Hello, world! (Scala)"),
}
MIX = ["jitstress", "compute", "jitstress", "compute", "jitstress", "scala", "jitstress", "compute"]
HELLO_RUNS = 5
UNFIXED = {qemu.TCG_JVM_OPTIONS_ENV: "off"}
SINGLE_THREAD_TCG = {**UNFIXED, qemu.TCG_ACCEL_ENV: "thread=single"}

# The experiments: each runs the unfixed JVM (C1 and C2, tiered) with one thing changed.
EXPERIMENTS: dict[str, tuple[list[str], dict[str, str]]] = {
    # name: (osv-java run options, environment)
    "unfixed (tiered C1+C2)": ([], {}),
    "C1 alone (TieredStopAtLevel=1, the fix)": (["--jvm-opt=-XX:TieredStopAtLevel=1"], {}),
    "C1 with profiling, no C2 (TieredStopAtLevel=3)": (["--jvm-opt=-XX:TieredStopAtLevel=3"], {}),
    "C2 alone (-TieredCompilation)": (["--jvm-opt=-XX:-TieredCompilation"], {}),
    "no on-stack replacement": (["--jvm-opt=-XX:-UseOnStackReplacement"], {}),
    "one code heap (-SegmentedCodeCache)": (["--jvm-opt=-XX:-SegmentedCodeCache"], {}),
    "one vCPU": (["--cpus", "1"], {}),
    "guest CPU max": ([], {qemu.TCG_CPU_ENV: "max"}),
    "TCG thread=single": ([], {qemu.TCG_ACCEL_ENV: "thread=single"}),
}


@dataclass(eq=False)
class Tally:
    runs: int = 0
    crashes: int = 0
    failures: int = 0  # runs that failed in another way (wrong output, osv-java error)
    frames: list[str] = field(default_factory=list)


def osv_run(jdk: str, words: list[str], env: dict[str, str], cwd: Path
            ) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    proc = subprocess.run([OSV, "run", "--jdk", jdk, *words], capture_output=True, text=True, timeout=900,
                          cwd=cwd, env={**os.environ, **env}, check=False)
    return proc, time.monotonic() - start


def crash_frame(cwd: Path) -> str | None:
    """The problematic frame of an hs_err report the run left in `cwd` (which it then removes)."""
    frame = None
    for report in sorted(cwd.glob("hs_err_pid*.log")):
        found = re.search(r"# Problematic frame:\n# (.*)", report.read_text(errors="replace"))
        frame = found.group(1) if found else "(no frame in the report)"
        report.unlink()
    return frame


def absolute(words: list[str]) -> list[str]:
    return [str(ROOT / w) if w.startswith("examples/") else w for w in words]


def one_run(jdk: str, name: str, words: list[str], env: dict[str, str], tally: Tally, label: str,
            work: Path) -> None:
    _, status, expected = PROGRAMS[name]
    proc, _ = osv_run(jdk, absolute(words), env, work)
    frame = crash_frame(work)
    tally.runs += 1
    if proc.returncode in (134, 139) or frame is not None or "# A fatal error has been detected" in proc.stdout:
        tally.crashes += 1
        tally.frames.append(frame or f"exit {proc.returncode}")
        print(f"  {label}: JVM CRASH (exit {proc.returncode}) {frame or ''}", flush=True)
    elif proc.returncode != status or expected not in proc.stdout:
        tally.failures += 1
        print(f"  {label}: failed (exit {proc.returncode}): {(proc.stdout + proc.stderr)[-300:]!r}", flush=True)


def compute_rounds(jdk: str, seconds: float, env: dict[str, str], work: Path) -> int | None:
    """Rounds in the second half of a compute run, or None when it did not finish (said)."""
    proc, _ = osv_run(jdk, [str(ROOT / COMPUTE), str(seconds)], env, work)
    crash_frame(work)
    found = re.search(r"compute: \d+ rounds in [\d.]+ s, (\d+) in the last half", proc.stdout)
    if proc.returncode != 0 or found is None:
        print(f"  compute {seconds} s: failed (exit {proc.returncode})", flush=True)
        return None
    return int(found.group(1))


def hello_time(jdk: str, env: dict[str, str], work: Path) -> float:
    proc, seconds = osv_run(jdk, [str(ROOT / HELLO)], env, work)
    if proc.returncode != 0:
        raise SystemExit(f"hello failed ({proc.returncode}): {proc.stderr[-800:]}")
    return seconds


def per_1000(tallies: list[Tally]) -> float:
    runs = sum(t.runs for t in tallies)
    return round(1000 * sum(t.crashes for t in tallies) / runs, 2) if runs else 0.0


def median_or_none(values: list[int | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def crash_runs(jdk: str, programs: list[str], runs: int, unfixed_runs: int, work: Path
               ) -> dict[tuple[str, bool], Tally]:
    """`runs` fixed and `unfixed_runs` unfixed runs of the programs' mix, interleaved."""
    mix = [name for name in MIX if name in programs] or programs
    tallies = {(name, fixed): Tally() for name in programs for fixed in (True, False)}
    every = max(1, round(runs / unfixed_runs)) if unfixed_runs else 0
    done_unfixed = 0
    for i in range(runs):
        name = mix[i % len(mix)]
        words = PROGRAMS[name][0]
        one_run(jdk, name, words, {}, tallies[(name, True)], f"JDK {jdk} {name} fixed", work)
        if every and i % every == 0 and done_unfixed < unfixed_runs:
            unfixed_name = mix[(i // every) % len(mix)]
            one_run(jdk, unfixed_name, PROGRAMS[unfixed_name][0], UNFIXED, tallies[(unfixed_name, False)],
                    f"JDK {jdk} {unfixed_name} unfixed", work)
            done_unfixed += 1
        if (i + 1) % 10 == 0 or i + 1 == runs:
            fixed_n = sum(t.crashes for (_, f), t in tallies.items() if f)
            unfixed_n = sum(t.crashes for (_, f), t in tallies.items() if not f)
            print(f"JDK {jdk}: fixed {i + 1}/{runs} runs, {fixed_n} crashes; unfixed {done_unfixed} runs, "
                  f"{unfixed_n} crashes", flush=True)
    return tallies


def price(jdk: str, long_seconds: float, cost_runs: int, work: Path) -> dict[str, float | None]:
    """The fix's price on this JDK: hello, and short and long compute, fixed vs unfixed (and the long
    one under single-threaded TCG with C2), alternating which goes first."""
    hello: dict[bool, list[float]] = {True: [], False: []}
    for i in range(HELLO_RUNS):
        for fixed in (i % 2 == 0, i % 2 != 0):
            hello[fixed].append(hello_time(jdk, {} if fixed else UNFIXED, work))
    settings = {"fixed": {}, "unfixed": UNFIXED, "single": SINGLE_THREAD_TCG}
    short: dict[str, list[int | None]] = {name: [] for name in ("fixed", "unfixed")}
    long: dict[str, list[int | None]] = {name: [] for name in settings}
    for i in range(cost_runs):
        for name in short:
            short[name].append(compute_rounds(jdk, 4, settings[name], work))
        order = list(settings)[i % 3:] + list(settings)[:i % 3]
        for name in order:
            long[name].append(compute_rounds(jdk, long_seconds, settings[name], work))
        print(f"JDK {jdk}: price {i + 1}/{cost_runs}: short {short}, long {long}", flush=True)
    return {
        "hello_s_fixed": round(statistics.median(hello[True]), 3),
        "hello_s_unfixed": round(statistics.median(hello[False]), 3),
        "short_rounds_fixed": median_or_none(short["fixed"]),
        "short_rounds_unfixed": median_or_none(short["unfixed"]),
        "long_rounds_fixed": median_or_none(long["fixed"]),
        "long_rounds_unfixed": median_or_none(long["unfixed"]),
        "long_rounds_single_thread_tcg": median_or_none(long["single"]),
    }


def experiments(jdk: str, runs: int, work: Path) -> dict[str, Tally]:
    tallies = {name: Tally() for name in EXPERIMENTS}
    for i in range(runs):
        for name, (options, env) in EXPERIMENTS.items():
            words = [*options, *PROGRAMS["jitstress"][0]]
            one_run(jdk, "jitstress", words, {**UNFIXED, **env}, tallies[name], f"JDK {jdk} {name}", work)
        print(f"JDK {jdk}: experiments {i + 1}/{runs}: "
              + ", ".join(f"{t.crashes}" for t in tallies.values()), flush=True)
    return tallies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200,
                        help="fixed runs per JDK (200); runs per setting with --experiments")
    parser.add_argument("--unfixed-runs", type=int, default=40, help="unfixed runs per JDK (40)")
    parser.add_argument("--jdks", default="17,25")
    parser.add_argument("--programs", default=",".join(PROGRAMS))
    parser.add_argument("--long-seconds", type=float, default=40, help="the long compute run (40 s)")
    parser.add_argument("--cost-runs", type=int, default=3, help="compute runs per setting for the price (3)")
    parser.add_argument("--experiments", action="store_true", help="narrow the cause down instead (see above)")
    args = parser.parse_args()
    programs = args.programs.split(",")
    unknown = set(programs) - set(PROGRAMS)
    if unknown:
        parser.error(f"unknown programs: {', '.join(sorted(unknown))} (known: {', '.join(PROGRAMS)})")

    subprocess.run([sys.executable, "-m", "examples.build", "--quiet"], cwd=ROOT, check=True)
    accel = qemu.choose_accel("auto", linux.default_kernel().image)
    print(f"accelerator: {accel}; fix: {' '.join(qemu.TCG_JVM_OPTIONS)} under TCG", file=sys.stderr)
    if accel != "tcg":
        print("note: KVM is in use, where the fix does not apply: both settings run the same", file=sys.stderr)
    jdk_list = []
    for spec in args.jdks.split(","):
        try:
            jdks.select(spec)
            jdk_list.append(spec)
        except OsvJavaError as exc:
            print(f"JDK {spec}: skipped, not installed ({exc.message})", flush=True)

    with tempfile.TemporaryDirectory(prefix="osv-bench-crashes-") as tmp:
        work = Path(tmp)
        for jdk in jdk_list:  # build the images and save the boot snapshots
            hello_time(jdk, {}, work)
            hello_time(jdk, UNFIXED, work)
        if args.experiments:
            report_experiments({jdk: experiments(jdk, args.runs, work) for jdk in jdk_list}, accel)
            return
        tallies = {jdk: crash_runs(jdk, programs, args.runs, args.unfixed_runs, work) for jdk in jdk_list}
        prices = {jdk: price(jdk, args.long_seconds, args.cost_runs, work) for jdk in jdk_list}
    report(tallies, prices, accel, args.long_seconds)


def report(tallies: dict[str, dict[tuple[str, bool], Tally]], prices: dict[str, dict[str, float | None]],
           accel: str, long_seconds: float) -> None:
    print()
    print(f"{'JDK':<4} {'program':<10} {'setting':<8} {'runs':>5} {'crashes':>8} {'per 1000':>9} "
          f"{'other failures':>15}")
    for jdk, by_program in tallies.items():
        for (name, fixed), t in by_program.items():
            print(f"{jdk:<4} {name:<10} {'fixed' if fixed else 'unfixed':<8} {t.runs:>5} {t.crashes:>8} "
                  f"{1000 * t.crashes / max(t.runs, 1):>9.1f} {t.failures:>15}")
    fixed_tallies = [t for by in tallies.values() for (_, f), t in by.items() if f]
    unfixed_tallies = [t for by in tallies.values() for (_, f), t in by.items() if not f]
    print()
    for jdk, p in prices.items():
        print(f"JDK {jdk}: hello from its boot snapshot {p['hello_s_fixed']} s fixed, {p['hello_s_unfixed']} s "
              f"unfixed; compute rounds in the last half, 4 s run: fixed {p['short_rounds_fixed']}, unfixed "
              f"{p['short_rounds_unfixed']}; {long_seconds:g} s run: fixed {p['long_rounds_fixed']}, unfixed "
              f"{p['long_rounds_unfixed']}, C2 under single-threaded TCG {p['long_rounds_single_thread_tcg']}")
    result: dict[str, object] = {
        "crashes_per_1000_fixed": per_1000(fixed_tallies),
        "crashes_per_1000_unfixed": per_1000(unfixed_tallies),
        "runs": sum(t.runs for t in fixed_tallies + unfixed_tallies),
        "runs_fixed": {jdk: sum(t.runs for (_, f), t in by.items() if f) for jdk, by in tallies.items()},
        "crashes_fixed": {jdk: sum(t.crashes for (_, f), t in by.items() if f) for jdk, by in tallies.items()},
        "crashes_unfixed": {jdk: f"{sum(t.crashes for (_, f), t in by.items() if not f)}/"
                            f"{sum(t.runs for (_, f), t in by.items() if not f)}" for jdk, by in tallies.items()},
        "cost_ratio": {jdk: ratio(p["long_rounds_unfixed"], p["long_rounds_fixed"]) for jdk, p in prices.items()},
        "cost_ratio_short_run": {jdk: ratio(p["short_rounds_unfixed"], p["short_rounds_fixed"])
                                 for jdk, p in prices.items()},
        "single_thread_tcg_vs_fixed_long_run": {jdk: ratio(p["long_rounds_single_thread_tcg"], p["long_rounds_fixed"])
                                                for jdk, p in prices.items()},
        "hello_ratio_fixed_vs_unfixed": {jdk: ratio(p["hello_s_fixed"], p["hello_s_unfixed"])
                                         for jdk, p in prices.items()},
        "accel": accel,
    }
    print(json.dumps(result))


def report_experiments(tallies: dict[str, dict[str, Tally]], accel: str) -> None:
    print()
    print(f"{'JDK':<4} {'setting (jitstress, else unfixed)':<48} {'runs':>5} {'crashes':>8} {'other failures':>15}")
    for jdk, by_setting in tallies.items():
        for name, t in by_setting.items():
            print(f"{jdk:<4} {name:<48} {t.runs:>5} {t.crashes:>8} {t.failures:>15}")
            for frame in sorted(set(t.frames)):
                print(f"{'':<6}{t.frames.count(frame)}x {frame}")
    print(json.dumps({"experiments": {jdk: {name: f"{t.crashes}/{t.runs}" for name, t in by.items()}
                                      for jdk, by in tallies.items()}, "accel": accel}))


if __name__ == "__main__":
    main()
