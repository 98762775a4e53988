"""Boot snapshots (kernel/vm/snapshot.py): a machine's second run saves one, later runs start from it,
whatever app they run on the same runtime.

Each test uses its own memory size, so its machine's snapshot is its own and the first run really
is the first.
"""

from __future__ import annotations

import hashlib
import re
import socket
import time
from pathlib import Path

import pytest
from osvtest import JDK17, Osv, compile_java, explain, jar_of, text

pytestmark = [pytest.mark.vm]

HELLO = "examples/hello/hello.jar"


def _timeline(stderr: bytes) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"^\s+(\w+)\s+([\d.]+)\s+\(", text(stderr), re.M)}


def _fresh(osv: Osv, test_classes: Path, memory: str, *options: str
           ) -> tuple[dict[str, str], dict[str, float], float, float]:
    before = time.time()
    proc = osv("run", "--jdk", JDK17, "-m", memory, "--bootchart", *options, "-cp", str(test_classes), "Fresh")
    after = time.time()
    assert proc.returncode == 0, explain(proc)
    values = dict(line.split(" ", 1) for line in text(proc.stdout).splitlines())
    return values, _timeline(proc.stderr), before, after


@pytest.mark.parametrize(("memory", "zygote"), [("704M", False), ("720M", True)])
def test_a_restored_run_has_the_hosts_clock_and_its_own_randomness(osv: Osv, test_classes: Path, memory: str,
                                                                   zygote: bool) -> None:
    """From a boot snapshot (--no-zygote) and from a started JVM's (the default): the clock is the
    host's, the kernel's and the JVM's random numbers are every run's own."""
    option = () if zygote else ("--no-zygote",)
    _, cold, _, _ = _fresh(osv, test_classes, memory, *option)
    assert "kernel_start" in cold and "snapshot_saved" not in cold, "a first run boots cold and saves nothing"
    saving, saving_timeline, _, _ = _fresh(osv, test_classes, memory, *option)
    assert "snapshot_saved" in saving_timeline and "kernel_start" in saving_timeline, saving_timeline
    if zygote:  # the third run saves the started JVM's snapshot, then hands it the app
        saving, saving_timeline, _, _ = _fresh(osv, test_classes, memory)
        assert "ready_saved" in saving_timeline and "app_launched" in saving_timeline, saving_timeline
    runs = [_fresh(osv, test_classes, memory, *option) for _ in range(2)]
    for values, timeline, before, after in runs:
        started = ["app_launched"] if zygote else ["jvm_exec"]
        assert list(timeline) == ["qemu_start", "snapshot_restored", *started, "main_entered", "app_exit", "vm_gone"]
        # The wall clock is the host's now, not the snapshot's (taken seconds earlier, in a saving run).
        assert before * 1000 <= int(values["millis"]) <= after * 1000, (before, values["millis"], after)
    seen = [saving] + [values for values, *_ in runs]
    for key in ("securerandom", "kernel-uuid"):
        assert len({v[key] for v in seen}) == 3, f"{key} repeated across runs restored from one snapshot: {seen}"


def test_cold_boot_neither_uses_nor_saves_a_snapshot(osv: Osv, examples_built: Path, osv_cache: Path) -> None:
    saved = set((osv_cache / "snapshots").glob("*")) if (osv_cache / "snapshots").exists() else set()
    proc = osv("run", "--jdk", JDK17, "-m", "736M", "--cold-boot", "--bootchart", HELLO)
    assert proc.returncode == 0, explain(proc)
    assert list(_timeline(proc.stderr)) == ["qemu_start", "kernel_start", "pid1_start", "jvm_exec",
                                            "main_entered", "app_exit", "vm_gone"]
    after = set((osv_cache / "snapshots").glob("*")) if (osv_cache / "snapshots").exists() else set()
    assert after == saved


def test_a_damaged_snapshot_is_replaced_by_a_cold_boot(osv: Osv, examples_built: Path, osv_cache: Path) -> None:
    for _ in range(2):  # the second run saves the snapshot
        proc = osv("run", "--jdk", JDK17, "-m", "768M", HELLO)
        assert proc.returncode == 0, explain(proc)
    newest = max((osv_cache / "snapshots").glob("*.snapshot"), key=lambda p: p.stat().st_mtime) / "state"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # cut short: QEMU cannot load it
    proc = osv("run", "--jdk", JDK17, "-m", "768M", "--bootchart", HELLO)
    assert proc.returncode == 0, explain(proc)
    assert text(proc.stdout).startswith("Hello from osv-java!")
    assert re.search(r"osv-java: warning: .*snapshot.*; booting afresh", text(proc.stderr)), explain(proc)
    assert "snapshot_saved" in _timeline(proc.stderr), "a good snapshot replaces the damaged one"
    again = osv("run", "--jdk", JDK17, "-m", "768M", "--bootchart", HELLO)
    assert again.returncode == 0 and "snapshot_restored" in _timeline(again.stderr), explain(again)


