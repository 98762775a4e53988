"""Pure logic of `osv-java export`: the OCI layer writer's bytes, which options each format refuses,
the domain's devices, and the strict schema check the KubeVirt tests rely on."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from gc_hooks.seam import SupervisorSpec
from jvmbridge.errors import UsageError
from kernel.formats import oci
from kernel.formats.cpio import Entry
from kernel.guest import container
from kernel.vm import libvirt
from osv_java import export_options


def layer_members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


def test_a_layer_is_sorted_with_parents_fixed_times_and_owners() -> None:
    entries = [oci.Owned(Entry.file("b/z.txt", b"z")), oci.Owned(Entry.file("a/y/x.txt", b"x"), 7, 8),
               oci.Owned(Entry.symlink("b/link", "z.txt"))]
    members = layer_members(oci.tar_bytes(entries))
    assert [m.name for m in members] == ["a", "a/y", "a/y/x.txt", "b", "b/link", "b/z.txt"]
    assert {m.mtime for m in members} == {0}
    x = members[2]
    assert (x.uid, x.gid, x.uname, x.gname, x.mode) == (7, 8, "", "", 0o644)
    assert members[4].linkname == "z.txt"
    # the same entries in another order: the same bytes, compressed too
    assert oci.tar_bytes(reversed(entries)) == oci.tar_bytes(entries)
    assert oci.gzip_bytes(oci.tar_bytes(entries)) == oci.gzip_bytes(oci.tar_bytes(entries))


def test_a_layer_refuses_device_nodes_and_escaping_paths() -> None:
    with pytest.raises(ValueError, match="the engine makes /dev"):
        oci.tar_bytes([oci.Owned(Entry.char_device("dev/null", 1, 3))])
    with pytest.raises(ValueError, match="bad layer path"):
        oci.tar_bytes([oci.Owned(Entry.file("../etc/passwd", b""))])


def test_the_layout_names_its_blobs_by_digest(tmp_path: Path) -> None:
    layer = oci.Layer({"hello.txt": oci.Owned(Entry.file("hello.txt", b"hi\n"))})
    manifest = oci.LayoutWriter(tmp_path / "layout").image([layer], {"Cmd": ["x"]}, "1.0")
    blobs = tmp_path / "layout" / "blobs" / "sha256"
    for blob in blobs.iterdir():
        assert oci.sha256(blob.read_bytes()) == f"sha256:{blob.name}"
    assert (blobs / manifest.digest.split(":")[1]).exists()
    assert '"org.opencontainers.image.ref.name":"1.0"' in (tmp_path / "layout" / "index.json").read_text()


@pytest.mark.parametrize("fmt, given, message", [
    ("oci", {"memory": "1G"}, "--format oci cannot honour -m 1G"),
    ("oci", {"volume": ("/a:/b",)}, "--format oci cannot honour -v /a:/b"),
    ("libvirt", {"stw_lb": "haproxy:/s:b/s"}, "--format libvirt cannot honour --stw-lb haproxy:/s:b/s"),
    ("kubevirt", {"accel": "tcg"}, "--format kubevirt cannot honour --accel tcg"),
    ("kubevirt", {"tag": "1.0"}, "--format kubevirt cannot honour --tag 1.0"),
])
def test_each_format_refuses_what_it_cannot_honour(fmt: str, given: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        export_options.check_refused(fmt, given)
    assert caught.value.message == message
    assert caught.value.hint


def test_what_a_format_honours_passes_and_an_unknown_format_does_not() -> None:
    export_options.check_refused("libvirt", {"memory": "2G", "cpus": "4", "volume": (), "gc_log": None})
    with pytest.raises(UsageError, match="'qcow2' is not a format"):
        export_options.check_format("qcow2")
    assert export_options.exposed_port("8080") == 8080
    assert export_options.exposed_port("80:8080") == 8080


def test_the_domain_has_the_runtime_disk_read_only_and_the_forwards(tmp_path: Path) -> None:
    boot = libvirt.Boot(kernel=tmp_path / "k", initrd=tmp_path / "i", disk=tmp_path / "d",
                        console_log=tmp_path / "c", cmdline="console=ttyS0")
    xml = libvirt.domain_xml("x", 512, 1, "tcg", boot, True, libvirt.netdev([("127.0.0.1", 8000, 80)]))
    domain = ET.fromstring(xml)
    assert domain.get("type") == "qemu"
    assert domain.find("os/type").get("machine") == "q35"  # type: ignore[union-attr]
    assert domain.find("devices/disk/readonly") is not None
    assert domain.find("devices/memballoon").get("freePageReporting") == "on"  # type: ignore[union-attr]
    args = [a.get("value") for a in domain.iter(f"{{{libvirt.QEMU_NS}}}arg")]
    assert "user,id=osvnet,hostfwd=tcp:127.0.0.1:8000-:80" in args


def test_without_cap_sys_nice_the_container_plans_no_collapse(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tjava\nCapEff:\t0000000000000000\n")
    assert not container.has_capability(container.CAP_SYS_NICE, str(status))
    status.write_text("CapEff:\t0000000000800000\n")
    assert container.has_capability(container.CAP_SYS_NICE, str(status))
    fields = [SupervisorSpec("hugepages", "m", "C", {"collapse": True, "mode": "thp"}).fields(),
              SupervisorSpec("dynamic-heap", "m", "D", {"interval": 0.5}).fields()]
    kept, dropped = container.supervisor_specs(fields, True), container.supervisor_specs(fields, False)
    assert kept[0].settings["collapse"] is True
    assert dropped[0].settings == {"collapse": False, "mode": "thp"}
    assert dropped[1].settings == {"interval": 0.5}
