"""`osv-java export --format kubevirt`: the VirtualMachine passes KubeVirt's published OpenAPI schema
(pinned in tests/data/kubevirt, checked strictly: a typo fails), the containerDisk image passes skopeo
and umoci with KubeVirt's ownership, and — no cluster being reachable — the device set the manifest
describes (q35, kernel boot from the image, its disk on virtio, masquerade addresses, the balloon)
boots under a real libvirtd from the files unpacked out of that image."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import guestconsole
import libvirtd
import ocirun
import openapi
import pytest
from exportenv import EXAMPLES, JDK17_HOME
from osvtest import ROOT, Osv, explain, first_page, text

from kernel.vm import kubevirt, libvirt, qemu

pytestmark = pytest.mark.slow

SCHEMA = json.loads((ROOT / "tests" / "data" / "kubevirt" / "virtualmachine-openapi.json").read_text())
DEFINITIONS = SCHEMA["definitions"]
VM = {"$ref": "#/definitions/v1.VirtualMachine"}
BOOT_TIMEOUT = 240.0


@pytest.fixture(scope="module")
def kubevirt_export(export_osv: Osv, osv_cache: Path, domain_dirs: Callable[[str], Path]) -> Callable[..., Path]:
    def export(name: str, *args: str) -> Path:
        out = domain_dirs("kubevirt") / name
        proc = export_osv("export", *args, "--jdk", str(JDK17_HOME), "--format", "kubevirt", "--name", name,
                          "--image", f"registry.example.com/{name}:1.0", "-o", str(out),
                          env={"OSV_JAVA_CACHE": str(osv_cache)})
        assert proc.returncode == 0, explain(proc)
        return out

    return export


def manifest_of(folder: Path) -> dict[str, Any]:
    return json.loads((folder / kubevirt.MANIFEST).read_text())


def test_the_manifest_passes_the_pinned_schema_and_a_typo_does_not(kubevirt_export: Callable[..., Path]) -> None:
    vm = manifest_of(kubevirt_export("osv-schema", str(EXAMPLES / "httpserver" / "httpserver.jar"), "-p", "8080:8080"))
    assert openapi.validate(vm, VM, DEFINITIONS) == []
    spec = vm["spec"]["template"]["spec"]
    assert spec["domain"]["firmware"]["kernelBoot"]["container"]["image"] == "registry.example.com/osv-schema:1.0"
    assert spec["volumes"][0]["containerDisk"]["path"] == "/disk/runtime.img"

    typo = copy.deepcopy(vm)
    boot = typo["spec"]["template"]["spec"]["domain"]["firmware"]["kernelBoot"]
    boot["kernelArg"] = boot.pop("kernelArgs")
    assert openapi.validate(typo, VM, DEFINITIONS) == [
        ".spec.template.spec.domain.firmware.kernelBoot.kernelArg: unknown field"]
    wrong_type = copy.deepcopy(vm)
    wrong_type["spec"]["template"]["spec"]["domain"]["cpu"]["cores"] = "2"
    assert openapi.validate(wrong_type, VM, DEFINITIONS) == [
        ".spec.template.spec.domain.cpu.cores: str where the schema wants integer"]


def test_the_container_disk_holds_kernel_initrd_and_disk_owned_by_qemu(
        oci_tools: None, kubevirt_export: Callable[..., Path], tmp_path: Path) -> None:
    layout = kubevirt_export("osv-disk", str(EXAMPLES / "hello" / "hello.jar")) / kubevirt.DISK_IMAGE
    inspect = subprocess.run(["skopeo", "inspect", f"oci:{layout}:1.0"], capture_output=True, check=False)
    assert inspect.returncode == 0, text(inspect.stderr)
    ocirun.unpack(layout, "1.0", tmp_path / "bundle")
    rootfs = tmp_path / "bundle" / "rootfs"
    for path in (kubevirt.KERNEL_PATH, kubevirt.INITRD_PATH, kubevirt.DISK_PATH):
        info = (rootfs / path.strip("/")).stat()
        assert (info.st_uid, info.st_gid) == (107, 107), path


def boot_device_set(folder: Path, work: Path, name: str, publish: list[tuple[str, int, int]],
                    netdev: str | None = None) -> Path:
    """What virt-launcher would start from the manifest, as a local domain: the files come out of the
    containerDisk image, the rest from the manifest; the network QEMU's user mode with the masquerade
    addresses unless `netdev` says otherwise. Returns the console log's path."""
    vm = manifest_of(folder)
    spec = vm["spec"]["template"]["spec"]
    domain = spec["domain"]
    boot = domain["firmware"]["kernelBoot"]
    ocirun.unpack(folder / kubevirt.DISK_IMAGE, "1.0", work / "bundle")
    rootfs = work / "bundle" / "rootfs"
    for folder_made in (work / "bundle", rootfs):  # umoci makes them 0700: a machine's libvirtd runs
        folder_made.chmod(0o755)  # QEMU as its own user (libvirt-qemu), which must reach the files
    volume = next(v for v in spec["volumes"] if v["name"] == domain["devices"]["disks"][0]["name"])
    # Here there is no KVM: TCG wants the TSC rate on the command line (KubeVirt's nodes have KVM).
    cmdline = " ".join([boot["kernelArgs"], f"tsc_early_khz={qemu.tsc_khz()}"])
    files = libvirt.Boot(kernel=rootfs / boot["container"]["kernelPath"].strip("/"),
                         initrd=rootfs / boot["container"]["initrdPath"].strip("/"),
                         disk=rootfs / volume["containerDisk"]["path"].strip("/"),
                         console_log=work / "console.log", cmdline=cmdline)
    memory_mb = int(re.fullmatch(r"(\d+)Mi", domain["memory"]["guest"]).group(1))  # type: ignore[union-attr]
    xml = libvirt.domain_xml(name, memory_mb, domain["cpu"]["cores"], "tcg", files,
                             domain["devices"]["autoattachMemBalloon"],
                             netdev or libvirt.netdev(publish, kubevirt.MASQUERADE_QEMU))
    (work / "domain.xml").write_bytes(xml)
    created = libvirtd.virsh("create", str(work / "domain.xml"))
    assert created.returncode == 0, created.stderr
    return files.console_log


