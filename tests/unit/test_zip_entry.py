"""The quick zip entry reader agrees with zipfile, and leaves what it does not handle to it."""

from __future__ import annotations

import glob
import io
import zipfile
from pathlib import Path

import pytest

from kernel.build.languages import _manifest_class_path
from kernel.formats.zip_entry import ZipEntryError, read_entry

MANIFEST = "META-INF/MANIFEST.MF"


def make_zip(path: Path, entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED, prefix: bytes = b"",
             comment: bytes = b"") -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        zf.comment = comment
    path.write_bytes(prefix + buffer.getvalue())
    return path


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_reads_the_entry_as_zipfile_does(tmp_path: Path, method: int) -> None:
    text = b"Manifest-Version: 1.0\r\nClass-Path: a.jar b.jar\r\n\r\n"
    jar = make_zip(tmp_path / "a.jar", {"META-INF/": b"", "x/Y.class": b"\xca\xfe" * 500, MANIFEST: text},
                   method)
    assert read_entry(jar, MANIFEST) == text == zipfile.ZipFile(jar).read(MANIFEST)


def test_a_missing_entry_is_none(tmp_path: Path) -> None:
    assert read_entry(make_zip(tmp_path / "a.jar", {"x/Y.class": b"1"}), MANIFEST) is None


def test_the_name_inside_a_longer_name_is_not_taken_for_the_entry(tmp_path: Path) -> None:
    jar = make_zip(tmp_path / "a.jar", {f"shaded/{MANIFEST}": b"not this", MANIFEST: b"this"})
    assert read_entry(jar, MANIFEST) == b"this"
    assert read_entry(make_zip(tmp_path / "b.jar", {f"shaded/{MANIFEST}": b"x"}), MANIFEST) is None


def test_bytes_before_the_archive_and_a_comment(tmp_path: Path) -> None:
    jar = make_zip(tmp_path / "a.jar", {MANIFEST: b"Main-Class: A\n"}, prefix=b"#!/bin/sh\nexec java -jar $0\n",
                   comment=b"built by hand")
    assert read_entry(jar, MANIFEST) == b"Main-Class: A\n" == zipfile.ZipFile(jar).read(MANIFEST)
    # a comment holding the end record's signature (zipfile itself gives up on this one)
    tricky = make_zip(tmp_path / "b.jar", {MANIFEST: b"Main-Class: B\n"}, comment=b"PK\x05\x06" + bytes(30))
    assert read_entry(tricky, MANIFEST) == b"Main-Class: B\n"


def test_damage_is_an_error_not_a_wrong_answer(tmp_path: Path) -> None:
    jar = make_zip(tmp_path / "a.jar", {MANIFEST: b"Class-Path: a.jar\n" * 20}, zipfile.ZIP_STORED)
    data = bytearray(jar.read_bytes())
    data[data.index(b"Class-Path")] ^= 1  # the checksum no longer holds
    jar.write_bytes(bytes(data))
    with pytest.raises(ZipEntryError):
        read_entry(jar, MANIFEST)
    (tmp_path / "not.jar").write_bytes(b"plain text")
    with pytest.raises(ZipEntryError):
        read_entry(tmp_path / "not.jar", MANIFEST)


def test_another_compression_is_left_to_zipfile(tmp_path: Path) -> None:
    jar = make_zip(tmp_path / "a.jar", {MANIFEST: b"Class-Path: dep.jar\n"}, zipfile.ZIP_BZIP2)
    (tmp_path / "dep.jar").write_bytes(b"")
    with pytest.raises(ZipEntryError):
        read_entry(jar, MANIFEST)
    assert _manifest_class_path(jar) == [tmp_path / "dep.jar"]  # through zipfile


def test_the_machines_jars_read_the_same() -> None:
    jars = sorted(glob.glob("/usr/share/java/*.jar"))[:400]
    if not jars:
        pytest.skip("no jars in /usr/share/java on this machine")
    for name in jars:
        with zipfile.ZipFile(name) as zf:
            expected = zf.read(MANIFEST) if MANIFEST in zf.namelist() else None
        assert read_entry(Path(name), MANIFEST) == expected, name
