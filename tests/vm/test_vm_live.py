"""Seeing into the JVM of a running VM from the host: `osv-java shell --vm NAME` (py4j through a port
forward added at run time) and `osv-java jvm events --vm NAME` (the guest JVM's GC log, streamed)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from osvtest import JDK17, OSV, ROOT, Osv, explain, text

pytestmark = [pytest.mark.vm]
pytest.importorskip("py4j")

GREETING = "hello from the app's own object"
SHELL_COMMANDS = """\
print('VERSION', jvm.java.lang.System.getProperty('java.version'))
runtime = jvm.java.lang.Runtime.getRuntime()
print('HOST', jvm.java.net.InetAddress.getLocalHost().getHostName(), runtime.availableProcessors())
print('APP', jvm.live.LiveApp.GREETING)
print('PORT', gateway.gateway_parameters.port, gateway.gateway_parameters.auth_token)
"""


class App:
    """`osv-java run --name NAME ... live.LiveApp MODE`, running until its stdin is closed."""

    def __init__(self, osv: Osv, classes: Path, name: str, mode: str, *options: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [OSV, "run", "--jdk", JDK17, "--name", name, "-c", "1", *options, "-cp", str(classes),
             "live.LiveApp", mode],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=osv.env, cwd=ROOT,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line == b"ready\n", f"the app printed {line!r}: " + self.failure()

    def failure(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stderr is not None
        return text(self.proc.stderr.read())

    def finish(self) -> tuple[int, str, str]:
        """Close its stdin (the app then exits); its status, the rest of its stdout, its stderr."""
        out, err = self.proc.communicate(b"", timeout=120)
        return self.proc.returncode, text(out), text(err)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def start_app(osv: Osv, test_classes: Path) -> Iterator[Callable[..., App]]:
    started: list[App] = []

    def start(mode: str, *options: str) -> App:
        app = App(osv, test_classes, f"live-{mode}-{os.getpid()}", mode, *options)
        started.append(app)
        return app

    yield start
    for app in started:
        app.kill()


def authenticate(port: int, token: str) -> str:
    """py4j's first exchange: `!yv` when the gateway accepts the token."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"A\n{token}\n".encode())
        return sock.recv(64).decode(errors="replace")


def _loopback_listeners(port: int) -> list[str]:
    """Local addresses of host sockets listening on `port` (QEMU's forward)."""
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            row = line.split()
            address, _, hexport = row[1].partition(":")
            if row[3] == "0A" and int(hexport, 16) == port:
                found.append(address)
    return found


def _gateway_threads(osv: Osv, name: str) -> int:
    dump = osv("jvm", "cmd", "--vm", name, "Thread.print")
    assert dump.returncode == 0, explain(dump)
    return text(dump.stdout).count("at py4j.GatewayServer.run")


