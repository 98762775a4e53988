"""One run of an experiment: `osv-java run --gc-log FILE ...` as a subprocess, exactly as a user runs it,
watched from /proc while it runs.

Memory: the proportional set size (PSS, /proc/PID/smaps_rollup) of the JVM for --target process (RSS
would count ZGC's multi-mapped heap three times), the resident set of QEMU for a VM, sampled every
SAMPLE_EVERY seconds. CPU: the run's whole process tree from wait4 (the JVM or QEMU, reaped by
osv-java, is included) minus osv-java's own CPU time, read from /proc just before it exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gc_hooks.experiment import measure
from gc_hooks.experiment.design import Run
from jvmbridge.proc import stat_cpu_seconds

SAMPLE_EVERY = 0.1
GRACE = 15.0  # seconds between SIGINT and SIGKILL when a run outlives its time limit
_RUNNING: set[int] = set()  # process groups of the runs going now, for stop_all
_RUNNING_LOCK = threading.Lock()
_STOPPING = threading.Event()


@dataclass
class RunRecord:
    """Everything measured about one run (a row of results.csv)."""

    index: int
    config: str
    round: int
    warmup: bool
    outcome: str = measure.ERROR
    reason: str = ""
    exit_status: int | None = None
    wall_s: float | None = None
    cpu_s: float | None = None
    pss_peak_mb: float | None = None
    pss_mean_mb: float | None = None
    memory_source: str = ""  # "jvm pss" or "qemu rss"
    app: dict[str, float] = field(default_factory=dict)
    gc: measure.GcSummary = field(default_factory=measure.GcSummary)
    folder: str = ""  # relative to the report folder: gc.log, stdout.txt, stderr.txt
    command: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome == measure.OK

    def figures(self) -> dict[str, float | None]:
        """Every scalar figure of the run, by the names the report uses."""
        out: dict[str, float | None] = {"wall_s": self.wall_s, "cpu_s": self.cpu_s,
                                        "pss_peak_mb": self.pss_peak_mb, "pss_mean_mb": self.pss_mean_mb}
        out.update(self.gc.figures())
        out.update({f"app:{k}": v for k, v in self.app.items()})
        return out


def _children() -> dict[int, list[int]]:
    table: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rfind(")") + 2:].split()[1])
            table.setdefault(ppid, []).append(int(entry))
    return table


def _descendants(pid: int) -> list[int]:
    table = _children()
    out, todo = [], [pid]
    while todo:
        for child in table.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _own_cpu(pid: int) -> float | None:
    """utime + stime of the process itself (not its children), seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat_cpu_seconds(stat)


def _memory_kb(pid: int, field_name: str) -> int | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class Sampler:
    """Finds the JVM (or QEMU) below the osv-java process and samples its memory."""

    def __init__(self, root: int, target: str) -> None:
        self.root = root
        self.target = target
        self.watched: int | None = None
        self.samples: list[float] = []  # MB
        self.own_cpu: float | None = None

    def sample(self) -> None:
        own = _own_cpu(self.root)
        if own is not None:
            self.own_cpu = own
        if self.watched is None or not os.path.exists(f"/proc/{self.watched}"):
            # looked for at every sample: a short run's JVM lives well under a second
            want = "qemu" if self.target == "vm" else "java"
            self.watched = next((p for p in _descendants(self.root) if _comm(p).startswith(want)), None)
            if self.watched is None:
                return
        kb = _memory_kb(self.watched, "Rss" if self.target == "vm" else "Pss")
        if kb:
            self.samples.append(kb / 1024)


def _stop(pid: int, descendants: Sequence[int], ended: threading.Event) -> None:
    """Ctrl-C the run's process group (osv-java stops the app and the VM), then force."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGINT)
    if not ended.wait(GRACE):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    for child in descendants:  # QEMU runs in a session of its own
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


def command(run: Run, app: Sequence[str], target: str, gc_log: Path, options: Sequence[str],
            jvm_options: Sequence[str], timeout: float) -> list[str]:
    """The `osv-java run` command line of one run: the user's JVM options first, the configuration's after."""
    return [sys.executable, "-m", "osv_java", "run", f"--target={target}", f"--gc-log={gc_log}",
            f"--timeout={timeout:g}", *options, *[f"--jvm-opt={o}" for o in jvm_options],
            *run.config.run_options(), *app]


def execute(run: Run, app: Sequence[str], target: str, folder: Path, relative: str, options: Sequence[str] = (),
            jvm_options: Sequence[str] = (), timeout: float = 600.0, env: dict[str, str] | None = None) -> RunRecord:
    """Run once, wait (or stop it past `timeout`), and measure; never raises for a failed run."""
    folder.mkdir(parents=True, exist_ok=True)
    gc_log = folder / "gc.log"
    argv = command(run, app, target, gc_log, options, jvm_options, timeout)
    record = RunRecord(run.index, run.config.key, run.round, run.warmup, folder=relative, command=argv)
    timed_out = False
    with open(folder / "stdout.txt", "wb") as out, open(folder / "stderr.txt", "wb") as err:
        started = time.monotonic()
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                    start_new_session=True)
        except OSError as exc:
            record.reason = f"could not start osv-java: {exc}"
            return record
        with _RUNNING_LOCK:
            _RUNNING.add(proc.pid)
        sampler = Sampler(proc.pid, target)
        ended = threading.Event()
        waited: dict[str, Any] = {}

        def wait_for_exit() -> None:
            # a thread of its own blocks in wait4, so the end time is exact, not rounded to a sample
            _, waited["status"], waited["usage"] = os.wait4(proc.pid, 0)
            waited["end"] = time.monotonic()
            ended.set()

        waiter = threading.Thread(target=wait_for_exit, name=f"wait-{proc.pid}", daemon=True)
        waiter.start()
        hard_limit = started + timeout + 60  # osv-java's own --timeout stops the app first
        while not ended.is_set():
            if time.monotonic() > hard_limit:
                timed_out = True
                _stop(proc.pid, _descendants(proc.pid), ended)
                break
            sampler.sample()
            ended.wait(SAMPLE_EVERY)
        waiter.join()
        record.wall_s = waited["end"] - started
        with _RUNNING_LOCK:
            _RUNNING.discard(proc.pid)
        proc.returncode = os.waitstatus_to_exitcode(waited["status"])
        usage = waited["usage"]
    code = proc.returncode
    record.exit_status = 128 - code if code < 0 else code
    if usage is not None:
        tree = usage.ru_utime + usage.ru_stime
        record.cpu_s = max(0.0, tree - (sampler.own_cpu or 0.0))
    if sampler.samples:
        record.pss_peak_mb = max(sampler.samples)
        record.pss_mean_mb = sum(sampler.samples) / len(sampler.samples)
        record.memory_source = "qemu rss" if target == "vm" else "jvm pss"
    stdout = (folder / "stdout.txt").read_text(errors="replace")
    stderr = (folder / "stderr.txt").read_text(errors="replace")
    record.app = measure.app_results(stdout)
    record.outcome, record.reason = measure.classify(record.exit_status, stderr, timed_out)
    if _STOPPING.is_set() and not record.ok:
        record.outcome, record.reason = measure.INTERRUPTED, "stopped by Ctrl-C"
    if gc_log.exists():
        record.gc = measure.summarize(gc_log.read_text(errors="replace"))
    return record


def stop_all() -> None:
    """Ctrl-C every run still going (each runs in a session of its own, out of reach of the terminal's)."""
    _STOPPING.set()
    with _RUNNING_LOCK:
        pids = list(_RUNNING)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGINT)
