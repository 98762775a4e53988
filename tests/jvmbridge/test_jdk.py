"""JDK discovery: probe() stays cheap, features() runs one cached JVM per JDK build."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from jvmbridge import jdk as jdks
from jvmbridge.jdk import Jdk, probe


def _no_processes(*args: object, **kwargs: object) -> None:
    raise AssertionError("started a process")


def test_probe_starts_no_process(jdk: Jdk, monkeypatch: pytest.MonkeyPatch) -> None:
    probe.cache_clear()
    monkeypatch.setattr(subprocess, "run", _no_processes)
    monkeypatch.setattr(subprocess, "Popen", _no_processes)
    again = probe(jdk.home)
    assert again == jdk and again.feature in (17, 25)


def test_features_probed_once_and_cached(jdk: Jdk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSV_JAVA_CACHE", str(tmp_path))
    jdks.features.cache_clear()
    found = jdk.features()
    assert {"G1", "Parallel", "Serial", "Z"} <= set(found.gcs)
    assert {
        "SoftMaxHeapSize",
        "MinHeapFreeRatio",
        "MaxHeapFreeRatio",
        "G1PeriodicGCInterval",
        "HeapDumpPath",
    } <= set(found.manageable)
    assert "MaxHeapSize" not in found.manageable and "MaxHeapSize" in found.flags
    assert ("FullGCHeapDumpLimit" in found.manageable) == (jdk.feature >= 25)
    files = list((tmp_path / "jdk-probes").iterdir())
    assert len(files) == 1 and files[0].suffix == ".json"  # no temporary left behind
    # a new process reads the cache instead of starting a JVM
    jdks.features.cache_clear()
    monkeypatch.setattr(subprocess, "run", _no_processes)
    assert jdk.features() == found
    assert jdk.gcs == found.gcs


def test_features_survive_a_corrupt_cache(
    jdk17: Jdk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OSV_JAVA_CACHE", str(tmp_path))
    jdks.features.cache_clear()
    first = jdk17.features()
    [cached] = (tmp_path / "jdk-probes").iterdir()
    cached.write_text("{not json")
    jdks.features.cache_clear()
    again = jdk17.features()  # probed again (a few ergonomic flag values may differ between runs)
    assert (again.gcs, again.manageable) == (first.gcs, first.manageable)
    assert json.loads(cached.read_text())["gcs"] == list(first.gcs)
