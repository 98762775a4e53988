"""Attach round trip and hsperfdata read cost, ours vs the JDK's jcmd and jstat, in the same run.

Starts one idle JVM, then times: `jcmd PID VM.version` vs our attach client (a fresh AttachedJvm
each time, and a reused one), and `jstat -gc PID` vs PerfData.stats() (mapping reused, and a fresh
open each time). Prints medians and ratios; the last line is JSON.
Usage: python benchmarks/bridge.py [--jdk 17] [--repeat 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jvmbridge.attach import attach  # noqa: E402
from jvmbridge.hsperf import PerfData  # noqa: E402
from jvmbridge.jdk import select  # noqa: E402

IDLE = "public class Idle { public static void main(String[] a) throws Exception {"
IDLE += ' System.out.println("ready"); System.out.flush(); while (System.in.read() != -1) {} } }'


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jdk", default="17")
    parser.add_argument("--repeat", type=int, default=15)
    opts = parser.parse_args()
    jdk = select(opts.jdk)
    scratch = tempfile.TemporaryDirectory(prefix="osv-java-bench-bridge-")
    work = Path(scratch.name)
    (work / "Idle.java").write_text(IDLE)
    subprocess.run([str(jdk.tool("javac")), "-d", str(work), str(work / "Idle.java")], check=True)
    proc = subprocess.Popen(
        [str(jdk.tool("java")), "-cp", str(work), "Idle"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        pid = proc.pid
        vm = attach(pid)
        pd = PerfData.open(pid)

        def jcmd() -> None:
            subprocess.run([str(jdk.tool("jcmd")), str(pid), "VM.version"], capture_output=True, check=True)

        def jstat() -> None:
            subprocess.run([str(jdk.tool("jstat")), "-gc", str(pid)], capture_output=True, check=True)

        def fresh_perf() -> None:
            with PerfData.open(pid) as p:
                p.stats()

        figures = {
            "jcmd_VM.version_ms": median_seconds(jcmd, opts.repeat),
            "attach_fresh_VM.version_ms": median_seconds(lambda: attach(pid).jcmd("VM.version"), opts.repeat),
            "attach_reused_VM.version_ms": median_seconds(lambda: vm.jcmd("VM.version"), opts.repeat * 10),
            "jstat_gc_ms": median_seconds(jstat, opts.repeat),
            "hsperf_open_and_stats_ms": median_seconds(fresh_perf, opts.repeat * 10),
            "hsperf_stats_ms": median_seconds(pd.stats, opts.repeat * 100),
            "hsperf_one_counter_ms": median_seconds(lambda: pd.long("sun.rt.safepoints"), opts.repeat * 100),
        }
        pd.close()
    finally:
        proc.kill()
        proc.wait()
    figures = {k: round(v * 1e3, 4) for k, v in figures.items()}
    ratios = {
        "jcmd_over_attach_fresh": round(
            figures["jcmd_VM.version_ms"] / figures["attach_fresh_VM.version_ms"], 1
        ),
        "jcmd_over_attach_reused": round(
            figures["jcmd_VM.version_ms"] / figures["attach_reused_VM.version_ms"], 1
        ),
        "jstat_over_hsperf_stats": round(figures["jstat_gc_ms"] / figures["hsperf_stats_ms"], 1),
        "jstat_over_hsperf_open_and_stats": round(
            figures["jstat_gc_ms"] / figures["hsperf_open_and_stats_ms"], 1
        ),
    }
    for name, value in figures.items():
        print(f"{name:<32} {value:10.4f} ms (median)")
    for name, value in ratios.items():
        print(f"{name:<32} x{value}")
    scratch.cleanup()
    print(json.dumps({"jdk": jdk.version, "repeat": opts.repeat, "medians_ms": figures, "ratios": ratios}))


if __name__ == "__main__":
    main()
