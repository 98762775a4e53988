"""Property tests: mutated ELF, zip and cpio bytes get a finding or a clean error, never an exception."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import zipfile
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
from kernel.validate.elf import ElfProblem, read_facts_bytes
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
    with contextlib.suppress(ElfProblem):
        read_facts_bytes(data)
    with tempfile.TemporaryDirectory() as tmp:
        jar = helpers.make_jar(Path(tmp) / "n.jar", {"native/linux-x86_64/libfoo.so": data})
        assert all(f.severity in ("error", "warning", "info") for f in validate_jar_natives(jar))


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
        validate_jar_natives(jar)
        check_entries(jar)
        has_class(jar, "Main")


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


def _small_image(folder: Path) -> bytes:
    files = {"/osv/jre/bin/java": b"#!/bin/sh\n", "/app/app.jar": JAR, "/etc/passwd": b"root:x:0:0\n"}
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
                cpio_read.unpack(io.BytesIO(archive), Path(dest))
        except cpio_read.CpioError:
            pass
        findings = validate_image(folder)
        assert any(f.code == "kernel-not-bzimage" for f in findings)
