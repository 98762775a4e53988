"""The startup-priority policy (gc_hooks/startup_priority.py: C2 on idle CPU time while C1 is busy at
start-up) against the JDK's own scheduling (`--startup-priority off`), on the process target, in one run.

Interleaved run by run, so the machine's drift hits both alike:

  hellos    the JVM language hellos of examples/lang (output checked against expected.json), without
            and with the archive (the default, made after the warm-up run): median whole run, off / on
            (> 1: the policy is faster)
  compute   examples/compute on 2 threads for 6 s, CPU-bound from its start: rounds in all and in the
            last half, on / off (< 1 would be the policy's cost to a workload that needs C2 at once)
  jitstress examples/jitstress: 3 threads through freshly loaded classes (C1 busy, every CPU wanted):
            whole run, off / on
  services  time to the first HTTP answer of examples/httpserver and Jetty, off / on
  launcher  the Clojure hello with the archive, beside Debian's `clojure` (what issue 17 compares)

Last line JSON. The process target only: the guest JVM runs C1 alone under TCG (kernel/vm/qemu.py),
so in a VM here the policy finds no C2 thread and does nothing.

    flock /tmp/osv-bench.lock .venv/bin/python benchmarks/startup_priority.py [--runs 5] [--jdk 25]
        [--langs clojure,groovy,jruby,scala,kotlin] [--no-services]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

import trainings
from first_answer import first_answer, services
from startup_archive import ARGS, ENV, HELLOS, LANG_DIR, OSV, ROOT, checked_run, ratio

COMPUTE = ROOT / "examples" / "compute" / "compute.jar"
JITSTRESS = ROOT / "examples" / "jitstress" / "jitstress.jar"
COMPUTE_LINE = re.compile(r"compute: (\d+) rounds in [\d.]+ s, (\d+) in the last half")
JITSTRESS_LINE = re.compile(r"^jitstress: 12 rounds on 3 threads, checksum -?\d+$", re.M)
SWITCH = {"on": ("--startup-priority", "on"), "off": ("--startup-priority", "off")}


def hello_argv(lang: str, jdk: str, priority: str, archive: bool) -> list[str]:
    env_opts = [opt for key, value in ENV.items() for opt in ("-e", f"{key}={value}")]
    archive_opt = [] if archive else ["--no-startup-archive"]  # the archive is the default
    return [OSV, "run", "--target", "process", "--jdk", jdk, *archive_opt, *SWITCH[priority], *env_opts,
            *HELLOS[lang].osv_app, *ARGS]


def checked_stdout(argv: list[str], expected: re.Pattern[str]) -> re.Match[str]:
    """Run `argv`; the match of `expected` in its output (a failed run or another output ends the benchmark)."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    trainings.settle()
    found = expected.search(proc.stdout)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"{' '.join(argv)}: exit {proc.returncode}\n{proc.stdout[-800:]}\n{proc.stderr[-800:]}")
    return found


