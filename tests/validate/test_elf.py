"""The ELF checks on real libraries of this machine, patched the way real breakage looks."""

from __future__ import annotations

import pytest

from kernel.validate.elf import (
    I386,
    X86_64,
    ElfProblem,
    Library,
    SiblingResolver,
    bzimage_arch,
    check_object,
    read_facts_bytes,
)
from kernel.validate.finding import Finding
from tests.validate import helpers

pytestmark = pytest.mark.skipif(not helpers.LIBZ.exists(), reason="needs zlib's libz.so.1")


def _libc_library() -> Library:
    from pathlib import Path

    data = Path("/lib/x86_64-linux-gnu/libc.so.6").resolve().read_bytes()
    return Library("/lib/x86_64-linux-gnu/libc.so.6", read_facts_bytes(data))


def _check(data: bytes) -> list[Finding]:
    facts = read_facts_bytes(data)
    resolver = SiblingResolver({"libc.so.6": _libc_library()})
    return check_object("libz.so.1", facts, resolver, X86_64, app_code=True)


def test_real_library_reads_and_is_clean() -> None:
    facts = read_facts_bytes(helpers.libz())
    assert facts.arch == X86_64 and facts.soname == "libz.so.1"
    assert "libc.so.6" in facts.needed
    assert dict(facts.version_needs)["libc.so.6"]
    assert _check(helpers.libz()) == []


def test_foreign_machine_is_an_arch_error() -> None:
    [finding] = _check(helpers.foreign_machine(helpers.libz()))
    assert (finding.severity, finding.code) == ("error", "elf-arch")
    assert "AARCH64" in finding.message and "X86_64" in finding.message


def test_missing_needed_library() -> None:
    findings = _check(helpers.elf_needing_missing_lib())
    assert [f.code for f in findings] == ["elf-needed"]
    assert "libq.so.6" in findings[0].message


def test_version_the_provider_lacks() -> None:
    findings = _check(helpers.elf_needing_future_glibc())
    assert [f.code for f in findings] == ["elf-version"]
    assert "GLIBC_9.14" in findings[0].message and "libc.so.6" in findings[0].message


def test_spawn_calls_are_info() -> None:
    findings = _check(helpers.elf_calling_fork())
    assert [(f.severity, f.code) for f in findings] == [("info", "elf-spawn")]
    assert "fork" in findings[0].message and "system" in findings[0].message


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x7fEL",
        b"not an elf file at all",
        helpers.truncated(helpers.libz() if helpers.LIBZ.exists() else b"", 40),
    ],
)
def test_broken_bytes_are_elf_problems(data: bytes) -> None:
    with pytest.raises(ElfProblem):
        read_facts_bytes(data)


def test_bzimage_arch(kernel_dir) -> None:  # type: ignore[no-untyped-def]
    head = (kernel_dir / "vmlinuz").read_bytes()[:0x240]
    assert bzimage_arch(head) == X86_64
    flags_off = bytearray(head)
    flags_off[0x236] &= 0xFE
    assert bzimage_arch(bytes(flags_off)) == I386
    with pytest.raises(ElfProblem):
        bzimage_arch(b"\0" * 0x240)
