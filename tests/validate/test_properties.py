"""Property tests: mutated ELF, zip and cpio bytes get a finding or a clean error, never an exception.

Each property also ties what the reader makes of the bytes to the finding the user gets (bytes that do
not parse as ELF are an elf-corrupt finding, and so on), and known-bad inputs next to each property
pin the exact findings they must get, with an intact input beside them that gets none.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jvmbridge import jdk as jdks
from jvmbridge.errors import OsvJavaError, UsageError
from kernel.build import app as apps
from kernel.formats import cpio, cpio_read
from kernel.formats.cpio import Entry
from kernel.validate.checks import check_before_build, validate_image, validate_jar_natives
from kernel.validate.elf import X86_64, ElfFacts, ElfProblem, read_facts_bytes
from kernel.validate.finding import Finding
from kernel.validate.jar import check_entries, has_class
from tests.validate import helpers

FAST = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck), max_examples=60)
edits = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=16)
cut = st.one_of(st.none(), st.floats(0, 1))


def mutate(data: bytes, changes: list[tuple[int, int]], keep: float | None) -> bytes:
    out = bytearray(data)
    for pos, value in changes:
        if out:
            out[pos % len(out)] = value
    return bytes(out[: int(len(out) * keep)] if keep is not None else out)


def codes(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.severity, f.code) for f in findings]


def _jar_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("META-INF/MANIFEST.MF", helpers.manifest("Main"))
        zf.writestr("Main.class", helpers.hello_class())
        zf.writestr("native/linux-x86_64/libz.so.1", helpers.libz()[:20000])
    return buffer.getvalue()


JAR = _jar_bytes()


@FAST
@given(changes=edits, keep=cut)
def test_mutated_elf(changes: list[tuple[int, int]], keep: float | None) -> None:
    data = mutate(helpers.libz(), [(p % 4096, v) for p, v in changes], keep)
    facts: ElfFacts | None = None
    with contextlib.suppress(ElfProblem):
        facts = read_facts_bytes(data)
    with tempfile.TemporaryDirectory() as tmp:
        jar = helpers.make_jar(Path(tmp) / "n.jar", {"native/linux-x86_64/libfoo.so": data})
        found = codes(validate_jar_natives(jar))
    if facts is None:
        assert found == [("error", "elf-corrupt")]
    elif facts.arch != X86_64:
        assert found == [("error", "elf-arch")]


KNOWN_NATIVES = [
    ("intact", helpers.libz, []),
    ("not-elf", lambda: b"this is not an ELF file", [("error", "elf-corrupt")]),
    ("header-only", lambda: b"\x7fELF\x02\x01\x01", [("error", "elf-corrupt")]),
    ("truncated", lambda: helpers.truncated(helpers.libz(), 2000), [("error", "elf-corrupt")]),
    ("aarch64", lambda: helpers.foreign_machine(helpers.libz()), [("error", "elf-arch")]),
    ("i386-machine", lambda: helpers.foreign_machine(helpers.libz(), 3), [("error", "elf-arch")]),
    ("needs-missing-library", helpers.elf_needing_missing_lib, [("error", "elf-needed")]),
    ("needs-future-glibc", helpers.elf_needing_future_glibc, [("error", "elf-version")]),
    ("starts-programs", helpers.elf_calling_fork, [("info", "elf-spawn")]),
]


@pytest.mark.parametrize(("make", "expected"), [c[1:] for c in KNOWN_NATIVES], ids=[c[0] for c in KNOWN_NATIVES])
def test_known_native_libraries(tmp_path: Path, make: Callable[[], bytes], expected: list[tuple[str, str]]) -> None:
    jar = helpers.make_jar(tmp_path / "n.jar", {"native/linux-x86_64/libfoo.so": make()})
    assert codes(validate_jar_natives(jar)) == expected


@FAST
@given(changes=edits, keep=cut)
def test_mutated_jar(changes: list[tuple[int, int]], keep: float | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        jar = Path(tmp) / "app.jar"
        jar.write_bytes(mutate(JAR, changes, keep))
        try:
            apps.read_manifest(jar)
        except UsageError as exc:
            assert str(jar) in exc.message and exc.hint
        try:
            with apps.open_jar(jar):
                opened = True
        except UsageError:
            opened = False
        natives = codes(validate_jar_natives(jar))
        entries = codes(check_entries(jar))
        has_class(jar, "Main")
    if not opened:
        assert natives == entries == [("error", "jar-unreadable")]
    else:
        assert entries in ([], [("error", "jar-corrupt")])


def _jar_file(entries: dict[str, bytes]) -> Callable[[Path], Path]:
    return lambda tmp: helpers.make_jar(tmp / "app.jar", entries)


def _raw_file(data: bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        (tmp / "app.jar").write_bytes(data)
        return tmp / "app.jar"

    return make


# (name, make the jar, findings of validate_jar_natives, findings of check_entries)
KNOWN_JARS: list[tuple[str, Callable[[Path], Path], list[tuple[str, str]], list[tuple[str, str]]]] = [
    ("intact", _jar_file({"native/linux-x86_64/libz.so.1": helpers.libz()}), [], []),
    (
        "native-for-aarch64",
        _jar_file({"native/linux-x86_64/libfoo.so": helpers.foreign_machine(helpers.libz())}),
        [("error", "elf-arch")],
        [],
    ),
    (
        "natives-only-for-macos",
        _jar_file({"darwin/libfoo.dylib": b"\xcf\xfa\xed\xfe"}),
        [("warning", "jni-platform")],
        [],
    ),
    ("cut-in-half", _raw_file(JAR[: len(JAR) // 2]), [("error", "jar-unreadable")], [("error", "jar-unreadable")]),
    ("not-a-zip", _raw_file(b"not a zip file"), [("error", "jar-unreadable")], [("error", "jar-unreadable")]),
    ("bad-crc", lambda tmp: helpers.corrupt_entry(tmp / "app.jar"), [], [("error", "jar-corrupt")]),
]


@pytest.mark.parametrize(
    ("make", "natives", "entries"), [c[1:] for c in KNOWN_JARS], ids=[c[0] for c in KNOWN_JARS]
)
def test_known_jars(
    tmp_path: Path,
    make: Callable[[Path], Path],
    natives: list[tuple[str, str]],
    entries: list[tuple[str, str]],
) -> None:
    jar = make(tmp_path)
    assert codes(validate_jar_natives(jar)) == natives
    assert codes(check_entries(jar)) == entries


@pytest.fixture(scope="module")
def jdk() -> jdks.Jdk:
    return jdks.select(None)


@settings(deadline=None, database=None, suppress_health_check=list(HealthCheck), max_examples=25)
@given(changes=edits, keep=cut)
def test_mutated_jar_through_the_build_checks(
    jdk: jdks.Jdk, changes: list[tuple[int, int]], keep: float | None
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        jar = Path(tmp) / "app.jar"
        jar.write_bytes(mutate(JAR, changes, keep))
        try:
            spec = apps.from_jar(jar)
            check_before_build(spec, jdk, ["java.se"])
        except OsvJavaError as exc:
            assert exc.message and "\n" not in exc.message


def _small_image(folder: Path, jar: bytes = JAR) -> bytes:
    """Write image.json for a three-file image into `folder`; returns its initramfs."""
    files = {"/osv/jre/bin/java": b"#!/bin/sh\n", "/app/app.jar": jar, "/etc/passwd": b"root:x:0:0\n"}
    buffer = io.BytesIO()
    cpio.write([Entry.file(p, d) for p, d in files.items()] + [Entry.symlink("lib/x", "../app")], buffer)
    manifest = {
        "files": {p: {"sha256": helpers.digest(d), "size": len(d)} for p, d in files.items()},
        "jvm_command": ["/osv/jre/bin/java", "-jar", "/app/app.jar"],
    }
    (folder / "image.json").write_text(json.dumps(manifest))
    return buffer.getvalue()


@FAST
@given(changes=edits, keep=cut)
def test_mutated_initramfs(changes: list[tuple[int, int]], keep: float | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        archive = mutate(_small_image(folder), changes, keep)
        (folder / "initramfs.img").write_bytes(archive)
        (folder / "vmlinuz").write_bytes(b"not a kernel")
        try:
            with tempfile.TemporaryDirectory() as dest:
                cpio_read.unpack_file(folder / "initramfs.img", Path(dest))
            unpacked = True
        except cpio_read.CpioError:
            unpacked = False
        found = codes(validate_image(folder))
    assert ("error", "kernel-not-bzimage") in found
    assert (("error", "initramfs-corrupt") in found) == (not unpacked)


def _bzimage_head() -> bytes:
    """The first bytes of an x86-64 bzImage as the kernel check reads them: boot protocol 2.12, 64-bit."""
    head = bytearray(0x240)
    head[0x202:0x206] = b"HdrS"
    head[0x206:0x208] = (0x020C).to_bytes(2, "little")
    head[0x236:0x238] = (1).to_bytes(2, "little")
    return bytes(head)


def _entry(name: bytes, data: bytes) -> bytes:
    """One newc entry, written by hand so that it can hold what our writer refuses to write."""
    fields = (1, 0o100644, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0)
    head = b"070701" + b"".join(b"%08X" % f for f in fields) + name + b"\0"
    return head + b"\0" * (-len(head) % 4) + data + b"\0" * (-len(data) % 4)


def _flip_in(archive: bytes, needle: bytes) -> bytes:
    at = archive.index(needle)
    return archive[:at] + bytes([archive[at] ^ 1]) + archive[at + 1 :]


# (name, what is done to the initramfs, non-info findings of validate_image)
KNOWN_ARCHIVES: list[tuple[str, Callable[[bytes], bytes], list[tuple[str, str]]]] = [
    ("intact", lambda a: a, []),
    ("cut-in-half", lambda a: a[: len(a) // 2], [("error", "initramfs-corrupt")]),
    ("zeros", lambda a: bytes(len(a)), [("error", "initramfs-corrupt")]),
    ("gzip", lambda a: b"\x1f\x8b" + a[2:], [("error", "initramfs-corrupt")]),
    ("no-trailer", lambda a: a[: a.index(b"TRAILER!!!") - 110], [("error", "initramfs-corrupt")]),
    ("dotdot-entry", lambda a: _entry(b"../../evil", b"evil") + a, [("error", "initramfs-corrupt")]),
    ("absolute-entry", lambda a: _entry(b"/etc/evil", b"evil") + a, [("error", "initramfs-corrupt")]),
    ("file-changed", lambda a: _flip_in(a, b"root:x"), [("error", "sha256-mismatch")]),
    ("file-added", lambda a: _entry(b"osv/extra", b"extra") + a, [("warning", "file-unlisted")]),
]


@pytest.mark.parametrize(("change", "expected"), [c[1:] for c in KNOWN_ARCHIVES], ids=[c[0] for c in KNOWN_ARCHIVES])
def test_known_initramfs(tmp_path: Path, change: Callable[[bytes], bytes], expected: list[tuple[str, str]]) -> None:
    archive = _small_image(tmp_path, helpers.HELLO_JAR.read_bytes())
    (tmp_path / "initramfs.img").write_bytes(change(archive))
    (tmp_path / "vmlinuz").write_bytes(_bzimage_head())
    assert [c for c in codes(validate_image(tmp_path)) if c[0] != "info"] == expected
