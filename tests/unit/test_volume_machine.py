"""-v on virtiofs: only runs with volumes change QEMU's command line (shared memory, modern virtio)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jvmbridge.errors import DependencyError
from kernel.vm import qemu, volumes


def _config(tmp_path: Path, **more: object) -> qemu.MachineConfig:
    kernel, initrd = tmp_path / "vmlinuz", tmp_path / "initrd"
    kernel.write_bytes(b"k")
    initrd.write_bytes(b"i")
    return qemu.MachineConfig(kernel=kernel, initramfs=initrd, memory_mb=512, cpus=2, accel="tcg",
                              cmdline=["console=ttyS0"], serial_log=tmp_path / "console.log",
                              chardevs=[("osv.ctl", "/ctl.sock")], **more)  # type: ignore[arg-type]


def test_a_run_without_volumes_keeps_plain_ram(tmp_path: Path) -> None:
    argv = " ".join(_config(tmp_path).argv())
    assert "memory-backend" not in argv and "force-legacy" not in argv and "vhost-user" not in argv


def test_each_volume_gets_a_vhost_user_fs_device_on_shared_memory(tmp_path: Path) -> None:
    socks = [(volumes.tag(0), tmp_path / "fs0.sock"), (volumes.tag(1), tmp_path / "fs1.sock")]
    argv = _config(tmp_path, filesystems=socks).argv()
    joined = " ".join(argv)
    assert "memory-backend-memfd,id=ram,size=512M,share=on" in joined
    assert "memory-backend=ram" in joined and "virtio-mmio.force-legacy=false" in joined
    assert joined.count("vhost-user-fs-device") == 2
    assert "vhost-user-fs-device,chardev=fs0,tag=osvvol0" in joined
    assert f"socket,id=fs1,path={tmp_path / 'fs1.sock'}" in joined


def test_virtiofsd_missing_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(volumes, "VIRTIOFSD_PLACES", ("/nonexistent/virtiofsd",))
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(DependencyError) as caught:
        volumes.virtiofsd_binary()
    assert caught.value.hint is not None and "apt-get install qemu-system-common" in caught.value.hint


def test_virtiofsd_runs_sandboxed_on_the_folder(tmp_path: Path) -> None:
    argv = volumes.virtiofsd_argv("/usr/lib/qemu/virtiofsd", volumes.Volume(tmp_path, "/data"), tmp_path / "s")
    assert f"source={tmp_path}" in argv and "sandbox=namespace" in argv and "cache=auto" in argv


def test_a_read_only_volume_is_read_only_on_the_host_side_too(tmp_path: Path) -> None:
    argv = volumes.virtiofsd_argv("/v", volumes.Volume(tmp_path, "/data", readonly=True), tmp_path / "s")
    assert argv[:3] == ["unshare", "--mount", "--"]
    script = argv[argv.index("-c") + 1]
    assert 'mount -o remount,bind,ro "$1" "$1"' in script and script.endswith('exec "$@"')
    assert argv[argv.index("-c") + 3] == str(tmp_path)  # $1, shifted away before the exec
    assert argv[argv.index("-c") + 4] == "/v"


def test_another_user_runs_virtiofsd_in_a_user_namespace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(volumes.os, "geteuid", lambda: 1000)
    argv = volumes.virtiofsd_argv("/v", volumes.Volume(tmp_path, "/data"), tmp_path / "s")
    assert argv[:4] == ["unshare", "--user", "--map-root-user", "--mount"]
    assert argv[5:8] == ["setpriv", "--pdeathsig", "KILL"]  # entering the namespace clears it


def test_a_comma_in_the_folder_is_escaped_for_virtiofsd(tmp_path: Path) -> None:
    folder = tmp_path / "a,b"
    argv = volumes.virtiofsd_argv("/v", volumes.Volume(folder, "/data"), tmp_path / "s")
    assert f"source={tmp_path}/a\\,b" in argv


def test_a_kernel_config_without_virtiofs_is_refused_only_for_runs_with_volumes() -> None:
    from kernel import linux

    config = {option: "y" for option in (*linux.REQUIRED_CONFIG, *linux.RECOMMENDED_CONFIG)}
    required, recommended = linux.missing_config(config)
    assert required == [] and [r.split()[0] for r in recommended] == ["CONFIG_FUSE_FS", "CONFIG_VIRTIO_FS"]
    required, recommended = linux.missing_config(config, volumes=True)
    assert [r.split()[0] for r in required] == ["CONFIG_FUSE_FS", "CONFIG_VIRTIO_FS"] and recommended == []
    assert linux.missing_config({**config, "FUSE_FS": "m", "VIRTIO_FS": "y"}, volumes=True) == ([], [])
