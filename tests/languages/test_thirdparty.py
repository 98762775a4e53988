"""The third-party programs of osv_java/compat/thirdparty.py, run with a plain `java` on JDK 17 on the host."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from jvmbridge import jdk as jdks
from osv_java.compat import thirdparty
from osv_java.compat.thirdparty import PROGRAMS, ThirdParty


def test_table_is_well_formed(repo_root: Path) -> None:
    names = [p.name for p in PROGRAMS]
    assert len(names) == len(set(names))
    for program in PROGRAMS:
        for path in program.files:
            assert (repo_root / path).exists(), path
        assert (program.exit is None) == (program.http is not None)
        assert thirdparty.by_name(program.name) is program


def test_regex_and_exact_matching() -> None:
    saxon = thirdparty.by_name("saxon")
    assert saxon.stdout_ok(saxon.stdout) and not saxon.stdout_ok(saxon.stdout + "x")
    h2 = thirdparty.by_name("h2")
    assert h2.stdout_ok("ANSWER | NAME\n42     | OSV-JAVA\n(1 row, 12 ms)\n")
    assert not h2.stdout_ok("ANSWER | NAME\n41     | OSV-JAVA\n(1 row, 12 ms)\n")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, deadline: float) -> tuple[int, str]:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read().decode()
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _run_server(program: ThirdParty, java: Path, cwd: Path) -> None:
    assert program.http is not None
    port = _free_port()
    # XmlConfiguration takes name=value arguments as properties; jetty.xml reads jetty.http.port.
    cmd = thirdparty.java_command(program, java)
    cmd.insert(len(cmd) - len(program.args), f"jetty.http.port={port}")
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        status, body = _get(f"http://127.0.0.1:{port}{program.http.path}", time.monotonic() + 60)
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    assert status == program.http.status
    assert program.http.body in body


@pytest.mark.slow
@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
def test_program_runs_on_jdk17(program: ThirdParty, jdk17: jdks.Jdk, repo_root: Path) -> None:
    java = jdk17.home / "bin" / "java"
    if program.http is not None:
        _run_server(program, java, repo_root)
        return
    cmd = thirdparty.java_command(program, java)
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=repo_root, timeout=120)
    where = " ".join(cmd)
    assert proc.returncode == program.exit, f"{where}\n{proc.stderr}"
    assert program.stdout_ok(proc.stdout), f"{where}\nstdout: {proc.stdout!r}"
    assert program.stderr_ok(proc.stderr), f"{where}\nstderr: {proc.stderr!r}"