def run_device_set(folder: Path, work: Path, name: str, netdev: str | None = None) -> str:
    """Boot the device set until it powers off; the console it logged."""
    console = boot_device_set(folder, work, name, [], netdev)
    try:
        assert libvirtd.wait_gone(name, BOOT_TIMEOUT), "the domain did not power off"
    finally:
        libvirtd.virsh("destroy", name)
    return console.read_text(errors="replace")


@pytest.mark.vm
def test_its_device_set_runs_hello_under_libvirt(oci_tools: None, libvirt_daemon: None,
                                                 kubevirt_export: Callable[..., Path],
                                                 domain_dirs: Callable[[str], Path]) -> None:
    name = f"osv-kv-hello-{os.getpid()}"
    folder = kubevirt_export(name, str(EXAMPLES / "hello" / "hello.jar"))
    log = run_device_set(folder, domain_dirs("device-set"), name)
    assert "Hello from osv-java! Java 17" in log
    assert re.findall(r"^osv-java: exit status (\d+)\r?$", log, re.M) == ["0"], log
    # the lease virt-launcher's DHCP server would give (QEMU's user network answers in its place)
    assert guestconsole.network_by_dhcp(log) == "10.0.2.2/24 via 10.0.2.1, dns 10.0.2.3"


RESOLVED_NAME = "pypi.org"  # `make venv` installs from it: a machine that runs these tests resolves it


