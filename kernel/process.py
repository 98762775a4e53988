"""--target process: kernel services supervising the JVM directly on the host, no VM.

The same options apply where they can: -m caps what the JVM sees as physical memory (-XX:MaxRAM),
-c its processor count, -p forwards a host port to the JVM's port, -v bind-mounts a folder at the
guest path in a private mount namespace (root only), and the exit status maps the same way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gc_hooks.host import HostSide
from gc_hooks.policies import Plan
from gc_hooks.runner import SupervisorRunner
from gc_hooks.seam import HookEvent
from jvmbridge.errors import AppTimeout, StopTimeout, UsageError
from kernel.exit_wait import wait_exit

if TYPE_CHECKING:
    import socket

    from kernel.vm.volumes import Volume

CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_PRIVATE, MS_REMOUNT, MS_RDONLY = 4096, 16384, 1 << 18, 32, 1


@dataclass
class ProcessResult:
    status: int
    timeline: dict[str, float]
    hook_events: list[HookEvent]


def _volume_mounter(volumes: list[Volume]) -> Callable[[], None]:
    """What the child runs before exec: a private mount namespace with each volume bound at its guest
    path. ctypes is loaded here, in the parent: nothing is imported between fork and exec."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    return lambda: _mount_volumes(libc, volumes)


def _mount_volumes(libc: Any, volumes: list[Volume]) -> None:
    if libc.unshare(CLONE_NEWNS) != 0:
        os.write(2, b"osv-java: cannot create a mount namespace for -v\n")
        os._exit(125)
    libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None)
    for v in volumes:
        os.makedirs(v.guest, exist_ok=True)
        if libc.mount(str(v.host).encode(), v.guest.encode(), None, MS_BIND, None) != 0:
            os.write(2, f"osv-java: cannot bind {v.host} at {v.guest}\n".encode())
            os._exit(125)
        if v.readonly:
            libc.mount(b"none", v.guest.encode(), None, MS_BIND | MS_REMOUNT | MS_RDONLY, None)


def _publish(ports: list[tuple[str, int, int]], stop: threading.Event) -> list[socket.socket]:
    if not ports:
        return []  # most runs: the forwarder's module (and socket) is not loaded for them
    from kernel.port_forward import publish

    return publish(ports, stop)


@contextlib.contextmanager
def _classinit_log(bootchart: bool) -> Iterator[Path | None]:
    """With --bootchart, where the JVM logs its class initialisations (when main was entered)."""
    if not bootchart:
        yield None
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="osv-java-proc-") as tmp:
        yield Path(tmp) / "classinit.log"


class _Stopper:
    """SIGTERM to osv-java (as `docker stop`): the JVM gets SIGTERM (its shutdown hooks run) and
    `grace` seconds to end, then SIGKILL."""

    def __init__(self, proc: subprocess.Popen[bytes], grace: float) -> None:
        self.proc = proc
        self.grace = grace
        self.deadline: float | None = None

    def __call__(self, signum: int, frame: object) -> None:
        if self.deadline is None:
            self.deadline = time.monotonic() + self.grace
            with contextlib.suppress(OSError):
                self.proc.send_signal(signal.SIGTERM)


def _wait(proc: subprocess.Popen[bytes], timeout: float | None, stopper: _Stopper) -> int:
    """The JVM's exit code; past `timeout` it is stopped (SIGTERM, then SIGKILL) and AppTimeout
    raised; past the grace of a SIGTERM to osv-java it is killed and StopTimeout raised."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            return code
        now = time.monotonic()
        if stopper.deadline is not None and now > stopper.deadline:
            proc.kill()
            proc.wait()
            raise StopTimeout(stopper.grace)
        if deadline is not None and now > deadline:
            break
        wait_exit(proc, 0.1)
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    assert timeout is not None
    raise AppTimeout(timeout)


def run(
    argv: list[str],
    env: dict[str, str],
    main_class: str,
    publish: list[tuple[str, int, int]],
    volumes: list[Volume],
    bootchart: bool,
    timeout: float | None,
    hooks: Plan,
    verbose: bool = False,
    stop_timeout: float = 10.0,
) -> ProcessResult:
    """Run the JVM `argv` (the policies' options already in it) with the policies' supervisors beside it."""
    if volumes and os.geteuid() != 0:
        raise UsageError("-v with --target process needs root (it bind-mounts the folder)",
                         hint="run as root, or use --target vm")
    stop = threading.Event()
    listeners = _publish(publish, stop)
    with _classinit_log(bootchart) as log:
        if log is not None:
            argv = [argv[0], f"-Xlog:class+init=info:file={log}:timenanos", *argv[1:]]
        t0 = time.monotonic()
        host = HostSide(hooks, verbose)
        host.start(None)
        try:
            proc = subprocess.Popen(argv, env=env, preexec_fn=_volume_mounter(volumes) if volumes else None)
        except BaseException:
            host.stop()
            raise
        t_exec = time.monotonic()
        supervisors = SupervisorRunner(hooks.supervisors, host)
        supervisors.start(proc.pid)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal sends it to the JVM too
        stopper = _Stopper(proc, stop_timeout)
        previous_term = signal.signal(signal.SIGTERM, stopper)
        try:
            code = _wait(proc, timeout, stopper)
        finally:
            signal.signal(signal.SIGINT, previous)
            signal.signal(signal.SIGTERM, previous_term)
            stop.set()
            for listener in listeners:
                listener.close()
            supervisors.stop(exited=True)
            host.stop()
        t_exit = time.monotonic()
        timeline = {"jvm_exec": t_exec - t0, "app_exit": t_exit - t0}
        if log is not None:
            from kernel.guest.pid1 import main_entered

            entered = main_entered(main_class, str(log))
            if entered is not None:
                timeline["main_entered"] = entered - t0
    status = 128 - code if code < 0 else code
    sys.stdout.flush()
    return ProcessResult(status=status, timeline=timeline, hook_events=list(host.events))
