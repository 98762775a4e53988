"""How a restored machine's run pays for the size of the app: the same hello jar with 0, 8 and 32 MB
of incompressible data stored in it, run through `osv-java run`, in one run.

A machine restored from its runtime's boot snapshot (or started JVM's) booted without the app: the
host sends the app's files after the restore on the control port, PID 1 reads them into one buffer
and unpacks them (kernel/guest/control.py, kernel/guest/unpack.py) before the JVM starts. Per size:

  whole     the whole default run (the runtime's started JVM restored and handed the app)
  to_exec   with --no-zygote --bootchart: from the restore until the JVM's exec (the app's bytes
            sent and unpacked, then PID 1 starts the JVM)

The 0 MB jar is the baseline: `delivery_mb_per_s` is the bytes added over the to_exec time added.
Runs alternate sizes so drift hits all alike; medians of --runs. The last line is JSON. Hold the
bench lock on a shared machine:

    flock /tmp/osv-bench.lock .venv/bin/python benchmarks/app_delivery.py [--runs 3] [--jdk 17]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OSV = str(Path(sys.executable).parent / "osv-java")
HELLO = ROOT / "examples/hello/hello.jar"
SIZES_MB = (0, 8, 32)
MARK = re.compile(r"^\s+(\w+)\s+([\d.]+)\s+\(\+", re.M)


def padded_jar(folder: Path, megabytes: int) -> Path:
    """hello.jar plus `megabytes` of random bytes stored uncompressed (an app's resources, say)."""
    jar = folder / f"hello-{megabytes}mb.jar"
    shutil.copyfile(HELLO, jar)
    if megabytes:
        with zipfile.ZipFile(jar, "a", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr("blob.bin", os.urandom(megabytes << 20))
    return jar


def run(jdk: str, jar: Path, *options: str) -> tuple[float, dict[str, float]]:
    start = time.monotonic()
    proc = subprocess.run([OSV, "run", "--jdk", jdk, *options, str(jar)], capture_output=True, cwd=ROOT,
                          timeout=600, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0 or not proc.stdout.startswith(b"Hello from osv-java!"):
        raise SystemExit(f"{jar.name} {' '.join(options)}: exit {proc.returncode}\n{proc.stderr.decode()[-1500:]}")
    return elapsed, {name: float(at) for name, at in MARK.findall(proc.stderr.decode())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jdk", default="17")
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "examples.build", "--quiet"], cwd=ROOT, check=True)
    folder = Path(tempfile.mkdtemp(prefix="osv-bench-delivery-"))
    try:
        jars = {size: padded_jar(folder, size) for size in SIZES_MB}
        print("warming up: images, the boot snapshot, the started JVM's", file=sys.stderr)
        for jar in jars.values():
            for _ in range(3):
                run(args.jdk, jar)
            run(args.jdk, jar, "--no-zygote", "--bootchart")
        whole: dict[int, list[float]] = {size: [] for size in SIZES_MB}
        to_exec: dict[int, list[float]] = {size: [] for size in SIZES_MB}
        for i in range(args.runs):
            for size, jar in jars.items():
                whole[size].append(run(args.jdk, jar)[0])
                _, marks = run(args.jdk, jar, "--no-zygote", "--bootchart")
                if "snapshot_restored" not in marks or "jvm_exec" not in marks:
                    raise SystemExit(f"{jar.name}: not restored from the boot snapshot: {marks}")
                to_exec[size].append(marks["jvm_exec"] - marks["snapshot_restored"])
            print(f"round {i + 1}: " + "  ".join(f"{s} MB {whole[s][-1]:.2f}s ({to_exec[s][-1]:.2f}s to exec)"
                                                 for s in SIZES_MB), file=sys.stderr)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    medians = {size: (round(statistics.median(whole[size]), 3), round(statistics.median(to_exec[size]), 3))
               for size in SIZES_MB}
    base_whole, base_exec = medians[0]
    biggest = SIZES_MB[-1]
    added = max(medians[biggest][1] - base_exec, 1e-3)
    for size, (w, e) in medians.items():
        print(f"{size:>3} MB: whole run {w:.3f}s ({w / base_whole:.2f}x the bare hello), "
              f"restore to exec {e:.3f}s (+{e - base_exec:.3f}s)")
    rate = round(biggest / added, 1)
    print(f"the app's bytes reach the guest at about {rate} MB/s (the {biggest} MB jar against the bare one)")
    print(json.dumps({
        "delivery_mb_per_s": rate,
        **{f"whole_run_{size}mb_s": w for size, (w, _) in medians.items()},
        **{f"restore_to_exec_{size}mb_s": e for size, (_, e) in medians.items()},
        f"whole_run_{biggest}mb_ratio_to_bare": round(medians[biggest][0] / base_whole, 3),
        "jdk": args.jdk, "runs": args.runs, "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