@pytest.mark.vm
def test_its_guest_resolves_names_through_the_dns_server_of_its_lease(
        oci_tools: None, libvirt_daemon: None, kubevirt_export: Callable[..., Path],
        domain_dirs: Callable[[str], Path]) -> None:
    """Under KubeVirt the pod's DNS servers reach the VM by DHCP alone. Here QEMU's DNS server
    (10.0.2.3, from the lease) forwards to this host's resolver: the guest must get the host's answer."""
    try:
        expected = {info[4][0] for info in socket.getaddrinfo(RESOLVED_NAME, None, socket.AF_INET)}
    except OSError as exc:
        pytest.skip(f"this host cannot resolve {RESOLVED_NAME} ({exc}): the guest's DNS would forward to it")
    name = f"osv-kv-dns-{os.getpid()}"
    folder = kubevirt_export(name, str(EXAMPLES / "resolve" / "resolve.jar"), RESOLVED_NAME)
    log = run_device_set(folder, domain_dirs("device-set"), name)
    resolved = set(re.findall(rf"^resolved {re.escape(RESOLVED_NAME)} ([0-9.]+)\r?$", log, re.M))
    assert resolved & expected, log
    assert re.findall(r"^osv-java: exit status (\d+)\r?$", log, re.M) == ["0"], log


@pytest.mark.vm
def test_without_a_dhcp_answer_it_falls_back_to_the_masquerade_addresses(
        oci_tools: None, libvirt_daemon: None, kubevirt_export: Callable[..., Path],
        domain_dirs: Callable[[str], Path]) -> None:
    """A NIC on a hub with nothing else on it: no DHCP server answers, PID 1 says so in one line, gives
    eth0 the masquerade addresses and runs the app."""
    name = f"osv-kv-nodhcp-{os.getpid()}"
    folder = kubevirt_export(name, str(EXAMPLES / "hello" / "hello.jar"))
    log = run_device_set(folder, domain_dirs("device-set"), name, netdev="hubport,id=osvnet,hubid=0")
    found = re.findall(r"^osv-java: network: (.*)\r?$", log, re.M)
    assert len(found) == 1 and re.fullmatch(
        r"no DHCP answer in [0-9.]+ s; static 10\.0\.2\.2/24 via 10\.0\.2\.1, dns none", found[0]), log
    assert "Hello from osv-java! Java 17" in log
    assert re.findall(r"^osv-java: exit status (\d+)\r?$", log, re.M) == ["0"], log


@pytest.mark.vm
def test_its_masquerade_addresses_serve_a_port(oci_tools: None, libvirt_daemon: None,
                                               kubevirt_export: Callable[..., Path],
                                               domain_dirs: Callable[[str], Path]) -> None:
    name = f"osv-kv-http-{os.getpid()}"
    port = 19000 + os.getpid() % 1000
    folder = kubevirt_export(name, str(EXAMPLES / "httpserver" / "httpserver.jar"), "-p", "8080:8080")
    guest_port = manifest_of(folder)["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"][0]["ports"][0]
    console = boot_device_set(folder, domain_dirs("device-set"), name, [("127.0.0.1", port, guest_port["port"])])
    try:
        body = first_page(f"http://127.0.0.1:{port}/kv", BOOT_TIMEOUT)
        assert "Hello over HTTP from osv-java" in body, console.read_text(errors="replace")
    finally:
        libvirtd.virsh("destroy", name)


def test_the_same_inputs_give_the_same_bytes(export_osv: Osv, osv_cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "vm"

    def export() -> dict[str, str]:
        proc = export_osv("export", str(EXAMPLES / "hello" / "hello.jar"), "--jdk", str(JDK17_HOME), "--format",
                          "kubevirt", "-o", str(out), env={"OSV_JAVA_CACHE": str(osv_cache)})
        assert proc.returncode == 0, explain(proc)
        return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(out.rglob("*")) if p.is_file()}

    first = export()
    shutil.rmtree(out)
    assert export() == first
    assert kubevirt.MANIFEST in first
