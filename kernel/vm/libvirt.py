"""A libvirt domain of an image: q35 with virtio-pci, direct kernel boot, for `virsh create`.

libvirt 9.0 (Debian 12) has no usable microvm, so the exported machine is q35: the runtime image is a
read-only virtio disk, the run request travels in a small cpio appended to the initramfs (the kernel
unpacks both), and kernel.guest.standalone is PID 1, which takes its address and DNS servers by
DHCP. Nobody on the host talks to the guest: the app's output and then `osv-java: exit status N`
are the serial console, which libvirt logs to a file beside the domain. Published ports use QEMU's
user-mode network with host forwards, through libvirt's <qemu:commandline> (its own <portForward>
needs passt, which Debian 12's libvirt lacks).
"""

from __future__ import annotations

import io
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


def run_request(machine: Machine, hooks: Plan, **network: str) -> bytes:
    """The request kernel.guest.standalone reads. The guest asks for its address by DHCP (QEMU's user
    network answers, as KubeVirt's does); `network` (net_address, net_gateway, net_dns) are the static
    addresses it falls back to, QEMU user mode's when not given."""
    return wire.encode(
        "run",
        argv=machine.argv,
        env=[f"{k}={v}" for k, v in machine.env.items()],
        cwd=GUEST_CWD,
        main_class=machine.main_class,
        setting=hooks.setting_fields(),
        hook=hooks.supervisor_fields(),
        net_dhcp=True,
        **network,
    )


def run_archive(request: bytes) -> bytes:
    """A newc cpio with the run request, to append to the image's initramfs."""
    out = io.BytesIO()
    cpio.write([cpio.Entry.file(RUN_FILE, request)], out)
    return out.getvalue()


def kernel_cmdline(accel: str, hooks: Plan) -> str:
    args = qemu.base_cmdline(accel, verbose=False)
    args += [f"{k}={v}" for k, v in INIT_ENV.items()]
    return " ".join([*args, *hooks.kernel_cmdline])


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def netdev(publish: list[tuple[str, int, int]], network: str = "") -> str:
    """QEMU's user-mode network (`network`: its addresses, e.g. "net=10.0.2.0/24,host=10.0.2.1") with
    the host forwards of `publish`."""
    spec = "user,id=osvnet" + (f",{network}" if network else "")
    for address, host_port, guest_port in publish:
        spec += f",hostfwd=tcp:{address}:{host_port}-:{guest_port}"
    return spec


@dataclass(frozen=True)
class Boot:
    """The files a domain boots and logs to, and its kernel command line."""

    kernel: Path
    initrd: Path
    disk: Path  # the runtime image, read-only
    console_log: Path
    cmdline: str


def domain_xml(name: str, memory_mb: int, cpus: int, accel: str, boot: Boot, balloon: bool, net: str) -> bytes:
    """A q35 domain booting `boot` directly, with the runtime disk, a logged serial console, the balloon
    (free page reporting) when the policies want it, and the user-mode network `net` (see netdev)."""
    ET.register_namespace("qemu", QEMU_NS)
    domain = ET.Element("domain", {"type": "kvm" if accel == "kvm" else "qemu"})
    _sub(domain, "name", name)
    _sub(domain, "memory", str(memory_mb), unit="MiB")
    _sub(domain, "vcpu", str(cpus))
    os_ = _sub(domain, "os")
    _sub(os_, "type", "hvm", arch="x86_64", machine="q35")
    _sub(os_, "kernel", str(boot.kernel))
    _sub(os_, "initrd", str(boot.initrd))
    _sub(os_, "cmdline", boot.cmdline)
    features = _sub(domain, "features")
    _sub(features, "acpi")
    if accel == "kvm":
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
    _sub(disk, "source", file=str(boot.disk))
    _sub(disk, "target", dev="vda", bus="virtio")
    _sub(disk, "readonly")
    serial = _sub(devices, "serial", type="pty")
    _sub(serial, "log", file=str(boot.console_log), append="off")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port="0")
    _sub(devices, "controller", type="usb", model="none")
    video = _sub(devices, "video")
    _sub(video, "model", type="none")
    if balloon:
        _sub(devices, "memballoon", model="virtio", autodeflate="on", freePageReporting="on")
    else:
        _sub(devices, "memballoon", model="none")
    # On the root bus at a fixed slot: libvirt gives out slots from 1 up for its own ports.
    commandline = _sub(domain, f"{{{QEMU_NS}}}commandline")
    for arg in ("-netdev", net, "-device", "virtio-net-pci,netdev=osvnet,bus=pcie.0,addr=0x10"):
        _sub(commandline, f"{{{QEMU_NS}}}arg", value=arg)
    ET.indent(domain)
    return ET.tostring(domain, encoding="unicode").encode() + b"\n"


def wants_balloon(hooks: Plan) -> bool:
    """The dynamic heap's balloon (a virtio-balloon device among the policies' QEMU arguments)."""
    return any(arg.startswith("virtio-balloon") for arg in hooks.qemu_args)


def write_initramfs(image: Image, request: bytes, target: Path) -> None:
    """The image's initramfs with the run request appended as a second archive."""
    with open(target, "wb") as out:
        with open(image.initramfs, "rb") as base:
            shutil.copyfileobj(base, out)
        out.write(b"\0" * (-out.tell() % 4))  # each archive starts on a 4-byte boundary
        out.write(run_archive(request))


def write(image: Image, machine: Machine, hooks: Plan, tmp: Path, final: Path) -> dict[str, object]:
    """The domain's files into `tmp`, naming themselves by `final` (where `tmp` is renamed to)."""
    for name in ("vmlinuz", RUNTIME_DISK):  # copies: libvirt may relabel them, the cache's must stay ours
        shutil.copyfile(image.folder / name, tmp / name)
    write_initramfs(image, run_request(machine, hooks), tmp / "initramfs.img")
    boot = Boot(kernel=final / "vmlinuz", initrd=final / "initramfs.img", disk=final / RUNTIME_DISK,
                console_log=final / CONSOLE_LOG, cmdline=kernel_cmdline(machine.accel, hooks))
    xml = domain_xml(machine.name, machine.memory_mb, machine.cpus, machine.accel, boot, wants_balloon(hooks),
                     netdev(machine.publish))
    (tmp / DOMAIN_FILE).write_bytes(xml)
    return {"domain": str(final / DOMAIN_FILE), "name": machine.name,
            "bytes": sum(p.stat().st_size for p in tmp.iterdir())}
