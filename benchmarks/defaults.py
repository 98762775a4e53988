"""How far the default GC settings are from the best found, per workload, in one run.

For each workload in examples/ (gcalloc, gclive, gcrequests) runs `osv-java gc-experiment` over the
collectors and two heap sizes (process target, interleaved, --repeat 5 after a warm-up round) and
prints the default's median on the workload's objective, the best configuration's, and their ratio
(> 1: the best is better, whichever way the figure goes) with its 95 % interval. The last line is
JSON. `--from DIR` reads reports written before (DIR/<workload>/results.json) instead of running.

    .venv/bin/python benchmarks/defaults.py [--repeat 5] [--jdks 17,25] [--from DIR] [-o DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from gc_hooks.experiment.report import pct_range

ROOT = Path(__file__).resolve().parent.parent
OSV = str(Path(sys.executable).parent / "osv-java")

# workload -> (its arguments, heaps to try, the objective it is judged on)
WORKLOADS = {
    "gcalloc": ([], "64m,512m", "throughput"),
    "gclive": ([], "256m,1g", "throughput"),
    "gcrequests": ([], "128m,512m", "latency"),
}


def run(name: str, folder: Path, repeat: int, jdks: str | None) -> None:
    args, heaps, objective = WORKLOADS[name]
    argv = [OSV, "gc-experiment", f"examples/{name}/{name}.jar", *args, "--heaps", heaps, "--repeat", str(repeat),
            "--warmup", "1", "--objective", objective, "-o", str(folder)]
    if jdks:
        argv += ["--jdks", jdks]
    subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def summary(name: str, data: dict) -> dict:
    objective = WORKLOADS[name][2]
    judged = data["objectives"][objective]
    configs = {c["key"]: c for c in data["configs"]}
    metric = judged["metric"]
    default = configs[data["default"]]["metrics"].get(metric, {}).get("median")
    best_key = judged["best"]
    best = configs[best_key]["metrics"][metric]["median"] if best_key else None
    higher = metric.endswith("_per_s")
    ratio = None
    if default and best:
        ratio = best / default if higher else default / best
    imp = judged.get("improvement_pct")
    return {"workload": name, "objective": objective, "metric": metric, "default": default, "best": best_key,
            "best_value": best, "ratio": ratio, "significant": judged.get("significant", False),
            "improvement_pct": imp, "recommendation": data["recommendation"],
            # other work on the machine widens every interval: the figures need it beside them
            "load_max": data["meta"].get("load_max"), "cpus": data["meta"].get("cpus"),
            "seconds": data["meta"].get("seconds")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--jdks", default=None)
    parser.add_argument("--from", dest="source", type=Path, default=None, help="reports written before")
    parser.add_argument("-o", "--output", type=Path, default=None, help="keep the reports here")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    options = parser.parse_args()
    base = options.source or options.output or Path(tempfile.mkdtemp(prefix="osv-java-defaults-"))
    rows = []
    for name in options.workloads.split(","):
        folder = base / name
        if options.source is None:
            run(name, folder, options.repeat, options.jdks)
        row = summary(name, json.loads((folder / "results.json").read_text()))
        rows.append(row)
        imp = row["improvement_pct"]
        span = f" (95 % CI {pct_range(imp['low'], imp['high'])})" if imp else ""
        ratio = f"{row['ratio']:.2f}x" if row["ratio"] else "–"
        print(f"{name:<11} {row['metric']:<16} default {row['default']:.4g}  best {row['best']} "
              f"{row['best_value']:.4g}  ratio {ratio}{span}{'' if row['significant'] else ' (within noise)'}"
              f"  load up to {row['load_max']} on {row['cpus']} CPUs")
    print(json.dumps({"workloads": rows, "reports": str(base)}))


if __name__ == "__main__":
    main()
