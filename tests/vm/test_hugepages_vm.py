"""Huge pages in a VM, measured on both sides: the guest's supervisor reads the JVM's heap share from
the guest's smaps (its events come back to the host, `jvm stats --vm` asks for it), and QEMU's guest
RAM is on the host's huge pages (read from QEMU's own smaps while the app runs): on a cold boot QEMU
madvises its anonymous RAM; a machine restored from a boot snapshot has its RAM in a memfd, whose
wholly used 2 MB blocks the policy's host side collapses (the host's shmem_enabled may say never)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from osvtest import OSV, ROOT, Osv, kill_if_running, release_waiting

from jvmbridge import smaps

pytestmark = [pytest.mark.vm]
MEMORY_MB = 1024
MB = 1 << 20
APP = ["examples/tlb/tlb.jar", "--graph-mb", "0", "--accesses", "100000", "--rounds", "1"]


def vm_stats(osv: Osv, name: str) -> dict:
    """`osv-java jvm stats --vm NAME --json`, as a user would ask it."""
    stats = subprocess.run([OSV, "jvm", "stats", "--vm", name, "--json"], capture_output=True, text=True,
                           env=osv.env, timeout=120)
    assert stats.returncode == 0, stats.stderr
    return json.loads(stats.stdout)


def guest_ram(qemu: int) -> smaps.Mapping:
    ram = smaps.mapping_of(smaps.read(qemu), MEMORY_MB * MB, slack=128 * MB)
    assert ram is not None, "QEMU's guest RAM mapping not found"
    return ram


@pytest.mark.parametrize("boot", ["cold", "restored"])
def test_a_512m_guest_heap_and_the_guest_ram_are_on_huge_pages(osv: Osv, examples_built: Path, boot: str) -> None:
    if boot == "restored":  # a machine's first run boots cold, its second saves the snapshot
        for _ in range(2):
            done = osv("run", "-m", str(MEMORY_MB), *APP, "--array-mb", "8")
            assert done.returncode == 0, done.stderr.decode()
    name = f"hugepages-test-{boot}-{os.getpid()}"
    proc = subprocess.Popen(
        [OSV, "run", "-m", str(MEMORY_MB), "--bootchart", "--name", name, "--jvm-opt=-Xms512m", "--jvm-opt=-Xmx512m",
         *(["--cold-boot"] if boot == "cold" else []), *APP, "--array-mb", "256", "--wait"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=osv.env, cwd=ROOT)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        ready = proc.stdout.readline()
        assert ready.startswith("READY"), ready
        time.sleep(3)  # the guest supervisor measures 2 s after the JVM started
        children = subprocess.run(["pgrep", "-P", str(proc.pid), "qemu"], capture_output=True, text=True).stdout
        qemu = [int(pid) for pid in children.split()]
        assert len(qemu) == 1, children
        ram = guest_ram(qemu[0])
        assert ("memfd:osv-java-snapshot-ram" in ram.path) == (boot == "restored"), ram.path
        assert "hg" in ram.flags  # QEMU asked for THP on the guest's RAM
        # a cold boot's anonymous RAM is on THP as the guest faults it in; the host side collapses a
        # restored machine's memfd every 10 s (2 s at most a round), the 2 MB blocks the guest uses
        # whole (the guest heap's huge pages among them), not those partly given back or untouched
        for _ in range(30):
            if ram.huge / ram.rss >= 0.9 or (boot == "restored" and ram.huge >= 256 * MB):
                break
            time.sleep(2)
            ram = guest_ram(qemu[0])
        assert ram.rss >= 256 * MB, ram.rss
        if boot == "cold":
            assert ram.huge / ram.rss >= 0.9, (ram.rss, ram.huge)
        else:
            assert ram.huge >= 256 * MB, (ram.rss, ram.huge)  # the app's 256 MB array, at least
        record = vm_stats(osv, name)
        assert record["heap_hugepage_share"] >= 0.9 and record["heap_resident"] >= 256 * MB, record
        assert record["guest_ram_host_hugepage_share"] >= (0.8 if boot == "cold" else 0.5), record
        out, err = release_waiting(proc, 300)
    finally:
        kill_if_running(proc)
    assert proc.returncode == 0, err
    assert "RESULT ns_per_access=" in out
    shares = [float(s) for s in re.findall(r"hugepages: measure\s+-> ([\d.]+)%", err)]
    assert shares and max(shares) >= 90.0, err
    assert re.search(r"hugepages: host-ram\s+-> [\d.]+% \(QEMU's guest RAM on the host", err), err
    if boot == "restored":
        assert re.search(r"hugepages: collapse [\d.]+% -> [\d.]+% \(QEMU's guest RAM on the host", err), err
    assert "hugepages: warning" not in err, err


def test_hugepages_off_puts_no_guest_heap_on_huge_pages(osv: Osv, examples_built: Path) -> None:
    """--hugepages off: the guest's THP is never (the Debian kernel's default is always)."""
    name = f"hugepages-test-off-{os.getpid()}"
    proc = subprocess.Popen(
        [OSV, "run", "-m", str(MEMORY_MB), "--hugepages", "off", "--name", name, "--jvm-opt=-Xms512m",
         "--jvm-opt=-Xmx512m", *APP, "--array-mb", "256", "--wait"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=osv.env, cwd=ROOT)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        ready = proc.stdout.readline()
        assert ready.startswith("READY"), ready
        record = vm_stats(osv, name)
        assert record["heap_resident"] >= 256 * MB and record["heap_hugepage_share"] < 0.05, record
        out, err = release_waiting(proc, 300)
    finally:
        kill_if_running(proc)
    assert proc.returncode == 0 and "RESULT ns_per_access=" in out, err


@pytest.fixture
def host_pool(tmp_path: Path) -> Iterator[Path]:
    """A hugetlbfs mount and 2 MB pages reserved for one guest's RAM (given back after); root only."""
    if os.geteuid() != 0:
        pytest.skip("reserving huge pages and mounting hugetlbfs need root")
    nr = Path("/proc/sys/vm/nr_hugepages")
    before = int(nr.read_text())
    pages = (MEMORY_MB + 128) // 2
    mount = tmp_path / "hugetlbfs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "none", str(mount)], check=True)
    try:
        nr.write_text(str(before + pages))
        free = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                        if line.startswith("HugePages_Free:")))
        if free < pages:
            pytest.skip(f"only {free} of {pages} huge pages could be reserved on this host")
        yield mount
    finally:
        nr.write_text(str(before))
        subprocess.run(["umount", str(mount)], check=False)


