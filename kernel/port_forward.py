"""-p for --target process: each host port forwarded to the JVM's port on loopback, a thread per
connection, until the run ends (a VM run has QEMU's own forwards instead)."""

from __future__ import annotations

import contextlib
import socket
import threading


def publish(ports: list[tuple[str, int, int]], stop: threading.Event) -> list[socket.socket]:
    """Listen on each (address, host port, guest port) and forward to the guest port, until `stop`."""
    listeners = []
    for address, host_port, guest_port in ports:
        if host_port == guest_port and address in ("0.0.0.0", "127.0.0.1"):
            continue  # the JVM listens on the host already
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((address, host_port))
        listener.listen(64)
        listeners.append(listener)
        threading.Thread(target=_forward, args=(listener, guest_port, stop), daemon=True).start()
    return listeners


def _forward(listener: socket.socket, guest_port: int, stop: threading.Event) -> None:
    """Accept on the host port and splice each connection to the JVM's port on loopback."""
    listener.settimeout(0.2)
    while not stop.is_set():
        try:
            client, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        threading.Thread(target=_splice_pair, args=(client, guest_port), daemon=True).start()


def _splice_pair(client: socket.socket, port: int) -> None:
    try:
        upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)

    def pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while chunk := a.recv(65536):
                b.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                b.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
    t.start()
    pipe(client, upstream)
    t.join()
    client.close()
    upstream.close()
