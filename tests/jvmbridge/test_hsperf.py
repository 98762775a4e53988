"""hsperfdata reading against jstat, on real JVMs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from jvmbridge.attach import attach
from jvmbridge.discover import list_jvms
from jvmbridge.errors import JvmError
from jvmbridge.hsperf import JvmStats, PerfData
from jvmbridge.jdk import Jdk

KB = 1024


def _jstat_gc(jdk: Jdk, pid: int) -> dict[str, float]:
    out = subprocess.run(
        [str(jdk.tool("jstat")), "-gc", str(pid)], capture_output=True, text=True, check=True
    )
    header, values = out.stdout.split("\n")[:2]
    return {k: float(v) for k, v in zip(header.split(), values.split(), strict=True) if v != "-"}


def _ours(stats: JvmStats) -> dict[str, float]:
    young, old = stats.generations[0], stats.generations[1]
    return {
        "EC": young.spaces[0].capacity / KB,
        "EU": young.spaces[0].used / KB,
        "S0C": young.spaces[1].capacity / KB,
        "S1C": young.spaces[2].capacity / KB,
        "S0U": young.spaces[1].used / KB,
        "S1U": young.spaces[2].used / KB,
        "OC": old.spaces[0].capacity / KB,
        "OU": old.spaces[0].used / KB,
        "MC": stats.metaspace_capacity / KB,
        "MU": stats.metaspace_used / KB,
        "CCSC": stats.class_space_capacity / KB,
        "CCSU": stats.class_space_used / KB,
        "YGC": stats.collectors[0].invocations,
        "FGC": stats.collectors[1].invocations,
        "YGCT": stats.collectors[0].time,
        "FGCT": stats.collectors[1].time,
    }


@pytest.mark.parametrize("gc", ["G1", "Parallel"])
def test_stats_agree_with_jstat(jdk: Jdk, gc: str, start_jvm) -> None:
    jvm = start_jvm(jdk, f"-XX:+Use{gc}GC")
    attach(jvm.pid).jcmd("GC.run")  # something in the old generation, one full GC counted
    with PerfData.open(jvm.pid) as pd:
        before = _ours(pd.stats())
        theirs = _jstat_gc(jdk, jvm.pid)
        after = _ours(pd.stats())
    assert after["FGC"] >= 1 and after["OU"] > 0 and after["OC"] > 0
    for column, ours_before in before.items():
        low, high = sorted((ours_before, after[column]))
        tolerance = 0.001 if column.endswith("T") else 0.1  # jstat rounds to 0.1 KB and 1 ms
        assert low - tolerance <= theirs[column] <= high + tolerance, (column, before, theirs, after)


def test_counters_and_typed_view(jdk: Jdk, start_jvm) -> None:
    jvm = start_jvm(jdk)
    with PerfData.open(jvm.pid) as pd:
        counters = pd.counters()
        assert counters["sun.os.hrt.frequency"].units == "hertz"
        assert counters["sun.rt.safepoints"].kind == "long"
        assert pd.string("sun.rt.javaCommand") == "Idle"
        assert pd.string("java.property.java.version") == jdk.version
        snapshot = pd.snapshot("sun.gc.")
        assert snapshot and all(name.startswith("sun.gc.") for name in snapshot)
        first = pd.stats()
        attach(jvm.pid).jcmd("GC.run")
        second = pd.stats()  # the same mapping sees the JVM's updates
    assert second.safepoints > first.safepoints
    assert sum(c.invocations for c in second.collectors) > sum(c.invocations for c in first.collectors)
    assert second.heap_capacity > 0 and second.heap_max == 128 << 20
    assert 0 < second.uptime < 120 and second.attachable


def test_list_finds_our_jvm(jdk17: Jdk, start_jvm, cli) -> None:
    jvm = start_jvm(jdk17)
    [info] = [j for j in list_jvms() if j.pid == jvm.pid]
    assert info.main == "Idle" and info.java_version == jdk17.version and info.heap_max == 128 << 20
    out = cli("list")
    assert out.returncode == 0, out.stderr
    [row] = [line for line in out.stdout.splitlines() if line.split()[:1] == [str(jvm.pid)]]
    assert "Idle" in row and jdk17.version in row


def test_cli_stats_json_and_watch(jdk17: Jdk, start_jvm, cli) -> None:
    jvm = start_jvm(jdk17)
    out = cli("stats", str(jvm.pid), "--json")
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout)
    assert record["pid"] == jvm.pid and record["heap_max"] == 128 << 20
    assert [g["name"] for g in record["generations"]] == ["young", "old"]
    code = "from osv_java.jvm_commands import jvm_group; jvm_group()"
    watch = subprocess.Popen(
        [sys.executable, "-c", code, "stats", str(jvm.pid), "--json", "--watch", "0.1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert watch.stdout is not None
    samples = [json.loads(watch.stdout.readline()) for _ in range(3)]
    jvm.proc.stdin.close()  # the JVM exits, and --watch with it
    assert watch.wait(timeout=30) == 0
    assert samples[0]["time"] < samples[1]["time"] < samples[2]["time"]


def test_no_perfdata(jdk17: Jdk, start_jvm) -> None:
    jvm = start_jvm(jdk17, "-XX:-UsePerfData")
    with pytest.raises(JvmError, match="publishes no hsperfdata") as info:
        PerfData.open(jvm.pid)
    assert info.value.hint and "UsePerfData" in info.value.hint
    assert all(j.pid != jvm.pid for j in list_jvms())
    # attach still works without hsperfdata
    assert "JDK 17" in attach(jvm.pid).jcmd("VM.version")