def test_pool_puts_the_guest_heap_on_the_guests_pool_and_the_guest_ram_on_the_hosts(
        osv: Osv, examples_built: Path, host_pool: Path) -> None:
    name = f"hugepages-test-pool-{os.getpid()}"
    proc = subprocess.Popen(
        [OSV, "run", "-m", str(MEMORY_MB), "--hugepages", "pool", "--dynamic-heap", "off", "--bootchart", "--name",
         name, "--jvm-opt=-Xmx512m", *APP, "--array-mb", "256", "--wait"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=osv.env, cwd=ROOT)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        ready = proc.stdout.readline()
        assert ready.startswith("READY"), ready
        children = subprocess.run(["pgrep", "-P", str(proc.pid), "qemu"], capture_output=True, text=True).stdout
        ram = guest_ram(int(children.split()[0]))
        assert ram.path.startswith(str(host_pool)) and ram.hugetlb == ram.rss, (ram.path, ram.rss, ram.hugetlb)
        record = vm_stats(osv, name)
        assert record["heap_page_kind"] == "hugetlb" and record["heap_hugepage_share"] >= 0.9, record
        assert record["guest_ram_host_hugepage_share"] == 1.0, record
        out, err = release_waiting(proc, 300)
    finally:
        kill_if_running(proc)
    assert proc.returncode == 0 and "RESULT ns_per_access=" in out, err
    assert "hugepages: warning" not in err, err
