"""Time to a service's first HTTP answer through `osv-java run`: the app started cold, started as usual,
and restored from its ready-point snapshot (`--snapshot-when-ready`), in one run.

cold:     `osv-java run --cold-boot -p H:8080 APP`: kernel, PID 1, the JVM and the service from scratch.
started:  `osv-java run -p H:8080 APP` with a warm cache (image built, the machine's boot snapshot and
          the runtime's started-JVM snapshot saved): the default way.
port:     `osv-java run --snapshot-when-ready 8080 …` once its ready snapshot is saved (a warm-up run
          saves it): the machine restores the service already listening, saved before its first
          request unless a client's request came first.
url:      `osv-java run --snapshot-when-ready http://localhost:8080/ …`: the same, saved after PID 1's own
          GET / was answered, so the request path is warm in the snapshot.

Each is timed from spawning osv-java until the first answer to GET / (asked every 20 ms), then the
service is stopped and its exit waited for (not timed). Services: examples/httpserver (the JDK's
HTTP server) and Jetty 9 (Debian's jetty9, as in `osv-java compat --apps`; its configuration folder
on the class path, so no volume is needed), when installed. Runs alternate so drift on the machine
hits all alike; medians of --runs. The last line is JSON: per service `NAME_first_answer_ready_snapshot_vs_cold`
(cold / url), `NAME_first_answer_ready_snapshot_vs_started` (started / url) and
`NAME_first_answer_port_snapshot_vs_started` (started / port). Hold the bench lock on a shared machine:

    flock /tmp/osv-bench.lock .venv/bin/python benchmarks/first_answer.py [--runs 3] [--jdk 17]

benchmarks/startup.py runs the same phase with its own (--services).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import trainings  # noqa: E402

from kernel import cache  # noqa: E402
from kernel.vm.monitor import free_port  # noqa: E402

OSV = str(Path(sys.executable).parent / "osv-java")
HTTPSERVER = ROOT / "examples/httpserver/httpserver.jar"
JETTY_JARS = ("jetty9-server", "jetty9-util", "jetty9-http", "jetty9-io", "jetty9-xml")
JETTY_CONFIG = ROOT / "examples/apps/jetty"
SHARE_JAVA = Path("/usr/share/java")


def services() -> dict[str, list[str]]:
    """Name -> the app's words on the osv-java command line (Jetty only where it is installed)."""
    found = {"httpserver": [str(HTTPSERVER)]}
    jars = [SHARE_JAVA / f"{name}.jar" for name in JETTY_JARS] + [SHARE_JAVA / "servlet-api.jar"]
    if all(jar.exists() for jar in jars):
        classpath = ":".join([*(str(jar) for jar in jars), str(JETTY_CONFIG)])
        found["jetty"] = ["-cp", classpath, "org.eclipse.jetty.xml.XmlConfiguration",
                          str((JETTY_CONFIG / "jetty.xml").relative_to(ROOT))]
    else:
        print("Jetty skipped: Debian's jetty9 is not installed (apt-get install jetty9)", file=sys.stderr)
    return found


def ready_snapshots() -> set[Path]:
    folder = cache.root() / "snapshots"
    return set(folder.glob("ready-*.snapshot")) if folder.exists() else set()


def first_answer(jdk: str, app: list[str], *options: str, timeout: float = 300.0, until_saved: bool = False) -> float:
    """Seconds from spawning `osv-java run OPTIONS APP` until GET / answers; then stop it. With
    `until_saved`, stop it only once a new ready snapshot is in the cache: a run stopped before its
    ready point saves none (the first answer can come before the port has been idle long enough)."""
    saved_before = ready_snapshots()
    port = free_port()
    command = [OSV, "run", "--jdk", jdk, "-p", f"{port}:8080", *options, *app]
    start = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{' '.join(command)} ended ({proc.returncode}) before it answered: "
                                 f"{proc.stderr.read().decode()[-800:] if proc.stderr else ''}")
            if time.monotonic() - start > timeout:
                raise SystemExit(f"{' '.join(command)} did not answer within {timeout:g} s")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
                    response.read()
                    elapsed = time.monotonic() - start
                    break
            except OSError:
                time.sleep(0.02)
        while until_saved and ready_snapshots() <= saved_before:
            if proc.poll() is not None or time.monotonic() - start > timeout:
                raise SystemExit(f"{' '.join(command)} saved no ready snapshot")
            time.sleep(0.1)
        proc.terminate()
        proc.communicate(timeout=120)
        trainings.settle()
        return elapsed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


WAYS = {
    "cold": ("--cold-boot",),
    "started": (),
    "port": ("--snapshot-when-ready", "8080"),
    "url": ("--snapshot-when-ready", "http://localhost:8080/"),
}


def measure(jdk: str, runs: int) -> dict[str, object]:
    """The phase: warm-ups, then `runs` alternating rounds; medians and ratios per service."""
    subprocess.run([sys.executable, "-m", "examples.build", "--quiet"], cwd=ROOT, check=True)
    apps = services()
    print("warming up: images, the boot and started-JVM snapshots, the ready snapshots", file=sys.stderr)
    for app in apps.values():
        for _ in range(3):  # the second run of a machine saves its boot snapshot, the third its started JVM's
            first_answer(jdk, app)
        for way in ("port", "url"):
            first_answer(jdk, app, *WAYS[way], until_saved=True)  # saves the ready snapshot
    times: dict[str, list[float]] = {f"{name}_{way}": [] for name in apps for way in WAYS}
    for i in range(runs):
        for name, app in apps.items():
            for way, options in WAYS.items():
                times[f"{name}_{way}"].append(first_answer(jdk, app, *options))
        print(f"round {i + 1}: " + "  ".join(f"{k} {v[-1]:.3f}s" for k, v in times.items()), file=sys.stderr)
    medians = {name: round(statistics.median(values), 3) for name, values in times.items()}
    ratios: dict[str, float] = {}
    for name in apps:
        m = {way: medians[f"{name}_{way}"] for way in WAYS}
        ratios[f"{name}_first_answer_ready_snapshot_vs_cold"] = round(m["cold"] / m["url"], 2)
        ratios[f"{name}_first_answer_ready_snapshot_vs_started"] = round(m["started"] / m["url"], 2)
        ratios[f"{name}_first_answer_port_snapshot_vs_started"] = round(m["started"] / m["port"], 2)
        print(f"{name}: first answer cold {m['cold']:.3f}s, started {m['started']:.3f}s; from the ready snapshot "
              f"by URL {m['url']:.3f}s ({m['cold'] / m['url']:.2f}x sooner than cold, "
              f"{m['started'] / m['url']:.2f}x than started), by port {m['port']:.3f}s "
              f"({m['started'] / m['port']:.2f}x sooner than started)")
    return {**ratios, "first_answer_medians_s": medians,
            "first_answer_runs_s": {k: [round(v, 3) for v in values] for k, values in times.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jdk", default="17")
    args = parser.parse_args()
    result = measure(args.jdk, args.runs)
    print(json.dumps({**result, "jdk": args.jdk, "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
