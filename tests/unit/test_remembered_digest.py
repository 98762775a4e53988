"""A digest remembered by a file's identity is the file's digest, and follows the file when it changes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kernel import cache


def test_remembered_until_the_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSV_JAVA_CACHE", str(tmp_path / "cache"))
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"first kernel")
    first = cache.remembered_digest(kernel)
    assert first == cache.file_digest(kernel)
    assert [memo.read_text() for memo in (tmp_path / "cache" / "digests").iterdir()] == [first]
    assert cache.remembered_digest(kernel) == first

    kernel.write_bytes(b"second kernel, longer")
    assert cache.remembered_digest(kernel) == cache.file_digest(kernel) != first


def test_a_rewrite_of_the_same_size_with_its_old_mtime_is_hashed_again(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSV_JAVA_CACHE", str(tmp_path / "cache"))
    jar = tmp_path / "app.jar"
    jar.write_bytes(b"version 1")
    before = jar.stat()
    first = cache.remembered_digest(jar)
    time.sleep(0.02)  # past a tick of the clock of kernels that keep coarse change times
    with open(jar, "r+b") as f:  # in place: same inode and size
        f.write(b"VERSION 2")
    os.utime(jar, ns=(before.st_atime_ns, before.st_mtime_ns))  # as `touch -r` or an unzip would
    assert jar.stat().st_mtime_ns == before.st_mtime_ns and jar.stat().st_size == before.st_size
    assert cache.remembered_digest(jar) == cache.file_digest(jar) != first


def test_the_memos_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSV_JAVA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "MEMOS_KEPT", 4)
    files = [tmp_path / f"f{i}" for i in range(7)]
    for i, f in enumerate(files):
        f.write_bytes(b"x" * i)
        assert cache.remembered_digest(f) == cache.file_digest(f)
    assert 2 <= len(list((tmp_path / "cache" / "digests").iterdir())) <= 4
    assert cache.remembered_digest(files[-1]) == cache.file_digest(files[-1])


def test_a_read_only_cache_still_gives_the_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() == 0:
        monkeypatch.setenv("OSV_JAVA_CACHE", "/proc/osv-java-cache")  # not writable, even for root
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        monkeypatch.setenv("OSV_JAVA_CACHE", str(tmp_path / "ro"))
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"kernel")
    assert cache.remembered_digest(kernel) == cache.file_digest(kernel)
