"""`--gc-log FILE` end to end: the trivial policy through every place of the seam, in a process and in
a VM (a JVM option at launch, a supervisor beside the JVM, a monitor on the host)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from osvtest import JDK17, ROOT, Osv, explain, text

from jvmbridge.gclog import PAUSE, parse_file


@pytest.fixture(scope="module")
def gc_workload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gcworkload")
    subprocess.run(["javac", "--release", "17", "-d", str(out), str(ROOT / "tests/jvmbridge/java/GcWorkload.java")],
                   check=True)
    return out


@pytest.mark.parametrize("target", ["process", pytest.param("vm", marks=pytest.mark.vm)])
def test_gc_log_records_every_pause_of_the_run(osv: Osv, gc_workload: Path, tmp_path: Path, target: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    log = out / "gc.log"
    own = tmp_path / "jvm-own.log"  # the JVM's own log of the same run (on the host: process target only)
    extra = ["--jvm-opt", f"-Xlog:gc:file={own}"] if target == "process" else []
    proc = osv("run", "--target", target, "--jdk", JDK17, "--gc-log", str(log), "--jvm-opt=-Xmx32m",
               "--jvm-opt=-XX:+UseSerialGC", *extra, "-cp", str(gc_workload), "GcWorkload", "25", "12")
    assert proc.returncode == 0, explain(proc)
    assert text(proc.stdout).startswith("done "), explain(proc)
    assert [p.name for p in out.iterdir()] == ["gc.log"], "nothing half-written is left beside the log"
    pauses = [e for e in parse_file(log) if e.kind == PAUSE]
    assert len(pauses) >= 5, log.read_text()[-2000:]
    assert [p.gc_id for p in pauses] == list(range(len(pauses))), "no pause lost or repeated"
    assert all(p.time_to_safepoint is not None for p in pauses), "safepoint lines travel too"
    if target == "process":
        theirs = [(e.gc_id, e.duration) for e in parse_file(own) if e.kind == PAUSE]
        assert [(p.gc_id, p.duration) for p in pauses] == theirs


def test_gc_log_in_a_missing_folder_is_refused_before_the_run(osv: Osv, examples_built: Path, tmp_path: Path) -> None:
    proc = osv("run", "--target", "process", "--jdk", JDK17, "--gc-log", str(tmp_path / "nope" / "gc.log"),
               "examples/hello/hello.jar")
    assert proc.returncode == 125, explain(proc)
    assert "--gc-log" in text(proc.stderr) and "not a folder" in text(proc.stderr)
    assert proc.stdout == b""
