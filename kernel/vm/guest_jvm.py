"""The JVM inside a named VM, from the host: a py4j gateway into it, and its live GC events.

Both go through the run's telemetry socket (kernel.vm.relay), which relays to PID 1 in the guest.
The gateway listens on the guest's address and the run forwards a loopback port of the host to it
for as long as the session socket stays open; the events are the guest JVM's -Xlog lines, parsed
here by the same parser as for a host JVM.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import Iterator

from jvmbridge import live
from jvmbridge.errors import JvmError
from jvmbridge.events import DECORATORS, WHAT, LineEventStream
from jvmbridge.gclog import GcEvent
from kernel.guest import network
from kernel.vm import registry

GATEWAY_HINT = "is the app's JVM still running? (see its stderr for the agent's exception)"
NO_NETWORK_HINT = (
    "the shell reaches the JVM over the VM's network: use a kernel whose virtio_net driver loads "
    "(rerun the VM with --verbose to see why eth0 did not come up)"
)


class VmGateway(live.Connection):
    """py4j into the JVM of VM `name`; closing it stops the gateway and the port forward."""

    def __init__(self, name: str, timeout: float = 180.0) -> None:
        record = registry.lookup(name)
        assert record is not None
        jar = live.agent_jar()
        data = jar.read_bytes()
        token = secrets.token_urlsafe(24)
        try:
            self._session, said = registry.open_session(
                record, f"gateway {token} {jar.name} {len(data)}", data, timeout, hint=GATEWAY_HINT
            )
        except JvmError as exc:
            if "no network" in exc.message:
                exc.hint = NO_NETWORK_HINT
            raise
        try:
            host_port, guest_port = (int(word) for word in said.split())
            self.where = f"the JVM in VM {name}"
            self.route = f"py4j on 127.0.0.1:{host_port}, forwarded to {network.GUEST_ADDRESS}:{guest_port} in the VM"
            self._connect(host_port, token)
        except BaseException:
            self._session.close()
            raise

    def _release(self) -> None:
        # Closing the session removes the forward and makes PID 1 stop the gateway, should our own
        # shutdown call (Connection.close) not have reached it.
        with contextlib.suppress(OSError):
            self._session.close()


def shell(name: str, timeout: float = 180.0) -> None:
    """`osv-java shell --vm NAME`: a prompt on the JVM in that VM; the gateway stops when it exits."""
    with VmGateway(name, timeout) as gw:
        live.interact(gw)


class VmEvents:
    """GC and safepoint events of the JVM in VM `name`, as they happen; close to stop the logging."""

    def __init__(self, name: str, what: str = WHAT, decorators: str = DECORATORS, timeout: float = 30.0,
                 starts: bool = False) -> None:
        record = registry.lookup(name)
        assert record is not None
        self._sock: socket.socket
        self._sock, _ = registry.open_session(record, f"events {what} {decorators}", timeout=timeout)
        self._sock.settimeout(None)
        self.stream = LineEventStream(self._sock.fileno(), starts=starts)

    def events(self, timeout: float | None = None) -> Iterator[GcEvent]:
        """Events for `timeout` seconds (None: until the VM's JVM exits and the run ends)."""
        return self.stream.events(timeout)

    def close(self) -> None:
        self.stream.close()
        self._sock.close()

    def __enter__(self) -> VmEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
