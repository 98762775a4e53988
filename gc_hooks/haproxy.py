"""HAProxy's runtime API over its stats socket (UNIX, `level admin`): what STW coordination needs.

One command per connection (the socket's non-interactive mode): `show stat` (CSV) for a server's
status and its current sessions and queue, `set server B/S state drain|ready`, `show cli level` to
check the socket lets us change state. Standard library only (a supervisor uses it).
"""

from __future__ import annotations

import csv
import io
import socket
from dataclasses import dataclass


class HaproxyError(Exception):
    """HAProxy cannot be reached, or refused a command; the message says which and why."""


@dataclass(frozen=True)
class ServerStat:
    backend: str
    server: str
    status: str  # UP, DOWN, DRAIN, MAINT, "UP 1/2", "no check", ...
    current_sessions: int  # scur
    queued: int  # qcur
    weight: int

    @property
    def up(self) -> bool:
        """Taking traffic: up (or unchecked) and neither drained nor in maintenance."""
        return self.status.startswith("UP") or self.status == "no check"

    @property
    def busy(self) -> int:
        return self.current_sessions + self.queued


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


class Runtime:
    """The runtime API of one HAProxy, at UNIX socket `path`."""

    def __init__(self, path: str, timeout: float = 2.0) -> None:
        self.path = path
        self.timeout = timeout

    def command(self, line: str) -> str:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(self.path)
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(1 << 16):
                    chunks.append(chunk)
        except OSError as exc:
            raise HaproxyError(f"cannot reach HAProxy's runtime API at {self.path}: "
                               f"{exc.strerror or exc}") from exc
        return b"".join(chunks).decode(errors="replace")

    def level(self) -> str:
        """The socket's access level: "admin", "operator" or "user"."""
        return self.command("show cli level").strip()

    def stats(self, backend: str) -> list[ServerStat]:
        """The servers of `backend` (not its BACKEND/FRONTEND summary rows)."""
        text = self.command("show stat")
        if not text.startswith("# "):
            raise HaproxyError(f"HAProxy at {self.path} answered `show stat` with: {text.strip()[:200]}")
        rows = csv.DictReader(io.StringIO(text[2:]))
        return [ServerStat(backend, row["svname"], row.get("status") or "", _int(row.get("scur")),
                           _int(row.get("qcur")), _int(row.get("weight")))
                for row in rows
                if row.get("pxname") == backend and row.get("svname") not in ("BACKEND", "FRONTEND")]

    def server(self, backend: str, server: str) -> ServerStat:
        for stat in self.stats(backend):
            if stat.server == server:
                return stat
        names = [s.server for s in self.stats(backend)]
        if not names:
            raise HaproxyError(f"HAProxy at {self.path} has no backend {backend!r} (or it has no servers)")
        raise HaproxyError(f"backend {backend!r} of HAProxy at {self.path} has no server {server!r} "
                           f"(it has {', '.join(names)})")

    def set_state(self, backend: str, server: str, state: str) -> None:
        said = self.command(f"set server {backend}/{server} state {state}").strip()
        if said:
            raise HaproxyError(f"HAProxy refused `set server {backend}/{server} state {state}`: {said}")

    def check(self, backend: str, server: str) -> ServerStat:
        """Everything coordination needs, checked once: reachable, admin level, the server exists."""
        level = self.level()
        if level != "admin":
            raise HaproxyError(f"HAProxy's socket {self.path} has level {level or 'unknown'!r}, not admin: "
                               "it cannot drain servers (give the stats socket `level admin`)")
        return self.server(backend, server)


def parse_target(spec: str) -> tuple[str, str, str]:
    """`haproxy:SOCKET:BACKEND/SERVER` -> (socket, backend, server); ValueError naming the fault."""
    kind, sep, rest = spec.partition(":")
    socket_path, sep2, name = rest.rpartition(":")
    backend, sep3, server = name.partition("/")
    if kind != "haproxy" or not sep or not sep2 or not socket_path or not sep3 or not backend or not server:
        raise ValueError(f"{spec!r} is not haproxy:SOCKET:BACKEND/SERVER")
    return socket_path, backend, server
