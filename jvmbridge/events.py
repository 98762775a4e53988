"""A live stream of GC and safepoint events from a JVM's unified logging, through a FIFO.

The JVM writes -Xlog lines to a named pipe we read, so no log file grows and events arrive as the
JVM prints them (a pause line is printed before the world restarts). The pipe is set up at launch
(`xlog_options`) or on a running JVM through attach (`follow`, the jcmd VM.log command).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import select
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from jvmbridge.attach import AttachedJvm, attach
from jvmbridge.errors import JvmError
from jvmbridge.gclog import GcEvent, GcLogParser
from jvmbridge.proc import is_alive, target

WHAT = "gc=info,gc+start=info,gc+phases=info,safepoint=info"
DECORATORS = "uptimenanos,level,tags"
F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20
QUIET = 0.05  # seconds without a line after which the stream checks whether it should end
# A pause line is held until the safepoint line that follows it gives its time-to-safepoint. That line
# can come well after the pause line when the JVM's log writer thread (or, in a VM, the guest) waits for
# a CPU. Until the stream has shown a safepoint line at all (it may not log them), a pause goes out
# without one after HOLD; once it has, every pause's line will come, and only HOLD_MAX bounds the wait.
HOLD = 2.0
HOLD_MAX = 30.0


def xlog_options(
    path: Path | str, what: str = WHAT, decorators: str = DECORATORS, use_async: bool = True
) -> list[str]:
    """JVM options that send GC and safepoint logging to `path` (a FIFO or a file).

    -Xlog:async keeps a slow reader from stalling the JVM at a safepoint; filecount=0 because a
    FIFO cannot be rotated.
    """
    path = str(path)
    if any(c in path for c in ':,"'):
        raise JvmError(
            f"log path {path} contains ':', ',' or '\"', which -Xlog cannot take", hint="use a plain path"
        )
    options = [f"-Xlog:{what}:file={path}:{decorators}:filecount=0"]
    return (["-Xlog:async"] if use_async else []) + options


def make_fifo(folder: Path, name: str = "gc-events.fifo", owner: tuple[int, int] | None = None) -> Path:
    """Create a FIFO (mode 0600, optionally owned by the JVM's user) and return its path."""
    path = Path(folder) / name
    os.mkfifo(path, 0o600)
    if owner is not None and os.geteuid() == 0:
        os.chown(path, *owner)
    return path


class LineEventStream:
    """GC events parsed from -Xlog lines read off one file descriptor; iterate with `events()`.

    The descriptor is a FIFO the JVM writes to (EventStream), or a socket carrying the lines of a
    JVM inside a VM. End of file ends the stream. The owner of the descriptor closes it.
    """

    def __init__(self, fd: int, hold_pauses: bool = True, starts: bool = False) -> None:
        self.parser = GcLogParser(hold_pauses, starts)
        self.lines_read = 0
        self._rfd = fd
        self._buffer = b""
        self._closed = False
        self._held_since: float | None = None

    def _release(self, final: bool = False) -> list[GcEvent]:
        """Held pauses once they have waited HOLD seconds for their safepoint line (all when `final`)."""
        if not self.parser.holding:
            self._held_since = None
            return []
        now = time.monotonic()
        if self._held_since is None:
            self._held_since = now
        if final or now - self._held_since >= (HOLD_MAX if self.parser.saw_safepoints else HOLD):
            self._held_since = None
            return self.parser.flush()
        return []

    def close(self) -> None:
        self._closed = True

    def _read_lines(self, timeout: float) -> list[str] | None:
        """Lines that arrived within `timeout`; [] when quiet; None when closed."""
        if self._closed:
            return None
        ready, _, _ = select.select([self._rfd], [], [], timeout)
        if not ready:
            return []
        try:
            chunk = os.read(self._rfd, PIPE_SIZE)
        except BlockingIOError:
            return []
        if not chunk:
            return None
        data = self._buffer + chunk
        *complete, self._buffer = data.split(b"\n")
        self.lines_read += len(complete)
        return [line.decode("utf-8", errors="replace") for line in complete]

    def poll(self, timeout: float = 0.0) -> list[GcEvent]:
        """Events completed within `timeout` seconds (a held pause goes out after HOLD without its
        safepoint line, and at once when the stream ends)."""
        lines = self._read_lines(timeout)
        if not lines:
            return self._release(final=lines is None)
        events: list[GcEvent] = []
        for line in lines:
            events.extend(self.parser.feed(line))
        return events + self._release()

    def events(
        self, timeout: float | None = None, until: Callable[[], bool] | None = None
    ) -> Iterator[GcEvent]:
        """Yield events as they come, for `timeout` seconds (None: forever) or until `until()` is true.

        `until` is checked when the pipe is quiet, so lines already written are read first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed:
            wait = QUIET if deadline is None else max(0.0, min(QUIET, deadline - time.monotonic()))
            lines = self._read_lines(wait)
            if lines:
                for line in lines:
                    yield from self.parser.feed(line)
                yield from self._release()
                continue
            ending = lines is None or (until is not None and until())
            yield from self._release(final=ending)
            if ending:
                return
            if deadline is not None and time.monotonic() >= deadline:
                yield from self._release(final=True)
                return


class EventStream(LineEventStream):
    """Read GC events from a FIFO that a JVM writes to.

    The read end is opened without blocking (so the JVM's open does not wait on us either) and a
    spare write end of our own keeps it from reporting end-of-file between writers.
    """

    def __init__(self, fifo: Path | str, hold_pauses: bool = True, starts: bool = False) -> None:
        self.fifo = Path(fifo)
        try:
            rfd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise JvmError(f"cannot open FIFO {self.fifo}: {exc.strerror}") from exc
        super().__init__(rfd, hold_pauses, starts)
        self._wfd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._rfd, F_SETPIPE_SZ, PIPE_SIZE)

    def close(self) -> None:
        if not self._closed:
            super().close()
            os.close(self._wfd)
            os.close(self._rfd)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Follow:
    """Start GC logging into a FIFO on a running JVM (attach VM.log), stop it on close."""

    def __init__(
        self, pid: int, what: str = WHAT, decorators: str = DECORATORS, timeout: float = 10.0,
        starts: bool = False,
    ) -> None:
        self.pid = pid
        tgt = target(pid)
        self.vm: AttachedJvm = attach(pid, timeout)
        folder = tgt.tmp / f"osv-java-events-{secrets.token_hex(6)}"
        folder.mkdir(mode=0o700)
        if os.geteuid() == 0 and tgt.uid != 0:
            os.chown(folder, tgt.uid, tgt.gid)
        self._folder = folder
        try:
            fifo = make_fifo(folder, owner=(tgt.uid, tgt.gid))
            self.stream = EventStream(fifo, starts=starts)
            # the path as the JVM sees it: inside its own mount namespace /tmp is its tmp
            self.jvm_path = f"/tmp/{folder.name}/{fifo.name}"
            said = self.vm.jcmd(
                f"VM.log output=file={self.jvm_path} output_options=filecount=0 what={what} decorators={decorators}"
            ).strip()
            if said:  # VM.log reports bad selections in its output, with status 0
                raise JvmError(
                    f"JVM {pid} refused the log configuration: {said}", hint="check the `what` selection"
                )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self._stopped = False

    def events(self, timeout: float | None = None) -> Iterator[GcEvent]:
        """Events until `timeout`, or until the JVM exits."""
        return self.stream.events(timeout, until=lambda: not is_alive(self.pid))

    def close(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if is_alive(self.pid):
            with contextlib.suppress(JvmError):
                self.vm.jcmd(f"VM.log output=file={self.jvm_path} what=all=off")  # removes our output
        self.stream.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> Follow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def follow(
    pid: int, what: str = WHAT, timeout: float = 10.0, decorators: str = DECORATORS, starts: bool = False
) -> Follow:
    """Stream GC events of running JVM `pid`; use as a context manager so logging stops after."""
    return Follow(pid, what=what, decorators=decorators, timeout=timeout, starts=starts)
