"""The QEMU monitor (QMP) of a running VM, for what only QEMU can do at run time: port forwards.

QMP is JSON, one message a line. Each command carries an id and its answer echoes it; QEMU also
sends asynchronous events (no id) at any time, which are skipped here. Port forwards of user-mode
networking have no QMP command of their own, so they go through `human-monitor-command`, whose
answer is the text the human monitor would print: empty on success.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
from pathlib import Path

from jvmbridge.errors import OsvJavaError

NETDEV = "net0"  # the id kernel.vm.qemu gives the VM's user-mode network


class MonitorError(OsvJavaError):
    """QEMU refused a monitor command, or the monitor could not be reached."""


def parse(line: bytes) -> dict[str, object]:
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise MonitorError(f"QEMU's monitor sent something that is not JSON: {line[:80]!r}") from exc
    if not isinstance(message, dict):
        raise MonitorError(f"QEMU's monitor sent something that is not a QMP message: {line[:80]!r}")
    return message


def answer(message: dict[str, object], ident: str) -> tuple[bool, object]:
    """(True, result) when `message` answers command `ident`; (False, None) for anything else.

    Raises MonitorError when the answer is an error.
    """
    if message.get("id") != ident or "event" in message:
        return False, None
    if "error" in message:
        error = message["error"]
        desc = error.get("desc", error) if isinstance(error, dict) else error
        raise MonitorError(f"QEMU refused a monitor command: {desc}")
    return True, message.get("return")


class Monitor:
    """A QMP client on QEMU's monitor socket (`-qmp unix:PATH,server=on,wait=off`); thread-safe."""

    def __init__(self, path: Path | str, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self._buffer = b""
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        try:
            self.sock.connect(str(path))
            greeting = parse(self._line())
            if "QMP" not in greeting:
                raise MonitorError(f"{path} is not a QMP monitor (it said {greeting})")
            self.execute("qmp_capabilities")
        except OSError as exc:
            self.sock.close()
            raise MonitorError(f"cannot reach QEMU's monitor at {path}: {exc}") from exc
        except BaseException:
            self.sock.close()
            raise

    def _line(self) -> bytes:
        while b"\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise MonitorError("QEMU closed its monitor (the VM has stopped)")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def execute(self, command: str, **arguments: object) -> object:
        """Run one QMP command and return its result."""
        with self._lock:
            ident = f"osv-java-{next(self._ids)}"
            request: dict[str, object] = {"execute": command, "id": ident}
            if arguments:
                request["arguments"] = arguments
            try:
                self.sock.sendall(json.dumps(request).encode() + b"\n")
                while True:
                    done, result = answer(parse(self._line()), ident)
                    if done:
                        return result
            except OSError as exc:
                raise MonitorError(f"QEMU's monitor failed during {command}: {exc}") from exc

    def human(self, command_line: str, cpu: int | None = None) -> str:
        """A human-monitor command (on vCPU `cpu` where it reads guest state); its printed output, stripped."""
        arguments: dict[str, object] = {"command-line": command_line}
        if cpu is not None:
            arguments["cpu-index"] = cpu
        said = self.execute("human-monitor-command", **arguments)
        return str(said or "").strip()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def add_forward(monitor: Monitor, host_port: int, guest_port: int, host: str = "127.0.0.1") -> None:
    """Forward TCP host:host_port to the guest's guest_port; MonitorError when QEMU cannot."""
    said = monitor.human(f"hostfwd_add {NETDEV} tcp:{host}:{host_port}-:{guest_port}")
    if said:  # e.g. "Could not set up host forwarding rule ..." when the port is taken
        raise MonitorError(f"QEMU cannot forward {host}:{host_port} to guest port {guest_port}: {said}")


def remove_forward(monitor: Monitor, host_port: int, host: str = "127.0.0.1") -> None:
    said = monitor.human(f"hostfwd_remove {NETDEV} tcp:{host}:{host_port}")
    if "removed" not in said:
        raise MonitorError(f"QEMU did not remove the forward of {host}:{host_port}: {said}")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now (another process may still take it first: callers retry)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def forward_any(monitor: Monitor, guest_port: int, host: str = "127.0.0.1", attempts: int = 5) -> int:
    """Forward a free host port to `guest_port`; returns the host port."""
    for attempt in range(attempts):
        port = free_port(host)
        try:
            add_forward(monitor, port, guest_port, host)
            return port
        except MonitorError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")
