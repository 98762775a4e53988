"""STW coordination with a load balancer: the tail latency of an HTTP service behind HAProxy, without
and with `--stw-lb`, at the same fixed request rate.

    flock /tmp/osv-bench.lock .venv/bin/python -m benchmarks.stw [--rate 150] [--duration 30]

Three backends run examples/gcservice (a large live set, per-request garbage and a cache of recent
requests, Parallel GC: collections of a few hundred milliseconds) with `osv-java run --target
process`, behind HAProxy on loopback (roundrobin, health checks, `option redispatch`, retries on
connection failures and empty responses). An open-loop generator sends requests at fixed intended
times and measures each one from its intended send time, so a stall delays every request scheduled
during it (no coordinated omission). Phases, same script and rate:

- off:  no coordination;
- on:   each backend with --stw-lb haproxy:SOCKET:web/sN (and one --stw-group);
- kill: as on, and one backend killed (SIGKILL) half-way;
- group (only when asked, --phases off,group): --stw-group alone, no balancer: collections staggered.

Each phase also reports the time two or more backends were paused at once (gc_overlap_ms), from
the backends' GC logs.

The last line is JSON with the percentiles of each phase, the errors and the throughput ratio.
Load goes to 127.0.0.1 only, bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import trainings

ROOT = Path(__file__).resolve().parent.parent
JAR = ROOT / "examples" / "gcservice" / "gcservice.jar"
OSV = str(Path(sys.executable).parent / "osv-java")
JVM_OPTS = ["-XX:+UseParallelGC", "-Xms560m", "-Xmx560m", "-Xmn256m", "-XX:-UseAdaptiveSizePolicy",
            "-XX:+AlwaysPreTouch", "-XX:ParallelGCThreads=1"]
APP_ARGS = ["150", "256", "64", "1500"]  # live MB, garbage KB per request, kept KB per request, kept requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def haproxy_config(sock: str, port: int, servers: dict[str, int]) -> str:
    lines = [
        "global",
        f"  stats socket {sock} mode 600 level admin",
        "  maxconn 4000",
        "defaults",
        "  mode http",
        "  timeout connect 1s",
        "  timeout client 30s",
        "  timeout server 30s",
        "  timeout check 2s",
        "  retries 3",
        "  option redispatch 1",
        "  retry-on conn-failure empty-response response-timeout",
        "frontend front",
        f"  bind 127.0.0.1:{port}",
        "  default_backend web",
        "backend web",
        "  balance roundrobin",
        "  option httpchk GET /health",
    ]
    lines += [f"  server {name} 127.0.0.1:{p} check inter 500 fall 3 rise 2" for name, p in servers.items()]
    return "\n".join(lines) + "\n"


def wait_http(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nothing answers on 127.0.0.1:{port} after {timeout:.0f}s")


def haproxy_command(sock: str, line: str) -> str:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(sock)
        s.sendall(line.encode() + b"\n")
        return b"".join(iter(lambda: s.recv(65536), b"")).decode()


def servers_up(sock: str) -> int:
    return sum(1 for row in haproxy_command(sock, "show stat").splitlines()
               if row.startswith("web,") and not row.startswith("web,BACKEND") and ",UP," in row)


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds from intended send to response end
    errors: int = 0
    slow: list[tuple[float, float]] = field(default_factory=list)
    sent: int = 0
    first: float = 0.0
    last: float = 0.0


async def one_request(port: int, intended: float, result: Result, timeout: float) -> None:
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            data = await reader.read()
            writer.close()
        ok = data.startswith(b"HTTP/1.1 200")
    except (OSError, TimeoutError):
        ok = False
    done = time.monotonic()
    if ok:
        result.latencies.append(done - intended)
        result.slow.append((intended, done - intended))
        result.last = max(result.last, done)
    else:
        result.errors += 1


async def open_loop(port: int, rate: float, duration: float, timeout: float = 10.0,
                    at_half: asyncio.Event | None = None) -> Result:
    """Requests at fixed intended times; each one's latency counts from its intended time."""
    result = Result()
    loop_start = time.monotonic() + 0.05
    result.first = loop_start
    count = int(rate * duration)
    tasks = []
    for i in range(count):
        intended = loop_start + i / rate
        delay = intended - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if at_half is not None and i == count // 2:
            at_half.set()
        tasks.append(asyncio.create_task(one_request(port, intended, result, timeout)))
        result.sent += 1
    await asyncio.gather(*tasks)
    return result


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered), max(1, math.ceil(q / 100 * len(ordered)))) - 1]


@contextlib.contextmanager
def cluster(tmp: Path, mode: str, backends: int, group: str):
    sock = str(tmp / "haproxy.sock")
    front = free_port()
    ports = {f"s{i + 1}": free_port() for i in range(backends)}
    (tmp / "haproxy.cfg").write_text(haproxy_config(sock, front, ports))
    procs: list[subprocess.Popen[bytes]] = []
    with open(tmp / "haproxy.log", "wb") as log:
        haproxy = subprocess.Popen(["haproxy", "-f", str(tmp / "haproxy.cfg"), "-db"], stdout=subprocess.DEVNULL,
                                   stderr=log)
    try:
        for name, port in ports.items():
            hooks = {"off": [], "group": ["--verbose", "--stw-group", group]}.get(
                mode, ["--verbose", "--stw-lb", f"haproxy:{sock}:web/{name}", "--stw-group", group])
            cmd = [OSV, "run", "--target", "process", "--jdk", "17", *(f"--jvm-opt={o}" for o in JVM_OPTS),
                   f"--jvm-opt=-Xlog:gc:file={tmp / name}.gc.log:timenanos", *hooks,
                   str(JAR), str(port), *APP_ARGS]
            with open(tmp / f"{name}.err", "wb") as err:
                procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True))
        for port in ports.values():
            wait_http(port, 120)
        deadline = time.monotonic() + 30
        while servers_up(sock) < backends and time.monotonic() < deadline:
            time.sleep(0.2)
        yield front, sock, procs
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        haproxy.terminate()
        haproxy.wait()
        trainings.settle()


