"""`osv-java attach PID`: the kernel services' policies for a JVM that is already running on this host.

The policies run here, beside the JVM, exactly as they do for `--target process` (their launch-time
parts cannot apply). Ctrl-C or SIGTERM detaches: every policy undoes what must not outlive it (flags
it changed, logging it started) and the JVM goes on. When the JVM exits, attach ends too.
"""

from __future__ import annotations

import re
import time

import click

from gc_hooks.host import HostSide
from gc_hooks.policies import HookSettings, choose, plan
from gc_hooks.runner import SupervisorRunner
from gc_hooks.seam import Machine
from jvmbridge import hsperf
from jvmbridge.attach import attach as attach_to
from jvmbridge.errors import JvmError, UsageError
from jvmbridge.proc import is_alive, target


def _jdk_feature(pid: int) -> int:
    """The JVM's feature release (17, 25, ...) from its counters, else from its properties over attach."""
    version = ""
    try:
        with hsperf.PerfData.open(pid) as pd:
            version = pd.string("java.property.java.version")
    except JvmError:
        pass
    if not version:
        version = attach_to(pid).properties().get("java.version", "")
    match = re.match(r"(?:1\.)?(\d+)", version)
    if not match:
        raise JvmError(f"cannot tell the Java version of process {pid}",
                       hint="is it a HotSpot JVM? `osv-java jvm list` shows the JVMs found")
    return int(match.group(1))


def _check_jvm(pid: int) -> None:
    tgt = target(pid)
    if tgt.maps_jvm() is False:
        raise JvmError(f"process {pid} ({tgt.name}) is not a JVM: it has no libjvm.so mapped",
                       hint="list running JVMs with `osv-java jvm list`")


@click.command("attach")
@click.argument("pid", type=int)
@click.option("--gc-log", "gc_log", metavar="FILE", help="Write the JVM's GC and safepoint log lines to FILE.")
@click.option("--dynamic-heap", "dynamic_heap", is_flag=True,
              help="Steer the committed heap to the live set and the free memory (flags restored on detach).")
@click.option("--stw-lb", "stw_lb", metavar="haproxy:SOCKET:BACKEND/SERVER",
              help="Collect while this server is drained from HAProxy (admin socket), one server at a time.")
@click.option("--stw-group", "stw_group", metavar="NAME",
              help="JVMs of group NAME on this machine never run the collections they cause at once.")
@click.option("--hugepages", is_flag=True,
              help="Put the JVM's heap on huge pages from outside (MADV_COLLAPSE), again as the GC recommits it.")
@click.option("--duration", type=float, default=None, metavar="SECONDS", help="Detach after this long.")
def attach_command(pid: int, gc_log: str | None, dynamic_heap: bool, hugepages: bool, stw_lb: str | None,
                   stw_group: str | None, duration: float | None) -> None:
    """Run the kernel services' policies for running JVM PID until Ctrl-C (or it exits)."""
    if duration is not None and duration <= 0:
        raise click.BadParameter("must be positive", param_hint="--duration")
    _check_jvm(pid)
    if dynamic_heap:
        attach_to(pid)  # the dynamic heap steers through attach: a JVM that refuses it is one clear error
    settings = HookSettings(dynamic_heap=dynamic_heap, hugepages="auto" if hugepages else "off", gc_log=gc_log,
                            stw_lb=stw_lb, stw_group=stw_group)
    machine = Machine(target="attach", memory_mb=None, cpus=None, jdk_feature=_jdk_feature(pid))
    hooks = plan(choose(settings, machine), machine)
    if not hooks.policies:
        raise UsageError("attach needs at least one policy to run", hint="e.g. osv-java attach PID --dynamic-heap")
    host = HostSide(hooks, verbose=True)
    host.start(None)
    runner = SupervisorRunner(hooks.supervisors, host)
    exited = False
    try:
        runner.start(pid)
        if not runner.active:
            raise JvmError(f"no policy could start on JVM {pid}; see the lines above",
                           hint="check that you may attach to it (same user, or root)")
        click.echo(f"osv-java: attached to JVM {pid} ({', '.join(runner.active)}); Ctrl-C detaches", err=True)
        deadline = None if duration is None else time.monotonic() + duration
        while not exited and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.2)
            exited = not is_alive(pid)
    except KeyboardInterrupt:
        pass
    finally:
        runner.stop(exited=exited)
        host.stop()
    click.echo(f"osv-java: {'JVM ' + str(pid) + ' exited' if exited else 'detached from JVM ' + str(pid)}", err=True)
