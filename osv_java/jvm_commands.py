"""`osv-java jvm ...` and `osv-java shell`: look into and steer a running JVM without changing it."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

import click

from jvmbridge import discover, hsperf
from jvmbridge.errors import JvmError
from jvmbridge.gclog import SAFEPOINT, GcEvent
from kernel.vm import registry
from osv_java.jvm_handle import HeapPagesSummary, handle

MB = 1 << 20


def _mb(value: int) -> str:
    return f"{value / MB:.1f}M"


def _uptime(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"


@click.group("jvm")
def jvm_group() -> None:
    """Look into running JVMs: list, counters, diagnostic commands, GC events."""


@jvm_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per JVM.")
def list_command(as_json: bool) -> None:
    """Running JVMs (those publishing hsperfdata) with main class, JDK, uptime and heap use."""
    jvms = discover.list_jvms()
    if as_json:
        for info in jvms:
            record = dataclasses.asdict(info)
            record["perfdata"] = str(info.perfdata)
            click.echo(json.dumps(record))
        return
    click.echo(f"{'PID':>8}  {'MAIN':<32} {'JDK':<12} {'UPTIME':>8}  {'HEAP USED/COMMITTED':>20}")
    for info in jvms:
        heap = f"{_mb(info.heap_used)}/{_mb(info.heap_capacity)}"
        main = info.main if len(info.main) <= 32 else "…" + info.main[-31:]
        click.echo(f"{info.pid:>8}  {main:<32} {info.java_version:<12} {_uptime(info.uptime):>8}  {heap:>20}")
    vms = registry.list_running()
    if vms:
        click.echo("\nVMs (look inside with `osv-java jvm stats|cmd|events --vm NAME`, `osv-java shell --vm NAME`):")
        for vm in vms:
            click.echo(f"  {vm.name:<30} {vm.main_class:<32} up {_uptime(time.time() - vm.started)}")


def _stats_json(stats: hsperf.JvmStats) -> dict[str, object]:
    record = dataclasses.asdict(stats)
    record.update(
        heap_used=stats.heap_used,
        heap_capacity=stats.heap_capacity,
        heap_max=stats.heap_max,
        time=time.time(),
    )
    return record


def _stats_text(stats: hsperf.JvmStats) -> str:
    lines = [
        f"JVM {stats.pid if stats.pid is not None else '(in the VM)'}  uptime {_uptime(stats.uptime)}",
        f"heap        used {_mb(stats.heap_used)} of {_mb(stats.heap_capacity)} committed, max {_mb(stats.heap_max)}",
    ]
    for gen in stats.generations:
        lines.append(f"  {gen.name:<10} used {_mb(gen.used):>9}  committed {_mb(gen.capacity):>9}")
        for space in gen.spaces:
            lines.append(f"    {space.name:<8} used {_mb(space.used):>9}  committed {_mb(space.capacity):>9}")
    lines.append(
        f"metaspace   used {_mb(stats.metaspace_used)} of {_mb(stats.metaspace_capacity)}"
        f" (class space {_mb(stats.class_space_used)} of {_mb(stats.class_space_capacity)})"
    )
    for collector in stats.collectors:
        lines.append(f"gc          {collector.name}: {collector.invocations} in {collector.time:.3f}s")
    lines.append(
        f"safepoints  {stats.safepoints}: {stats.safepoint_time:.3f}s stopped,"
        f" {stats.safepoint_sync_time:.3f}s reaching them"
    )
    return "\n".join(lines)


def _pages_text(pages: HeapPagesSummary | str) -> str:
    if isinstance(pages, str):
        return f"huge pages  unknown: {pages}"
    return (f"huge pages  {_mb(pages.huge)} of {_mb(pages.rss)} resident heap ({pages.share:.1%}, {pages.kind};"
            f" heap found by {pages.source})")


def _memory_text(memory: registry.VmMemory) -> str:
    guest = "no balloon (--dynamic-heap off)" if memory.guest is None else f"{_mb(memory.guest)} after the balloon"
    rss = "unknown" if memory.qemu_rss is None else _mb(memory.qemu_rss)
    text = f"VM memory   guest {guest}; QEMU resident on the host {rss}"
    if memory.ram_share is not None and memory.ram_huge is not None and memory.ram_resident is not None:
        text += (f"\nguest RAM   {_mb(memory.ram_huge)} of {_mb(memory.ram_resident)} resident on the host's huge pages"
                 f" ({memory.ram_share:.1%})")
    return text


def _pages_json(pages: HeapPagesSummary | str) -> dict[str, object]:
    if isinstance(pages, str):
        return {"heap_hugepage_share": None}
    return {"heap_hugepage_share": round(pages.share, 4), "heap_resident": pages.rss, "heap_huge": pages.huge,
            "heap_page_kind": pages.kind}


@jvm_group.command("stats")
@click.argument("pid", type=int, required=False)
@click.option("--vm", "vm_name", metavar="NAME", help="The JVM inside the osv-java VM NAME (see `jvm list`).")
@click.option("--watch", type=float, metavar="SECONDS", help="Print again every SECONDS until the JVM exits.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per sample.")
def stats_command(pid: int | None, vm_name: str | None, watch: float | None, as_json: bool) -> None:
    """Heap, GC and safepoint counters of JVM PID, or of the JVM in VM NAME (hsperfdata, as jstat reads),
    and the share of its heap on huge pages (/proc/PID/smaps)."""
    if watch is not None and watch <= 0:
        raise click.BadParameter("must be positive", param_hint="--watch")
    with handle(pid, vm_name) as jvm:
        while True:
            stats = jvm.stats()
            pages = jvm.heap_pages()
            memory = jvm.machine_memory()
            if as_json:
                named = {"vm": vm_name} if vm_name is not None else {}
                machine = {} if memory is None else {
                    "guest_memory": memory.guest, "qemu_rss": memory.qemu_rss,
                    "guest_ram_host_hugepage_share": None if memory.ram_share is None else round(memory.ram_share, 4)}
                click.echo(json.dumps({**named, **_stats_json(stats), **_pages_json(pages), **machine}))
            else:
                click.echo((f"VM {vm_name}\n" if vm_name is not None else "") + _stats_text(stats) + "\n"
                           + _pages_text(pages) + ("" if memory is None else "\n" + _memory_text(memory)))
            if watch is None:
                return
            time.sleep(watch)
            if not jvm.running():
                return
            if not as_json:
                click.echo()


@jvm_group.command("cmd", context_settings={"ignore_unknown_options": True})
@click.option("--vm", "vm_name", metavar="NAME", help="The JVM inside the osv-java VM NAME: then no PID.")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds to wait for the JVM.")
@click.argument("words", nargs=-1, type=click.UNPROCESSED, required=True, metavar="[PID] COMMAND [ARGS]...")
def cmd_command(vm_name: str | None, timeout: float, words: tuple[str, ...]) -> None:
    """Run a diagnostic command in JVM PID, as `jcmd PID COMMAND ARGS...` (try `help`).

    With --vm NAME, the kernel services inside that VM attach to its JVM and run the command there.
    """
    pid = None
    if vm_name is None:
        if len(words) < 2 or not words[0].isdigit():
            raise click.UsageError("give PID COMMAND [ARGS]..., or --vm NAME COMMAND [ARGS]...")
        pid, words = int(words[0]), words[1:]
    with handle(pid, vm_name) as jvm:
        output = jvm.jcmd(" ".join(words), timeout)
    click.echo(output, nl=not output.endswith("\n"))


def format_event(event: GcEvent) -> str:
    at = f"{event.start:10.3f}s" if event.start is not None else " " * 11
    gc_id = f"GC({event.gc_id})" if event.gc_id is not None else ""
    text = f"{at} {event.kind:<10} {gc_id:<8} {event.name}"
    if event.cause:
        text += f" ({event.cause})"
    if event.heap_before is not None and event.heap_after is not None:
        cap = f"({_mb(event.heap_capacity)})" if event.heap_capacity is not None else ""
        text += f" {_mb(event.heap_before)}->{_mb(event.heap_after)}{cap}"
    text += f" {event.duration * 1e3:.3f}ms"
    if event.time_to_safepoint is not None:
        text += f" ttsp {event.time_to_safepoint * 1e3:.3f}ms"
    return text


@jvm_group.command("events")
@click.argument("pid", type=int, required=False)
@click.option("--vm", "vm_name", metavar="NAME", help="The JVM inside the osv-java VM NAME (see `jvm list`).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event.")
@click.option(
    "--duration", type=float, metavar="SECONDS", help="Stop after SECONDS (default: until the JVM exits)."
)
@click.option(
    "--safepoints/--no-safepoints", default=True, help="Also show safepoints that are not GC pauses."
)
def events_command(pid: int | None, vm_name: str | None, as_json: bool, duration: float | None,
                   safepoints: bool) -> None:
    """Stream GC pauses, concurrent cycles and safepoints of JVM PID (or of the JVM in VM NAME) as they happen."""
    with handle(pid, vm_name) as jvm, jvm.events() as source:
        try:
            for event in source.events(timeout=duration):
                if event.kind == SAFEPOINT and not safepoints:
                    continue
                click.echo(json.dumps(event.to_json()) if as_json else format_event(event))
        except KeyboardInterrupt:
            pass
        except BrokenPipeError:  # the reader had enough (`| head`): a normal end for a stream
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush there


PAUSE_DECORATORS = "timenanos,uptimenanos,level,tags"  # nanoTime: how late we read each line


@jvm_group.command("pauses")
@click.argument("pid", type=int, required=False)
@click.option("--vm", "vm_name", metavar="NAME", help="The JVM inside the osv-java VM NAME (see `jvm list`).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines: one per pause, and a summary every --interval.")
@click.option("--interval", type=float, default=1.0, show_default=True, metavar="SECONDS",
              help="Refresh (and summary) period.")
@click.option("--duration", type=float, metavar="SECONDS", help="Stop after SECONDS (default: until the JVM exits).")
def pauses_command(pid: int | None, vm_name: str | None, as_json: bool, interval: float,
                   duration: float | None) -> None:
    """Live pause picture of JVM PID (or of the JVM in VM NAME): each pause's cause, time to safepoint
    and duration, percentiles and time stopped over 10 s, 1 min and 10 min, the next young and major
    collection predicted from occupancy and allocation rate, and how late the pauses were learned."""
    from gc_hooks.pauses import PausePicture
    from gc_hooks.stw import heap_sample

    if interval <= 0:
        raise click.BadParameter("must be positive", param_hint="--interval")
    picture = PausePicture()
    with handle(pid, vm_name) as jvm, jvm.events(decorators=PAUSE_DECORATORS, starts=True) as source:
        title = jvm.title
        tty = sys.stdout.isatty() and not as_json
        next_sample = next_refresh = 0.0
        sample_every = 0.1 if pid is not None else max(0.5, interval)  # a VM's counters cross the relay
        ended = False

        def refresh() -> bool:
            """Sample the counters and redraw when due; True when the JVM is gone."""
            nonlocal next_sample, next_refresh, ended
            now = time.monotonic()
            if now >= next_sample:
                next_sample = now + sample_every
                try:
                    stats = jvm.stats()
                except JvmError:
                    ended = True
                    return True
                picture.sample(heap_sample(stats, now), stats.uptime)
            if now < next_refresh:
                return ended
            next_refresh = now + interval
            if as_json:
                click.echo(json.dumps({"type": "summary", "time": time.time(), **picture.summary()}))
            else:
                click.echo(("\x1b[H\x1b[J" if tty else "\n") + picture.table(title))
            return pid is not None and not jvm.running()

        try:
            refresh()
            for event in source.stream.events(duration, until=refresh):
                pause = picture.event(event, time.monotonic() if jvm.same_clock else None)
                if pause is not None and as_json:
                    click.echo(json.dumps({"type": "pause", **event.to_json()}))
                refresh()
        except KeyboardInterrupt:
            pass
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@click.command("shell")
@click.argument("pid", type=int, required=False)
@click.option("--vm", "vm_name", metavar="NAME", help="The JVM inside the osv-java VM NAME: then no PID.")
@click.option(
    "--timeout", type=float, metavar="SECONDS", help="Seconds to wait for the gateway (30; 180 for --vm)."
)
def shell_command(pid: int | None, vm_name: str | None, timeout: float | None) -> None:
    """Open a Python prompt connected to the objects of running JVM PID, or of the JVM in VM NAME (py4j).

    In a VM the gateway listens on the guest's address and a loopback port of this host is forwarded
    to it while the prompt runs.
    """
    with handle(pid, vm_name) as jvm:
        jvm.shell(timeout)


__all__ = ["jvm_group", "shell_command", "JvmError"]
