"""The telemetry socket of a named run: how other osv-java commands reach the JVM inside its VM.

A client connects to the UNIX socket, sends one request line, and gets:
  `hsperf`                       the JVM's hsperfdata file, then the connection closes
  `jcmd LINE`                    the output of a diagnostic command, then it closes
  `hugepages`                    the heap's huge-page counts (JSON) from the guest's smaps
  `events WHAT DECORATORS`       `ok`, then -Xlog lines of the JVM as it prints them, until either
                                 side closes; the guest stops that logging when the client goes
  `gateway TOKEN JARNAME SIZE`   followed by SIZE bytes of the gateway agent jar: `ok HOSTPORT
                                 GUESTPORT` once the gateway runs and a loopback port forwards to
                                 it; held until the client closes, then forward and gateway go
A failure is one line `error WHAT` instead. Each request is relayed to PID 1 on the control port
with an id the guest echoes in its answers (kernel.guest.services), so requests do not wait for
each other and streams can run alongside. Port forwards are added at run time through QEMU's
monitor (kernel.vm.monitor).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import queue
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from kernel.guest import wire
from kernel.vm import monitor

ANSWER_TIMEOUT = 30.0
GATEWAY_TIMEOUT = 150.0  # the guest loads py4j's classes into the JVM, under software emulation
MAX_JAR = 64 << 20
T = TypeVar("T")


class Sender(Protocol):
    def send(self, op: str, **fields: object) -> None: ...


class Failed(Exception):
    """A request that cannot be served: the message goes to the client as `error MESSAGE`."""


def read_line(conn: socket.socket, limit: int = 4096) -> str:
    """One request line, read a byte at a time so nothing after it is taken from the socket."""
    data = b""
    while not data.endswith(b"\n"):
        byte = conn.recv(1)
        if not byte:
            break
        data += byte
        if len(data) > limit:
            raise Failed("request line too long")
    return data.decode(errors="replace").strip()


def read_exact(conn: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = conn.recv(min(left, 1 << 16))
        if not chunk:
            raise Failed(f"the request ended after {size - left} of {size} bytes")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class Session:
    """One request relayed to the guest: an id, and the queue its answers are delivered to."""

    _ids = itertools.count(1)

    def __init__(self, server: Relay) -> None:
        self.server = server
        self.id = str(next(self._ids))
        self.inbox: queue.Queue[wire.Message | None] = queue.Queue()  # None: the client went away
        server.sessions[self.id] = self

    def send(self, op: str, **fields: object) -> None:
        try:
            self.server.control.send(op, id=self.id, **fields)
        except OSError as exc:
            raise Failed("the VM has stopped") from exc

    def ask(self, op: str, timeout: float = ANSWER_TIMEOUT, **fields: object) -> wire.Message:
        """Send a request and wait for its answer; Failed with the guest's reason when it failed."""
        self.send(op, **fields)
        while True:
            try:
                message = self.inbox.get(timeout=timeout)
            except queue.Empty:
                raise Failed(f"the guest did not answer within {timeout:g}s") from None
            if message is None:
                raise Failed("the client went away")
            if wire.first(message, "op") != "reply":
                continue
            error = wire.first(message, "error")
            if error is not None:
                raise Failed(error)
            return message

    def close(self) -> None:
        self.server.sessions.pop(self.id, None)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _watch_hangup(conn: socket.socket, session: Session) -> None:
    """Tell the session when its client closes the connection (it sends nothing more)."""

    def watch() -> None:
        with contextlib.suppress(OSError):
            while conn.recv(4096):
                pass
        session.inbox.put(None)

    threading.Thread(target=watch, daemon=True).start()


