"""HotSpot dynamic attach in pure Python: what jcmd does, without starting a JVM to do it.

A jcmd process costs a JVM start (~0.3 s and ~40 MB); speaking the attach protocol over the UNIX
socket costs a connect. Works across mount/pid namespaces (through /proc/PID/root and NSpid) and for
root attaching to another user's JVM.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from jvmbridge import hsperf
from jvmbridge.errors import JvmError
from jvmbridge.proc import ProcessInfo, send_signal, target

DEFAULT_TIMEOUT = 10.0
ATTACH_DISABLED_HINT = "the JVM was started with -XX:+DisableAttachMechanism; restart it without that flag"


class AttachDisabledError(JvmError):
    """The JVM turned its attach listener off (-XX:+DisableAttachMechanism or -Xrs)."""


class NotAJvmError(JvmError):
    """The process exists but is not a HotSpot JVM."""


@dataclass(frozen=True)
class Reply:
    status: int
    output: str


def _socket_path(tgt: ProcessInfo) -> Path:
    return tgt.tmp / f".java_pid{tgt.nspid}"


def _attach_disabled(tgt: ProcessInfo) -> bool:
    """What the JVM itself says (sun.rt.jvmCapabilities), else its command line."""
    said = hsperf.attachable(tgt.pid)
    if said is not None:
        return not said
    args = tgt.cmdline()
    return "-XX:+DisableAttachMechanism" in args


def _check_jvm(tgt: ProcessInfo) -> None:
    mapped = tgt.maps_jvm()
    if mapped is None:  # maps unreadable: judge by the program name
        args = tgt.cmdline()
        mapped = bool(args) and "java" in os.path.basename(args[0])
    if not mapped and hsperf.find_file(tgt) is None:
        raise NotAJvmError(
            f"process {tgt.pid} ({tgt.name}) is not a JVM: no libjvm.so mapped, no hsperfdata",
            hint="list running JVMs with `osv-java jvm list`",
        )


def _connect(path: Path, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except BaseException:
        sock.close()
        raise
    return sock


def _make_attach_file(tgt: ProcessInfo) -> Path:
    """Create .attach_pid<nspid> where the JVM looks (it tries its cwd, then its /tmp), owned like the
    JVM: in its /tmp first, so a trigger left by an attach cut short never litters the app's folder."""
    name = f".attach_pid{tgt.nspid}"
    last: OSError | None = None
    for folder in (tgt.tmp, tgt.cwd):
        path = folder / name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        except OSError as exc:
            last = exc
            continue
        try:
            if os.geteuid() == 0 and tgt.uid != 0:
                # a JVM in a user namespace sees host root as nobody; make the file its own
                with contextlib.suppress(OSError):
                    os.fchown(fd, tgt.uid, tgt.gid)
        finally:
            os.close(fd)
        return path
    raise JvmError(
        f"cannot create the attach trigger file for JVM {tgt.pid}: {last.strerror if last else '?'}",
        hint="attach as the JVM's user or as root",
    )


def _remove_if_stale(path: Path, tgt: ProcessInfo) -> None:
    """Remove a socket made before the target started: a dead JVM's of the same pid. The target's
    listener renames its own socket onto that path, which in a sticky /tmp fails when the old one is
    another user's (a root JVM's, found by a JVM of another user): it would never listen."""
    started = tgt.started_at()
    with contextlib.suppress(OSError):
        if started is not None and path.lstat().st_mtime < started - 1:
            path.unlink()


