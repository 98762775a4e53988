"""`osv-java gc-experiment --target vm`: each run boots a VM, its GC log comes out of the guest, and its
memory is QEMU's resident set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from osvtest import JDK17, Osv, explain

pytestmark = [pytest.mark.vm]


def test_a_vm_sweep_measures_qemu_and_reads_the_guests_gc_log(osv: Osv, examples_built: Path,
                                                             tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = osv("gc-experiment", "examples/gcalloc/gcalloc.jar", "5", "--gcs", "serial", "--repeat", "1",
               "--warmup", "0", "--target", "vm", "--jdks", JDK17, "-o", str(out), timeout=600)
    assert proc.returncode == 0, explain(proc)
    data = json.loads((out / "results.json").read_text())
    assert data["meta"]["target"] == "vm"
    runs = {r["config"]: r for r in data["runs"]}
    assert set(runs) == {"default-jdk17", "serial-jdk17"}
    for run in runs.values():
        assert run["outcome"] == "ok", run
        assert run["memory_source"] == "qemu rss" and run["pss_peak_mb"] > 100, run
        assert run["gc"]["pauses"] > 0 and run["app"]["ops_per_s"] > 0, run
        assert run["cpu_s"] > 0
    assert runs["serial-jdk17"]["gc"]["collector"] == "Serial"
    assert "the resident set of QEMU" in (out / "report.md").read_text()
