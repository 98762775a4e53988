"""The host's side of the conversation with PID 1 on the control port, and the app's output ports.

stdout and stderr travel on their own ports; the control port carries the run request, the exit
status (with the byte counts of stdout/stderr, so we know when we have all of the app's output), the
boot timeline, the relay's requests and answers, and the policies' events and messages. Nothing is
parsed out of the app's output.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from gc_hooks.host import HostSide
from gc_hooks.seam import HookEvent
from jvmbridge.errors import AppTimeout, BootError, StopTimeout
from kernel import cache
from kernel.guest import wire
from kernel.progress import warn
from kernel.vm.qemu_process import QemuProcess
from kernel.vm.relay import Relay

SEND_TIMEOUT = 300.0  # seconds a send to the guest may take: an app's files under emulation on a busy host


class OutputPump(threading.Thread):
    """Copy one socket to one output file, counting bytes."""

    def __init__(self, sock: socket.socket, out: BinaryIO) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.out = out
        self.count = 0
        self.closed = False
        self.changed = threading.Condition()

    def run(self) -> None:
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            if chunk:
                with contextlib.suppress(BrokenPipeError, ValueError):  # our own stdout went away
                    self.out.write(chunk)
                    self.out.flush()
            with self.changed:
                self.count += len(chunk)
                self.closed = not chunk
                self.changed.notify_all()
            if not chunk:
                return

    def wait_for(self, total: int, timeout: float) -> bool:
        """True once `total` bytes have arrived; False on timeout or when the socket closed short."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while self.count < total and not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.changed.wait(left)
            return self.count >= total


class ControlChannel:
    """The host end of the control port (messages in kernel.guest.wire's format)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        # Sends get a socket object of their own: `receive` polls with short timeouts on `sock`, and a
        # send under such a timeout fails as soon as the guest is slow to drain a large payload
        self.out = socket.socket(fileno=os.dup(sock.fileno()))
        self.out.settimeout(SEND_TIMEOUT)
        weakref.finalize(self, self.out.close)
        self.buffer = b""
        self.lock = threading.Lock()

    def send(self, op: str, **fields: object) -> None:
        with self.lock:
            self.out.sendall(wire.encode(op, **fields))

    def send_with_payload(self, op: str, payload: bytes, **fields: object) -> None:
        """A message followed by raw bytes (wire.PAYLOAD), in one piece: nothing may come in between."""
        with self.lock:
            self.out.sendall(wire.encode(op, **fields, **{wire.PAYLOAD: len(payload)}) + payload)

    def receive(self, timeout: float) -> tuple[wire.Message, float] | None:
        """One message and the host time it arrived, or None on timeout; raises EOFError when closed."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(min(left, 0.2))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                raise EOFError
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return wire.decode(line), time.monotonic()


def stdin_pump(sock: socket.socket, control: ControlChannel) -> None:
    """Copy our stdin to the guest, then tell it how many bytes there were on the control port.

    The socket stays open: QEMU drops unread data when its peer hangs up, so end of file travels as
    a count instead, and the guest closes the app's stdin once it has received that many bytes.
    """
    total = 0
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):
        fd = -1
    try:
        while fd >= 0:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            sock.sendall(chunk)
            total += len(chunk)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        control.send("stdin-eof", bytes=total)


def seconds(message: wire.Message, key: str) -> float:
    """A number the guest must have sent; a clear error when it did not."""
    value = wire.number(message, key)
    if value is None:
        raise BootError(f"the guest's {wire.first(message, 'op')} message lacks {key}",
                        hint="the image was built by another osv-java version: rebuild it")
    return value


def keep_crash_log(exited: wire.Message) -> None:
    """Write the guest JVM's hs_err file where the JVM said it is: the guest's working folder is the
    host's, so the path in its message on stderr is right on the host too (an existing file stays)."""
    path, data = wire.first(exited, "crash_log"), wire.first(exited, "crash_log_data")
    if not path or data is None:
        return
    target = Path(path)
    if not target.parent.is_dir() or target.exists():
        target = Path(tempfile.gettempdir()) / target.name
    try:
        cache.write_file_atomic(target, base64.b64decode(data))
    except OSError as exc:
        warn(f"cannot keep the JVM's error report at {target}: {exc}")
        return
    if str(target) != path:
        print(f"osv-java: the JVM's error report is at {target}", file=sys.stderr)


