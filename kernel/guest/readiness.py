"""When the app is ready for a ready-point snapshot (kernel/vm/ready.py): it listens on a TCP port, or a file exists.

PID 1 asks this every READY_POLL seconds while the JVM runs and the host wants such a snapshot. The
sockets are read from /proc/net/tcp and tcp6 rather than probed with a connection: a connection
would reach the app, which would see it (and might log it or count it).

Standard library only: it runs in the guest.
"""

from __future__ import annotations

import os

READY_POLL = 0.05  # seconds between two looks
TCP_LISTEN = "0A"  # the state column of a listening socket (include/net/tcp_states.h: TCP_LISTEN = 10)
TABLES = ("/proc/net/tcp", "/proc/net/tcp6")


def listening_ports(table: str) -> set[int]:
    """The ports of the listening sockets in one /proc/net/tcp-style table."""
    ports = set()
    for line in table.splitlines()[1:]:  # the first line names the columns
        columns = line.split()
        if len(columns) > 3 and columns[3] == TCP_LISTEN:
            _, _, port = columns[1].rpartition(":")  # local address, ADDRESS:PORT in hex
            ports.add(int(port, 16))
    return ports


def listens(port: int, tables: tuple[str, ...] = TABLES) -> bool:
    """Whether a socket of the guest listens on `port`, on any address, IPv4 or IPv6."""
    for path in tables:
        try:
            with open(path) as f:
                if port in listening_ports(f.read()):
                    return True
        except OSError:  # no IPv6 in this kernel, say
            continue
    return False


def is_ready(port: int | None, path: str | None) -> bool:
    """The ready condition of the run request: the port listens, or the file exists."""
    if port is not None:
        return listens(port)
    return path is not None and os.path.exists(path)
