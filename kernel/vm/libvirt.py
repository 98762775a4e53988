"""A libvirt domain of an image: q35 with virtio-pci, direct kernel boot, for `virsh create`.

libvirt 9.0 (Debian 12) has no usable microvm, so the exported machine is q35: the runtime image is a
read-only virtio disk, the run request travels in a small cpio appended to the initramfs (the kernel
unpacks both), and kernel.guest.standalone is PID 1. Nobody on the host talks to the guest: the app's
output and then `osv-java: exit status N` are the serial console, which libvirt logs to a file
beside the domain. Published ports use QEMU's user-mode network with host forwards, through
libvirt's <qemu:commandline> (its own <portForward> needs passt, which Debian 12's libvirt lacks).
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

from gc_hooks.policies import Plan
from kernel.build.image import Image
from kernel.build.layout import INIT_ENV, RUNTIME_DISK
from kernel.formats import cpio
from kernel.guest import wire
from kernel.vm import qemu

RUN_FILE = "osv/run.txt"  # kernel.guest.standalone.RUN_FILE
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
CONSOLE_LOG = "console.log"
DOMAIN_FILE = "domain.xml"
GUEST_CWD = "/root"


@dataclass(frozen=True)
class Machine:
    """What the exported machine is and runs."""

    name: str
    memory_mb: int
    cpus: int
    accel: str  # "kvm" or "tcg": libvirt's domain type, and the guest's clock hints under TCG
    argv: list[str]
    env: dict[str, str]
    main_class: str
    publish: list[tuple[str, int, int]] = field(default_factory=list)  # (host address, host port, guest port)


def run_request(machine: Machine, hooks: Plan) -> bytes:
    return wire.encode(
        "run",
        argv=machine.argv,
        env=[f"{k}={v}" for k, v in machine.env.items()],
        cwd=GUEST_CWD,
        main_class=machine.main_class,
        setting=[f"{path}={value}" for path, value in hooks.guest_settings.items()],
        hook=[json.dumps(spec.fields(), sort_keys=True) for spec in hooks.supervisors],
    )


def run_archive(request: bytes) -> bytes:
    """A newc cpio with the run request, to append to the image's initramfs."""
    out = io.BytesIO()
    cpio.write([cpio.Entry.file(RUN_FILE, request)], out)
    return out.getvalue()


def kernel_cmdline(machine: Machine, hooks: Plan) -> str:
    args = qemu.base_cmdline(machine.accel, verbose=False)
    args += [f"{k}={v}" for k, v in INIT_ENV.items()]
    return " ".join([*args, *hooks.kernel_cmdline])


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def netdev(publish: list[tuple[str, int, int]]) -> str:
    spec = "user,id=osvnet"
    for address, host_port, guest_port in publish:
        spec += f",hostfwd=tcp:{address}:{host_port}-:{guest_port}"
    return spec


def domain_xml(machine: Machine, hooks: Plan, folder: Path) -> bytes:
    """The domain, its files named by their absolute paths in `folder`."""
    ET.register_namespace("qemu", QEMU_NS)
    domain = ET.Element("domain", {"type": "kvm" if machine.accel == "kvm" else "qemu"})
    _sub(domain, "name", machine.name)
    _sub(domain, "memory", str(machine.memory_mb), unit="MiB")
    _sub(domain, "vcpu", str(machine.cpus))
    os_ = _sub(domain, "os")
    _sub(os_, "type", "hvm", arch="x86_64", machine="q35")
    _sub(os_, "kernel", str(folder / "vmlinuz"))
    _sub(os_, "initrd", str(folder / "initramfs.img"))
    _sub(os_, "cmdline", kernel_cmdline(machine, hooks))
    features = _sub(domain, "features")
    _sub(features, "acpi")
    if machine.accel == "kvm":
        _sub(domain, "cpu", mode="host-passthrough")
    else:  # qemu.TCG_CPU: the baseline plus RDRAND, which seeds the guest's randomness at once
        cpu = _sub(domain, "cpu", mode="custom", match="exact")
        _sub(cpu, "model", "qemu64", fallback="forbid")
        _sub(cpu, "feature", policy="require", name="rdrand")
    _sub(domain, "clock", offset="utc")
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        _sub(domain, event, "destroy")
    devices = _sub(domain, "devices")
    disk = _sub(devices, "disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type="raw")
    _sub(disk, "source", file=str(folder / RUNTIME_DISK))
    _sub(disk, "target", dev="vda", bus="virtio")
    _sub(disk, "readonly")
    serial = _sub(devices, "serial", type="pty")
    _sub(serial, "log", file=str(folder / CONSOLE_LOG), append="off")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port="0")
    _sub(devices, "controller", type="usb", model="none")
    video = _sub(devices, "video")
    _sub(video, "model", type="none")
    if any(arg.startswith("virtio-balloon") for arg in hooks.qemu_args):  # the dynamic heap's balloon
        _sub(devices, "memballoon", model="virtio", autodeflate="on", freePageReporting="on")
    else:
        _sub(devices, "memballoon", model="none")
    # On the root bus at a fixed slot: libvirt gives out slots from 1 up for its own ports.
    commandline = _sub(domain, f"{{{QEMU_NS}}}commandline")
    for arg in ("-netdev", netdev(machine.publish), "-device", "virtio-net-pci,netdev=osvnet,bus=pcie.0,addr=0x10"):
        _sub(commandline, f"{{{QEMU_NS}}}arg", value=arg)
    ET.indent(domain)
    return ET.tostring(domain, encoding="unicode").encode() + b"\n"


def write(image: Image, machine: Machine, hooks: Plan, tmp: Path, final: Path) -> dict[str, object]:
    """The domain's files into `tmp`, naming themselves by `final` (where `tmp` is renamed to)."""
    for name in ("vmlinuz", RUNTIME_DISK):  # copies: libvirt may relabel them, the cache's must stay ours
        shutil.copyfile(image.folder / name, tmp / name)
    with open(tmp / "initramfs.img", "wb") as out:
        with open(image.initramfs, "rb") as base:
            shutil.copyfileobj(base, out)
        out.write(b"\0" * (-out.tell() % 4))  # each archive starts on a 4-byte boundary
        out.write(run_archive(run_request(machine, hooks)))
    (tmp / DOMAIN_FILE).write_bytes(domain_xml(machine, hooks, final))
    return {"domain": str(final / DOMAIN_FILE), "name": machine.name,
            "bytes": sum(p.stat().st_size for p in tmp.iterdir())}
