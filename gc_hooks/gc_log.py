"""`--gc-log FILE`: the run's GC and safepoint events, as the JVM logged them, in a file on the host.

The simplest policy that uses every place of the seam: a JVM option at launch (log to a file where
the JVM runs), a supervisor that tails that file and sends new lines to the host, and a host monitor
that writes them to FILE (under a temporary name, renamed into place when the run ends). The same
path serves a VM (the JVM's file is in the guest) and --target process; for `osv-java attach` the
supervisor starts the logging through the attach mechanism instead, and stops it when it detaches.
The file reads back with `jvmbridge.gclog.parse_file`. Standard library only (the supervisor runs in
PID 1).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Any

from gc_hooks.seam import Channel, HookEvent, HostMonitor, Machine, Policy, Supervisor, SupervisorSpec, VmSide
from jvmbridge.attach import AttachedJvm, attach
from jvmbridge.errors import JvmError, UsageError
from jvmbridge.proc import target

NAME = "gc-log"
WHAT = "gc=info,gc+start=info,gc+phases=info,gc+heap+exit=info,safepoint=info"
DECORATORS = "uptimenanos,level,tags"
GUEST_LOG = "/tmp/.osv-java-gc.log"
MAX_SEND = 256 << 10  # bytes of log sent per tick, so one tick never floods the control channel


class GcLog(Policy):
    name = NAME

    def __init__(self, host_file: str) -> None:
        self.host_file = os.path.abspath(host_file)
        folder = os.path.dirname(self.host_file)
        if not os.path.isdir(folder) or os.path.isdir(self.host_file):
            raise UsageError(f"--gc-log {host_file}: {folder if not os.path.isdir(folder) else host_file} "
                             f"is {'not a folder' if not os.path.isdir(folder) else 'a folder'}",
                             hint="give --gc-log a file path in an existing folder, e.g. --gc-log gc.log")
        # where the JVM writes: in the guest, or beside the host file for --target process
        self._local = GUEST_LOG

    def jvm_options(self, machine: Machine) -> list[str]:
        if machine.target == "attach":
            return []
        if machine.target == "process":
            folder = tempfile.mkdtemp(prefix="osv-java-gclog-")
            self._local = os.path.join(folder, "gc.log")
        return [f"-Xlog:{WHAT}:file={self._local}:{DECORATORS}:filecount=0"]

    def supervisor(self, machine: Machine) -> SupervisorSpec | None:
        if machine.target == "attach":
            return SupervisorSpec(NAME, __name__, "GcLogTail", {"attach": True})
        return SupervisorSpec(NAME, __name__, "GcLogTail", {"path": self._local})

    def host_monitor(self, machine: Machine) -> HostMonitor | None:
        cleanup = os.path.dirname(self._local) if machine.target == "process" else None
        return GcLogWriter(self.host_file, cleanup)


class GcLogTail(Supervisor):
    """Sends what the JVM appended to its log since the last tick, whole lines only."""

    interval = 0.5

    def __init__(self, settings: dict[str, Any]) -> None:
        super().__init__(settings)
        self.path = str(settings.get("path", ""))
        self.offset = 0
        self.partial = b""
        self.channel: Channel | None = None
        self._attached: tuple[AttachedJvm, str] | None = None  # the JVM and its log path, in attach mode

    def start(self, pid: int, channel: Channel) -> None:
        self.channel = channel
        if self.settings.get("attach"):
            self._start_logging(pid)

    def _start_logging(self, pid: int) -> None:
        """A running JVM: have it log to a file in its own /tmp (the attach mechanism's VM.log)."""
        jvm = attach(pid)
        name = f".osv-java-gclog-{os.getpid()}-{pid}.log"
        jvm_path = f"/tmp/{name}"  # in the JVM's mount namespace
        said = jvm.jcmd(f"VM.log output=file={jvm_path} output_options=filecount=0 what={WHAT} "
                        f"decorators={DECORATORS}").strip()
        if said:
            raise JvmError(f"JVM {pid} refused the log configuration: {said}")
        self.path = str(target(pid).tmp / name)
        self._attached = (jvm, jvm_path)

    def tick(self, now: float) -> None:
        self._send_new(final=False)

    def stop(self, exited: bool) -> None:
        if self._attached is not None and not exited:
            jvm, jvm_path = self._attached
            jvm.jcmd(f"VM.log output=file={jvm_path} what=all=off")  # the JVM goes on without our output
        self._send_new(final=True)
        if self._attached is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def _send_new(self, final: bool) -> None:
        assert self.channel is not None
        while True:
            try:
                with open(self.path, "rb") as f:
                    f.seek(self.offset)
                    chunk = f.read(MAX_SEND)
            except FileNotFoundError:
                return  # the JVM has not opened its log yet
            self.offset += len(chunk)
            data = self.partial + chunk
            cut = len(data) if final else data.rfind(b"\n") + 1
            self.partial = data[cut:]
            if cut:
                self.channel.send(NAME, "lines", data[:cut].decode("utf-8", "replace"))
            if not final or len(chunk) < MAX_SEND:
                return


class GcLogWriter(HostMonitor):
    """Appends the lines to a temporary file beside FILE; renames it into place at the end."""

    def __init__(self, path: str, cleanup: str | None) -> None:
        self.path = path
        self.cleanup = cleanup
        self.out: IO[str] | None = None
        self.temp = ""
        self.lines = 0

    def start(self, vm: VmSide | None) -> None:
        folder = os.path.dirname(self.path) or "."
        fd, self.temp = tempfile.mkstemp(prefix=f".{os.path.basename(self.path)}.", dir=folder)
        self.out = os.fdopen(fd, "w", encoding="utf-8")

    def message(self, kind: str, data: str) -> None:
        if kind == "lines" and self.out is not None:
            self.out.write(data)
            self.lines += data.count("\n")

    def event(self, event: HookEvent) -> None:
        pass

    def stop(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None
            os.replace(self.temp, self.path)
        if self.cleanup and os.path.isdir(self.cleanup):
            for name in os.listdir(self.cleanup):
                os.unlink(os.path.join(self.cleanup, name))
            os.rmdir(self.cleanup)
