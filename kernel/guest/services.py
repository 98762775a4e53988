"""What PID 1 does for the host while the JVM runs: counters, diagnostic commands, a py4j gateway, a
live GC event stream (`osv-java jvm ... --vm NAME`, `osv-java shell --vm NAME`).

Every request carries an `id` chosen by the host and every answer echoes it, so answers and stream
lines of several requests can share the one control port. Answers are op=reply (with `error` when
the request failed); stream lines are op=log. Served from PID 1's relay loop, which is single
threaded: handlers do their work at once and a stream's FIFO is added to the loop's `watched` fds.
Imported only once the JVM runs (stdlib only, and cheap: `jvmbridge.attach` when first needed).
"""

from __future__ import annotations

import _socket
import binascii
import fcntl
import os

from kernel.guest import network, wire

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from jvmbridge.attach import AttachedJvm
    from jvmbridge.smaps import HeapInfo
    from kernel.guest.control import Control

    Watched = dict[int, Callable[[], None]]

ATTACH_TIMEOUT = 20.0
LOAD_TIMEOUT = 90.0  # loading py4j's classes into the JVM, under software emulation
AGENTS = "/tmp/.osv-java-agents"
F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20  # room for a burst of log lines while the loop is busy with something else


class ServiceError(Exception):
    """A request that cannot be served; its message goes back to the host as the answer."""


def handle(control: Control, pid: int, message: wire.Message, watched: Watched) -> None:
    """Serve one host request for JVM `pid`; any failure is the answer, never PID 1's end."""
    op = wire.first(message, "op") or ""
    ident = wire.first(message, "id")
    handler = HANDLERS.get(op)
    try:
        if handler is None:
            raise ServiceError(f"unknown request {op!r}")
        handler(control, pid, ident, message, watched)
    except Exception as exc:  # noqa: BLE001 - whatever failed is what the host must hear
        reason = str(exc) if isinstance(exc, ServiceError) else f"{type(exc).__name__}: {exc}"
        control.send("reply", id=ident, error=reason)


def _attach(pid: int, timeout: float = ATTACH_TIMEOUT) -> AttachedJvm:
    from jvmbridge.attach import attach  # not before a request needs it: PID 1 imports cheaply

    return attach(pid, timeout)


