"""How late the kernel learns that a pause began and ended, through the -Xlog event stream.

    flock /tmp/osv-bench.lock .venv/bin/python -m benchmarks.pause_lateness [--seconds 20]

Runs examples/gcservice on the host (Parallel GC, small eden: many pauses) under light loopback load
and follows it with `osv-java jvm pauses PID --json`. Each pause-start (gc+start) and safepoint line
carries the JVM's System.nanoTime (`timenanos`, CLOCK_MONOTONIC, the clock of time.monotonic() here),
so lateness = the moment we read the line − the moment the JVM printed it. The pause-start line is
printed as the pause begins, the safepoint line as the world restarts. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import urllib.request

from benchmarks.stw import JAR, OSV, ROOT, free_port, wait_http


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--async-log", action="store_true", help="the JVM's own -Xlog:async (we use it too)")
    args = parser.parse_args()
    if not JAR.exists():
        subprocess.run([sys.executable, "-m", "examples.build", "--quiet"], cwd=ROOT, check=True)
    port = free_port()
    java = subprocess.Popen(["/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "-XX:+UseParallelGC", "-Xms256m",
                             "-Xmx256m", "-Xmn32m", "-jar", str(JAR), str(port), "50", "128", "4", "200"],
                            stdout=subprocess.DEVNULL)
    stop = threading.Event()
    try:
        wait_http(port, 60)

        def load() -> None:
            while not stop.is_set():
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read()
                time.sleep(0.004)

        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        out = subprocess.run([OSV, "jvm", "pauses", str(java.pid), "--json", "--duration", str(args.seconds)],
                             capture_output=True, text=True, check=True).stdout.splitlines()
    finally:
        stop.set()
        java.kill()
        java.wait()
    summaries = [json.loads(line) for line in out if '"summary"' in line]
    last = summaries[-1]
    print(f"pauses seen: {last['pauses']}; 10 s window: {last['windows'][0]}")
    print(json.dumps({"pauses": last["pauses"], **{f"{edge}_{k}": v for edge in ("began", "ended")
                                                    for k, v in last["lateness"][edge].items()}}))


if __name__ == "__main__":
    main()