def java_child(osv_pid: int) -> int | None:
    out = subprocess.run(["pgrep", "-P", str(osv_pid)], capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else None


def pauses(tmp: Path) -> dict[str, list[tuple[float, float]]]:
    """Per backend, (start on the monotonic clock, duration) of every GC pause in its log."""
    found: dict[str, list[tuple[float, float]]] = {}
    for log in sorted(tmp.glob("*.gc.log")):
        mine = found.setdefault(log.name.split(".")[0], [])
        for line in log.read_text(errors="replace").splitlines():
            if "Pause" not in line or not line.endswith("ms"):
                continue
            ended = int(line[1:].split("]")[0].rstrip("ns")) / 1e9  # printed as the pause ends
            ms = float(line.rsplit(" ", 1)[1][:-2])
            mine.append((ended - ms / 1e3, ms / 1e3))
    return found


def overlap(per_member: dict[str, list[tuple[float, float]]]) -> float:
    """Seconds during which two or more members were paused at once."""
    edges = sorted((t, step) for pauses in per_member.values() for start, length in pauses
                   for t, step in ((start, 1), (start + length, -1)))
    total, depth, since = 0.0, 0, 0.0
    for t, step in edges:
        if depth >= 2:
            total += t - since
        depth += step
        since = t
    return total


def phase(name: str, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"osv-stw-{name}-") as folder:
        tmp = Path(folder)
        if args.keep:  # the GC logs and the policy's lines, to look at afterwards
            tmp = Path(args.keep) / name
            tmp.mkdir(parents=True, exist_ok=True)
        with cluster(tmp, name, args.backends, f"bench-{os.getpid()}") as (front, sock, procs):
            asyncio.run(open_loop(front, args.rate, args.warmup))  # JIT and heap settle; not measured
            half = asyncio.Event()

            async def run() -> Result:
                if name != "kill":
                    return await open_loop(front, args.rate, args.duration)
                task = asyncio.create_task(open_loop(front, args.rate, args.duration, at_half=half))
                await half.wait()
                victim = java_child(procs[-1].pid)
                if victim is not None:
                    os.kill(victim, signal.SIGKILL)
                return await task

            t0 = time.monotonic()
            result = asyncio.run(run())
            t1 = time.monotonic()
            if args.keep:
                # seconds after t0 (CLOCK_MONOTONIC, as the GC logs' nanosecond stamps), latency in ms
                (tmp / "slow.txt").write_text(f"# t0 {t0:.6f}\n" + "".join(
                    f"{i - t0:.3f} {lat * 1e3:.1f}\n" for i, lat in result.slow
                                                      if lat * 1e3 > args.slow_ms))
            per_backend = {k: [(s, d) for s, d in v if t0 <= s <= t1] for k, v in pauses(tmp).items()}
            stw = [p for v in per_backend.values() for p in v]
            events = sum(1 for p in tmp.glob("*.err") for line in p.read_text(errors="replace").splitlines()
                         if line.startswith("osv-java: stw-lb: collect"))
        lat = result.latencies
        span = max(result.last - result.first, 1e-9)
        row = {"p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3, "p999_ms": pct(lat, 99.9) * 1e3,
               "max_ms": max(lat, default=float("nan")) * 1e3, "errors": result.errors, "sent": result.sent,
               "throughput": len(lat) / span, "gc_pauses": len(stw),
               "gc_pause_max_ms": max((d for _, d in stw), default=0.0) * 1e3,
               "gc_overlap_ms": overlap(per_backend) * 1e3, "collections_caused": events}
        print(f"{name:>4}: " + " ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                                        for k, v in row.items()), flush=True)
        return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=150.0, help="requests per second (default 150)")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds per phase (default 30)")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds first (default 5)")
    parser.add_argument("--backends", type=int, default=3)
    parser.add_argument("--phases", default="off,on,kill")
    parser.add_argument("--keep", metavar="DIR", help="keep each phase's logs in DIR/PHASE")
    parser.add_argument("--slow-ms", type=float, default=100.0,
                        help="with --keep: requests slower than this go to DIR/PHASE/slow.txt (default 100)")
    args = parser.parse_args()
    if not JAR.exists():
        subprocess.run([sys.executable, "-m", "examples.build", "--quiet"], cwd=ROOT, check=True)
    rows = {name: phase(name, args) for name in args.phases.split(",")}
    off, on = rows.get("off"), rows.get("on")
    summary: dict[str, float] = {}
    for tag, row in (("off", off), ("on", on)):
        if row:
            for key in ("p50_ms", "p99_ms", "p999_ms", "max_ms"):
                summary[f"{key[:-3]}_ms_{tag}"] = round(row[key], 2)
            summary[f"errors_{tag}"] = row["errors"]
    if "kill" in rows:
        summary.update(p999_ms_kill=round(rows["kill"]["p999_ms"], 2), errors_kill=rows["kill"]["errors"])
    for tag, row in rows.items():
        summary[f"gc_overlap_ms_{tag}"] = round(row["gc_overlap_ms"], 1)
    if off and on:
        summary["throughput_ratio_on_vs_off"] = round(on["throughput"] / off["throughput"], 3)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
