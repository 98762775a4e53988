"""The process trees of running cells: stopping them, and everything they started, on the way out."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from pathlib import Path


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every process, from /proc."""
    table: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        table[int(entry)] = (int(fields[1]), fields[19])
    return table


def _descendants(pid: int) -> dict[int, str]:
    """Every process below `pid` (QEMU runs in a session of its own), with its start time."""
    table = _proc_table()
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, started) in table.items():
            if ppid == parent and child not in found:
                found[child] = started
                todo.append(child)
    return found


def _kill_exact(pids: dict[int, str]) -> None:
    """SIGKILL the given processes, only while each is still the process that was recorded."""
    table = _proc_table()
    for pid, started in pids.items():
        if table.get(pid, (0, ""))[1] == started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class Runs:
    """The osv-java processes running now, so an interrupt or a timeout can stop every one of them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.procs: set[subprocess.Popen[bytes]] = set()
        self.stopping = threading.Event()

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        with self.lock:
            self.procs.add(proc)

    def remove(self, proc: subprocess.Popen[bytes]) -> None:
        with self.lock:
            self.procs.discard(proc)

    def stop_all(self) -> None:
        self.stopping.set()
        with self.lock:
            procs = list(self.procs)
        threads = [threading.Thread(target=stop, args=(p,)) for p in procs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def stop(proc: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    """End an osv-java run the way Ctrl-C does (the app first, then the VM), then by force.

    osv-java starts QEMU in a session of its own, so killing the run's process group would leave QEMU
    running: its descendants are recorded first and killed by pid if they outlive the run.
    """
    if proc.poll() is not None:
        return
    below = _descendants(proc.pid)
    for attempt in range(2):
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace if attempt == 0 else min(grace, 10.0))
            break
        except subprocess.TimeoutExpired:
            below.update(_descendants(proc.pid))
    if proc.poll() is None:
        below.update(_descendants(proc.pid))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    _kill_exact(below)
