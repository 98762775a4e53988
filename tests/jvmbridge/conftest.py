"""Real JVMs for the jvmbridge tests: test programs compiled once, every JVM killed after its test."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jvmbridge.jdk import Jdk, probe

JAVA_SOURCES = Path(__file__).parent / "java"
JDK17 = Path("/usr/lib/jvm/java-17-openjdk-amd64")
JDK25_GLOB = "temurin-25*"


def _jdk25_home() -> Path | None:
    found = sorted(Path("/usr/lib/jvm").glob(JDK25_GLOB))
    return found[0] if found else None


@pytest.fixture(scope="session")
def jdk17() -> Jdk:
    if not (JDK17 / "bin" / "java").exists():
        pytest.skip(f"JDK 17 not installed at {JDK17}")
    return probe(JDK17)


@pytest.fixture(scope="session")
def jdk25() -> Jdk:
    home = _jdk25_home()
    if home is None:
        pytest.skip("JDK 25 not installed (/usr/lib/jvm/temurin-25*)")
    return probe(home)


@pytest.fixture(scope="session", params=["17", "25"])
def jdk(request: pytest.FixtureRequest) -> Jdk:
    """Each test using this runs on JDK 17 and on JDK 25 (skipped when 25 is absent)."""
    name = "jdk17" if request.param == "17" else "jdk25"
    value: Jdk = request.getfixturevalue(name)
    return value


@pytest.fixture(scope="session")
def classes(tmp_path_factory: pytest.TempPathFactory, jdk17: Jdk) -> Path:
    """The test programs, compiled for Java 17 so both JDKs run them."""
    out = tmp_path_factory.mktemp("classes")
    sources = sorted(str(p) for p in JAVA_SOURCES.glob("*.java"))
    subprocess.run([str(jdk17.tool("javac")), "--release", "17", "-d", str(out), *sources], check=True)
    return out


@dataclass
class RunningJvm:
    proc: subprocess.Popen[str]
    pid: int
    jdk: Jdk
    out_lines: list[str]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


StartJvm = Callable[..., RunningJvm]


@pytest.fixture
def start_jvm(classes: Path) -> Iterator[StartJvm]:
    """Start `java OPTS... MAIN ARGS...` and wait for its `ready PID` line; killed after the test."""
    started: list[RunningJvm] = []

    def start(
        jdk: Jdk,
        *options: str,
        main: str = "Idle",
        args: tuple[str, ...] = (),
        prefix: tuple[str, ...] = (),
        wait_ready: bool = True,
        cwd: Path | None = None,
        classpath: Path | None = None,
    ) -> RunningJvm:
        cp = str(classpath or classes)
        cmd = [*prefix, str(jdk.tool("java")), "-Xmx128m", "-cp", cp, *options, main, *args]
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=cwd,
            start_new_session=True,
        )
        jvm = RunningJvm(proc, proc.pid, jdk, [])
        started.append(jvm)
        if wait_ready:
            assert proc.stdout is not None
            for line in proc.stdout:
                jvm.out_lines.append(line)
                if line.startswith("ready "):
                    break
            else:
                raise AssertionError(f"JVM did not start: {' '.join(cmd)}\n{''.join(jvm.out_lines)}")
        return jvm

    yield start
    for jvm in started:
        if jvm.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(jvm.proc.pid, signal.SIGKILL)
        jvm.proc.wait(timeout=30)


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Our click group in a fresh interpreter, as a user would run it."""
    code = "from osv_java.jvm_commands import jvm_group; jvm_group()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def _jcmd(jdk: Jdk, pid: int, *args: str) -> str:
    out = subprocess.run([str(jdk.tool("jcmd")), str(pid), *args], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines(keepends=True)
    return "".join(lines[1:])  # jcmd prints "PID:" first


@pytest.fixture(scope="session")
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `osv-java jvm ARGS...` in a fresh interpreter."""
    return _run_cli


@pytest.fixture(scope="session")
def jcmd() -> Callable[..., str]:
    """The JDK's own jcmd, output without its `PID:` line."""
    return _jcmd
