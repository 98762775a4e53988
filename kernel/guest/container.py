"""Kernel services as a container's entrypoint: the process target's role, inside an OCI image.

`osv-java export --format oci` writes the run (JVM command, the policies' supervisors) to RUN_FILE
and makes this the image's entrypoint; the image's Cmd (or the engine's arguments) are the app's
arguments. It starts the JVM, runs the supervisors beside it (dynamic heap, huge pages, STW), which
read the container's own cgroup files and PSI, forwards the engine's signals to the JVM, reaps
what is re-parented to it (it is often PID 1), and exits with the app's status (128+S for a
signal). Nothing here needs privileges. Standard library only: it is zipped with its imports.

OSV_JAVA_VERBOSE=1 in the container's environment prints what it found and every policy decision on
stderr; otherwise only a policy's failure or warning is printed there.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from gc_hooks.runner import SupervisorRunner
from gc_hooks.seam import HookEvent, SupervisorSpec
from kernel.guest.spawn import spawn

RUN_FILE = "/osv/run.json"
VERBOSE_ENV = "OSV_JAVA_VERBOSE"
CAP_SYS_NICE = 23  # what an external collapse of the heap onto huge pages (MADV_COLLAPSE) needs
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


class StderrChannel:
    """gc_hooks.seam.Channel for a container: there is no host side, so decisions go to stderr."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose

    def emit(self, event: HookEvent) -> None:
        if self.verbose or event.what in ("failed", "warning"):
            print(f"osv-java: {event.line()}", file=sys.stderr, flush=True)

    def send(self, policy: str, kind: str, data: str) -> None:
        """Messages for a host monitor: export refuses the policies that need one."""


def report_limits(pid: int) -> None:
    """Say which memory limit and pressure the policies see: the container's own files."""
    from gc_hooks.dynamic_heap import signals

    cgroup = signals.memory_cgroup(pid)
    if cgroup is None:
        print("osv-java: container: no memory cgroup found", file=sys.stderr, flush=True)
        return
    limit = cgroup.limit()
    said = "no limit" if limit is None else f"limit {limit >> 20} MB"
    psi = cgroup.psi_some_avg10()
    pressure = "" if psi is None else f", PSI some avg10 {psi:.2f}"
    print(f"osv-java: container: memory cgroup v{cgroup.version} {cgroup.path}: {said}{pressure}",
          file=sys.stderr, flush=True)


def has_capability(bit: int, status_file: str = "/proc/self/status") -> bool:
    try:
        with open(status_file) as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> bit & 1)
    except (OSError, ValueError):
        pass
    return False


def supervisor_specs(fields: list[dict], may_collapse: bool) -> list[SupervisorSpec]:
    """The policies' supervisors; without CAP_SYS_NICE (an engine's default) the huge-pages one measures
    and warns but does not try the external collapse it would be refused."""
    specs = [SupervisorSpec.from_fields(f) for f in fields]
    if may_collapse:
        return specs
    return [SupervisorSpec(s.policy, s.module, s.cls, {**s.settings, "collapse": False})
            if "collapse" in s.settings else s for s in specs]


def exit_status(wait_status: int) -> int:
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


def start_jvm(argv: list[str]) -> int:
    """The JVM in our session and folder, with our environment and stdio (the engine's)."""
    return spawn(argv, new_session=False, default_signals=FORWARDED)


def wait_for(pid: int) -> int:
    """Reap every child until the JVM has exited; returns its wait status."""
    while True:
        try:
            reaped, wait_status = os.wait()
        except ChildProcessError:
            return 127 << 8
        if reaped == pid:
            return wait_status


def run(args: list[str] | None = None, run_file: str = RUN_FILE) -> None:
    with open(run_file) as f:
        spec = json.load(f)
    argv = [*spec["argv"], *(sys.argv[1:] if args is None else args)]
    verbose = os.environ.get(VERBOSE_ENV, "") not in ("", "0")
    pid = start_jvm(argv)

    def forward(signum: int, frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in FORWARDED:
        signal.signal(sig, forward)
    if verbose:
        report_limits(pid)
    supervisors = SupervisorRunner(supervisor_specs(spec.get("supervisors", []), has_capability(CAP_SYS_NICE)),
                                   StderrChannel(verbose))
    supervisors.start(pid)
    try:
        status = exit_status(wait_for(pid))
    finally:
        supervisors.stop(exited=True)
    sys.stdout.flush()
    os._exit(status)


if __name__ == "__main__":
    run()
