"""A digest remembered by a file's identity is the file's digest, and follows the file when it changes."""

from __future__ import annotations

import os
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


def test_a_read_only_cache_still_gives_the_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() == 0:
        monkeypatch.setenv("OSV_JAVA_CACHE", "/proc/osv-java-cache")  # not writable, even for root
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        monkeypatch.setenv("OSV_JAVA_CACHE", str(tmp_path / "ro"))
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"kernel")
    assert cache.remembered_digest(kernel) == cache.file_digest(kernel)
