"""Ready-point snapshots: a service's machine saved once the app is ready, so later runs start there.

`osv-java run --snapshot-when-ready PORT|FILE|URL` saves the machine when the app listens on PORT in
the guest, has created FILE, or answers an HTTP GET of URL (http://localhost:PORT/PATH) with a status
from 200 to 399, as a Kubernetes httpGet probe counts it (PID 1 watches and asks:
kernel/guest/readiness.py); a later run of the same image,
arguments and options restores the running service instead of starting it. The snapshot is a boot
snapshot's folder (kernel.vm.snapshot: the RAM and the stream, renamed into place whole) plus the
file OUTPUT, the app's output bytes relayed before the save: a restored run's terminal gets only
what the app writes after it, and the exit message's byte counts include what came before.

The key is the boot snapshot's (runtime, QEMU, machine shape without port forwards: a restore
publishes the new run's -p ports) plus everything the app's state can depend on: the app's files
(the image's app archive), the JVM's full command line, the environment, the working folder, the
policies' guest settings and supervisors (set before the JVM and running beside it in the saved
machine, they go on in every restore), and the ready condition. Ready snapshots share the
snapshots cache and its bound (snapshot.KEEP, the most recently used kept) with boot snapshots;
they are bigger, holding the app's heap too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from kernel.guest import wire

FORMAT = 1  # of OUTPUT and of the guest's "app-ready"/"resume" exchange
OUTPUT = "output"  # in the snapshot's folder: the stdout and stderr bytes relayed before the save
MAX_PORT = 65535


@dataclass(frozen=True)
class ReadyPoint:
    """When the app is ready: it listens on TCP `port` in the guest (and, with `http_target`, answers
    `GET http_target` there with a status from 200 to 399), or it has created `path`."""

    port: int | None = None
    path: str | None = None
    http_target: str | None = None  # the request target ("/health?deep=1"), asked on the guest's loopback

    def describe(self) -> str:
        if self.http_target is not None:
            return f"answered GET http://localhost:{self.port}{self.http_target}"
        return f"listens on port {self.port}" if self.port is not None else f"has created {self.path}"

    def request_fields(self) -> dict[str, object]:
        """The fields of the run request that make PID 1 watch for it."""
        return {"ready_port": self.port, "ready_file": self.path, "ready_http": self.http_target}


def key(machine_key: str, app_archive: Path, argv: list[str], env: list[str], cwd: str, point: ReadyPoint,
        hooks: list[str]) -> str:
    """The ready snapshot's key: its machine's boot snapshot key (snapshot.key) and what the app's
    state at its ready point depends on. `hooks`: the policies' guest settings and supervisors."""
    digest = hashlib.sha256()
    with open(app_archive, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    parts = [f"ready-format={FORMAT}", f"machine={machine_key}", f"app={digest.hexdigest()}",
             *(f"argv={arg}" for arg in argv), *(f"env={item}" for item in sorted(env)), f"cwd={cwd}",
             f"port={point.port}", f"file={point.path}",
             *([f"http={point.http_target}"] if point.http_target is not None else []),
             *(f"hook={h}" for h in hooks)]
    return "ready-" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def output_file(data: tuple[int, int]) -> dict[str, bytes]:
    """The OUTPUT file saved with the snapshot, from (stdout bytes, stderr bytes)."""
    stdout_bytes, stderr_bytes = data
    return {OUTPUT: wire.encode("output", stdout_bytes=stdout_bytes, stderr_bytes=stderr_bytes)}


def output_before(folder: Path) -> tuple[int, int]:
    """The stdout and stderr bytes the app wrote before the snapshot was saved; SnapshotError when
    the file is missing or damaged (the snapshot is then dropped)."""
    from kernel.vm import snapshot  # the VM path's: options (and so a process run) import this module too

    try:
        message = wire.decode((folder / OUTPUT).read_bytes())
        stdout_bytes, stderr_bytes = wire.number(message, "stdout_bytes"), wire.number(message, "stderr_bytes")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise snapshot.SnapshotError(f"the ready snapshot's {OUTPUT} file is unreadable ({exc})") from exc
    if stdout_bytes is None or stderr_bytes is None:
        raise snapshot.SnapshotError(f"the ready snapshot's {folder / OUTPUT} is damaged")
    return int(stdout_bytes), int(stderr_bytes)
