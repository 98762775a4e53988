"""Whether a guest kernel that patches its own code while both vCPUs run hangs, by TCG setting.

The kernel switches a static key by patching every site that tests it (int3 on the first byte, the
new tail, the new first byte). Under QEMU 7.2's multi-threaded TCG a vCPU that translates a site
while it is being patched can keep int3 with the new tail as a valid translation, and then traps
there for ever (kernel.vm.qemu.ONE_VCPU_BOOT says how). osv-java keeps the kernel's own start-up
patching on one vCPU; this measures the hazard that is left to a run that switches a hot key
itself: benchmarks/java/StaticKeyToggler.java switches sched_schedstats --switches times while two
threads keep the scheduler busy, in VMs under multi-threaded TCG and under `thread=single`
(OSV_JAVA_TCG_ACCEL), alternating. A run that does not end within --timeout is a hang.

    .venv/bin/python benchmarks/kernel_patching.py [--runs 3] [--switches 2000] [--timeout 240]

The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kernel.vm import qemu  # noqa: E402

OSV = str(Path(sys.executable).parent / "osv-java")
SETTINGS = {"multi-threaded": "", "thread=single": "thread=single"}


def build(work: Path) -> Path:
    """The toggler as a jar."""
    classes = work / "classes"
    source = ROOT / "benchmarks/java/StaticKeyToggler.java"
    subprocess.run(["javac", "--release", "17", "-d", str(classes), str(source)], check=True)
    (work / "manifest.txt").write_text("Main-Class: StaticKeyToggler\n")
    jar = work / "toggler.jar"
    subprocess.run(["jar", "cfm", str(jar), str(work / "manifest.txt"), "-C", str(classes), "."], check=True)
    return jar


def one_run(jar: Path, jdk: str, accel: str, switches: int, timeout: int) -> tuple[str, float]:
    """'done', 'hang' or 'failed', and the run's wall time."""
    env = {**os.environ, qemu.TCG_ACCEL_ENV: accel}
    start = time.monotonic()
    proc = subprocess.run([OSV, "run", "--jdk", jdk, "--timeout", str(timeout), str(jar), str(switches)],
                          capture_output=True, text=True, env=env, check=False)
    took = time.monotonic() - start
    if proc.returncode == 0 and f"done {switches}" in proc.stdout:
        return "done", took
    if "timed out" in proc.stderr or "--timeout" in proc.stderr:
        return "hang", took
    print(f"  failed (exit {proc.returncode}): {(proc.stdout + proc.stderr)[-300:]!r}", flush=True)
    return "failed", took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per setting (3)")
    parser.add_argument("--switches", type=int, default=2000, help="key switches per run (2000)")
    parser.add_argument("--timeout", type=int, default=240, help="seconds before a run counts as hung (240)")
    parser.add_argument("--jdk", default="17")
    args = parser.parse_args()
    results: dict[str, list[tuple[str, float]]] = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory(prefix="osv-bench-patching-") as work_name:
        jar = build(Path(work_name))
        for n in range(1, args.runs + 1):
            for name, accel in SETTINGS.items():
                outcome, took = one_run(jar, args.jdk, accel, args.switches, args.timeout)
                results[name].append((outcome, took))
                print(f"run {n}: {name}: {outcome} after {took:.1f} s", flush=True)
    summary = {}
    for name, runs in results.items():
        hangs = sum(outcome == "hang" for outcome, _ in runs)
        done = [took for outcome, took in runs if outcome == "done"]
        print(f"{name}: {hangs} hung of {len(runs)} runs of {args.switches} switches"
              + (f"; the others took {statistics.median(done):.1f} s (median)" if done else ""))
        summary[name] = {"runs": len(runs), "hangs": hangs, "failed": sum(o == "failed" for o, _ in runs),
                         "median_done_s": round(statistics.median(done), 1) if done else None}
    print(json.dumps({"switches": args.switches, "timeout_s": args.timeout, "settings": summary}))


if __name__ == "__main__":
    main()
