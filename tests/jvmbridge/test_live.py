"""`osv-java shell PID`: a py4j gateway loaded into a running JVM, loopback only, token required,
stopped when the shell exits. Driven through the shell's stdin, as a user would."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from jvmbridge.jdk import Jdk

pytest.importorskip("py4j")

LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}
SHELL = "from osv_java.jvm_commands import shell_command; shell_command()"
COMMANDS = """\
p = gateway.gateway_parameters
print('PORT', p.port, p.auth_token)
print('VERSION', jvm.java.lang.System.getProperty('java.version'))
print('PID', jvm.java.lang.ProcessHandle.current().pid())
print('CLASSES', len(inst.getAllLoadedClasses()))
"""


def _authenticate(port: int, token: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"A\n{token}\n".encode())
        return sock.recv(64).decode(errors="replace")


def _listening_addresses(pid: int, port: int) -> list[str]:
    """Local addresses of sockets listening on `port` in the JVM's network namespace."""
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            row = line.split()
            address, _, hexport = row[1].partition(":")
            if row[3] == "0A" and int(hexport, 16) == port:
                found.append(address)
    return found


def test_shell_reaches_the_jvm_and_stops(jdk: Jdk, start_jvm, tmp_path: Path) -> None:
    jvm = start_jvm(jdk)
    tmp = Path(f"/proc/{jvm.pid}/root/tmp")
    before = {p.name for p in tmp.iterdir()}
    env = dict(os.environ, OSV_JAVA_CACHE=str(tmp_path / "cache"))
    shell = subprocess.Popen(
        [sys.executable, "-u", "-c", SHELL, str(jvm.pid)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert shell.stdin is not None and shell.stdout is not None
    watchdog = threading.Timer(90, shell.kill)  # a hung shell fails the test instead of the session
    watchdog.start()
    try:
        shell.stdin.write(COMMANDS)
        shell.stdin.flush()
        said = {}
        while len(said) < 4:
            line = shell.stdout.readline()
            assert line, "the shell exited early"
            m = re.search(r"\b(PORT|VERSION|PID|CLASSES) (.*)$", line.strip())  # after any >>> prompts
            if m:
                said[m.group(1)] = m.group(2)
        port_text, token = said["PORT"].split()
        port = int(port_text)
        assert said["VERSION"] == jdk.version
        assert int(said["PID"]) == jvm.pid
        assert int(said["CLASSES"]) > 100
        local = _listening_addresses(jvm.pid, port)
        assert local and all(addr in LOOPBACK for addr in local), local
        assert not _authenticate(port, "wrong" * 5).startswith("!yv")
        assert _authenticate(port, token).startswith("!yv")
    finally:
        shell.stdin.close()
        code = shell.wait(timeout=60)
        watchdog.cancel()
    assert code == 0
    deadline = time.monotonic() + 5
    while _listening_addresses(jvm.pid, port):
        assert time.monotonic() < deadline, "the gateway still listens after the shell exited"
        time.sleep(0.1)
    assert not [p for p in tmp.iterdir() if p.name not in before and p.name.startswith("osv-java-shell-")]
    # the gateway ran on daemon threads: the application still exits by itself
    jvm.proc.stdin.close()
    assert jvm.proc.wait(timeout=30) == 0


def test_the_guest_stops_a_gateway_the_shell_left_running(
    jdk17: Jdk, start_jvm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PID 1's fallback when a `shell --vm` dies without stopping its gateway: py4j's own protocol."""
    from jvmbridge.live import Gateway
    from kernel.guest.services import py4j_shutdown

    jvm = start_jvm(jdk17)
    monkeypatch.setenv("OSV_JAVA_CACHE", str(tmp_path / "cache"))
    gw = Gateway(jvm.pid)
    try:
        port = gw.port
        assert _authenticate(port, gw.token).startswith("!yv")
        py4j_shutdown(port, "wrong" * 5, address="127.0.0.1")  # refused: still listening
        assert _listening_addresses(jvm.pid, port)
        py4j_shutdown(port, gw.token, address="127.0.0.1")
        deadline = time.monotonic() + 5
        while _listening_addresses(jvm.pid, port):
            assert time.monotonic() < deadline, "the gateway still listens after the stop call"
            time.sleep(0.1)
        py4j_shutdown(port, gw.token, address="127.0.0.1")  # nothing listens: a no-op
    finally:
        gw.close()