class Conversation:
    """Waits for PID 1's messages one by one; hands on what arrives meanwhile (the relay's answers,
    the policies' events and messages) and turns a dead, panicked or silent guest into an error."""

    def __init__(self, qemu: QemuProcess, control: ControlChannel, relay: Relay | None, host: HostSide) -> None:
        self.qemu = qemu
        self.control = control
        self.relay = relay
        self.host = host
        self.interrupts = 0
        self.started = False  # PID 1 has started the JVM (and relays signals to it)
        self.pending_signals: list[int] = []  # arrived before that (or during a save): sent once it may
        # a ready snapshot is being saved: a signal sent now would be in the guest's queue when the
        # machine is saved, and every restore of that snapshot would deliver it again
        self.holding_signals = False
        self.signalled = False  # the app was sent (or is due) a signal: it may be on its way out
        self.stop_deadline: float | None = None  # SIGTERM came: the VM is stopped at this time
        self.stop_timeout = 10.0
        self.helpers_failed: Callable[[], str | None] = lambda: None  # the VM's helper processes (virtiofsd)
        # PID 1's "app-ready" (a ready-point snapshot is wanted: kernel.vm.ready) and when it arrived
        self.on_app_ready: Callable[[wire.Message, float], None] | None = None

    def signal_app(self, signum: int) -> None:
        """Deliver `signum` to the app's JVM (its process group), now or as soon as it runs."""
        self.signalled = True
        if not self.started or self.holding_signals:
            self.pending_signals.append(signum)
            return
        with contextlib.suppress(OSError):
            self.control.send("signal", signal=signum)

    def app_started(self) -> None:
        self.started = True
        self._send_pending()

    def hold_signals(self) -> None:
        """Keep signals for the app back (a ready snapshot is being saved) until release_signals."""
        self.holding_signals = True

    def release_signals(self) -> None:
        self.holding_signals = False
        self._send_pending()

    def _send_pending(self) -> None:
        pending, self.pending_signals = self.pending_signals, []
        for signum in pending:
            self.signal_app(signum)

    def terminate(self) -> None:
        """SIGTERM (as `docker stop`): the app gets SIGTERM and --stop-timeout seconds to end (its
        shutdown hooks run); then the VM is stopped. A second SIGTERM changes nothing."""
        if self.stop_deadline is not None:
            return
        self.stop_deadline = time.monotonic() + self.stop_timeout
        self.signal_app(int(signal.SIGTERM))

    def interrupt(self) -> None:
        """Ctrl-C: the first goes to the app as SIGINT (it can clean up); the second stops the VM."""
        self.interrupts += 1
        if self.interrupts == 1:
            self.signal_app(int(signal.SIGINT))
            return
        self.qemu.stop(grace=1.0)

    def wait_for(self, op: str, timeout: float | None, what: str, app_timeout: bool = False
                 ) -> tuple[wire.Message, float]:
        """The next message `op` and the host time it arrived; AppTimeout after `timeout` when it is
        the app's --timeout that runs out (`app_timeout`), else a BootError with the console."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.interrupts > 1 or (self.interrupts and not self.qemu.running()):
                raise KeyboardInterrupt
            if self.stop_deadline is not None and time.monotonic() > self.stop_deadline:
                self.qemu.stop(grace=1.0)
                raise StopTimeout(self.stop_timeout)
            try:
                got = self.control.receive(timeout=0.25)
            except EOFError:
                got = None
                if self.qemu.running():
                    time.sleep(0.05)
            if got is not None:
                message, at = got
                if wire.first(message, "op") == op:
                    return message, at
                if wire.first(message, "op") == "app-ready" and self.on_app_ready is not None:
                    self.on_app_ready(message, at)
                    continue
                self._hand_on(message)
                continue
            if not self.qemu.running():
                raise self.qemu.hang(f"the VM stopped while waiting for {what} "
                                     f"(QEMU exit status {self.qemu.returncode})")
            failure = self.helpers_failed()
            if failure is not None:
                self.qemu.stop(grace=1.0)
                raise BootError(failure, hint="see whether the folder is still there and readable; run again")
            if self.qemu.panicked():
                raise self.qemu.hang(f"the kernel panicked while waiting for {what}")
            if deadline is not None and time.monotonic() > deadline:
                if app_timeout:
                    assert timeout is not None
                    raise AppTimeout(timeout)
                raise self.qemu.hang(f"timed out after {timeout:g}s waiting for {what}")

    def _hand_on(self, message: wire.Message) -> None:
        op = wire.first(message, "op")
        if op == "error":
            raise BootError(f"kernel services failed: {wire.first(message, 'message')}",
                            console_tail=self.qemu.console_tail())
        if "id" in message:  # the guest answering a relayed request
            if self.relay is not None:
                self.relay.deliver(message)
        elif op == "hook-event":  # a policy's supervisor in the guest (gc_hooks.seam.Channel)
            self.host.emit(HookEvent.from_fields({k: v[0] for k, v in message.items() if v}))
        elif op == "hook-message":
            self.host.send(wire.first(message, "policy") or "", wire.first(message, "kind") or "",
                           wire.first(message, "data") or "")
