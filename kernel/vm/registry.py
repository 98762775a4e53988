"""Running VMs by name, so other osv-java commands can look inside them.

`osv-java run --name NAME` records itself in <cache>/vms/NAME.json (the run's pid and its telemetry
socket) for as long as the VM runs; `osv-java jvm stats --vm NAME` finds it there. Records whose
process is gone are ignored and cleaned up.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from jvmbridge import smaps
from jvmbridge.errors import JvmError, UsageError
from kernel import cache

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


@dataclass(frozen=True)
class VmRecord:
    name: str
    pid: int  # the `osv-java run` process
    socket: str  # its telemetry socket
    main_class: str
    started: float


def _folder() -> Path:
    return cache.root() / "vms"


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise UsageError(f"VM name {name!r} is not 1-63 letters, digits, '.', '_' or '-'", hint="e.g. --name web1")
    return name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def registered(name: str, socket_path: Path, main_class: str) -> Iterator[VmRecord]:
    """Record the VM under `name` while the block runs; a clear error if a live VM has that name."""
    path = _folder() / f"{check_name(name)}.json"
    existing = lookup(name, missing_ok=True)
    if existing is not None:
        raise UsageError(f"a VM named {name!r} is already running (osv-java pid {existing.pid})",
                         hint="choose another --name, or stop that VM first")
    record = VmRecord(name=name, pid=os.getpid(), socket=str(socket_path), main_class=main_class,
                      started=time.time())
    cache.ensure("vms")
    cache.write_file_atomic(path, json.dumps(asdict(record)).encode())
    try:
        yield record
    finally:
        with contextlib.suppress(OSError):
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()


def lookup(name: str, missing_ok: bool = False) -> VmRecord | None:
    path = _folder() / f"{check_name(name)}.json"
    try:
        record = VmRecord(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        record = None
    if record is not None and not _alive(record.pid):
        with contextlib.suppress(OSError):
            path.unlink()
        record = None
    if record is None and not missing_ok:
        running = ", ".join(r.name for r in list_running()) or "none"
        raise JvmError(f"no running VM named {name!r} (running: {running})",
                       hint="start one with `osv-java run --name NAME ...`")
    return record


def list_running() -> list[VmRecord]:
    folder = _folder()
    if not folder.is_dir():
        return []
    records = []
    for path in sorted(folder.glob("*.json")):
        record = lookup(path.stem, missing_ok=True)
        if record is not None:
            records.append(record)
    return records


def fetch_perfdata(record: VmRecord, timeout: float = 15.0) -> bytes:
    """The guest JVM's hsperfdata file, as the kernel services read it inside the VM."""
    return request(record, "hsperf", timeout)


def fetch_hugepages(record: VmRecord, timeout: float = 30.0) -> dict[str, object]:
    """The guest JVM heap's resident and huge-page bytes, as the kernel services read them in the VM."""
    return dict(json.loads(request(record, "hugepages", timeout)))


@dataclass(frozen=True)
class VmMemory:
    """A running VM's memory as the host sees it."""

    guest: int | None  # bytes the balloon leaves the guest; None without a balloon (--dynamic-heap off)
    qemu_rss: int | None  # QEMU's resident set on the host; None when it cannot be read
    ram_resident: int | None = None  # of QEMU's guest RAM mapping (smaps); None when it cannot be read
    ram_huge: int | None = None  # of that, on the host's huge pages

    @property
    def ram_share(self) -> float | None:
        """The share of the guest RAM's resident memory on the host's huge pages."""
        if self.ram_resident is None or self.ram_huge is None:
            return None
        return self.ram_huge / self.ram_resident if self.ram_resident else 0.0


def fetch_memory(record: VmRecord, timeout: float = 15.0) -> VmMemory:
    """The guest's memory after the balloon (QMP), QEMU's resident set (/proc) and its guest RAM on
    the host's huge pages (QEMU's smaps)."""
    guest = None
    try:
        answer = request(record, "balloon", timeout).decode().split()
        guest = int(answer[1]) if len(answer) == 2 and answer[0] == "ok" else None
    except JvmError:
        pass  # no balloon device: the guest has its -m
    qemu = _qemu_child(record.pid)
    if qemu is None:
        return VmMemory(guest, None)
    ram = None
    with contextlib.suppress(JvmError):
        ram = smaps.guest_ram(smaps.read(qemu))
    return VmMemory(guest, _rss(qemu), ram.rss if ram else None, ram.huge if ram else None)


def _qemu_child(pid: int) -> int | None:
    """The QEMU process `osv-java run` (pid) started."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    for child in children:
        try:
            if Path(f"/proc/{child}/comm").read_text().startswith("qemu-system"):
                return int(child)
        except OSError:
            continue
    return None


def _rss(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def request(record: VmRecord, line: str, timeout: float = 30.0) -> bytes:
    """Ask the VM's kernel services: `hsperf` (the JVM's counters) or `jcmd COMMAND ARGS` (its output)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(record.socket)
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(1 << 16):
                chunks.append(chunk)
    except OSError as exc:
        raise JvmError(f"cannot reach VM {record.name!r} ({exc})", hint="is it still running?") from exc
    data = b"".join(chunks)
    if data.startswith(b"error "):
        raise JvmError(f"VM {record.name!r}: {data[6:].decode(errors='replace').strip()}",
                       hint="the JVM may not have started yet (or, for counters, runs with -XX:-UsePerfData)")
    return data


def open_session(
    record: VmRecord, line: str, payload: bytes = b"", timeout: float = 30.0, hint: str | None = None
) -> tuple[socket.socket, str]:
    """Start a long-lived request (`events ...`, `gateway ...`): the open socket and the rest of its
    `ok` line. The request lasts while the socket is open; closing it ends it in the VM too."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(record.socket)
        sock.sendall(line.encode() + b"\n" + payload)
        said = b""
        while not said.endswith(b"\n"):
            byte = sock.recv(1)  # one byte at a time: what follows the line belongs to the caller
            if not byte:
                break
            said += byte
    except OSError as exc:
        sock.close()
        raise JvmError(f"cannot reach VM {record.name!r} ({exc})", hint="is it still running?") from exc
    text = said.decode(errors="replace").strip()
    if text == "ok" or text.startswith("ok "):
        return sock, text[3:]
    sock.close()
    reason = text[6:] if text.startswith("error ") else (text or "the VM closed the connection")
    raise JvmError(f"VM {record.name!r}: {reason}", hint=hint or "is the app's JVM still running?")
