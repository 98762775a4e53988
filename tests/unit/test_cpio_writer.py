"""The initramfs writer, read back by an independent reader (GNU cpio)."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from kernel.formats import cpio
from kernel.formats.cpio import Entry

pytestmark = pytest.mark.skipif(shutil.which("cpio") is None, reason="GNU cpio is not installed (apt-get install cpio)")


def sample(tmp_path: Path) -> list[Entry]:
    host = tmp_path / "host.bin"
    host.write_bytes(os.urandom(5000))
    return [
        Entry.file("etc/hello.txt", b"hello\n"),
        Entry.file("bin/tool", b"#!/bin/sh\necho hi\n", 0o755),
        Entry.from_host("/opt/data/host.bin", host),
        Entry.symlink("lib/link", "../etc/hello.txt"),
        Entry.folder("empty", 0o700),
        Entry.char_device("dev/console", 5, 1),
        Entry.file("odd name with spaces/é.txt", b""),
    ]


def write(entries: list[Entry]) -> bytes:
    out = io.BytesIO()
    n = cpio.write(entries, out)
    assert n == len(out.getvalue())
    return out.getvalue()


def test_gnu_cpio_reads_back_every_entry(tmp_path: Path) -> None:
    entries = sample(tmp_path)
    archive = tmp_path / "initramfs.img"
    archive.write_bytes(write(entries))
    root = tmp_path / "root"
    root.mkdir()
    with open(archive, "rb") as f:
        subprocess.run(["cpio", "-idm", "--quiet", "--no-absolute-filenames"], stdin=f, cwd=root, check=True)
    assert (root / "etc/hello.txt").read_bytes() == b"hello\n"
    assert stat.S_IMODE((root / "bin/tool").stat().st_mode) == 0o755
    assert (root / "opt/data/host.bin").read_bytes() == (tmp_path / "host.bin").read_bytes()
    assert os.readlink(root / "lib/link") == "../etc/hello.txt"
    assert (root / "empty").is_dir() and stat.S_IMODE((root / "empty").stat().st_mode) == 0o700
    assert (root / "odd name with spaces/é.txt").read_bytes() == b""
    if os.geteuid() == 0:
        st = (root / "dev/console").stat()
        assert stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (5, 1)
    listing = subprocess.run(["cpio", "-itv", "--quiet"], input=archive.read_bytes(), capture_output=True,
                             check=True).stdout.decode()
    assert " root " in listing and "1970" in listing, "owners root and fixed mtime 0"


def test_same_entries_give_the_same_bytes_in_any_order(tmp_path: Path) -> None:
    entries = sample(tmp_path)
    assert write(entries) == write(list(reversed(entries)))


def test_parent_folders_are_added(tmp_path: Path) -> None:
    names = subprocess.run(["cpio", "-it", "--quiet"], input=write([Entry.file("a/b/c.txt", b"x")]),
                           capture_output=True, check=True).stdout.decode().split()
    assert names == ["a", "a/b", "a/b/c.txt"]


@pytest.mark.parametrize("bad", ["../escape", "/", "a/../../b", ""])
def test_paths_escaping_the_root_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        write([Entry.file(bad, b"x")])


def test_conflicting_entries_are_refused() -> None:
    with pytest.raises(ValueError):
        write([Entry.file("a", b"1"), Entry.file("a", b"2")])
