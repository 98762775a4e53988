"""Ready-point snapshots (kernel/vm/ready.py, `run --snapshot-when-ready`), with real QEMU and JDKs: a
service's first run saves its machine once it listens, later runs restore the service there (on their
own host port, with their own terminal, clock and entropy), and what restores share is as the README
says, shown with examples/readysnap. The tests of one JDK share one machine shape (the memory size),
so the later ones restore what the first saved."""

from __future__ import annotations

import re
import subprocess
import tempfile
import threading
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import startup_archives as archives
from osvtest import OSV, ROOT, Osv, first_page, kill_if_running, terminate_when_ready, text

from kernel.vm.monitor import free_port

pytestmark = [pytest.mark.vm]

SERVICE = "examples/readysnap/readysnap.jar"
MEMORY = {"17": "656M", "25": "688M"}  # a machine of its own per JDK: its first run here is the first
SAVED = re.compile(r"osv-java: saved the ready snapshot \((\d+) MB\)")
# Values the JVM computed before the snapshot, the same in every restore (README: what restores share).
SHARED = ("early_start_millis", "early_jvm_start_time", "early_threadlocalrandom", "early_splittablerandom",
          "early_uuid", "early_math_random", "early_securerandom",
          # generators whose state was made before: their next values repeat too
          "now_threadlocalrandom", "now_new_thread_threadlocalrandom", "now_splittablerandom", "now_math_random")
# Values each restore draws afresh: NativePRNG reads /dev/urandom, which PID 1 reseeds at every restore.
FRESH = ("now_uuid", "now_early_securerandom", "now_new_securerandom")


@dataclass
class ServiceRun:
    status: int
    stdout: str
    stderr: str
    answer: dict[str, str]  # the first answer: "name value" lines
    asked: tuple[float, float]  # wall-clock time (ms) just before and after that request
    timeline: dict[str, float] = field(default_factory=dict)


def _timeline(stderr: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"^\s+(\w+)\s+([\d.]+)\s+\(", stderr, re.M)}


def serve(osv: Osv, feature: str, *args: str, ready: str = "8080", end: str = "quit", jar: str = SERVICE
          ) -> ServiceRun:
    """Run the service with --snapshot-when-ready on a fresh host port; ask once, after the ready
    snapshot is saved when this run saves one; then end it with GET /quit (exit 3) or SIGTERM."""
    port = free_port()
    command = [OSV, "run", "--jdk", feature, "-m", MEMORY[feature], "--bootchart", "--snapshot-when-ready", ready,
               "-p", f"{port}:8080", jar, *args]
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, cwd=ROOT,
                                env={**osv.env, "OSV_JAVA_PROGRESS": "1"})
        errors: list[bytes] = []
        saved = threading.Event()

        def read_stderr() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                errors.append(line)
                if SAVED.search(text(line)):
                    saved.set()

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        try:
            url = f"http://127.0.0.1:{port}/"
            first_page(url, 240)  # it answers: the app listens (and a saving run has said so by now, or soon)
            saved.wait(30)  # a run that saves: ask only once the machine is saved, so no request is in it
            before = time.time() * 1000
            with urllib.request.urlopen(url, timeout=30) as response:
                body = response.read().decode()
            after = time.time() * 1000
            if end == "quit":
                urllib.request.urlopen(url + "quit", timeout=30).read()
            else:
                proc.terminate()
            proc.wait(timeout=120)
            reader.join(30)
        finally:
            kill_if_running(proc)
        out.seek(0)
        stdout = out.read()
    err = text(b"".join(errors))
    answer = dict(line.split(" ", 1) for line in body.splitlines())
    return ServiceRun(proc.returncode, text(stdout), err, answer, (before, after), _timeline(err))


def _saved(run: ServiceRun) -> bool:
    return "ready_saved" in run.timeline and SAVED.search(run.stderr) is not None


def _restored(run: ServiceRun) -> bool:
    return "snapshot_restored" in run.timeline and "jvm_exec" not in run.timeline


@pytest.mark.parametrize("feature", ["17", "25"])
def test_a_ready_snapshot_is_saved_then_restored_with_what_restores_share(osv: Osv, examples_built: Path,
                                                                          feature: str) -> None:
    archives.jdk_or_skip(feature)
    first = serve(osv, feature)
    assert first.status == 3 and _saved(first) and not _restored(first), first.stderr
    assert "starting on port 8080" in first.stdout and "answered /quit" in first.stdout, first.stdout
    assert int(SAVED.search(first.stderr).group(1)) > 0  # type: ignore[union-attr]
    restores = [serve(osv, feature), serve(osv, feature, end="sigterm")]
    for run in restores:
        assert _restored(run) and not _saved(run), run.stderr
        # its own terminal: what the app printed before the snapshot is not printed again
        assert "starting on port" not in run.stdout and "answered /" in run.stdout, run.stdout
        # the host's clock, not the snapshot's
        assert run.asked[0] - 1000 <= int(run.answer["now_millis"]) <= run.asked[1] + 1000, run.answer
    assert restores[0].status == 3, restores[0].stderr  # System.exit(3) after /quit
    assert restores[1].status == 143, restores[1].stderr  # SIGTERM reached the restored JVM
    runs = [first, *restores]
    for name in SHARED[:7]:
        assert len({run.answer[name] for run in runs}) == 1, (name, [run.answer[name] for run in runs])
    for name in SHARED[7:]:
        assert restores[0].answer[name] == restores[1].answer[name], name
    for name in FRESH:
        assert restores[0].answer[name] != restores[1].answer[name], (name, restores[0].answer[name])
    assert first.answer["securerandom_algorithm"] == "NativePRNG"


