"""Helpers shared by the test suites (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OSV = str(Path(sys.executable).parent / "osv-java")
JDK17 = "17"


@dataclass
class Osv:
    """Runs the osv-java command with the session cache; keeps the console log of VM runs."""

    env: dict[str, str]
    console_log: Path

    def __call__(self, *args: str, input: bytes | None = None, timeout: float = 300,
                 env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
        env = {**self.env, **(env or {})}
        proc = subprocess.run([OSV, *args], input=input, capture_output=True, timeout=timeout, env=env,
                              cwd=cwd or ROOT, check=False)
        wait_for_trainings(Path(env["OSV_JAVA_CACHE"]))
        return proc


TRAINING_WAIT_S = 300.0


def wait_for_trainings(cache: Path) -> None:
    """Wait for the start-up archives a process run left to be made in the background: the next run
    then finds them, whatever the machine's speed (a test that runs an app twice sees the same)."""
    from kernel.build import background_training

    busy = background_training.wait_for_all(cache / "startup", TRAINING_WAIT_S)
    assert not busy, f"background trainings still under way after {TRAINING_WAIT_S:.0f} s: {busy}"


def text(data: bytes) -> str:
    return data.decode(errors="replace")


def explain(proc: subprocess.CompletedProcess[bytes]) -> str:
    """A failure message with everything the command printed."""
    return f"exit {proc.returncode}\n--- stdout ---\n{text(proc.stdout)}\n--- stderr ---\n{text(proc.stderr)}"


def compile_java(tmp: Path, name: str, source: str, classpath: str = "") -> Path:
    src = tmp / "src" / name
    src.mkdir(parents=True)
    (src / f"{source.split('class ')[1].split()[0]}.java").write_text(source)
    out = tmp / "classes" / name
    cmd = ["javac", "--release", "17", "-d", str(out), *map(str, src.glob("*.java"))]
    if classpath:
        cmd[1:1] = ["-cp", classpath]
    subprocess.run(cmd, check=True)
    return out


def jar_of(classes: Path, jar: Path, manifest: str = "") -> Path:
    jar.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(jar, "w") as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n" + manifest)
        for f in sorted(classes.rglob("*.class")):
            zf.write(f, str(f.relative_to(classes)))
    return jar


def make_jar_with_class_path(tmp: Path) -> Path:
    """app.jar whose manifest names lib/rel.jar (relative) and an absolute jar elsewhere."""
    rel = compile_java(tmp, "rel", 'public class Rel { public static String hi() { return "relative says hi"; } }')
    ab = compile_java(tmp, "abs", 'public class Abs { public static String hi() { return "absolute says hi"; } }')
    app_dir = tmp / "app"
    jar_of(rel, app_dir / "lib" / "rel.jar")
    absolute = jar_of(ab, tmp / "elsewhere" / "abs.jar")
    main = compile_java(
        tmp,
        "main",
        "public class Main { public static void main(String[] a) { System.out.println(Rel.hi());"
        " System.out.println(Abs.hi()); System.out.println(\"args: \" + java.util.Arrays.toString(a)); } }",
        classpath=f"{rel}:{ab}",
    )
    return jar_of(main, app_dir / "app.jar", f"Main-Class: Main\nClass-Path: lib/rel.jar {absolute}\n")


def terminate_when_ready(osv: Osv, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
    """Run osv-java until the app prints "ready", then SIGTERM osv-java (as `docker stop` would) and
    wait for it; what it printed and its exit status."""
    import signal

    proc = subprocess.Popen([OSV, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=osv.env, cwd=ROOT)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        if first == b"ready\n":
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(proc.args, proc.returncode, first + out, err)
    finally:
        kill_if_running(proc)


def first_page(url: str, timeout: float) -> str:
    """The body of the first answer to GET `url` within `timeout` seconds ("" when none came): a
    server in a machine that is still booting refuses connections until it listens."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            time.sleep(1)
    return ""


def stop(proc: subprocess.Popen[Any], grace: float) -> None:
    """Stop as `docker stop` does: SIGTERM (osv-java then stops its JVM and QEMU), and SIGKILL when it
    has not ended `grace` seconds later."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def kill_if_running(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL and reap a process a test leaves behind (one that failed before it could end it)."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def release_waiting(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """Let an app started with --wait (it holds until a line on stdin) finish; its stdout and stderr."""
    assert proc.stdin is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    return proc.communicate(timeout=timeout)
