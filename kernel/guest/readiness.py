"""When the app is ready for a ready-point snapshot (kernel/vm/ready.py): it listens on a TCP port (and,
when asked, answers an HTTP GET there), or a file exists.

PID 1 asks this every READY_POLL seconds while the JVM runs and the host wants such a snapshot. The
sockets are read from /proc/net/tcp and tcp6 rather than probed with a connection: a connection
would reach the app, which would see it (and might log it or count it).

A port is ready once it listens and no connection to it is under way: a connection in the snapshot
would be one no restored machine's host knows (it belonged to the saving run's QEMU), and the app
would wait on it. Clients that keep connecting (health checks, a load balancer's keep-alive
connections) get IDLE_WAIT seconds to leave the port idle; the snapshot is taken after that anyway.

With an HTTP target the port must also answer `GET target` on the guest's loopback with a status
from 200 to 399 (a Kubernetes httpGet probe's rule): the app then has run its request path once, so
every restore answers its first request with that code loaded, linked and compiled. The request is
made without blocking PID 1 (which relays the app's output meanwhile): each look moves it on.

Standard library only: it runs in the guest.
"""

from __future__ import annotations

import errno
import os
import socket

READY_POLL = 0.05  # seconds between two looks
IDLE_WAIT = 2.0  # seconds a listening port may stay busy before the snapshot is taken all the same
# The state column (include/net/tcp_states.h): listening, and connections that are over.
TCP_LISTEN = "0A"
TCP_OVER = ("06", "07")  # TIME_WAIT, CLOSE
TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
PROBE_RETRY = 0.5  # seconds between a failed request and the next
PROBE_TIMEOUT = 60.0  # seconds one request may take (a first request under emulation takes seconds)
MAX_ANSWER = 1 << 20  # bytes of an answer read before the request is counted as answered


def socket_states(table: str, port: int) -> list[str]:
    """The states of the sockets whose local port is `port` in one /proc/net/tcp-style table."""
    states = []
    for line in table.splitlines()[1:]:  # the first line names the columns
        columns = line.split()
        if len(columns) > 3:
            _, _, local_port = columns[1].rpartition(":")  # local address, ADDRESS:PORT in hex
            if int(local_port, 16) == port:
                states.append(columns[3])
    return states


def port_states(port: int, tables: tuple[str, ...] = TABLES) -> list[str]:
    """The states of the guest's sockets on local `port`, IPv4 and IPv6."""
    states = []
    for path in tables:
        try:
            with open(path) as f:
                states += socket_states(f.read(), port)
        except OSError:  # no IPv6 in this kernel, say
            continue
    return states


class HttpProbe:
    """`GET target` to 127.0.0.1:`port`, moved on without blocking by each `answered(now)` call; True
    once an answer's status is 200-399 and the server has closed (HTTP/1.0, Connection: close)."""

    def __init__(self, port: int, target: str) -> None:
        self.port = port
        self.request = (f"GET {target} HTTP/1.0\r\nHost: localhost:{port}\r\nUser-Agent: osv-java-ready\r\n"
                        "Accept: */*\r\nConnection: close\r\n\r\n").encode("ascii")
        self.sock: socket.socket | None = None
        self.unsent = b""
        self.answer = b""
        self.started = 0.0
        self.next_try = 0.0
        self.last_status: int | None = None  # the last answer's (None: no answer, or not HTTP)

    def answered(self, now: float) -> bool:
        if self.sock is None:
            if now < self.next_try:
                return False
            self._connect(now)
            return False
        try:
            if self.unsent:
                self.unsent = self.unsent[self.sock.send(self.unsent):]
            while not self.unsent:
                chunk = self.sock.recv(65536)
                if not chunk or len(self.answer) + len(chunk) > MAX_ANSWER:
                    return self._finish(now, self.answer + chunk)
                self.answer += chunk
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:  # refused, reset: the app is not serving yet
            return self._finish(now, b"")
        if now - self.started > PROBE_TIMEOUT:
            return self._finish(now, b"")
        return False

    def _connect(self, now: float) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.started, self.unsent, self.answer = now, self.request, b""
        code = self.sock.connect_ex(("127.0.0.1", self.port))
        if code not in (0, errno.EINPROGRESS):
            self._finish(now, b"")

    def _finish(self, now: float, answer: bytes) -> bool:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.last_status = status_of(answer)
        ok = self.last_status is not None and 200 <= self.last_status <= 399
        if not ok:
            self.next_try = now + PROBE_RETRY
        return ok


def status_of(answer: bytes) -> int | None:
    """The status code of an HTTP answer's first line ("HTTP/1.1 200 OK"), None if it has none."""
    words = answer.split(b"\r\n", 1)[0].split()
    if len(words) >= 2 and words[0].startswith(b"HTTP/") and words[1].isdigit():
        return int(words[1])
    return None


class Watch:
    """The run request's ready condition: TCP `port` listens (and is idle, see the module; with
    `http_target`, answers it first), or `path` exists."""

    def __init__(self, port: int | None, path: str | None, http_target: str | None = None,
                 tables: tuple[str, ...] = TABLES) -> None:
        self.port = port
        self.path = path
        self.tables = tables
        self.listening_since: float | None = None
        self.probe = HttpProbe(port, http_target) if port is not None and http_target is not None else None

    def ready(self, now: float) -> bool:
        if self.port is None:
            return self.path is not None and os.path.exists(self.path)
        states = port_states(self.port, self.tables)
        if TCP_LISTEN not in states:
            self.listening_since = None
            return False
        if self.probe is not None:
            if not self.probe.answered(now):
                return False
            self.probe = None
            self.listening_since = None  # the idle wait starts at the answer: its own connection is closing
            states = port_states(self.port, self.tables)
        if self.listening_since is None:
            self.listening_since = now
        busy = any(state != TCP_LISTEN and state not in TCP_OVER for state in states)
        return not busy or now - self.listening_since >= IDLE_WAIT
