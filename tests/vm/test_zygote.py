"""Started-JVM snapshots (on by default; --zygote/--no-zygote): a run restores a JVM that has started
and hands it the app (kernel/vm/zygote.py).

One machine shape of its own (its memory size), JDK 17. Its runs go: the first boots cold, the
second saves the boot snapshot, the third saves the started JVM's snapshot; from then on every run
of an app on that runtime, with the same JVM options, restores the started JVM. A probe app (a jar
whose manifest names a second jar) must then print, exit and read stdin exactly as when its JVM
starts as usual: properties, its manifest as the first system resource, an uncaught exception's
trace, an error in a static initialiser, System.exit, a thread that outlives main, stdin.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from osvtest import JDK17, Osv, explain, text

from jvmbridge.errors import OsvJavaError
from osv_java import launch

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
    for _ in range(3):  # cold; the boot snapshot saved; the started JVM's snapshot saved (by default)
        proc = run(osv, probe_jar, ["props"], b"")
        assert proc.returncode == 0, explain(proc)
    snapshots = sorted((osv_cache / "snapshots").iterdir())
    assert any(p.name.startswith("zygote-") for p in snapshots), snapshots
    for args, stdin in CASES:
        plain = run(osv, probe_jar, args, stdin, "--no-zygote")
        started = run(osv, probe_jar, args, stdin)
        assert (started.returncode, text(started.stdout), text(started.stderr)) == (
            plain.returncode, text(plain.stdout), text(plain.stderr)), (args, explain(started), explain(plain))
    assert sorted((osv_cache / "snapshots").iterdir()) == snapshots, "restores of the started JVM saved something"
    out = text(run(osv, probe_jar, ["props"], b"", "--zygote").stdout)
    assert "manifest jar:file:" in out and "dep dep.Dep" in out and "loader true" in out, out


def test_the_bootchart_says_which_runs_were_handed_to_a_started_jvm(osv: Osv, probe_jar: Path) -> None:
    for _ in range(3):  # as above: the third run of this option set (--bootchart adds one) saves the snapshot
        run(osv, probe_jar, ["props"], b"", "--bootchart")
    started = run(osv, probe_jar, ["props"], b"", "--bootchart")
    plain = run(osv, probe_jar, ["props"], b"", "--bootchart", "--no-zygote")
    assert started.returncode == plain.returncode == 0, (explain(started), explain(plain))
    events = re.findall(r"^  (\w+) +[\d.]+ +\(", text(started.stderr), re.M)
    assert events == ["qemu_start", "snapshot_restored", "app_launched", "main_entered", "app_exit", "vm_gone"], \
        explain(started)
    assert "handed this app" in text(started.stderr), explain(started)
    assert "app_launched" not in text(plain.stderr) and "jvm_exec" in text(plain.stderr), explain(plain)


def test_a_damaged_started_jvm_snapshot_is_saved_again(osv: Osv, probe_jar: Path, osv_cache: Path) -> None:
    for _ in range(3):  # as above
        run(osv, probe_jar, ["props"], b"")
    saved = max((osv_cache / "snapshots").glob("zygote-*.snapshot"), key=lambda p: p.stat().st_mtime)
    state = saved / "state"
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])  # cut short: QEMU cannot load it
    cut = state.stat().st_size
    proc = run(osv, probe_jar, ["props", "x"], b"")
    assert proc.returncode == 0 and "args [props, x]" in text(proc.stdout), explain(proc)
    assert re.search(r"osv-java: warning: .*; starting the JVM afresh", text(proc.stderr)), explain(proc)
    assert (saved / "state").stat().st_size > cut, "the run saved the started JVM's snapshot again"
    inode = saved.stat().st_ino
    again = run(osv, probe_jar, ["props", "y"], b"")
    assert again.returncode == 0 and "args [props, y]" in text(again.stdout), explain(again)
    assert "warning" not in text(again.stderr) and saved.stat().st_ino == inode, explain(again)


def test_a_script_runs_in_a_started_jvm_with_its_runtime_loaded(osv: Osv, osv_cache: Path) -> None:
    """A Clojure script: the zygote started with Clojure's class path and initialised clojure.main
    (clojure.core loaded) before it waited; the restored run prints what the example expects."""
    folder = ROOT / "examples/lang/clojure"
    expected = json.loads((folder / "expected.json").read_text())
    argv = ("run", "--jdk", JDK17, "-m", "576M", *(f"--env={k}={v}" for k, v in expected["env"].items()),
            "main.clj", *expected["args"])
    try:
        launch.resolve(str(folder / "main.clj"), [], None, JDK17, None, (), link_modules=False)
    except OsvJavaError as exc:
        pytest.skip(f"no Clojure runtime here: {exc}")
    for _ in range(3):  # cold; the boot snapshot, then the started JVM's, saved
        proc = osv(*argv, cwd=folder)
        assert proc.returncode == expected["exit"], explain(proc)
    zygotes = {p: p.stat().st_mtime for p in (osv_cache / "snapshots").glob("zygote-*.snapshot")}
    time.sleep(0.05)
    proc = osv(*argv, cwd=folder)
    assert (proc.returncode, text(proc.stdout), text(proc.stderr)) == (
        expected["exit"], expected["stdout"], expected["stderr"]), explain(proc)
    assert any(p.stat().st_mtime > used for p, used in zygotes.items() if p.exists()), "no started JVM was restored"
    # clojure.main was initialised before the snapshot: the bootchart dates main by the zygote's call of it
    for _ in range(2):  # --bootchart's JVM option makes a started JVM of its own: saved, then restored
        charted = osv(*argv[:1], "--bootchart", *argv[1:], cwd=folder)
    events = re.findall(r"^  (\w+)\s+([\d.]+)", text(charted.stderr), re.M)
    names = [name for name, _ in events]
    assert names[-4:] == ["app_launched", "main_entered", "app_exit", "vm_gone"], explain(charted)
    assert "not measured" not in text(charted.stderr), explain(charted)
