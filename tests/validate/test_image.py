"""`osv-java validate` on a real image, on small images in the real layout, and on broken ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kernel.validate.checks import validate_image
from tests.validate import helpers


def codes(folder: Path) -> list[tuple[str, str]]:
    return [(f.severity, f.code) for f in validate_image(folder) if f.severity != "info"]


def test_real_image_is_clean(hello_image: Path, cache: Path) -> None:
    result = helpers.osv(["validate", str(hello_image), "--json"], cache)
    assert result.status == 0, result.stdout + result.stderr
    findings = json.loads(result.stdout)
    assert all(f["severity"] == "info" for f in findings)
    assert all(set(f) == {"severity", "code", "path", "message", "hint"} for f in findings)


def test_real_image_tampered(hello_image: Path, tmp_path: Path, cache: Path) -> None:
    image = helpers.clone_image(hello_image, tmp_path / "img")
    manifest = json.loads((image / "image.json").read_text())
    files = sorted(p for p, r in manifest["files"].items() if r.get("size"))
    changed, dropped = files[0], files[-1]
    manifest["files"][changed]["sha256"] = "0" * 64
    manifest["files"]["/osv/not-there"] = {"sha256": "0" * 64, "size": 1}
    del manifest["files"][dropped]
    (image / "image.json").write_text(json.dumps(manifest))
    result = helpers.osv(["validate", str(image)], cache)
    assert result.status == 1
    assert f"error: {changed}: does not match its sha256 in image.json" in result.stdout
    assert "error: /osv/not-there: is listed in image.json but not in initramfs.img" in result.stdout
    assert f"warning: {dropped}: is in initramfs.img but not in image.json" in result.stdout

def test_synthetic_image_is_clean(tmp_path: Path, kernel_dir: Path) -> None:
    assert codes(helpers.synthetic_image(tmp_path / "img", kernel_dir)) == []


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"/app/native/libfoo.so": "aarch64"}, ("error", "elf-arch")),
        ({"/app/native/libfoo.so": "missing"}, ("error", "elf-needed")),
        ({"/app/native/libfoo.so": "version"}, ("error", "elf-version")),
        ({"/app/native/libfoo.so": "truncated"}, ("error", "elf-corrupt")),
        ({"/app/native/libfoo.so": "text"}, ("error", "elf-corrupt")),
        ({"/app/lib.jar": "jar-aarch64"}, ("error", "elf-arch")),
        ({"/app/lib.jar": "jar-mac"}, ("warning", "jni-platform")),
    ],
)
def test_synthetic_image_elf_problems(
    tmp_path: Path, kernel_dir: Path, extra: dict[str, str], expected: tuple[str, str]
) -> None:
    def payload(kind: str) -> bytes:
        if kind == "jar-aarch64":
            jar = helpers.make_jar(
                tmp_path / "lib.jar", {"native/linux-x86_64/libfoo.so": helpers.foreign_machine(helpers.libz())}
            )
            return jar.read_bytes()
        if kind == "jar-mac":
            return helpers.make_jar(tmp_path / "lib.jar", {"darwin/libfoo.dylib": b"\xcf\xfa\xed\xfe"}).read_bytes()
        return {
            "aarch64": lambda: helpers.foreign_machine(helpers.libz()),
            "missing": helpers.elf_needing_missing_lib,
            "version": helpers.elf_needing_future_glibc,
            "truncated": lambda: helpers.truncated(helpers.libz(), 3000),
            "text": lambda: b"not a library\n",
        }[kind]()

    files = {path: payload(kind) for path, kind in extra.items()}
    image = helpers.synthetic_image(tmp_path / "img", kernel_dir, extra=files)
    assert expected in codes(image)


def test_missing_interpreter(tmp_path: Path, kernel_dir: Path) -> None:
    image = helpers.synthetic_image(tmp_path / "img", kernel_dir, drop=("/lib64/ld-linux-x86-64.so.2",))
    found = codes(image)
    assert ("error", "elf-interp") in found and ("error", "file-missing") in found


def test_symlink_escaping(tmp_path: Path, kernel_dir: Path) -> None:
    image = helpers.synthetic_image(tmp_path / "img", kernel_dir, symlinks={"/app/out": "../../../etc/passwd"})
    assert ("error", "symlink-escapes") in codes(image)


def test_symlinks_resolve_inside_the_image(tmp_path: Path, kernel_dir: Path) -> None:
    image = helpers.synthetic_image(
        tmp_path / "img",
        kernel_dir,
        drop=("/lib/x86_64-linux-gnu/libc.so.6",),
        symlinks={"/lib/x86_64-linux-gnu/libc.so.6": "/usr/lib/libc-real.so"},
        extra={"/usr/lib/libc-real.so": Path("/lib/x86_64-linux-gnu/libc.so.6").resolve().read_bytes()},
    )
    assert codes(image) == [("error", "file-missing")]  # only image.json's stale entry for the old path


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        ("truncate-initramfs", "initramfs-corrupt"),
        ("garbage-initramfs", "initramfs-corrupt"),
        ("no-manifest", "image-manifest"),
        ("bad-json", "image-manifest"),
        ("kernel-not-bzimage", "kernel-not-bzimage"),
        ("kernel-config", "kernel-config"),
        ("dotdot-entry", "initramfs-corrupt"),
        ("absolute-entry", "initramfs-corrupt"),
        ("main-class", "main-class-missing"),
        ("no-launcher", "jvm-missing"),
        ("garbage-runtime-disk", "runtime-disk-corrupt"),
        ("no-runtime-disk", "runtime-disk-missing"),
    ],
)
def test_broken_images(tmp_path: Path, kernel_dir: Path, cache: Path, mutate: str, code: str) -> None:
    image = helpers.synthetic_image(tmp_path / "img", kernel_dir)
    manifest = json.loads((image / "image.json").read_text())
    if mutate == "truncate-initramfs":
        data = (image / "initramfs.img").read_bytes()
        helpers.replace_file(image / "initramfs.img", data[: len(data) // 2])
    elif mutate == "garbage-initramfs":
        helpers.replace_file(image / "initramfs.img", b"\x1f\x8b" + bytes(500))
    elif mutate == "no-manifest":
        (image / "image.json").unlink()
    elif mutate == "bad-json":
        (image / "image.json").write_text("{not json")
    elif mutate == "kernel-not-bzimage":
        helpers.replace_file(image / "vmlinuz", b"\x7fELF" + bytes(4096))
    elif mutate == "kernel-config":
        config = tmp_path / "config"
        config.write_text("CONFIG_BLK_DEV_INITRD=y\n# CONFIG_VIRTIO_MMIO is not set\n")
        manifest["inputs"]["kernel"]["config"] = str(config)
    elif mutate in ("dotdot-entry", "absolute-entry"):
        name = b"../../evil" if mutate == "dotdot-entry" else b"/etc/evil"
        head = b"070701" + b"".join(b"%08X" % f for f in (1, 0o100644, 0, 0, 1, 0, 4, 0, 0, 0, 0, len(name) + 1, 0))
        entry = head + name + b"\0"
        entry += b"\0" * (-len(entry) % 4) + b"evil"
        helpers.replace_file(image / "initramfs.img", entry + (image / "initramfs.img").read_bytes())
    elif mutate == "main-class":
        manifest["inputs"]["app"]["main_class"] = "com.example.Gone"
    elif mutate == "no-launcher":
        manifest["jvm_command"][0] = "/osv/jre/bin/javax"
    elif mutate == "garbage-runtime-disk":
        (image / "runtime.img").write_bytes(b"\xff" * 8192)
    elif mutate == "no-runtime-disk":
        manifest.setdefault("sizes", {})["runtime_disk"] = 8192  # the manifest says there is one; no file
    if (image / "image.json").exists() and mutate != "bad-json":
        (image / "image.json").write_text(json.dumps(manifest))
    findings = codes(image)
    assert ("error", code) in findings, findings
    if mutate in ("truncate-initramfs", "bad-json"):
        result = helpers.osv(["validate", "--json", str(image)], cache)
        assert (result.status, result.stderr) == (1, ""), result.stderr
        assert ("error", code) in [(f["severity"], f["code"]) for f in json.loads(result.stdout)]
