"""Boot snapshots (kernel/vm/snapshot.py): a machine's second run saves one, later runs start from it.

Each test uses its own memory size, so its machine's snapshot is its own and the first run really
is the first.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from osvtest import JDK17, Osv, explain, text

pytestmark = [pytest.mark.vm]

HELLO = "examples/hello/hello.jar"


def _timeline(stderr: bytes) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"^\s+(\w+)\s+([\d.]+)\s+\(", text(stderr), re.M)}


def _fresh(osv: Osv, test_classes: Path, memory: str) -> tuple[dict[str, str], dict[str, float], float, float]:
    before = time.time()
    proc = osv("run", "--jdk", JDK17, "-m", memory, "--bootchart", "-cp", str(test_classes), "Fresh")
    after = time.time()
    assert proc.returncode == 0, explain(proc)
    values = dict(line.split(" ", 1) for line in text(proc.stdout).splitlines())
    return values, _timeline(proc.stderr), before, after


def test_a_restored_run_has_the_hosts_clock_and_its_own_randomness(osv: Osv, test_classes: Path) -> None:
    _, cold, _, _ = _fresh(osv, test_classes, "704M")
    assert "kernel_start" in cold and "snapshot_saved" not in cold, "a first run boots cold and saves nothing"
    saving, saving_timeline, _, _ = _fresh(osv, test_classes, "704M")
    assert "snapshot_saved" in saving_timeline and "kernel_start" in saving_timeline, saving_timeline
    runs = [_fresh(osv, test_classes, "704M") for _ in range(2)]
    for values, timeline, before, after in runs:
        assert list(timeline) == ["qemu_start", "snapshot_restored", "jvm_exec", "main_entered", "app_exit",
                                  "vm_gone"]
        # The wall clock is the host's now, not the snapshot's (taken seconds earlier, in the second run).
        assert before * 1000 <= int(values["millis"]) <= after * 1000, (before, values["millis"], after)
    seen = [saving] + [values for values, *_ in runs]
    for key in ("securerandom", "kernel-uuid"):
        assert len({v[key] for v in seen}) == 3, f"{key} repeated across runs restored from one snapshot: {seen}"


def test_cold_boot_neither_uses_nor_saves_a_snapshot(osv: Osv, examples_built: Path, osv_cache: Path) -> None:
    saved = set((osv_cache / "snapshots").glob("*")) if (osv_cache / "snapshots").exists() else set()
    proc = osv("run", "--jdk", JDK17, "-m", "736M", "--cold-boot", "--bootchart", HELLO)
    assert proc.returncode == 0, explain(proc)
    assert list(_timeline(proc.stderr)) == ["qemu_start", "kernel_start", "pid1_start", "jvm_exec",
                                            "main_entered", "app_exit", "vm_gone"]
    after = set((osv_cache / "snapshots").glob("*")) if (osv_cache / "snapshots").exists() else set()
    assert after == saved


def test_a_damaged_snapshot_is_replaced_by_a_cold_boot(osv: Osv, examples_built: Path, osv_cache: Path) -> None:
    for _ in range(2):  # the second run saves the snapshot
        proc = osv("run", "--jdk", JDK17, "-m", "768M", HELLO)
        assert proc.returncode == 0, explain(proc)
    newest = max((osv_cache / "snapshots").glob("*.vmstate"), key=lambda p: p.stat().st_mtime)
    newest.write_bytes(newest.read_bytes()[: 1 << 20])  # cut short: QEMU cannot load it
    proc = osv("run", "--jdk", JDK17, "-m", "768M", "--bootchart", HELLO)
    assert proc.returncode == 0, explain(proc)
    assert text(proc.stdout).startswith("Hello from osv-java!")
    assert re.search(r"osv-java: warning: .*snapshot.*; booting afresh", text(proc.stderr)), explain(proc)
    assert "snapshot_saved" in _timeline(proc.stderr), "a good snapshot replaces the damaged one"
    again = osv("run", "--jdk", JDK17, "-m", "768M", "--bootchart", HELLO)
    assert again.returncode == 0 and "snapshot_restored" in _timeline(again.stderr), explain(again)
