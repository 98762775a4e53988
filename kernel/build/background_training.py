"""Start-up archives made in the background, so that no run waits for a training run.

A run that finds no archive for its app starts without one, as it would with --no-startup-archive,
and once it has ended leaves a detached process at the lowest CPU priority (nice 19) that trains the
archive (startup_archive.make: the app in its sandbox) for the runs after it. One training per archive
at a time: the run takes the archive's lock file and hands it to that process, which holds it until
it is done, so a run that comes meanwhile sees the training under way and starts no other; and one
training at a time in all (the others wait their turn, still holding their archive's lock). The
cache keeps the KEEP most recently used archives: a jar edited and run again and again makes one each.

Its output (the training's progress, a failure) goes to KEY.log beside the archive's folder, removed
once the archive, or the reason there is none, is in place.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from jvmbridge.errors import OsvJavaError
from kernel import cache
from kernel.progress import say

KEEP = 16
ONE_AT_A_TIME = ".one-training-at-a-time"  # not KEY.lock: no archive's, and not waited for as one
# the folder holding the project's packages: the detached process imports them from there, in isolated
# mode (-I), never from the folder the run happened to start in
_PACKAGES = Path(__file__).resolve().parents[2]
_ENTRY = ("import sys; sys.path.insert(0, sys.argv[1]); from kernel.build.background_training import main; "
          "sys.exit(main(sys.argv[2], int(sys.argv[3])))")


def _lock_path(folder: Path) -> Path:
    return folder.parent / f"{folder.name}.lock"


def _held(lock: Path) -> bool:
    """True while a training holds `lock`."""
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def start(training_fields: dict, folder: Path, label: str) -> bool:
    """Start the detached training of `folder`'s archive; False when one is under way already, or when
    the cache cannot take it (read-only, full: said on a terminal; a later run tries again). Never
    raises: the run it follows has ended, and its exit status is the app's."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(_lock_path(folder), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        say(f"no start-up archive for {label}: cannot write to {folder.parent}: {exc.strerror}")
        return False
    try:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        # a name of this run's own: two runs may start trainings of the same archive at once
        spec = folder.parent / f"{folder.name}.{os.getpid()}.json"
        cache.write_file_atomic(spec, json.dumps({"training": training_fields, "folder": str(folder),
                                                  "label": label}).encode())
        env = {**os.environ, "OSV_JAVA_CACHE": str(cache.root()), "OSV_JAVA_PROGRESS": "1"}
        with open(folder.parent / f"{folder.name}.log", "wb") as log:
            # the lock's open file goes with it: the lock is held until the training ends, not this run
            subprocess.Popen([sys.executable, "-I", "-c", _ENTRY, str(_PACKAGES), str(spec), str(lock_fd)],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/", env=env,
                             pass_fds=(lock_fd,), start_new_session=True)
        return True
    except (OSError, OsvJavaError) as exc:
        say(f"no start-up archive for {label}: {exc}")
        with contextlib.suppress(OSError, NameError):
            spec.unlink()
        return False
    finally:
        os.close(lock_fd)


def main(spec_path: str, lock_fd: int) -> int:
    """The detached process: train the archive `spec_path` names, then keep the cache's bound."""
    from kernel.build import startup_archive

    os.nice(19)
    spec = Path(spec_path)
    fields = json.loads(spec.read_text())
    spec.unlink()
    folder = Path(fields["folder"])
    # one training after the other: one JVM's memory and CPU at a time, however many new apps ran
    one_at_a_time = os.open(folder.parent / ONE_AT_A_TIME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    fcntl.flock(one_at_a_time, fcntl.LOCK_EX)
    if not folder.exists():  # another training may have finished it since the run looked
        startup_archive.make(startup_archive.Training.from_fields(fields["training"]), folder, fields["label"])
    prune(folder.parent, KEEP)
    with contextlib.suppress(OSError):
        (folder.parent / f"{folder.name}.log").unlink()
    os.close(lock_fd)
    os.close(one_at_a_time)
    return 0


def prune(startup: Path, keep: int) -> list[Path]:
    """Remove all but the `keep` most recently used archive folders under `startup` (a use touches its
    folder), never one whose training is under way; the removed folders."""
    import shutil

    folders = [p for p in startup.iterdir() if p.is_dir() and not p.name.startswith(cache.TEMP_PREFIX)]
    folders.sort(key=lambda p: p.stat().st_mtime_ns, reverse=True)
    removed = []
    for folder in folders[keep:]:
        lock = _lock_path(folder)
        if _held(lock):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            lock.unlink()
        removed.append(folder)
    return removed


def under_way(startup: Path) -> list[Path]:
    """The archive folders under `startup` whose training is under way."""
    if not startup.is_dir():
        return []
    return [lock.with_suffix("") for lock in startup.glob("*.lock") if _held(lock)]


def wait_for_all(startup: Path, timeout_s: float) -> list[Path]:
    """Wait until no training is under way under `startup`, at most `timeout_s`; those still under way."""
    deadline = time.monotonic() + timeout_s
    while True:
        busy = under_way(startup)
        if not busy or time.monotonic() >= deadline:
            return busy
        time.sleep(0.1)
