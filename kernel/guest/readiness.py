"""When the app is ready for a ready-point snapshot (kernel/vm/ready.py): it listens on a TCP port, or a file exists.

PID 1 asks this every READY_POLL seconds while the JVM runs and the host wants such a snapshot. The
sockets are read from /proc/net/tcp and tcp6 rather than probed with a connection: a connection
would reach the app, which would see it (and might log it or count it).

A port is ready once it listens and no connection to it is under way: a connection in the snapshot
would be one no restored machine's host knows (it belonged to the saving run's QEMU), and the app
would wait on it. Clients that keep connecting (health checks, a load balancer's keep-alive
connections) get IDLE_WAIT seconds to leave the port idle; the snapshot is taken after that anyway.

Standard library only: it runs in the guest.
"""

from __future__ import annotations

import os

READY_POLL = 0.05  # seconds between two looks
IDLE_WAIT = 2.0  # seconds a listening port may stay busy before the snapshot is taken all the same
# The state column (include/net/tcp_states.h): listening, and connections that are over.
TCP_LISTEN = "0A"
TCP_OVER = ("06", "07")  # TIME_WAIT, CLOSE
TABLES = ("/proc/net/tcp", "/proc/net/tcp6")


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


class Watch:
    """The run request's ready condition: TCP `port` listens (and is idle, see the module), or `path` exists."""

    def __init__(self, port: int | None, path: str | None, tables: tuple[str, ...] = TABLES) -> None:
        self.port = port
        self.path = path
        self.tables = tables
        self.listening_since: float | None = None

    def ready(self, now: float) -> bool:
        if self.port is None:
            return self.path is not None and os.path.exists(self.path)
        states = port_states(self.port, self.tables)
        if TCP_LISTEN not in states:
            self.listening_since = None
            return False
        if self.listening_since is None:
            self.listening_since = now
        busy = any(state != TCP_LISTEN and state not in TCP_OVER for state in states)
        return not busy or now - self.listening_since >= IDLE_WAIT