def ensure_listener(tgt: ProcessInfo, timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Start the JVM's attach listener if needed (trigger file + SIGQUIT); return its socket path."""
    path = _socket_path(tgt)
    if path.exists():
        try:
            _connect(path, timeout).close()
            return path
        except OSError:
            _remove_if_stale(path, tgt)  # a previous JVM's with the same pid: start a new listener
    _check_jvm(tgt)
    if _attach_disabled(tgt):
        raise AttachDisabledError(f"JVM {tgt.pid} does not accept attach", hint=ATTACH_DISABLED_HINT)
    deadline = time.monotonic() + timeout
    # SIGQUIT kills a process that does not catch it: wait until the JVM has installed its handler
    while not tgt.catches(signal.SIGQUIT):
        if not tgt.alive():
            raise JvmError(f"JVM {tgt.pid} exited while attaching")
        if time.monotonic() > deadline:
            raise AttachDisabledError(
                f"JVM {tgt.pid} does not handle SIGQUIT, so it cannot be asked to start its attach listener",
                hint="it was probably started with -Xrs; restart it without -Xrs (or with -XX:+StartAttachListener)",
            )
        time.sleep(0.01)
    trigger = _make_attach_file(tgt)
    try:
        send_signal(tgt.pid, signal.SIGQUIT)
        delay = 0.002
        while True:
            if path.exists():
                try:
                    _connect(path, timeout).close()
                    return path
                except OSError:
                    pass
            if not tgt.alive():
                raise JvmError(f"JVM {tgt.pid} exited while attaching")
            if time.monotonic() > deadline:
                raise JvmError(
                    f"JVM {tgt.pid} did not open its attach socket {path} within {timeout:g} s",
                    hint="the JVM may be hung, started with -XX:+DisableAttachMechanism, or still starting",
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
    finally:
        with contextlib.suppress(OSError):
            trigger.unlink()


def _v1_request(cmd: str, args: list[str]) -> bytes:
    if len(args) > 3:
        raise JvmError(f"attach protocol 1 takes at most 3 arguments, '{cmd}' got {len(args)}")
    padded = args + [""] * (3 - len(args))
    return b"".join(part.encode() + b"\0" for part in ["1", cmd, *padded])


def _v2_request(cmd: str, args: list[str], options: dict[str, str]) -> bytes:
    head = cmd + "".join(f" {k}={v}" for k, v in options.items())
    body = b"".join(part.encode() + b"\0" for part in [head, *args])
    return b"2\0" + str(len(body)).encode() + b"\0" + body


class AttachedJvm:
    """A connection-per-request client of one JVM's attach listener."""

    def __init__(self, pid: int, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.target = target(pid)
        self.pid = pid
        self.timeout = timeout
        self.socket_path = ensure_listener(self.target, timeout)
        self._version: tuple[int, frozenset[str]] | None = None

    # -- protocol ------------------------------------------------------------------------------

    def _exchange(self, request: bytes, what: str) -> Reply:
        try:
            sock = _connect(self.socket_path, self.timeout)
        except FileNotFoundError as exc:
            if not self.target.alive():
                raise JvmError(f"JVM {self.pid} has exited") from exc
            raise JvmError(f"JVM {self.pid} removed its attach socket {self.socket_path}") from exc
        except OSError as exc:
            raise JvmError(f"cannot connect to JVM {self.pid} at {self.socket_path}: {exc}") from exc
        chunks: list[bytes] = []
        try:
            with sock:
                sock.sendall(request)
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
        except TimeoutError as exc:
            raise JvmError(
                f"JVM {self.pid} did not finish '{what}' within {self.timeout:g} s",
                hint="raise the timeout, or check that the JVM is not hung",
            ) from exc
        except OSError as exc:
            if exc.errno in (errno.ECONNRESET, errno.EPIPE):
                raise JvmError(f"JVM {self.pid} closed the connection during '{what}'") from exc
            raise JvmError(f"attach to JVM {self.pid} failed during '{what}': {exc}") from exc
        data = b"".join(chunks)
        head, _, rest = data.partition(b"\n")
        try:
            status = int(head.strip() or b"-1")
        except ValueError as exc:
            raise JvmError(f"JVM {self.pid} sent a reply that is not attach protocol: {data[:60]!r}") from exc
        return Reply(status, rest.decode("utf-8", errors="replace"))

    @property
    def version(self) -> int:
        """Attach protocol version the JVM speaks: 1 (JDK ≤ 23) or 2 (JDK 24+)."""
        return self._probe_version()[0]

    @property
    def options(self) -> frozenset[str]:
        return self._probe_version()[1]

    def _probe_version(self) -> tuple[int, frozenset[str]]:
        if self._version is None:
            reply = self._exchange(_v1_request("getversion", ["options"]), "getversion")
            if reply.status != 0:
                self._version = (1, frozenset())
            else:
                words = reply.output.split()
                ver = int(words[0]) if words and words[0].isdigit() else 1
                self._version = (ver, frozenset(words[1:]))
        return self._version

    def execute(self, cmd: str, *args: str, check: bool = True) -> Reply:
        """Send one attach operation; JvmError when the JVM answers with a non-zero status."""
        if self.version >= 2:
            opts = {"streaming": "1"} if "streaming" in self.options else {}
            request = _v2_request(cmd, list(args), opts)
        else:
            request = _v1_request(cmd, list(args))
        reply = self._exchange(request, cmd)
        if check and reply.status != 0:
            detail = reply.output.strip().splitlines()
            first = detail[0] if detail else f"status {reply.status}"
            hint = "\n".join(detail[1:3]) or None
            if "Unknown diagnostic command" in first:
                hint = f"list the JVM's commands with `osv-java jvm cmd {self.pid} help`"
            elif "cannot be changed" in first:
                hint = (
                    "only manageable flags change at runtime (`jvm cmd PID VM.flags -all | grep manageable`)"
                )
            raise JvmError(f"JVM {self.pid} failed '{' '.join([cmd, *args]).strip()}': {first}", hint=hint)
        return reply

    # -- operations ----------------------------------------------------------------------------

    def jcmd(self, line: str) -> str:
        """Run a diagnostic command line (as `jcmd PID LINE`) and return its output."""
        reply = self.execute("jcmd", line.strip())
        return reply.output

    def setflag(self, name: str, value: str | int | bool) -> str:
        if isinstance(value, bool):
            value = "1" if value else "0"
        return self.execute("setflag", name, str(value)).output

    def printflag(self, name: str) -> str:
        """The flag as `-XX:Name=value`."""
        return self.execute("printflag", name).output.strip()

    def properties(self) -> dict[str, str]:
        """The target's system properties."""
        return parse_properties(self.execute("properties").output)

    def agent_properties(self) -> dict[str, str]:
        return parse_properties(self.execute("agentProperties").output)

    def threaddump(self, locks: bool = False) -> str:
        return self.execute("threaddump", "-l" if locks else "").output

    def load(self, agent: str | Path, options: str | None = None, kind: str = "jar") -> int:
        """Load an agent: kind "jar" (a java agent jar), "path" (a native library) or "lib" (by name).

        Returns the agent's return code; JvmError when it is not 0.
        """
        if kind == "jar":
            arg = str(agent) + (f"={options}" if options else "")
            lib, absolute, opts = "instrument", "false", arg
        elif kind == "path":
            lib, absolute, opts = str(agent), "true", options or ""
        elif kind == "lib":
            lib, absolute, opts = str(agent), "false", options or ""
        else:
            raise JvmError(f"unknown agent kind {kind!r}", hint="use jar, path or lib")
        reply = self.execute("load", lib, absolute, opts)
        text = reply.output.strip()
        code = _agent_code(text)
        if code != 0:
            raise JvmError(
                f"JVM {self.pid} could not start agent {agent}: {text or f'return code {code}'}",
                hint="see the JVM's stderr for the agent's exception",
            )
        return code


def _agent_code(text: str) -> int:
    """The agent's return code: JDK 17 prints a bare number, newer ones `return code: N`."""
    first = text.splitlines()[0] if text else "0"
    if first.startswith("return code:"):
        first = first.split(":", 1)[1]
    try:
        return int(first.strip())
    except ValueError:
        return -1


def parse_properties(text: str) -> dict[str, str]:
    """Parse java.util.Properties.store output (comments, `key=value`, backslash escapes)."""
    result: dict[str, str] = {}
    logical = ""
    for raw in text.splitlines():
        line = raw.lstrip()  # leading blanks never count, on continuation lines too
        if not logical and (not line or line[0] in "#!"):
            continue
        # a line ending in an odd number of backslashes continues on the next one
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            logical += line[:-1]
            continue
        logical += line
        key, value = _split_property(logical)
        result[key] = value
        logical = ""
    return result


def _split_property(line: str) -> tuple[str, str]:
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\":
            i += 2
            continue
        if ch in "=: \t":
            break
        i += 1
    key = line[:i]
    rest = line[i:].lstrip(" \t")
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(" \t")
    return _unescape(key), _unescape(rest)


def _unescape(text: str) -> str:
    out: list[str] = []
    i = 0
    mapping = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "u" and i + 6 <= len(text):
                try:
                    out.append(chr(int(text[i + 2 : i + 6], 16)))
                    i += 6
                    continue
                except ValueError:
                    pass
            out.append(mapping.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def attach(pid: int, timeout: float = DEFAULT_TIMEOUT) -> AttachedJvm:
    """Attach to JVM `pid` (starting its attach listener if needed)."""
    return AttachedJvm(pid, timeout)


def jcmd(pid: int, line: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    return attach(pid, timeout).jcmd(line)
