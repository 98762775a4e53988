"""`osv-java attach PID --dynamic-heap` on a real JVM (JDK 17): it shrinks the idle heap, puts the
JVM's flags back when it detaches, and says in one line why it cannot attach."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from osvtest import OSV, ROOT, explain

from gc_hooks.dynamic_heap.actuate import flag_value
from jvmbridge.attach import attach
from jvmbridge.hsperf import PerfData

JAVA = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"
MB = 1024 * 1024


@pytest.fixture
def bursty(examples_built: Path) -> Iterator[subprocess.Popen[str]]:
    """The bursty example after one 300 MB burst, quiet for a long while (JDK defaults)."""
    proc = subprocess.Popen([JAVA, "-XX:+UseG1GC", "-jar", str(examples_built / "bursty" / "bursty.jar"),
                             "1", "300", "2", "600"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("QUIET"):
            break
    yield proc
    proc.kill()
    proc.wait(timeout=30)


def committed(pid: int) -> int:
    with PerfData.open(pid) as pd:
        return sum(pd.long(f"sun.gc.generation.{g}.capacity") for g in range(2))


def flags(pid: int) -> dict[str, str]:
    vm = attach(pid)
    return {name: flag_value(vm.printflag(name))
            for name in ("MinHeapFreeRatio", "MaxHeapFreeRatio", "G1PeriodicGCInterval")}


def test_attach_shrinks_the_idle_heap_and_restores_the_flags(bursty: subprocess.Popen[str]) -> None:
    before = committed(bursty.pid)
    assert before > 400 * MB  # the default keeps what the burst grew
    original = flags(bursty.pid)
    proc = subprocess.run([OSV, "attach", str(bursty.pid), "--dynamic-heap", "--duration", "8"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "attached to JVM" in proc.stderr and "dynamic-heap" in proc.stderr
    assert committed(bursty.pid) <= 64 * MB, proc.stderr  # the live set is a few MB: within 64 MB
    assert flags(bursty.pid) == original  # detached: the JVM is as it was, but for its smaller heap
    assert bursty.poll() is None


def test_attach_to_a_process_that_is_not_a_jvm_is_one_error_line() -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        proc = subprocess.run([OSV, "attach", str(sleeper.pid), "--dynamic-heap"], capture_output=True,
                              timeout=60, check=False)
        lines = proc.stderr.decode().strip().splitlines()
        assert proc.returncode == 125, explain(proc)
        assert lines[0].startswith("osv-java: error: ") and "is not a JVM" in lines[0]
        assert all(line.startswith("hint: ") for line in lines[1:])
    finally:
        sleeper.kill()
        sleeper.wait()


def test_attach_to_a_jvm_without_attach_is_one_error_line(examples_built: Path) -> None:
    jvm = subprocess.Popen([JAVA, "-XX:+DisableAttachMechanism", "-jar", str(examples_built / "bursty" / "bursty.jar"),
                            "1", "10", "1", "600"], stdout=subprocess.PIPE, text=True)
    try:
        assert jvm.stdout is not None
        jvm.stdout.readline()
        time.sleep(0.5)
        proc = subprocess.run([OSV, "attach", str(jvm.pid), "--dynamic-heap"], capture_output=True,
                              timeout=60, check=False)
        lines = proc.stderr.decode().strip().splitlines()
        assert proc.returncode == 125, explain(proc)
        assert lines[0].startswith("osv-java: error: ") and "does not accept attach" in lines[0]
        assert all(line.startswith("hint: ") for line in lines[1:]) and "DisableAttachMechanism" in lines[1]
    finally:
        jvm.kill()
        jvm.wait()


def test_run_target_process_steers_the_heap_by_default_and_not_when_off(examples_built: Path) -> None:
    app = [str(examples_built / "bursty" / "bursty.jar"), "1", "200", "2", "6"]
    on = subprocess.run([OSV, "run", "--target", "process", "--jdk", "17", "--bootchart", *app],
                        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert on.returncode == 0, on.stderr
    decisions = [line for line in on.stderr.splitlines() if "dynamic-heap:" in line]
    assert any("GC.run" in line for line in decisions), on.stderr
    assert not any("failed" in line for line in decisions), on.stderr
    off = subprocess.run([OSV, "run", "--target", "process", "--jdk", "17", "--bootchart", "--dynamic-heap", "off",
                          *app], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert off.returncode == 0, off.stderr
    assert "dynamic-heap" not in off.stderr