class Relay:
    """Serves the socket at `path` for one VM; `deliver` takes the guest's answers (messages with an id)."""

    def __init__(self, path: Path, control: Sender, qmp_socket: Path | None) -> None:
        self.path = path
        self.control = control
        self.qmp_socket = qmp_socket
        self.sessions: dict[str, Session] = {}
        self._monitor: monitor.Monitor | None = None
        self._monitor_lock = threading.Lock()
        self._listener: socket.socket | None = None

    def listen(self) -> socket.socket:
        """Start serving; returns the listening socket (`close` stops the service)."""
        listener = self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(8)

        def accept() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        return listener

    def deliver(self, message: wire.Message) -> None:
        session = self.sessions.get(wire.first(message, "id") or "")
        if session is not None:  # else an answer nobody waits for any more
            session.inbox.put(message)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._monitor_lock:
            if self._monitor is not None:
                self._monitor.close()
                self._monitor = None

    def _serve(self, conn: socket.socket) -> None:
        handlers = {"hsperf": self._hsperf, "jcmd": self._jcmd, "hugepages": self._hugepages, "events": self._events,
                    "gateway": self._gateway, "balloon": self._balloon}
        with conn:
            conn.settimeout(ANSWER_TIMEOUT)
            try:
                word, _, rest = read_line(conn).partition(" ")
                handler = handlers.get(word)
                if handler is None:
                    raise Failed(f"unknown request {word!r}")
                handler(conn, rest)
            except Failed as exc:
                with contextlib.suppress(OSError):
                    conn.sendall(f"error {exc}\n".encode())
            except OSError:
                pass  # the client went away

    def _hsperf(self, conn: socket.socket, rest: str) -> None:
        with Session(self) as session:
            data = wire.first(session.ask("hsperf"), "data") or ""
        conn.sendall(base64.b64decode(data))

    def _jcmd(self, conn: socket.socket, rest: str) -> None:
        with Session(self) as session:
            output = wire.first(session.ask("jcmd", line=rest), "data") or ""
        conn.sendall(output.encode())

    def _hugepages(self, conn: socket.socket, rest: str) -> None:
        with Session(self) as session:
            output = wire.first(session.ask("hugepages"), "data") or ""
        conn.sendall(output.encode())

    def _events(self, conn: socket.socket, rest: str) -> None:
        words = rest.split()
        if len(words) != 2:
            raise Failed("events needs WHAT and DECORATORS")
        with Session(self) as session:
            session.ask("events", what=words[0], decorators=words[1])
            try:
                conn.sendall(b"ok\n")
                conn.settimeout(None)
                _watch_hangup(conn, session)
                while (message := session.inbox.get()) is not None:
                    if wire.first(message, "op") == "log":
                        conn.sendall("".join(line + "\n" for line in message.get("line", [])).encode())
            except OSError:
                pass  # the client went away
            finally:
                with contextlib.suppress(Failed):
                    session.send("events-stop")

    def _gateway(self, conn: socket.socket, rest: str) -> None:
        try:
            token, name, size_text = rest.split()
            size = int(size_text)
        except ValueError:
            raise Failed("gateway needs TOKEN JARNAME SIZE") from None
        if not 0 < size <= MAX_JAR:
            raise Failed(f"a gateway jar of {size} bytes is out of range")
        jar = read_exact(conn, size)
        with Session(self) as session:
            answer = session.ask("gateway", GATEWAY_TIMEOUT, token=token, name=name,
                                 jar=base64.b64encode(jar).decode())
            guest_port = int(wire.first(answer, "port") or 0)
            try:
                host_port = self._with_monitor(lambda m: monitor.forward_any(m, guest_port))
            except Failed:
                session.send("gateway-stop")
                raise
            try:
                conn.sendall(f"ok {host_port} {guest_port}\n".encode())
                conn.settimeout(None)
                while conn.recv(4096):  # held open by the shell for as long as it runs
                    pass
            except OSError:
                pass
            finally:
                with contextlib.suppress(Failed):
                    self._with_monitor(lambda m: monitor.remove_forward(m, host_port))
                with contextlib.suppress(Failed):
                    session.send("gateway-stop")

    def _balloon(self, conn: socket.socket, rest: str) -> None:
        """`balloon [BYTES]`: set the guest's memory target (QMP balloon), then answer `ok ACTUAL_BYTES`."""
        words = rest.split()
        if len(words) > 1 or (words and not words[0].isdigit()):
            raise Failed("balloon takes one size in bytes")

        def act(m: monitor.Monitor) -> object:
            if words:
                m.execute("balloon", value=int(words[0]))
            return m.execute("query-balloon")

        try:
            answer = self._with_monitor(act)
        except Failed as exc:
            if "balloon" in str(exc).lower() or "DeviceNotActive" in str(exc):
                raise Failed("this VM has no balloon device (it runs with --dynamic-heap off)") from exc
            raise
        actual = answer.get("actual", 0) if isinstance(answer, dict) else 0
        conn.sendall(f"ok {int(actual)}\n".encode())

    def qmp(self, command: str, **arguments: Any) -> Any:
        """A QMP command on the run's monitor connection; MonitorError when it fails."""
        return self.with_monitor(lambda m: m.execute(command, **arguments))

    def with_monitor(self, action: Callable[[monitor.Monitor], T]) -> T:
        """`action(monitor)` on the run's one monitor connection: QEMU serves one client at a time, so
        the relay, the policies' host side and the snapshot all go through it; MonitorError when it fails."""
        try:
            return self._with_monitor(action)
        except Failed as exc:
            raise monitor.MonitorError(str(exc)) from exc

    def _with_monitor(self, action: Callable[[monitor.Monitor], T]) -> T:
        """Run `action(monitor)` on QEMU's monitor, connecting at first use; Failed when it fails."""
        with self._monitor_lock:
            try:
                if self._monitor is None:
                    if self.qmp_socket is None:
                        raise monitor.MonitorError("this VM was started without a QEMU monitor")
                    self._monitor = monitor.Monitor(self.qmp_socket)
                return action(self._monitor)
            except monitor.MonitorError as exc:
                if self._monitor is not None and "stopped" in str(exc):
                    self._monitor.close()
                    self._monitor = None
                raise Failed(str(exc)) from exc
