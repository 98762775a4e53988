"""The bound on the cache's images (kernel/build/image_cache.py): the most recently used kept, none
used within the grace period removed, temporary folders left to the build's own sweep."""

from __future__ import annotations

import os
import time
from pathlib import Path

from kernel import cache
from kernel.build import image_cache


def _image(folder: Path, name: str, used_ago: float) -> Path:
    path = folder / name
    path.mkdir()
    (path / "image.json").write_text("{}")
    when = time.time() - used_ago
    os.utime(path, (when, when))
    return path


def test_the_most_recently_used_images_are_kept(tmp_path: Path) -> None:
    old = [_image(tmp_path, f"old{i}", 7200 + i) for i in range(5)]  # old0 the most recently used of them
    recent = [_image(tmp_path, f"recent{i}", i) for i in range(3)]
    building = tmp_path / f"{cache.TEMP_PREFIX}new-0123"
    building.mkdir()
    removed = image_cache.prune(tmp_path, keep=4, grace=3600)
    assert sorted(removed) == ["old1", "old2", "old3", "old4"]
    assert {p.name for p in tmp_path.iterdir()} == {"old0", *(p.name for p in recent), building.name}
    assert not [p for p in old[1:] if p.exists()]


def test_an_image_used_within_the_grace_period_stays_whatever_the_count(tmp_path: Path) -> None:
    for i in range(6):
        _image(tmp_path, f"image{i}", 60 * i)
    assert image_cache.prune(tmp_path, keep=2, grace=3600) == []
    assert len(list(tmp_path.iterdir())) == 6


def test_a_run_that_finds_its_image_marks_it_used(tmp_path: Path) -> None:
    images = [_image(tmp_path, f"image{i}", 7200 + i) for i in range(3)]
    image_cache.touch(images[2])  # the least recently used, just found by a run
    assert image_cache.prune(tmp_path, keep=2, grace=3600) == ["image1"]
    assert images[2].exists() and images[0].exists() and not images[1].exists()
