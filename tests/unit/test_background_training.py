"""The pure parts of background trainings: one at a time per archive, the cache's bound, the request's
round trip (real files and locks; no JVM)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from kernel.build import background_training
from kernel.build.startup_archive import Training


def _hold(lock: Path) -> int:
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_a_training_under_way_is_not_started_again(tmp_path: Path) -> None:
    folder = tmp_path / "startup" / "k1"
    folder.parent.mkdir()
    fd = _hold(folder.parent / "k1.lock")
    try:
        assert background_training.under_way(folder.parent) == [folder]
        assert not background_training.start({}, folder, "app.jar")
        assert sorted(p.name for p in folder.parent.iterdir()) == ["k1.lock"], "no request, no log"
        assert background_training.wait_for_all(folder.parent, 0.2) == [folder]
    finally:
        os.close(fd)
    assert background_training.under_way(folder.parent) == []
    assert background_training.wait_for_all(folder.parent, 5) == []


def test_prune_keeps_the_most_recently_used_and_those_under_way(tmp_path: Path) -> None:
    startup = tmp_path / "startup"
    for age, name in enumerate(["new", "mid", "old", "older", "oldest"]):
        (startup / name).mkdir(parents=True)
        (startup / f"{name}.lock").touch()
        os.utime(startup / name, (1000 - age, 1000 - age))
    (startup / ".tmp-half").mkdir()  # a folder being written
    fd = _hold(startup / "older.lock")
    try:
        removed = background_training.prune(startup, keep=2)
    finally:
        os.close(fd)
    assert sorted(p.name for p in removed) == ["old", "oldest"]
    assert sorted(p.name for p in startup.iterdir()) == [".tmp-half", "mid", "mid.lock", "new", "new.lock",
                                                         "older", "older.lock"]


def test_a_training_travels_to_the_background_process_unchanged() -> None:
    import json

    training = Training(jre=Path("/jre"), feature=17, options=("-Dx=1",), launch=("-jar", "/a b/app.jar"),
                        args=("one", "two words"), classpath=(Path("/a b/app.jar"), Path("/lib/dep.jar")),
                        guest_view=True, env={"PATH": "/bin", "GREETING": "hi"}, cwd="/work")
    assert Training.from_fields(json.loads(json.dumps(training.to_fields()))) == training
