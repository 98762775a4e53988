"""osvjava.Zygote runs an app as `java -cp` / `java -jar` would: same output, stderr and status.

Real JVMs (every JDK 17+ installed): a probe app is run plainly and through the zygote (started
first, then handed the launch on its FIFO), and the two runs must agree byte for byte: the class
path and command properties, the app's manifest as the first system resource, its code source,
its manifest Class-Path dependency, the system and context class loaders, an uncaught exception's
stack trace with its cause, an error in a static initialiser, System.exit, stdin, and a thread
that outlives main.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from jvmbridge import jdk as jdks

ROOT = Path(__file__).resolve().parents[2]
ZYGOTE_SOURCE = ROOT / "kernel/guest/java/osvjava/Zygote.java"
PROBE = ROOT / "tests/java/zygote_probe"
JDKS = [j for j in jdks.find_all() if j.feature >= 17]
CASES = [(["props", "a b", "ü"], b""), (["throw"], b""), (["exit", "7"], b""), (["init"], b""),
         (["stdin"], b"hello there\n"), (["thread"], b"")]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not JDKS:
        pytest.skip("no JDK 17 or later installed")
    javac = min(JDKS, key=lambda j: j.feature).tool("javac")
    work = tmp_path_factory.mktemp("zygote")
    subprocess.run([str(javac), "--release", "17", "-d", str(work / "zygote"), str(ZYGOTE_SOURCE)], check=True)
    classes = work / "classes"
    sources = [str(p) for p in PROBE.rglob("*.java")]
    subprocess.run([str(javac), "--release", "17", "-d", str(classes), *sources], check=True)
    jar = min(JDKS, key=lambda j: j.feature).tool("jar")
    (work / "lib").mkdir()
    subprocess.run([str(jar), "--create", "--file", str(work / "lib/dep.jar"), "-C", str(classes), "dep"], check=True)
    manifest = work / "manifest.txt"
    manifest.write_text("Main-Class: app.Probe\nClass-Path: lib/dep.jar\n\nName: app/\nImplementation-Title: probe\n")
    subprocess.run([str(jar), "--create", "--file", str(work / "app.jar"), "--manifest", str(manifest),
                    "-C", str(classes), "app"], check=True)
    return work


def plain(java: Path, work: Path, form: str, args: list[str], stdin: bytes) -> tuple[int, str, str]:
    launch = ["-jar", "app.jar"] if form == "jar" else ["-cp", "app.jar", "app.Probe"]
    proc = subprocess.run([str(java), *launch, *args], input=stdin, capture_output=True, cwd=work, timeout=60)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def through_zygote(java: Path, work: Path, form: str, args: list[str], stdin: bytes) -> tuple[int, str, str]:
    fifo, ready = work / f"launch-{os.getpid()}", work / f"ready-{os.getpid()}"
    os.mkfifo(fifo)
    try:
        proc = subprocess.Popen([str(java), "--add-opens", "java.base/jdk.internal.loader=ALL-UNNAMED",
                                 "-cp", str(work / "zygote"), "osvjava.Zygote", str(fifo), str(ready)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=work)
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the zygote did not get ready"
            time.sleep(0.01)
        command = "app.jar" if form == "jar" else "app.Probe"
        with open(fifo, "wb") as f:
            f.write(b"".join(field.encode() + b"\0" for field in ["app.jar", "app.Probe", command, *args]))
        out, err = proc.communicate(stdin, timeout=60)
        return proc.returncode, out.decode(), err.decode()
    finally:
        fifo.unlink()
        ready.unlink(missing_ok=True)


@pytest.mark.parametrize("feature", sorted({j.feature for j in JDKS}))
@pytest.mark.parametrize("form", ["cp", "jar"])
def test_the_zygote_runs_an_app_as_the_launcher_does(built: Path, feature: int, form: str) -> None:
    java = next(j for j in JDKS if j.feature == feature).tool("java")
    for args, stdin in CASES:
        expected = plain(java, built, form, args, stdin)
        assert through_zygote(java, built, form, args, stdin) == expected, args
    status, out, _ = plain(java, built, form, ["props"], b"")
    assert status == 0 and "manifest jar:file:" in out and "dep dep.Dep" in out  # the probe probes
