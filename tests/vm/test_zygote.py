"""--zygote: a run restores a JVM that has started and hands it the app (kernel/vm/zygote.py).

One machine shape of its own (its memory size), JDK 17. Its runs go: the first boots cold, the
second saves the boot snapshot, the third saves the started JVM's snapshot; from then on every run
of an app on that runtime, with the same JVM options, restores the started JVM. A probe app (a jar
whose manifest names a second jar) must then print, exit and read stdin exactly as when its JVM
starts as usual: properties, its manifest as the first system resource, an uncaught exception's
trace, an error in a static initialiser, System.exit, a thread that outlives main, stdin.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from osvtest import JDK17, Osv, explain, text

pytestmark = [pytest.mark.vm]

ROOT = Path(__file__).resolve().parents[2]
PROBE = ROOT / "tests/java/zygote_probe"
MEMORY = "624M"  # no other test uses this size: its machine and snapshots are its own
CASES = [(["props", "a b"], b""), (["throw"], b""), (["exit", "7"], b""), (["init"], b""), (["thread"], b""),
         (["stdin"], b"hello there\n")]


@pytest.fixture(scope="module")
def probe_jar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("probe")
    classes = work / "classes"
    subprocess.run(["javac", "--release", "17", "-d", str(classes), *map(str, PROBE.rglob("*.java"))], check=True)
    (work / "lib").mkdir()
    subprocess.run(["jar", "--create", "--file", str(work / "lib/dep.jar"), "-C", str(classes), "dep"], check=True)
    manifest = work / "manifest.txt"
    manifest.write_text("Main-Class: app.Probe\nClass-Path: lib/dep.jar\n\nName: app/\nImplementation-Title: probe\n")
    jar = work / "app.jar"
    subprocess.run(["jar", "--create", "--file", str(jar), "--manifest", str(manifest), "-C", str(classes), "app"],
                   check=True)
    return jar


def run(osv: Osv, jar: Path, args: list[str], stdin: bytes, *options: str) -> subprocess.CompletedProcess[bytes]:
    return osv("run", "--jdk", JDK17, "-m", MEMORY, *options, str(jar), *args, input=stdin, cwd=jar.parent)


def test_an_app_runs_in_a_started_jvm_as_in_its_own(osv: Osv, probe_jar: Path, osv_cache: Path) -> None:
    for _ in range(3):  # cold; the boot snapshot saved; the started JVM's snapshot saved
        proc = run(osv, probe_jar, ["props"], b"", "--zygote")
        assert proc.returncode == 0, explain(proc)
    snapshots = sorted((osv_cache / "snapshots").iterdir())
    assert any(p.name.startswith("zygote-") for p in snapshots), snapshots
    for args, stdin in CASES:
        plain = run(osv, probe_jar, args, stdin)
        started = run(osv, probe_jar, args, stdin, "--zygote")
        assert (started.returncode, text(started.stdout), text(started.stderr)) == (
            plain.returncode, text(plain.stdout), text(plain.stderr)), (args, explain(started), explain(plain))
    assert sorted((osv_cache / "snapshots").iterdir()) == snapshots, "restores of the started JVM saved something"
    out = text(run(osv, probe_jar, ["props"], b"", "--zygote").stdout)
    assert "manifest jar:file:" in out and "dep dep.Dep" in out and "loader true" in out, out
