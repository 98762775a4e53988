"""The ELF closure on the real libjvm.so and java launcher, checked against the dynamic loader's view."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from jvmbridge import jdk as jdks
from jvmbridge.errors import BuildError
from kernel.build import elfclosure


@pytest.fixture(scope="module")
def jdk17() -> jdks.Jdk:
    return jdks.select("17")


def loader_view(path: Path, extra: list[str]) -> set[str]:
    """Sonames the system's dynamic loader maps for `path` (its own list, used only as an oracle here)."""
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=True,
                         env={"LD_LIBRARY_PATH": ":".join(extra)}).stdout
    names = set()
    for line in out.splitlines():
        m = re.match(r"\s*(\S+)\s+=>\s+(\S+)", line)
        if m and m.group(2) != "not":
            names.add(m.group(1))
    return names


def test_libjvm_closure_matches_the_loader(jdk17: jdks.Jdk) -> None:
    libjvm = jdk17.home / "lib" / "server" / "libjvm.so"
    java = jdk17.home / "bin" / "java"
    extra = [str(jdk17.home / "lib"), str(jdk17.home / "lib" / "server")]
    closure = elfclosure.resolve([java, libjvm], extra_dirs=extra)
    assert not closure.missing
    expected = loader_view(libjvm, extra) | loader_view(java, extra)
    assert expected <= set(closure.sonames), f"missing: {expected - set(closure.sonames)}"
    assert {"libc.so.6", "libm.so.6", "libjli.so"} <= set(closure.sonames)
    interpreters = {info.interpreter for info in closure.files.values() if info.interpreter}
    assert interpreters == {"/lib64/ld-linux-x86-64.so.2"}
    for info in closure.files.values():
        assert (info.elfclass, info.little_endian, info.machine) == (64, True, "EM_X86_64")


def test_every_jdk_library_resolves(jdk17: jdks.Jdk) -> None:
    libs = sorted((jdk17.home / "lib").rglob("*.so"))
    closure = elfclosure.resolve(libs, extra_dirs=[str(jdk17.home / "lib"), str(jdk17.home / "lib" / "server")])
    assert not closure.missing, closure.missing
    assert len(closure.files) > len(libs)


def test_a_missing_library_is_reported(tmp_path: Path, jdk17: jdks.Jdk) -> None:
    # libjava.so needs libjvm.so; without the server folder on the search path it cannot be found.
    closure = elfclosure.resolve([jdk17.home / "lib" / "libjava.so"], library_dirs=[])
    assert "libjvm.so" in closure.missing


@pytest.mark.parametrize("content", [b"", b"\x7fELF", b"not an elf at all", b"\x7fELF\x02\x01\x01" + b"\0" * 9])
def test_broken_files_raise_a_clear_error(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.so"
    bad.write_bytes(content)
    with pytest.raises(BuildError, match="not a readable ELF file"):
        elfclosure.read_elf(bad)
