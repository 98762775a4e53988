"""A restored boot snapshot's RAM is mapped 2 MB-aligned, so the host can back it with huge pages."""

from __future__ import annotations

from pathlib import Path

from kernel.vm import qemu


def _argv(tmp_path: Path, **more: object) -> str:
    kernel, initrd = tmp_path / "vmlinuz", tmp_path / "initrd"
    kernel.write_bytes(b"k")
    initrd.write_bytes(b"i")
    config = qemu.MachineConfig(kernel=kernel, initramfs=initrd, memory_mb=512, cpus=2, accel="tcg",
                                cmdline=["console=ttyS0"], serial_log=tmp_path / "console.log",
                                **more)  # type: ignore[arg-type]
    return " ".join(config.argv())


def test_a_restored_snapshots_ram_is_2m_aligned(tmp_path: Path) -> None:
    shared = _argv(tmp_path, snapshot_ram="/proc/1/fd/7")
    assert "memory-backend-file,id=ram,size=512M,mem-path=/proc/1/fd/7,share=on,align=2M" in shared
    private = _argv(tmp_path, snapshot_ram="/cache/ram", snapshot_ram_private=True)
    assert "mem-path=/cache/ram,share=off,align=2M" in private


def test_a_policys_own_ram_backend_is_sized_as_qemus_ram_and_keeps_snapshots_out(tmp_path: Path) -> None:
    from gc_hooks.seam import RAM_MB

    backend = ["-object", f"memory-backend-file,id=osv-ram,size={RAM_MB}M,mem-path=/dev/hugepages,share=off",
               "-machine", "memory-backend=osv-ram"]
    assert qemu.brings_ram(backend) and not qemu.brings_ram(["-device", "virtio-balloon-device"])
    argv = _argv(tmp_path, extra_args=backend, snapshot_ram="memfd")
    assert "id=osv-ram,size=512M," in argv  # what -m says: QEMU refuses a backend of another size
    assert "memory-backend-memfd" not in argv and argv.count("memory-backend=") == 1
