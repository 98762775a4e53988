"""The guest's end of the control channel: messages in the wire format, both ways, on a virtio port.

PID 1 talks to the host through it; the services and the policies' supervisors answer through it too.
Standard library only, and cheap to import (PID 1 opens it early in the boot).
"""

from __future__ import annotations

import _thread
import os
import select
import time

from kernel.guest import wire


def now() -> float:
    """Seconds since the kernel started (CLOCK_MONOTONIC, the clock -Xlog's timenanos uses too)."""
    return time.monotonic()


class Control:
    """Messages in the wire format, both ways on the control port."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        self.buffer = b""
        self.queue: list[wire.Message] = []
        self.payload_next = False  # the buffer's next bytes are a payload, not lines
        self.lock = _thread.allocate_lock()  # the policies' supervisors send from their own thread

    def send(self, op: str, **fields: object) -> None:
        data = wire.encode(op, **fields)
        with self.lock:
            write_all(self.fd, data)

    def poll(self) -> list[wire.Message]:
        """Read what is available now (call when select says the port is readable); return all queued."""
        chunk = os.read(self.fd, 65536)
        if not chunk:
            time.sleep(0.01)  # the host is not connected: nothing to read yet
        self.buffer += chunk
        return self._split()

    def _split(self) -> list[wire.Message]:
        """Queue the whole lines in the buffer, up to a message with a payload (its bytes follow it)."""
        while b"\n" in self.buffer and not self.payload_next:
            line, self.buffer = self.buffer.split(b"\n", 1)
            if line.strip():
                message = wire.decode(line)
                self.queue.append(message)
                self.payload_next = wire.PAYLOAD in message
        messages, self.queue = self.queue, []
        return messages

    def behind_payload(self) -> list[wire.Message]:
        """The messages whose lines came behind a payload just read (read_payload), already here."""
        return self._split()

    def read_payload(self, size: int) -> bytearray:
        """The `size` raw bytes that follow a message with a payload field (wire.PAYLOAD).

        Read into one buffer: the port gives at most a page per read, and os.read(fd, n) would
        allocate (and, past malloc's mmap threshold, map and unmap) n bytes for each page."""
        payload = bytearray(size)
        got = len(self.buffer[:size])
        payload[:got] = self.buffer[:size]
        self.buffer = self.buffer[size:]
        view = memoryview(payload)
        while got < size:
            n = os.readv(self.fd, [view[got:]])
            if not n:
                raise OSError(f"the host went away {size - got} bytes before the end of a payload")
            got += n
        self.payload_next = False
        return payload

    def receive(self, timeout: float) -> wire.Message:
        """Wait for one message; op "timeout" if none comes in time.

        Requests about the JVM (they carry an id) are served only while it runs, in pid1.AppRelay: here
        they are answered at once, so they are never taken for the message waited for.
        """
        deadline = now() + timeout
        while True:
            if not self.queue and not self.payload_next:
                self.queue = self._split()  # lines that came after a payload
            while not self.queue:
                left = deadline - now()
                if left <= 0:
                    return {"op": ["timeout"]}
                if select.select([self.fd], [], [], left)[0]:
                    self.queue = self.poll()
            message = self.queue.pop(0)
            if "id" not in message:
                return message
            self.send("reply", id=wire.first(message, "id"), error="the app's JVM is not running")


    def receive_op(self, op: str, timeout: float) -> wire.Message:
        """Wait for a message `op`, dropping others (a late stdin-eof or signal once the JVM is gone)."""
        deadline = now() + timeout
        while True:
            message = self.receive(max(0.0, deadline - now()))
            if wire.first(message, "op") in (op, "timeout"):
                return message


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except InterruptedError:
            continue
