"""`osv-java jvm pauses PID`: the live pause picture of a real JVM on this host, as JSON lines and as a table."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from osvtest import OSV, ROOT, explain

JAR = ROOT / "examples" / "gcservice" / "gcservice.jar"


@pytest.fixture
def busy_jvm(examples_built: Path) -> Iterator[int]:
    """examples/gcservice under light load: a young collection every few hundred milliseconds."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    java = subprocess.Popen(["/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "-XX:+UseParallelGC", "-Xms128m",
                             "-Xmx128m", "-Xmn16m", "-jar", str(JAR), str(port), "10", "128", "4", "100"],
                            stdout=subprocess.DEVNULL)
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
            time.sleep(0.005)

    loader = threading.Thread(target=load)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
                break
            time.sleep(0.1)
        loader.start()
        yield java.pid
    finally:
        stop.set()
        if loader.is_alive():
            loader.join()
        java.kill()
        java.wait()


def test_pauses_as_json_lines(busy_jvm: int) -> None:
    proc = subprocess.run([OSV, "jvm", "pauses", str(busy_jvm), "--json", "--duration", "5"], capture_output=True,
                          timeout=60)
    assert proc.returncode == 0, explain(proc)
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    pauses = [r for r in records if r["type"] == "pause"]
    summaries = [r for r in records if r["type"] == "summary"]
    assert pauses and summaries, explain(proc)
    assert all(p["cause"] and p["duration"] > 0 for p in pauses)
    assert any(p["time_to_safepoint"] is not None for p in pauses)
    last = summaries[-1]
    before = records[:records.index(last)]
    assert [w["window_s"] for w in last["windows"]] == [10.0, 60.0, 600.0]
    assert last["windows"][-1]["count"] == len([r for r in before if r["type"] == "pause"])
    assert 0 < last["windows"][0]["stopped_share"] < 1
    assert last["prediction"]["allocation_mb_s"] > 0 and last["prediction"]["next_young_s"] is not None
    began, ended = last["lateness"]["began"], last["lateness"]["ended"]
    assert began["count"] >= 1 and ended["count"] >= 1
    assert began["p50_ms"] >= 0 and ended["p50_ms"] >= 0


def test_pauses_as_a_table(busy_jvm: int) -> None:
    proc = subprocess.run([OSV, "jvm", "pauses", str(busy_jvm), "--duration", "3"], capture_output=True, timeout=60)
    assert proc.returncode == 0, explain(proc)
    out = proc.stdout.decode()
    assert f"JVM {busy_jvm}" in out and "window" in out and "next young" in out and "recent pauses:" in out
