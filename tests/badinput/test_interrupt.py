"""Interrupting a build (Ctrl-C, or SIGTERM from a supervisor) leaves the cache as it was: no
temporary folders, no half-written JRE or image that a later build would take for a whole one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.validate import helpers


def _wait_for_temp(cache: Path, subs: tuple[str, ...], proc: subprocess.Popen[bytes], limit: float = 120) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        if any(any((cache / sub).glob(".tmp-*")) for sub in subs):
            return True
        time.sleep(0.02)
    return False


def _whole_entries_only(cache: Path) -> None:
    assert helpers.temp_leftovers(cache) == []
    for jre in (cache / "jre").glob("*") if (cache / "jre").exists() else []:
        assert (jre / "bin" / "java").exists(), f"half JRE {jre}"
    for image in (cache / "images").glob("*") if (cache / "images").exists() else []:
        assert (image / "image.json").exists(), f"half image {image}"
    for part in (cache / "runtimes").glob("*") if (cache / "runtimes").exists() else []:
        assert (part / "part.json").exists(), f"half runtime part {part}"


@pytest.mark.parametrize(("sig", "phase"), [(signal.SIGINT, "jre"), (signal.SIGTERM, "jre"), (signal.SIGINT, "images")])
def test_interrupted_build(sig: signal.Signals, phase: str, tmp_path: Path, cache: Path) -> None:
    if phase == "images":  # get past jlink first, so the interrupt lands while the image is written
        warm = helpers.osv(["build", str(helpers.HELLO_JAR), "-o", str(tmp_path / "warm")], cache)
        assert warm.status == 0, warm.stderr
        import shutil

        # the image and its runtime's part (kernel.build.runtime_part): alone, a new app's image is
        # written in milliseconds, too fast to be seen in the middle
        for built in [*(cache / "images").iterdir(), *(cache / "runtimes").iterdir()]:
            shutil.rmtree(built)
    jar = helpers.make_jar(tmp_path / "app.jar", {"data.bin": os.urandom(1 << 20)})
    env = {**os.environ, "OSV_JAVA_CACHE": str(cache)}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from osv_java.cli import main; main()", "build", str(jar), "-o", str(tmp_path / "out")],
        env=env,
        cwd=helpers.ROOT,
        start_new_session=True,
        # a shell's background job starts with SIGINT ignored, and Python keeps it so: Ctrl-C's default
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        reached = _wait_for_temp(cache, (phase, "runtimes") if phase == "images" else (phase,), proc)
        if reached:
            os.killpg(proc.pid, sig)  # like a terminal's Ctrl-C (or a supervisor's stop) to the whole group
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert reached, f"the build never wrote into {phase}/ (exit {proc.returncode}): {err.decode()[-500:]}"
    assert proc.returncode in (130, 128 + sig, -sig), err.decode()
    assert b"Traceback" not in err
    _whole_entries_only(cache)
    assert not (tmp_path / "out").exists()
