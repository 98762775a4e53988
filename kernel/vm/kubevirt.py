"""A KubeVirt VirtualMachine of an image, and the containerDisk image its kernel boot and disk come from.

KubeVirt boots a kernel and initrd taken from a container image (spec.domain.firmware.kernelBoot) on
q35 with virtio-pci, and takes extra disks from containerDisk images (files under /disk, owned by its
qemu user 107). One OCI image serves both: /boot/vmlinuz, /boot/initramfs.img (the image's
initramfs with the run request appended, as for libvirt) and /disk/runtime.img. The guest is the
same as libvirt's (kernel.guest.standalone): it takes its address, route and the pod's DNS servers and
search domains by DHCP from virt-launcher, and falls back to the addresses of KubeVirt's masquerade
binding (10.0.2.2, gateway 10.0.2.1) when no answer comes. A guest that powers off ends as
Succeeded: the exit status is the `osv-java: exit status N` line on the serial console KubeVirt logs.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gc_hooks.policies import Plan
from kernel.build.image import Image
from kernel.build.layout import RUNTIME_DISK
from kernel.formats import oci
from kernel.formats.cpio import Entry
from kernel.vm import libvirt

QEMU_UID = 107  # KubeVirt's qemu user: containerDisk files must be its
KERNEL_PATH = "/boot/vmlinuz"
INITRD_PATH = "/boot/initramfs.img"
DISK_PATH = f"/disk/{RUNTIME_DISK}"
MANIFEST = "virtualmachine.json"
DISK_IMAGE = "containerdisk"  # the OCI layout's folder
# KubeVirt's masquerade binding: the guest's address and gateway on the pod network, the fallback
# when its DHCP server does not answer. The pod's DNS servers come only by DHCP: without an answer,
# names resolve through /etc/hosts alone.
MASQUERADE = {"net_address": "10.0.2.2", "net_gateway": "10.0.2.1", "net_dns": ""}
MASQUERADE_QEMU = "net=10.0.2.0/24,host=10.0.2.1,dhcpstart=10.0.2.2"  # the same addresses under QEMU


@dataclass(frozen=True)
class Request:
    machine: libvirt.Machine  # accel is ignored: KubeVirt decides (KVM on its nodes)
    image_ref: str  # where the containerDisk image will be pulled from, e.g. registry.example/hello:1.0


def manifest(request: Request, hooks: Plan) -> dict[str, object]:
    machine = request.machine
    memory = f"{machine.memory_mb}Mi"
    interface: dict[str, object] = {"name": "default", "masquerade": {}}
    if machine.publish:
        interface["ports"] = [{"port": guest, "protocol": "TCP"} for _, _, guest in machine.publish]
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": machine.name, "labels": {"app.kubernetes.io/managed-by": "osv-java"}},
        "spec": {
            "runStrategy": "Once",  # run the app once; the VMI ends as Succeeded when it powers off
            "template": {
                "metadata": {"labels": {"kubevirt.io/domain": machine.name}},
                "spec": {
                    "domain": {
                        "machine": {"type": "q35"},
                        "cpu": {"cores": machine.cpus},
                        "memory": {"guest": memory},
                        "resources": {"requests": {"memory": memory}},
                        "firmware": {"kernelBoot": {
                            "kernelArgs": libvirt.kernel_cmdline("kvm", hooks),
                            "container": {"image": request.image_ref, "kernelPath": KERNEL_PATH,
                                          "initrdPath": INITRD_PATH, "imagePullPolicy": "IfNotPresent"},
                        }},
                        "devices": {
                            "disks": [{"name": "runtime", "disk": {"bus": "virtio", "readonly": True}}],
                            "interfaces": [interface],
                            "autoattachSerialConsole": True,
                            "autoattachGraphicsDevice": False,
                            "autoattachMemBalloon": libvirt.wants_balloon(hooks),
                        },
                    },
                    "networks": [{"name": "default", "pod": {}}],
                    "volumes": [{"name": "runtime",
                                 "containerDisk": {"image": request.image_ref, "path": DISK_PATH,
                                                   "imagePullPolicy": "IfNotPresent"}}],
                    "terminationGracePeriodSeconds": 10,
                },
            },
        },
    }


def _ref_tag(image_ref: str) -> str:
    """The tag of `image_ref` (latest when it has none): the OCI layout's reference name."""
    name = image_ref.rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else "latest"


def write(image: Image, request: Request, hooks: Plan, folder: Path) -> dict[str, object]:
    """The manifest and the containerDisk image layout into `folder` (new and empty)."""
    with tempfile.TemporaryDirectory(prefix="osv-java-kubevirt-") as scratch:
        initrd = Path(scratch) / "initramfs.img"
        libvirt.write_initramfs(image, libvirt.run_request(request.machine, hooks, **MASQUERADE), initrd)
        files = {KERNEL_PATH: image.kernel, INITRD_PATH: initrd, DISK_PATH: image.runtime_disk}
        layer = oci.Layer(comment="kernel boot and containerDisk for KubeVirt")
        for folder_name in ("boot", "disk"):
            layer.entries[folder_name] = oci.Owned(Entry.folder(folder_name), QEMU_UID, QEMU_UID)
        for path, source in files.items():
            layer.entries[path.strip("/")] = oci.Owned(Entry.from_host(path, source, 0o644), QEMU_UID, QEMU_UID)
        disk_dir = folder / DISK_IMAGE
        disk_dir.mkdir()
        tag = _ref_tag(request.image_ref)
        digest = oci.LayoutWriter(disk_dir).image([layer], {}, tag).digest
    (folder / MANIFEST).write_text(json.dumps(manifest(request, hooks), indent=1, sort_keys=True) + "\n")
    return {"manifest": str(folder / MANIFEST), "image": request.image_ref, "image_digest": digest, "tag": tag,
            "bytes": sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())}
