"""How often a guest JVM dies in its own JIT code under software emulation, with and without the fix.

Under QEMU's multi-threaded TCG, osv-java starts the guest JVM with kernel.vm.qemu.TCG_JVM_OPTIONS (see
there why). This runs JIT-heavy programs in VMs with those options and without them (the hidden
environment variable OSV_JAVA_TCG_JVM_OPTIONS=off), alternating, and counts the runs whose JVM
crashed (exit status 134 or 139, or an hs_err report):

jitstress: examples/jitstress, compiled code replaced and deoptimised while three threads call it;
compute:   examples/compute, two threads of hot loops, sorting and string hashing for a fixed time;
scala:     examples/lang/scala/main.scala, the Scala compiler compiling and running a script.

Each JDK of --jdks (17 and 25) runs when installed, else is skipped with the reason. The price of
the fix, measured in the same run: the median boot time of hello from its boot snapshot, and the
compute program's steady-state throughput (rounds in the second half of its time), each fixed vs
unfixed. "cost_ratio" is unfixed throughput / fixed throughput (above 1: the fix slows compute down).

    .venv/bin/python benchmarks/emulation_crashes.py [--runs 200] [--jdks 17,25] [--programs jitstress,compute,scala]

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
PROGRAMS = {
    # name: (osv-java run arguments, expected exit status, what stdout must contain)
    "jitstress": (["examples/jitstress/jitstress.jar"], 0, "checksum 8122208049365433344"),
    "compute": (["examples/compute/compute.jar", "6"], 0, "compute: "),
    "scala": (["-e", "GREETING=Hello", "examples/lang/scala/main.scala", "world"], 3, "Hello, world! (Scala)"),
}
HELLO_RUNS = 5
UNFIXED = {qemu.TCG_JVM_OPTIONS_ENV: "off"}


@dataclass(eq=False)
class Tally:
    runs: int = 0
    crashes: int = 0
    failures: int = 0  # runs that failed in another way (wrong output, osv-java error)
    compute_rounds: list[int] = field(default_factory=list)
    hello_s: list[float] = field(default_factory=list)


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


def one_run(jdk: str, name: str, fixed: bool, tally: Tally, work: Path) -> None:
    words, status, expected = PROGRAMS[name]
    absolute = [str(ROOT / w) if w.startswith("examples/") else w for w in words]
    proc, _ = osv_run(jdk, absolute, {} if fixed else UNFIXED, work)
    frame = crash_frame(work)
    tally.runs += 1
    label = f"JDK {jdk} {name} {'fixed' if fixed else 'unfixed'}"
    if proc.returncode in (134, 139) or frame is not None or "# A fatal error has been detected" in proc.stdout:
        tally.crashes += 1
        print(f"  {label}: JVM CRASH (exit {proc.returncode}) {frame or ''}", flush=True)
    elif proc.returncode != status or expected not in proc.stdout:
        tally.failures += 1
        print(f"  {label}: failed (exit {proc.returncode}): {(proc.stdout + proc.stderr)[-300:]!r}", flush=True)
    elif name == "compute":
        tally.compute_rounds.append(int(proc.stdout.split(", ")[1].split()[0]))


def hello_time(jdk: str, fixed: bool, work: Path) -> float:
    proc, seconds = osv_run(jdk, [str(ROOT / HELLO)], {} if fixed else UNFIXED, work)
    if proc.returncode != 0:
        raise SystemExit(f"hello failed ({proc.returncode}): {proc.stderr[-800:]}")
    return seconds


def per_1000(tallies: list[Tally]) -> float:
    runs = sum(t.runs for t in tallies)
    return round(1000 * sum(t.crashes for t in tallies) / runs, 2) if runs else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="runs of each program, JDK and setting (200)")
    parser.add_argument("--jdks", default="17,25")
    parser.add_argument("--programs", default=",".join(PROGRAMS))
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

    tallies: dict[tuple[str, str, bool], Tally] = {}
    with tempfile.TemporaryDirectory(prefix="osv-bench-crashes-") as tmp:
        work = Path(tmp)
        for jdk in jdk_list:
            for fixed in (True, False):  # build the images and save the boot snapshots
                hello_time(jdk, fixed, work)
                hello_time(jdk, fixed, work)
            for name in programs:
                for fixed in (True, False):
                    tallies[(jdk, name, fixed)] = Tally()
            for i in range(args.runs):
                for name in programs:
                    for fixed in (i % 2 == 0, i % 2 != 0):  # alternate which goes first
                        one_run(jdk, name, fixed, tallies[(jdk, name, fixed)], work)
                if i < HELLO_RUNS:
                    for fixed in (True, False):
                        tallies[(jdk, programs[0], fixed)].hello_s.append(hello_time(jdk, fixed, work))
                if (i + 1) % 10 == 0 or i + 1 == args.runs:
                    fixed_n = sum(t.crashes for (j, _, f), t in tallies.items() if j == jdk and f)
                    unfixed_n = sum(t.crashes for (j, _, f), t in tallies.items() if j == jdk and not f)
                    print(f"JDK {jdk}: {i + 1}/{args.runs} runs, crashes fixed {fixed_n}, unfixed {unfixed_n}",
                          flush=True)

    print()
    print(f"{'JDK':<4} {'program':<10} {'setting':<8} {'runs':>5} {'crashes':>8} {'per 1000':>9} "
          f"{'other failures':>15}")
    for (jdk, name, fixed), t in tallies.items():
        print(f"{jdk:<4} {name:<10} {'fixed' if fixed else 'unfixed':<8} {t.runs:>5} {t.crashes:>8} "
              f"{1000 * t.crashes / max(t.runs, 1):>9.1f} {t.failures:>15}")
    fixed_tallies = _fixed(tallies, True)
    unfixed_tallies = _fixed(tallies, False)
    result: dict[str, object] = {
        "crashes_per_1000_fixed": per_1000(fixed_tallies),
        "crashes_per_1000_unfixed": per_1000(unfixed_tallies),
        "runs": sum(t.runs for t in tallies.values()),
        "cost_ratio": None,
    }
    fixed_rounds = [r for t in fixed_tallies for r in t.compute_rounds]
    unfixed_rounds = [r for t in unfixed_tallies for r in t.compute_rounds]
    if fixed_rounds and unfixed_rounds:
        cost = statistics.median(unfixed_rounds) / statistics.median(fixed_rounds)
        result["cost_ratio"] = round(cost, 3)
        print(f"compute, rounds in the steady-state half: fixed median {statistics.median(fixed_rounds)}, "
              f"unfixed {statistics.median(unfixed_rounds)}: cost ratio {cost:.2f}")
    fixed_hello = [s for t in fixed_tallies for s in t.hello_s]
    unfixed_hello = [s for t in unfixed_tallies for s in t.hello_s]
    if fixed_hello and unfixed_hello:
        result["hello_s_fixed"] = round(statistics.median(fixed_hello), 3)
        result["hello_s_unfixed"] = round(statistics.median(unfixed_hello), 3)
        print(f"hello from its boot snapshot: fixed median {result['hello_s_fixed']} s, "
              f"unfixed {result['hello_s_unfixed']} s")
    result["accel"] = accel
    result["jdks"] = jdk_list
    print(json.dumps(result))


def _fixed(tallies: dict[tuple[str, str, bool], Tally], fixed: bool) -> list[Tally]:
    return [t for (_, _, f), t in tallies.items() if f == fixed]


if __name__ == "__main__":
    main()
