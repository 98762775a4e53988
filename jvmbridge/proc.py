"""What /proc says about a target process: its namespace pid, owner, root and whether it is a JVM.

Attach and hsperfdata both address a JVM by the pid it sees in its own pid namespace and by files
under the /tmp of its own mount namespace; reaching both through /proc/PID makes containers work
without entering them.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

from jvmbridge.errors import JvmError

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def stat_cpu_seconds(stat: str) -> float:
    """utime + stime from the text of a /proc/PID/stat or /proc/PID/task/TID/stat file, in seconds.
    The fields are counted after the command name's closing parenthesis: the name may hold spaces."""
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass(frozen=True)
class Mount:
    """One line of /proc/PID/mountinfo; paths with mountinfo's octal escapes undone."""

    root: str  # the mounted path within its file system
    point: str  # where it is mounted
    options: str  # this mount's own options (ro, nosuid, relatime, ...)
    fstype: str
    super_options: str  # the file system's options


def mounts(mountinfo: str) -> list[Mount]:
    """Each well-formed line of a mountinfo text, in its order."""
    found = []
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) >= 6 and len(rfields) >= 3:
            found.append(Mount(_unescape(fields[3]), _unescape(fields[4]), fields[5], rfields[0], rfields[2]))
    return found


def _unescape(path: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        path = path.replace(code, char)
    return path


@dataclass(frozen=True)
class CgroupFolder:
    """A process's cgroup folder in a hierarchy where a controller may apply, as this process sees it."""

    path: Path
    version: int  # 1: the controller's own hierarchy; 2: the unified one
    mount: Path  # where that hierarchy is mounted: a walk up from `path` ends there


def cgroup_folders(pid: int | str, controller: str, proc: Path = PROC) -> list[CgroupFolder]:
    """`pid`'s cgroup folders that `controller` ("memory", "cpu") may govern: the v1 hierarchy that has
    the controller, then the v2 unified one (whether the controller is on there, its files say). The
    hierarchies' mount points come from this process's mountinfo, so another mount point or a cgroup
    namespace (paths relative to the mount's root) resolves too."""
    try:
        lines = (proc / str(pid) / "cgroup").read_text().splitlines()
        mountinfo = (proc / "self" / "mountinfo").read_text()
    except OSError:
        return []
    v1 = v2 = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if controller in parts[1].split(","):
            v1 = parts[2]
        elif parts[0] == "0" and parts[1] == "":
            v2 = parts[2]
    found, parsed = [], mounts(mountinfo)
    for path, version, kind in ((v1, 1, "cgroup"), (v2, 2, "cgroup2")):
        if path is None:
            continue
        for mount in parsed:
            if mount.fstype != kind or (version == 1 and controller not in mount.super_options.split(",")):
                continue
            inner = os.path.relpath(path, mount.root) if path.startswith(mount.root) else None
            if inner is None or inner.startswith(".."):
                continue
            point = Path(mount.point)
            found.append(CgroupFolder((point / inner).resolve() if inner != "." else point, version, point))
    return found


@dataclass(frozen=True)
class ProcessInfo:
    """A process as seen from here: host pid, namespace pid, effective owner, its filesystem root."""

    pid: int
    nspid: int
    uid: int
    gid: int
    name: str

    @property
    def proc(self) -> Path:
        return PROC / str(self.pid)

    @property
    def tmp(self) -> Path:
        """The target's /tmp (through its mount namespace when we may look there)."""
        root_tmp = self.proc / "root" / "tmp"
        try:
            if root_tmp.is_dir():
                return root_tmp
        except OSError:
            pass
        return Path("/tmp")

    @property
    def cwd(self) -> Path:
        return self.proc / "cwd"

    def alive(self) -> bool:
        return is_alive(self.pid)

    def started_at(self) -> float | None:
        """When the process started, in seconds since the epoch (to a clock tick); None if unknown."""
        try:
            ticks = int((self.proc / "stat").read_text().rpartition(")")[2].split()[19])  # field 22, starttime
            boot = next(int(line.split()[1]) for line in (PROC / "stat").read_text().splitlines()
                        if line.startswith("btime "))
        except (OSError, ValueError, IndexError, StopIteration):
            return None
        return boot + ticks / CLOCK_TICKS

    def catches(self, signum: int) -> bool:
        """True when the process has a handler for `signum` (a JVM catches SIGQUIT once it is up)."""
        status = _status(self.pid)
        mask = int(status.get("SigCgt", "0"), 16)
        return bool(mask & (1 << (signum - 1)))

    def cmdline(self) -> list[str]:
        try:
            raw = (self.proc / "cmdline").read_bytes()
        except OSError:
            return []
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part]

    def maps_jvm(self) -> bool | None:
        """True when libjvm.so is mapped, False when not, None when the maps cannot be read."""
        try:
            with open(self.proc / "maps", "rb") as maps:
                return any(b"/libjvm.so" in line for line in maps)
        except OSError:
            return None


def is_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        status = _status(pid)
    except JvmError:
        return False
    return not status.get("State", "").startswith(("Z", "X"))


def _status(pid: int) -> dict[str, str]:
    try:
        text = (PROC / str(pid) / "status").read_text()
    except (FileNotFoundError, ProcessLookupError) as exc:
        raise JvmError(
            f"no process {pid}: it has exited or never existed",
            hint="list running JVMs with `osv-java jvm list`",
        ) from exc
    except OSError as exc:
        raise JvmError(f"cannot read /proc/{pid}/status: {exc.strerror}") from exc
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        values[key] = value.strip()
    return values


def target(pid: int) -> ProcessInfo:
    """Describe process `pid`; JvmError when it does not exist."""
    if pid <= 0:
        raise JvmError(
            f"{pid} is not a process id", hint="give a positive pid, e.g. from `osv-java jvm list`"
        )
    status = _status(pid)
    nspids = status.get("NSpid", str(pid)).split()
    uids = status.get("Uid", "0 0").split()
    gids = status.get("Gid", "0 0").split()
    return ProcessInfo(
        pid=pid,
        nspid=int(nspids[-1]) if nspids else pid,
        uid=int(uids[1]),
        gid=int(gids[1]),
        name=status.get("Name", "?"),
    )


def send_signal(pid: int, signum: int = signal.SIGQUIT) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError as exc:
        raise JvmError(f"process {pid} exited while attaching") from exc
    except PermissionError as exc:
        raise JvmError(
            f"not allowed to signal process {pid}",
            hint="attach as the JVM's user or as root",
        ) from exc
