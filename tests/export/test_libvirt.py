"""`osv-java export --format libvirt`, then `virsh create` on a real libvirtd (Debian's 9.0, QEMU 7.2,
TCG): the q35/virtio-pci machine boots the same initramfs, the app's output and its exit status are on
the console libvirt logs, and a published port answers."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import guestconsole
import libvirtd
import pytest
from exportenv import EXAMPLES, JDK17_HOME
from osvtest import Osv, explain, first_page, text

pytestmark = [pytest.mark.vm, pytest.mark.slow]

Export = Callable[..., Path]
BOOT_TIMEOUT = 240.0


def unique(name: str) -> str:
    return f"osv-test-{name}-{os.getpid()}"


def run_domain(folder: Path, name: str) -> str:
    """virsh create, wait until the machine has powered off; the console it logged."""
    created = libvirtd.virsh("create", str(folder / "domain.xml"))
    assert created.returncode == 0, created.stderr
    try:
        assert libvirtd.wait_gone(name, BOOT_TIMEOUT), "the domain did not power off"
    finally:
        libvirtd.virsh("destroy", name)
    return (folder / "console.log").read_text(errors="replace")


def exit_status(console: str) -> int:
    found = re.findall(r"^osv-java: exit status (\d+)\r?$", console, re.M)
    assert len(found) == 1, console
    return int(found[0])


def test_hello_runs_and_reports_its_exit_status(libvirt_daemon: None, libvirt_export: Export) -> None:
    name = unique("hello")
    folder = libvirt_export(name, str(EXAMPLES / "hello" / "hello.jar"))
    console = run_domain(folder, name)
    assert "Hello from osv-java! Java 17" in console
    assert exit_status(console) == 0
    # the guest took QEMU user mode's lease by DHCP (a static fallback says so on its line)
    assert guestconsole.network_by_dhcp(console) == "10.0.2.15/24 via 10.0.2.2, dns 10.0.2.3", console


def test_a_failing_app_passes_its_status_and_arguments(libvirt_daemon: None, libvirt_export: Export) -> None:
    name = unique("exit")
    folder = libvirt_export(name, str(EXAMPLES / "exitcode" / "exitcode.jar"), "3")
    console = run_domain(folder, name)
    assert "exiting with 3" in console
    assert exit_status(console) == 3


def test_a_published_port_answers(libvirt_daemon: None, libvirt_export: Export) -> None:
    name = unique("http")
    port = 18000 + os.getpid() % 1000
    folder = libvirt_export(name, str(EXAMPLES / "httpserver" / "httpserver.jar"), "-p", f"{port}:8080")
    created = libvirtd.virsh("create", str(folder / "domain.xml"))
    assert created.returncode == 0, created.stderr
    try:
        body = first_page(f"http://127.0.0.1:{port}/ping", BOOT_TIMEOUT)
        assert "Hello over HTTP from osv-java" in body, (folder / "console.log").read_text(errors="replace")
    finally:
        libvirtd.virsh("destroy", name)


def test_the_same_inputs_give_the_same_files(export_osv: Osv, osv_cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "domain"  # the folder's path is an input: the domain names its files by it

    def export() -> dict[str, str]:
        proc = export_osv("export", str(EXAMPLES / "hello" / "hello.jar"), "--jdk", str(JDK17_HOME), "--format",
                          "libvirt", "-o", str(out), env={"OSV_JAVA_CACHE": str(osv_cache)})
        assert proc.returncode == 0, explain(proc)
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}

    first = export()
    shutil.rmtree(out)
    assert export() == first
    assert sorted(first) == ["domain.xml", "initramfs.img", "runtime.img", "vmlinuz"]


def test_options_libvirt_cannot_honour_are_refused(export_osv: Osv, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = export_osv("export", str(EXAMPLES / "hello" / "hello.jar"), "--format", "libvirt", "--stw-group", "web",
                      "-o", str(out))
    assert proc.returncode == 125, explain(proc)
    assert text(proc.stderr).splitlines()[0] == "osv-java: error: --format libvirt cannot honour --stw-group web"
    assert list(tmp_path.iterdir()) == []