def _eventually(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def _open_shell(osv: Osv, name: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """`osv-java shell --vm NAME`, fed SHELL_COMMANDS on stdin as a user would type them."""
    shell = subprocess.Popen([OSV, "shell", "--vm", name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=osv.env, cwd=ROOT)
    assert shell.stdin is not None and shell.stdout is not None
    watchdog = threading.Timer(240, shell.kill)  # a hung shell fails the test instead of the session
    watchdog.start()
    try:
        shell.stdin.write(SHELL_COMMANDS)
        shell.stdin.flush()
        said: dict[str, str] = {}
        while len(said) < 4:
            line = shell.stdout.readline()
            assert line, "the shell exited early: " + (shell.stderr.read() if shell.stderr else "")
            m = re.search(r"\b(VERSION|HOST|APP|PORT) (.*)$", line.strip())  # after any >>> prompts
            if m:
                said[m.group(1)] = m.group(2)
    finally:
        watchdog.cancel()
    return shell, said


def test_shell_into_a_vm_reaches_the_guest_jvm_and_its_gateway_goes_with_it(
    osv: Osv, start_app: Callable[..., App]
) -> None:
    app = start_app("idle")
    shell, said = _open_shell(osv, app.name)
    try:
        # The guest's JVM, not a host one: JDK 17 of the image, the VM's hostname and its one CPU.
        assert said["VERSION"].startswith("17."), said
        assert said["HOST"] == "osv 1", said
        assert said["APP"] == GREETING
        port_text, token = said["PORT"].split()
        port = int(port_text)
        # The forward listens on the host's loopback only, and the gateway wants the token.
        assert _loopback_listeners(port) == ["0100007F"]
        assert not authenticate(port, "wrong" * 5).startswith("!yv")
        assert authenticate(port, token).startswith("!yv")
        assert _gateway_threads(osv, app.name) == 1
    finally:
        assert shell.stdin is not None
        shell.stdin.close()
        code = shell.wait(timeout=60)
    assert code == 0, shell.stderr.read() if shell.stderr else ""
    assert not _loopback_listeners(port), "the forward outlived the shell"
    _eventually(lambda: _gateway_threads(osv, app.name) == 0, "the gateway still runs after the shell exited")

    # A shell that is killed cannot stop anything itself: the run and PID 1 do it for it.
    shell, said = _open_shell(osv, app.name)
    port = int(said["PORT"].split()[0])
    assert _gateway_threads(osv, app.name) == 1
    shell.send_signal(signal.SIGKILL)
    shell.wait(timeout=30)
    _eventually(lambda: not _loopback_listeners(port), "the forward outlived a killed shell")
    _eventually(lambda: _gateway_threads(osv, app.name) == 0, "the gateway still runs after its shell was killed")

    status, out, err = app.finish()
    assert status == 0, err
    assert out.startswith("allocated "), out


def test_gc_events_stream_from_the_jvm_in_a_vm(osv: Osv, start_app: Callable[..., App]) -> None:
    app = start_app("churn", "--jvm-opt=-Xmx64m")
    proc = osv("jvm", "events", "--vm", app.name, "--json", "--duration", "12")
    assert proc.returncode == 0, explain(proc)
    events = [json.loads(line) for line in text(proc.stdout).splitlines()]
    pauses = [e for e in events if e["kind"] == "pause"]
    assert len(pauses) >= 3, explain(proc)
    for pause in pauses:  # parsed into numbers, not just passed through
        assert pause["gc_id"] is not None and pause["duration"] > 0 and pause["start"] > 0, pause
        # heap_after may be 0: the log counts whole MB and a young collection can empty a small heap
        assert pause["heap_before"] > 0 and pause["heap_before"] >= pause["heap_after"] >= 0, pause
    # Each pause carries its safepoint's numbers (the last may have been cut off by --duration).
    assert all(p["time_to_safepoint"] is not None for p in pauses[:-1]), pauses
    ids = [p["gc_id"] for p in pauses]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
    assert any(e["kind"] == "safepoint" for e in events)

    # When the client goes, the guest removes its log output (the JVM's own outputs stay) and FIFO.
    def log_outputs() -> str:
        listing = osv("jvm", "cmd", "--vm", app.name, "VM.log", "list")
        assert listing.returncode == 0, explain(listing)
        return text(listing.stdout)

    _eventually(lambda: ".osv-java-events-" not in log_outputs(), "the guest kept logging to the stream's FIFO")
    assert "#0: stdout" in log_outputs()

    # The text form, pauses only.
    short = osv("jvm", "events", "--vm", app.name, "--duration", "6", "--no-safepoints")
    assert short.returncode == 0, explain(short)
    lines = text(short.stdout).splitlines()
    pause_line = re.compile(r"\s*\d+\.\d{3}s pause\s+GC\(\d+\)\s+Pause \w+ \(.+\) [\d.]+M->[\d.]+M\([\d.]+M\) [\d.]+ms")
    assert lines and all(pause_line.match(ln) for ln in lines), [ln for ln in lines if not pause_line.match(ln)]

    status, out, err = app.finish()
    assert status == 0, err
    assert int(out.split()[1]) > 64 << 20, out  # it allocated more than its heap: it had to collect


def test_no_such_vm_is_one_clear_error(osv: Osv) -> None:
    for command in (["shell", "--vm", "no-such-vm"], ["jvm", "events", "--vm", "no-such-vm"]):
        proc = osv(*command)
        assert proc.returncode == 125, explain(proc)
        err = text(proc.stderr).splitlines()
        assert err[0].startswith("osv-java: error: no running VM named 'no-such-vm'"), explain(proc)
        assert err[1].startswith("hint: start one with `osv-java run --name NAME"), explain(proc)