def hsperf(control: Control, pid: int, ident: str | None, message: wire.Message, watched: Watched) -> None:
    """The JVM's hsperfdata counters (what jstat reads)."""
    try:
        with open(f"/tmp/hsperfdata_root/{pid}", "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ServiceError(f"no hsperfdata for JVM {pid}: {exc.strerror}") from exc
    control.send("reply", id=ident, data=binascii.b2a_base64(data, newline=False).decode())


def jcmd(control: Control, pid: int, ident: str | None, message: wire.Message, watched: Watched) -> None:
    """A diagnostic command, through the attach mechanism from inside the guest."""
    output = _attach(pid).jcmd(wire.first(message, "line") or "help")
    control.send("reply", id=ident, data=output)


_heap_ranges: dict[int, HeapInfo] = {}


def hugepages(control: Control, pid: int, ident: str | None, message: wire.Message, watched: Watched) -> None:
    """The share of the JVM's heap on huge pages, from the guest's /proc/PID/smaps (JSON)."""
    import json

    from jvmbridge import smaps

    known = _heap_ranges.get(pid)
    pages = smaps.heap_pages(pid, known, ask=known is None)
    if pages.source == "heap_info":  # the reserved range never moves: ask the JVM once
        _heap_ranges[pid] = smaps.HeapInfo(pages.start, pages.end, pages.region_size)
    control.send("reply", id=ident, data=json.dumps({"rss": pages.rss, "huge": pages.huge, "kind": pages.kind,
                                                     "source": pages.source, "found": bool(pages.mappings)}))


# -- the py4j gateway ------------------------------------------------------------------------------

_gateways: dict[str, tuple[str, int, str]] = {}  # id -> (folder, port, token)


def _check_network() -> None:
    """The host reaches the gateway through a forward to the guest's address: it must be up."""
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    try:
        sock.bind((network.GUEST_ADDRESS, 0))
    except OSError as exc:
        raise ServiceError(
            f"the VM has no network ({network.GUEST_ADDRESS} is not configured: {exc.strerror})"
        ) from exc
    finally:
        sock.close()


def _write_once(path: str, data: bytes) -> None:
    if os.path.exists(path):
        return  # the same content: the name holds its digest
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    staged = path + ".tmp"
    with open(staged, "wb") as f:
        f.write(data)
    os.replace(staged, path)


def gateway(control: Control, pid: int, ident: str | None, message: wire.Message, watched: Watched) -> None:
    """Load the host's gateway agent jar into the JVM, listening on the guest's address."""
    token = wire.first(message, "token") or ""
    name = os.path.basename(wire.first(message, "name") or "")
    if len(token) < 16 or not name.endswith(".jar") or ident is None:
        raise ServiceError("a gateway request needs id, token (16+ characters) and name=*.jar")
    _check_network()
    jar = f"{AGENTS}/{name}"
    _write_once(jar, binascii.a2b_base64(wire.first(message, "jar") or ""))
    folder = f"/tmp/.osv-java-shell-{ident}"
    os.mkdir(folder, 0o700)
    try:
        options = f"token={token},portfile={folder}/port,address={network.GUEST_ADDRESS}"
        _attach(pid, LOAD_TIMEOUT).load(jar, options)
        with open(f"{folder}/port") as f:  # written before the agent's load returns
            port = int(f.read().strip())
    except BaseException:
        _remove(folder)
        raise
    _gateways[ident] = (folder, port, token)
    control.send("reply", id=ident, port=port)


def gateway_stop(control: Control, pid: int, ident: str | None, message: wire.Message, watched: Watched) -> None:
    """Stop the gateway if the shell did not (it may have been killed); agents cannot be unloaded."""
    folder, port, token = _gateways.pop(ident or "", ("", 0, ""))
    if port:
        py4j_shutdown(port, token)
        _remove(folder)
    control.send("reply", id=ident)


def py4j_shutdown(port: int, token: str, address: str = network.GUEST_ADDRESS) -> None:
    """Call the agent's shutdown() in py4j's text protocol: authenticate, then call on the entry point."""
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    sock.settimeout(5.0)
    try:
        sock.connect((address, port))
        for command in (f"A\n{token}\n", "c\nt\nshutdown\ne\n"):
            sock.sendall(command.encode())
            said = b""
            while not said.endswith(b"\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    return
                said += chunk
    except OSError:
        pass  # nothing listens any more: the shell stopped it already
    finally:
        sock.close()


def _remove(folder: str) -> None:
    """Remove a folder of ours with its files (shutil would cost imports in PID 1)."""
    try:
        for name in os.listdir(folder):
            os.unlink(f"{folder}/{name}")
        os.rmdir(folder)
    except OSError:
        pass


# -- the GC event stream ---------------------------------------------------------------------------

_logs: dict[str, _Log] = {}


class _Log:
    """-Xlog output of the JVM into a FIFO we read; its lines go to the host as they come."""

    def __init__(self, control: Control, pid: int, ident: str, what: str, decorators: str) -> None:
        self.control = control
        self.pid = pid
        self.ident = ident
        self.folder = f"/tmp/.osv-java-events-{ident}"
        self.fifo = f"{self.folder}/gc.fifo"
        self.buffer = b""
        os.mkdir(self.folder, 0o700)
        os.mkfifo(self.fifo, 0o600)
        # Our read end first, so the JVM's open does not block; a spare write end of our own keeps
        # the FIFO from reporting end of file should the JVM close and reopen it.
        self.rfd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self.wfd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            fcntl.fcntl(self.rfd, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass
        try:
            said = _attach(pid).jcmd(
                f"VM.log output=file={self.fifo} output_options=filecount=0 what={what} decorators={decorators}"
            ).strip()
            if said:  # VM.log reports a bad selection in its output, with status 0
                raise ServiceError(f"the JVM refused the log configuration: {said}")
        except BaseException:
            self.close()
            raise

    def readable(self) -> None:
        try:
            chunk = os.read(self.rfd, PIPE_SIZE)
        except BlockingIOError:
            return
        *lines, self.buffer = (self.buffer + chunk).split(b"\n")
        if lines:
            self.control.send("log", id=self.ident, line=[x.decode("utf-8", "replace") for x in lines])

    def stop(self) -> None:
        """Remove our output from the JVM's logging (its own -Xlog outputs stay), then the FIFO."""
        try:
            _attach(self.pid).jcmd(f"VM.log output=file={self.fifo} what=all=off")
        except Exception:  # noqa: BLE001 - the JVM may be gone; the FIFO goes anyway
            pass
        self.close()

    def close(self) -> None:
        for fd in (self.rfd, self.wfd):
            try:
                os.close(fd)
            except OSError:
                pass
        _remove(self.folder)


def events(control: Control, pid: int, ident: str | None, message: wire.Message, watched: Watched) -> None:
    """Start streaming the JVM's GC and safepoint log lines (what/decorators as the host parses them)."""
    what = wire.first(message, "what") or ""
    decorators = wire.first(message, "decorators") or ""
    if ident is None or not what or not decorators:
        raise ServiceError("an events request needs id, what and decorators")
    log = _Log(control, pid, ident, what, decorators)
    _logs[ident] = log
    watched[log.rfd] = log.readable
    control.send("reply", id=ident)


def events_stop(control: Control, pid: int, ident: str | None, message: wire.Message, watched: Watched) -> None:
    log = _logs.pop(ident or "", None)
    if log is not None:
        watched.pop(log.rfd, None)
        log.stop()
    control.send("reply", id=ident)


HANDLERS: dict[str, Callable[[Control, int, str | None, wire.Message, Watched], None]] = {
    "hsperf": hsperf,
    "jcmd": jcmd,
    "hugepages": hugepages,
    "gateway": gateway,
    "gateway-stop": gateway_stop,
    "events": events,
    "events-stop": events_stop,
}
