"""Exports made once per session (the jlinked JRE is cached in the session's own osv-java cache)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import libvirtd
import pytest
from exportenv import JDK17_HOME
from ocirun import tools_missing
from osvtest import Osv, explain


@pytest.fixture(scope="session")
def export_osv(tmp_path_factory: pytest.TempPathFactory, examples_built: Path) -> Osv:
    if not (JDK17_HOME / "bin" / "jlink").exists():
        pytest.skip(f"JDK 17 is not installed at {JDK17_HOME}")
    cache = tmp_path_factory.mktemp("export-cache")
    return Osv(env={**os.environ, "OSV_JAVA_CACHE": str(cache)}, console_log=cache / "console.log")


@pytest.fixture(scope="session")
def oci_tools() -> None:
    why = tools_missing()
    if why:
        pytest.skip(why)


@pytest.fixture(scope="session")
def oci_export(export_osv: Osv, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """export(example, *options) -> the OCI layout folder, made once per set of arguments."""
    made: dict[tuple[str, ...], Path] = {}

    def export(*args: str) -> Path:
        if args not in made:
            out = tmp_path_factory.mktemp("oci") / "layout"
            proc = export_osv("export", *args, "--jdk", str(JDK17_HOME), "--format", "oci", "-o", str(out))
            assert proc.returncode == 0, explain(proc)
            made[args] = out
        return made[args]

    return export



@pytest.fixture(scope="session")
def libvirt_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    why = libvirtd.missing()
    if why:
        pytest.skip(why)
    with libvirtd.daemon(tmp_path_factory.mktemp("libvirtd")):
        yield


@pytest.fixture(scope="session")
def domain_dirs() -> Iterator[Callable[[str], Path]]:
    """Folders a domain's QEMU can read: libvirt runs it as its own user (libvirt-qemu) where the
    machine's libvirtd is used, and pytest's base folder is its owner's alone (0700)."""
    root = Path(tempfile.mkdtemp(prefix="osv-export-domains-"))
    root.chmod(0o755)

    def make(name: str) -> Path:
        folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))
        folder.chmod(0o755)
        return folder

    yield make
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def libvirt_export(export_osv: Osv, osv_cache: Path, domain_dirs: Callable[[str], Path]) -> Callable[..., Path]:
    """export(name, example args..., options...) -> the domain folder (TCG: no usable KVM here)."""

    def export(name: str, *args: str) -> Path:
        out = domain_dirs("libvirt") / name
        env = {"OSV_JAVA_CACHE": str(osv_cache)}  # the session's kernel, fetched once
        proc = export_osv("export", *args, "--jdk", str(JDK17_HOME), "--format", "libvirt", "--accel", "tcg",
                          "--name", name, "-o", str(out), env=env)
        assert proc.returncode == 0, explain(proc)
        return out

    return export