@pytest.mark.parametrize("feature", ["17"])
def test_a_changed_argument_condition_or_jar_gets_a_snapshot_of_its_own(osv: Osv, examples_built: Path,
                                                                          tmp_path: Path, feature: str) -> None:
    original = serve(osv, feature)  # saves, or restores what the test above saved
    assert original.status == 3 and (_saved(original) or _restored(original)), original.stderr
    by_file = serve(osv, feature, "8080", "/tmp/readysnap-ready", ready="/tmp/readysnap-ready")
    assert by_file.status == 3 and _saved(by_file) and not _restored(by_file), by_file.stderr
    assert by_file.answer["early_uuid"] != original.answer["early_uuid"]
    changed = tmp_path / "readysnap.jar"
    changed.write_bytes((ROOT / SERVICE).read_bytes())
    with zipfile.ZipFile(changed, "a") as jar:  # the same classes and one more file: other app contents
        jar.writestr("NOTICE", "a changed jar\n")
    other_jar = serve(osv, feature, jar=str(changed))
    assert other_jar.status == 3 and _saved(other_jar) and not _restored(other_jar), other_jar.stderr


def test_an_http_ready_point_is_saved_after_the_app_answered_it(osv: Osv, examples_built: Path) -> None:
    # PID 1 asks GET /warm-up itself before the save: the restored service has run its request path
    # once, and only the saving run printed that request's line
    feature = "17"
    url = "http://localhost:8080/warm-up?from=osv-java"
    first = serve(osv, feature, ready=url)
    assert first.status == 3 and _saved(first) and not _restored(first), first.stderr
    assert "answered /warm-up" in first.stdout, first.stdout
    assert "once the app answered GET http://localhost:8080/warm-up?from=osv-java" in first.stderr, first.stderr
    again = serve(osv, feature, ready=url)
    assert again.status == 3 and _restored(again) and not _saved(again), again.stderr
    assert "answered /warm-up" not in again.stdout and "answered /quit" in again.stdout, again.stdout
    assert again.answer["early_uuid"] == first.answer["early_uuid"]


def test_a_damaged_ready_snapshot_falls_back_to_starting_the_app(osv: Osv, examples_built: Path,
                                                                 osv_cache: Path) -> None:
    feature = "17"
    first = serve(osv, feature)
    assert first.status == 3, first.stderr
    newest = max((osv_cache / "snapshots").glob("ready-*.snapshot"), key=lambda p: p.stat().st_mtime)
    state = newest / "state"
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])  # cut short: QEMU cannot load it
    fallback = serve(osv, feature)
    assert fallback.status == 3 and fallback.answer["early_uuid"], fallback.stderr
    warnings = [line for line in fallback.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and re.search(r"snapshot.*; starting the app afresh", warnings[0]), fallback.stderr
    assert _saved(fallback) and not _restored(fallback), "a good snapshot replaces the damaged one"
    again = serve(osv, feature)
    assert _restored(again) and again.answer["early_uuid"] == fallback.answer["early_uuid"], again.stderr


def test_an_app_that_never_gets_ready_runs_as_without_the_option(osv: Osv, examples_built: Path,
                                                                 osv_cache: Path) -> None:
    folder = osv_cache / "snapshots"
    before = set(folder.glob("ready-*")) if folder.exists() else set()
    proc = osv("run", "--jdk", "17", "-m", MEMORY["17"], "--snapshot-when-ready", "/tmp/never",
               "examples/hello/hello.jar", env={"OSV_JAVA_PROGRESS": "1"})
    assert proc.returncode == 0 and text(proc.stdout).startswith("Hello from osv-java!"), text(proc.stderr)
    assert "ready snapshot" not in text(proc.stderr) and "warning" not in text(proc.stderr), text(proc.stderr)
    assert (set(folder.glob("ready-*")) if folder.exists() else set()) == before


def test_an_app_asked_to_stop_before_its_ready_point_saves_no_snapshot(osv: Osv, test_classes: Path,
                                                                       osv_cache: Path) -> None:
    # The hook of a JVM that got SIGTERM makes the ready FILE: a snapshot taken then would restore a JVM
    # on its way out, and every later run would end at once with 143.
    folder = osv_cache / "snapshots"
    before = set(folder.glob("ready-*")) if folder.exists() else set()
    ready_file = "/tmp/osv-late-ready"
    proc = terminate_when_ready(osv, "run", "--jdk", "17", "-m", MEMORY["17"], "--snapshot-when-ready", ready_file,
                                "-cp", str(test_classes), "LateReady", ready_file)
    assert proc.returncode == 143 and text(proc.stdout) == "ready\nhook ran\n", text(proc.stderr)
    assert "the app was sent a signal before it got ready, so no ready snapshot is saved" in text(proc.stderr), \
        text(proc.stderr)
    assert (set(folder.glob("ready-*")) if folder.exists() else set()) == before
