"""QEMU for one boot: the sockets it connects to, the process, and a graceful stop before a kill.

The host listens on one UNIX socket per virtio-serial port and QEMU connects to each at start-up, so
no byte is lost before the guest opens its ports. QEMU runs in its own session (Ctrl-C is ours to
forward) but dies with osv-java even when osv-java is SIGKILLed.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from jvmbridge.errors import BootError, OsvJavaError
from kernel.exit_wait import wait_exit
from kernel.vm import qemu

PANIC_MARKER = "Kernel panic"


class QemuProcess:
    """One QEMU process and its port sockets, in a run's work folder."""

    def __init__(self, workdir: Path) -> None:
        self.log = workdir / "qemu.log"
        self.console = workdir / "console.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.listeners: dict[str, socket.socket] = {}

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def listen(self, chardevs: list[tuple[str, str]]) -> None:
        """Listen on the machine's port sockets before QEMU starts: QEMU connects to them."""
        for name, path in chardevs:
            Path(path).unlink(missing_ok=True)  # from a boot that failed to restore
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(path)
            listener.listen(1)
            self.listeners[name] = listener

    def start(self, command: list[str]) -> float:
        """Start QEMU; returns the host's monotonic time at the start."""
        started = time.monotonic()
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True, preexec_fn=qemu.die_with_parent)
        return started

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def accept_all(self, timeout: float) -> dict[str, socket.socket]:
        """Each port's connection from QEMU; a launch failure or BootError when QEMU does not connect."""
        conns = {}
        deadline = time.monotonic() + timeout
        for name, listener in self.listeners.items():
            while True:
                if not self.running():
                    raise self.launch_failure()
                listener.settimeout(0.1)
                try:
                    conn, _ = listener.accept()
                    conn.settimeout(None)
                    conns[name] = conn
                    break
                except TimeoutError:
                    if time.monotonic() > deadline:
                        raise BootError("QEMU did not connect its ports", console_tail=self.console_tail()) from None
        return conns

    def wait(self, timeout: float) -> bool:
        """True once QEMU has exited, False if it still runs after `timeout` seconds."""
        assert self.proc is not None
        return wait_exit(self.proc, timeout)

    def stop(self, grace: float = 3.0) -> None:
        """Ask QEMU to quit (SIGTERM), then kill it if it does not."""
        if not self.running():
            return
        assert self.proc is not None
        self.proc.terminate()
        if not self.wait(grace):
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        """Stop QEMU and close the port sockets (the next boot of a machine listens afresh)."""
        self.stop(grace=1.0)
        for sock in self.listeners.values():
            sock.close()
        self.listeners.clear()

    def console_tail(self, lines: int = 30) -> str:
        try:
            text = self.console.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def panicked(self) -> bool:
        return PANIC_MARKER in self.console_tail(5)

    def launch_failure(self) -> OsvJavaError:
        log = self.log.read_text(errors="replace").strip() if self.log.exists() else ""
        last = log.splitlines()[-1] if log else "no output"
        hint = "check the QEMU command line with --verbose"
        if "hostfwd" in log or "Could not set up host forwarding" in log:
            hint = "the published host port is in use or not allowed: choose another with -p HOST:GUEST"
        return BootError(f"QEMU failed to start: {last}", hint=hint, console_tail=self.console_tail())

    def hang(self, what: str) -> BootError:
        tail = self.console_tail() or "(empty: the kernel printed nothing yet; --verbose shows all its messages)"
        return BootError(what, hint="see the console log below; rerun with --verbose for the kernel's messages",
                         console_tail=tail)