def compute_rounds(jdk: str, priority: str) -> tuple[int, int]:
    found = checked_stdout([OSV, "run", "--target", "process", "--jdk", jdk, *SWITCH[priority], str(COMPUTE), "6", "2"],
                           COMPUTE_LINE)
    return int(found[1]), int(found[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jdk", default="25")
    parser.add_argument("--langs", default=",".join(HELLOS))
    parser.add_argument("--no-services", action="store_true", help="skip the first-answer part")
    args = parser.parse_args()
    langs = [name.strip() for name in args.langs.split(",") if name.strip()]
    unknown = [name for name in langs if name not in HELLOS]
    if unknown:
        raise SystemExit(f"unknown --langs {', '.join(unknown)} (known: {', '.join(HELLOS)})")
    subprocess.run([sys.executable, "-m", "examples.build", "--quiet"], cwd=ROOT, check=True)
    expected = {name: json.loads((LANG_DIR / name / "expected.json").read_text()) for name in langs}
    result: dict[str, object] = {"jdk": args.jdk, "runs": args.runs, "cpus": os.cpu_count()}

    print("warming up: archives trained (one run each)", file=sys.stderr)
    for name in langs:
        for archive in (False, True):
            checked_run(hello_argv(name, args.jdk, "on", archive), name, expected[name])
    runs: dict[tuple[str, bool, str], list[float]] = {}
    launcher: list[float] = []
    for round_no in range(1, args.runs + 1):
        for name in langs:
            line = []
            for archive in (False, True):
                for priority in ("off", "on"):
                    seconds, _ = checked_run(hello_argv(name, args.jdk, priority, archive), name, expected[name])
                    runs.setdefault((name, archive, priority), []).append(seconds)
                    line.append(f"{'archive ' if archive else ''}{priority} {seconds:.2f}s")
            if name == "clojure":
                seconds, _ = checked_run([*HELLOS[name].launcher, *ARGS], "clojure launcher", expected[name])
                launcher.append(seconds)
                line.append(f"`clojure` {seconds:.2f}s")
            print(f"round {round_no} {name}: " + "  ".join(line), flush=True)
    print(f"\nhellos, medians of {args.runs} whole runs (s), JDK {args.jdk}: off -> on (off / on)")
    for name in langs:
        cells = []
        for archive in (False, True):
            off, on = runs[name, archive, "off"], runs[name, archive, "on"]
            key = f"{name}{'_archive' if archive else ''}"
            result[f"{key}_off_s"] = round(statistics.median(off), 3)
            result[f"{key}_on_s"] = round(statistics.median(on), 3)
            result[f"{key}_speedup"] = ratio(off, on)
            cells.append(f"{'with archive' if archive else 'no archive'} {statistics.median(off):.3f} -> "
                         f"{statistics.median(on):.3f} ({ratio(off, on)}x)")
        print(f"  {name:<8} " + "   ".join(cells))
    if launcher:
        on, off = runs["clojure", True, "on"], runs["clojure", True, "off"]
        result["clojure_launcher_s"] = round(statistics.median(launcher), 3)
        result["clojure_process_vs_host_launcher"] = ratio(launcher, on)
        result["clojure_process_vs_host_launcher_priority_off"] = ratio(launcher, off)
        print(f"  clojure with the archive vs `clojure` ({statistics.median(launcher):.3f} s): "
              f"{ratio(launcher, on)}x faster (policy off: {ratio(launcher, off)}x)")

    # a warm-up run of each workload first: its archive (the default) is made after it, so that every
    # measured run, off and on alike, starts from it
    compute_rounds(args.jdk, "on")
    compute: dict[str, list[tuple[int, int]]] = {"on": [], "off": []}
    for round_no in range(1, max(3, args.runs // 2) + 1):
        for priority in ("off", "on"):
            compute[priority].append(compute_rounds(args.jdk, priority))
        print(f"round {round_no} compute: off {compute['off'][-1]}  on {compute['on'][-1]} (rounds, last half)",
              flush=True)
    total = {p: statistics.median(r[0] for r in compute[p]) for p in compute}
    late = {p: statistics.median(r[1] for r in compute[p]) for p in compute}
    result["compute_rounds_on_vs_off"] = round(total["on"] / total["off"], 3)
    result["compute_last_half_on_vs_off"] = round(late["on"] / late["off"], 3)
    print(f"compute, medians: rounds off {total['off']:.0f} on {total['on']:.0f} "
          f"({result['compute_rounds_on_vs_off']}x), last half off {late['off']:.0f} on {late['on']:.0f} "
          f"({result['compute_last_half_on_vs_off']}x)")

    jitstress_argv = [OSV, "run", "--target", "process", "--jdk", args.jdk, str(JITSTRESS)]
    checked_stdout(jitstress_argv, JITSTRESS_LINE)  # the warm-up run
    stress: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(args.runs):
        for priority in ("off", "on"):
            argv = [*jitstress_argv[:-1], *SWITCH[priority], str(JITSTRESS)]
            start = time.monotonic()
            checked_stdout(argv, JITSTRESS_LINE)
            stress[priority].append(time.monotonic() - start)
    result["jitstress_off_s"] = round(statistics.median(stress["off"]), 3)
    result["jitstress_on_s"] = round(statistics.median(stress["on"]), 3)
    result["jitstress_speedup"] = ratio(stress["off"], stress["on"])
    print(f"jitstress, medians: off {result['jitstress_off_s']} s, on {result['jitstress_on_s']} s "
          f"({result['jitstress_speedup']}x)", flush=True)

    if not args.no_services:
        for name, app in services().items():
            first_answer(args.jdk, app, "--target", "process")  # the warm-up run
            answers: dict[str, list[float]] = {"off": [], "on": []}
            for _ in range(args.runs):
                for priority in ("off", "on"):
                    answers[priority].append(first_answer(args.jdk, app, "--target", "process", *SWITCH[priority]))
            result[f"{name}_first_answer_off_s"] = round(statistics.median(answers["off"]), 3)
            result[f"{name}_first_answer_on_s"] = round(statistics.median(answers["on"]), 3)
            result[f"{name}_first_answer_speedup"] = ratio(answers["off"], answers["on"])
            print(f"{name} first answer, medians: off {statistics.median(answers['off']):.3f} s, on "
                  f"{statistics.median(answers['on']):.3f} s ({result[f'{name}_first_answer_speedup']}x)", flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
