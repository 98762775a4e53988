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


def test_an_archive_written_in_two_parts_is_one_archive(tmp_path: Path) -> None:
    """As an image's initramfs is written: the runtime's part without its trailer, then the app's,
    numbered on and without the folders the first part has (the kernel would chmod them again)."""
    base = [Entry.folder("tmp", 0o1777), Entry.file("bin/tool", b"tool", 0o755)]
    app = [Entry.file("tmp/app/app.jar", b"jar"), Entry.file("bin/extra", b"x")]
    out = io.BytesIO()
    cpio.write(base, out, trailer=False)
    first = cpio.collect(base)
    folders = frozenset(path for path, entry in first.items() if stat.S_ISDIR(entry.mode))
    cpio.write(app, out, first_ino=len(first) + 1, existing=folders)
    whole = out.getvalue()
    assert whole.endswith(cpio.TRAILER_BYTES) and whole.count(b"TRAILER!!!") == 1
    listing = subprocess.run(["cpio", "-itv", "--quiet"], input=whole, capture_output=True, check=True).stdout.decode()
    names = [line.split()[-1] for line in listing.splitlines()]
    assert names == ["bin", "bin/tool", "tmp", "bin/extra", "tmp/app", "tmp/app/app.jar"]  # tmp once, as 1777
    assert listing.splitlines()[2].startswith("drwxrwxrwt")
    inodes = [int(whole[i + 6:i + 14], 16) for i in range(len(whole)) if whole.startswith(b"070701", i)][:-1]
    assert inodes == [1, 2, 3, 4, 5, 6]
