"""The dynamic heap in a VM: the guest's PID 1 steers the JVM's heap, the pages it frees go back to
the host (virtio-balloon free page reporting), and `osv-java update NAME --memory` resizes the VM."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import memcg
import pytest
from osvtest import JDK17, OSV, ROOT, Osv, explain, stop

from gc_hooks.dynamic_heap import signals

pytestmark = [pytest.mark.vm, pytest.mark.slow]
MB = 1024 * 1024


def _qemu_rss(osv_pid: int) -> int:
    rss = memcg.qemu_rss(osv_pid)
    assert rss is not None, f"no QEMU under osv-java {osv_pid}"
    return rss


def test_heap_goes_back_to_the_host_and_update_resizes_the_vm(osv: Osv, examples_built: Path) -> None:
    name = f"dynheap-{os.getpid()}"
    # one burst of 300 MB live, then a long quiet phase
    proc = subprocess.Popen([OSV, "run", "--name", name, "-m", "1G", "--jdk", JDK17, "--bootchart",
                             str(examples_built / "bursty" / "bursty.jar"), "1", "300", "3", "300"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=osv.env, cwd=ROOT, text=True)
    assert proc.stdout is not None
    try:
        peak = 0
        for line in proc.stdout:
            peak = max(peak, _qemu_rss(proc.pid))
            if line.startswith("QUIET"):
                break
        else:
            raise AssertionError(f"the app ended early: {proc.stderr.read() if proc.stderr else ''}")
        peak = max(peak, _qemu_rss(proc.pid))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _qemu_rss(proc.pid) > peak - 150 * MB:
            time.sleep(1)
        # the guest JVM's heap shrank after the burst, and its pages came back to the host
        assert _qemu_rss(proc.pid) <= peak - 150 * MB, f"QEMU RSS {_qemu_rss(proc.pid) // MB} MB, peak {peak // MB} MB"

        resized = osv("update", name, "--memory", "512M", "--json")
        assert resized.returncode == 0, explain(resized)
        assert json.loads(resized.stdout)["target_mb"] == 512
        deadline = time.monotonic() + 30
        actual = None
        while time.monotonic() < deadline:
            again = osv("update", name, "--memory", "512M", "--json")
            actual = json.loads(again.stdout)["actual_mb"]
            if actual == 512:
                break
            time.sleep(1)
        assert actual == 512
        # the app lives on under the inflated balloon, its heap inside what the guest has left, and
        # `jvm stats --vm` shows both sides
        stats = osv("jvm", "stats", "--vm", name, "--json")
        assert stats.returncode == 0, explain(stats)
        record = json.loads(stats.stdout)
        assert record["guest_memory"] == 512 * MB
        assert record["qemu_rss"] and record["qemu_rss"] <= peak
        assert record["heap_capacity"] < 512 * MB
        assert proc.poll() is None, "the app died when the balloon inflated"
        bad = osv("update", "no-such-vm-here", "--memory", "512M")
        assert bad.returncode == 125 and "no running VM named 'no-such-vm-here'" in bad.stderr.decode()
    finally:
        stop(proc, 30)


def test_host_pressure_inflates_the_balloon_and_the_app_lives_on(osv: Osv, examples_built: Path) -> None:
    """The VM's memory cgroup runs short: the host side inflates the balloon by the VM's share, the guest
    shrinks its heap under the pressure that follows, QEMU's resident set falls, and nothing is killed."""
    own = memcg.own_memory_cgroup(version=1)
    if own is None:
        pytest.skip("needs a writable cgroup v1 memory controller")
    folder = memcg.make_child(own.path, "osv-test-balloon")
    name = f"pressure-{os.getpid()}"
    lines: list[str] = []
    proc = subprocess.Popen(["sh", "-c", f'echo $$ > {folder}/cgroup.procs && exec "$@"', "sh", OSV, "run",
                             "--name", name, "-m", "1G", "--jdk", JDK17, "--verbose",
                             str(examples_built / "bursty" / "bursty.jar"), "1", "300", "150", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=osv.env, cwd=ROOT, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True).start()  # type: ignore[arg-type]
    cgroup = signals.CgroupMemory(folder, 1, own.root)  # usage as the policy reads it: page cache left out
    try:
        for line in proc.stdout:
            if line.startswith("BURST"):
                break
        else:
            raise AssertionError(f"the app ended early: {lines[-20:]}")
        time.sleep(15)  # the burst's heap grows to its size
        usage = cgroup.usage()
        assert usage is not None
        before = _qemu_rss(proc.pid)
        (folder / "memory.limit_in_bytes").write_text(str(int(usage / 0.95)))  # past the 90 % mark
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any("dynamic-heap: balloon" in line for line in lines):
            time.sleep(1)
        balloon = [line for line in lines if "dynamic-heap: balloon" in line]
        assert balloon and "host pressure" in balloon[0], lines[-30:]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _qemu_rss(proc.pid) > before - 32 * MB:
            time.sleep(1)
        after = _qemu_rss(proc.pid)
        assert after <= before - 32 * MB, f"QEMU RSS {after // MB} MB, before {before // MB} MB"
        assert proc.poll() is None, "the app died under the balloon"
        oom = (folder / "memory.oom_control").read_text()
        assert "oom_kill 0" in oom, oom
    finally:
        stop(proc, 60)
        memcg.remove(folder)
