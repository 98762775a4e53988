"""`osv-java build`: content-addressed cache, byte-identical rebuilds, a manifest that matches the image."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from osvtest import JDK17, ROOT, Osv, explain, text

HELLO = "examples/hello/hello.jar"


def build(osv: Osv, out: Path, *extra: str) -> dict:
    proc = osv("build", "--jdk", JDK17, HELLO, "-o", str(out), "--json", *extra)
    assert proc.returncode == 0, explain(proc)
    return json.loads(proc.stdout)


def test_second_build_of_the_same_inputs_is_a_cache_hit(osv: Osv, osv_cache: Path, examples_built: Path,
                                                        tmp_path: Path) -> None:
    first = build(osv, tmp_path / "a")
    cached = osv_cache / "images" / first["key"]
    stamp = (cached / "initramfs.img").stat().st_mtime_ns
    proc = osv("build", "--jdk", JDK17, HELLO, "-o", str(tmp_path / "b"), "--json")
    assert proc.returncode == 0, explain(proc)
    assert json.loads(proc.stdout)["key"] == first["key"]
    assert "linking" not in text(proc.stderr)
    assert (cached / "initramfs.img").stat().st_mtime_ns == stamp, "the cached image was rebuilt"
    assert not [p for p in (osv_cache / "images").iterdir() if p.name.startswith(".tmp-")]


def test_two_builds_are_byte_identical(osv: Osv, osv_cache: Path, examples_built: Path, tmp_path: Path) -> None:
    first = build(osv, tmp_path / "one")
    shutil.rmtree(osv_cache / "images" / first["key"])  # force the image to be assembled again
    shutil.rmtree(osv_cache / "closure", ignore_errors=True)  # and its ELF closure resolved again
    shutil.rmtree(osv_cache / "runtimes", ignore_errors=True)  # and its runtime's part written again
    second = build(osv, tmp_path / "two")
    assert first["key"] == second["key"]
    one, two = tmp_path / "one", tmp_path / "two"
    for name in ("initramfs.img", "base.img", "app.cpio", "runtime.img", "image.json"):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name


def test_two_apps_on_one_runtime_share_the_base_initramfs(osv: Osv, osv_cache: Path, examples_built: Path,
                                                           tmp_path: Path) -> None:
    """What a boot snapshot holds (kernel.vm.snapshot) is the same for both; only app.cpio differs. In
    the cache the runtime's files are one (kernel.build.runtime_part): an edited jar writes only its own."""
    build(osv, tmp_path / "hello")
    proc = osv("build", "--jdk", JDK17, "examples/echo/echo.jar", "-o", str(tmp_path / "echo"), "--json")
    assert proc.returncode == 0, explain(proc)
    hello, echo = (json.loads((tmp_path / name / "image.json").read_text()) for name in ("hello", "echo"))
    assert hello["key"] != echo["key"] and hello["runtime_key"] == echo["runtime_key"]
    assert (tmp_path / "hello" / "base.img").read_bytes() == (tmp_path / "echo" / "base.img").read_bytes()
    assert (tmp_path / "hello" / "app.cpio").read_bytes() != (tmp_path / "echo" / "app.cpio").read_bytes()
    for name in ("base.img", "runtime.img"):
        cached = {(osv_cache / "images" / image["key"] / name).stat().st_ino for image in (hello, echo)}
        assert len(cached) == 1, f"the cached images' {name} are two files"


@pytest.mark.skipif(shutil.which("cpio") is None, reason="GNU cpio is not installed")
@pytest.mark.skipif(shutil.which("fsck.erofs") is None, reason="fsck.erofs is not installed (erofs-utils)")
def test_manifest_matches_every_file_in_the_image(osv: Osv, examples_built: Path, tmp_path: Path) -> None:
    build(osv, tmp_path / "img")
    manifest = json.loads((tmp_path / "img" / "image.json").read_text())
    root = tmp_path / "root"
    root.mkdir()
    with open(tmp_path / "img" / "initramfs.img", "rb") as f:
        subprocess.run(["cpio", "-idm", "--quiet", "--no-absolute-filenames"], stdin=f, cwd=root, check=True)
    # The JRE is on its own read-only disk, mounted at /osv/jre in the guest.
    disk = tmp_path / "img" / "runtime.img"
    subprocess.run(["fsck.erofs", f"--extract={root / 'osv/jre'}", "--overwrite", str(disk)], check=True,
                   capture_output=True)
    assert all(info.get("disk") == "runtime.img" for name, info in manifest["files"].items()
               if name.startswith("/osv/jre/"))
    regular = {"/" + str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.is_symlink()}
    assert regular == set(manifest["files"])
    for name, info in manifest["files"].items():
        data = (root / name.lstrip("/")).read_bytes()
        assert hashlib.sha256(data).hexdigest() == info["sha256"], name
    assert manifest["jvm_command"][0] == "/osv/jre/bin/java"
    # The app is at its host path in the image (osv-java runs from the project root here).
    hello = str((ROOT / HELLO).resolve())
    assert manifest["jvm_command"][-2:] == ["-jar", hello]
    assert hello in manifest["files"]
    assert manifest["inputs"]["jdk"]["version"].startswith("17")
    # A minimal JRE: jdeps found only java.base for hello; the shell's agent needs the other two.
    assert manifest["inputs"]["jre_modules"] == ["java.base", "java.instrument", "java.logging"]
    assert (root / "osv/jre/lib/server/libjvm.so").exists()
    assert (root / "lib64/ld-linux-x86-64.so.2").exists()