def test_a_published_port_in_use_is_one_line_and_keeps_the_snapshot(osv: Osv, examples_built: Path,
                                                                     osv_cache: Path) -> None:
    for _ in range(2):  # the second run saves this machine's boot snapshot
        proc = osv("run", "--jdk", JDK17, "-m", "800M", HELLO)
        assert proc.returncode == 0, explain(proc)
    saved = sorted((osv_cache / "snapshots").glob("*.snapshot"), key=lambda p: p.stat().st_mtime)[-1]
    with socket.socket() as held:  # the host port is taken: QEMU cannot forward it
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        proc = osv("run", "--jdk", JDK17, "-m", "800M", "-p", f"{port}:8080", HELLO)
    assert proc.returncode == 125, explain(proc)
    lines = text(proc.stderr).splitlines()
    assert lines[0].startswith("osv-java: error: ") and str(port) in lines[0], explain(proc)
    assert lines[1].startswith("hint: ") and "publish on another" in lines[1], explain(proc)
    assert "booting afresh" not in text(proc.stderr), explain(proc)
    assert saved.exists(), "a port in use is no fault of the snapshot: it stays"
    again = osv("run", "--jdk", JDK17, "-m", "800M", "--bootchart", HELLO)
    assert again.returncode == 0 and "snapshot_restored" in _timeline(again.stderr), explain(again)


def _greeter(tmp_path: Path, jar: Path, greeting: str) -> Path:
    """A jar printing `greeting`, whose manifest names a second jar (both are the app's files)."""
    words = f'public class Words {{ public static String say() {{ return "{greeting}"; }} }}'
    greet = "public class Greet { public static void main(String[] a) { System.out.println(Words.say()); } }"
    lib = compile_java(tmp_path / greeting, "lib", words)
    main = compile_java(tmp_path / greeting, "main", greet, classpath=str(lib))
    jar_of(lib, jar.parent / "lib" / "words.jar")
    return jar_of(main, jar, "Main-Class: Greet\nClass-Path: lib/words.jar\n")


def test_the_first_run_of_an_edited_jar_is_restored_and_runs_the_new_code(osv: Osv, tmp_path: Path) -> None:
    jar = tmp_path / "app" / "greet.jar"
    _greeter(tmp_path, jar, "first version")
    for _ in range(2):  # the first run boots cold, the second saves the runtime's snapshot
        proc = osv("run", "--jdk", JDK17, "-m", "672M", "--bootchart", str(jar))
        assert proc.returncode == 0 and text(proc.stdout) == "first version\n", explain(proc)
    assert "snapshot_saved" in _timeline(proc.stderr), explain(proc)
    for version in ("second version", "third version"):  # an edit of both jars
        _greeter(tmp_path, jar, version)
        proc = osv("run", "--jdk", JDK17, "-m", "672M", "--bootchart", str(jar))
        assert proc.returncode == 0, explain(proc)
        assert text(proc.stdout) == f"{version}\n", explain(proc)
        timeline = _timeline(proc.stderr)
        assert "snapshot_restored" in timeline and "kernel_start" not in timeline, explain(proc)
    # Another app on the same runtime restores the same snapshot too.
    other = _greeter(tmp_path, tmp_path / "other" / "greet.jar", "another app")
    proc = osv("run", "--jdk", JDK17, "-m", "672M", "--bootchart", str(other))
    assert proc.returncode == 0 and text(proc.stdout) == "another app\n", explain(proc)
    assert "snapshot_restored" in _timeline(proc.stderr), explain(proc)


@pytest.mark.parametrize(("dynamic_heap", "memory", "zygote"), [("on", "640M", False), ("off", "608M", False),
                                                              ("off", "592M", True)])
def test_a_restored_run_leaves_the_snapshot_as_it_was(osv: Osv, examples_built: Path, osv_cache: Path,
                                                      dynamic_heap: str, memory: str, zygote: bool) -> None:
    """What the app writes never reaches the saved snapshot: with the balloon (dynamic heap on) the
    machine's RAM is a copy, as the balloon's free page reporting punches holes in the RAM's file;
    without it the snapshot's RAM file is mapped privately. The same for a started JVM's snapshot."""
    run = ("run", "--jdk", JDK17, "-m", memory, "--dynamic-heap", dynamic_heap, *(() if zygote else ("--no-zygote",)))
    for _ in range(3 if zygote else 2):  # the second run saves the boot snapshot, a third the started JVM's
        proc = osv(*run, "examples/gcalloc/gcalloc.jar")
        assert proc.returncode == 0, explain(proc)
    saved = max((osv_cache / "snapshots").glob("*.snapshot"), key=lambda p: p.stat().st_mtime)
    assert saved.name.startswith("zygote-") == zygote, saved
    before = {name: hashlib.sha256((saved / name).read_bytes()).hexdigest() for name in ("ram", "state")}
    used = saved.stat().st_mtime
    time.sleep(0.05)
    proc = osv(*run, "examples/gcalloc/gcalloc.jar")
    assert proc.returncode == 0 and "RESULT" in text(proc.stdout), explain(proc)
    assert saved.stat().st_mtime > used, "the run did not restore the snapshot (a restore marks it used)"
    assert {name: hashlib.sha256((saved / name).read_bytes()).hexdigest() for name in ("ram", "state")} == before
