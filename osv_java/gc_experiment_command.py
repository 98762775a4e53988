"""`osv-java gc-experiment`: sweep collectors, heap sizes and JDKs over an app, as `osv-java run` runs,
and report which configuration is best per objective against the default, with confidence intervals."""

from __future__ import annotations

import datetime
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

import click

from gc_hooks.experiment import design, execute, plots
from gc_hooks.experiment import report as reports
from jvmbridge import jdk as jdks
from jvmbridge.errors import UsageError
from kernel import cache
from kernel.build import background_training

EXIT_INTERRUPTED = 130
TRAINING_WAIT_S = 600.0  # a training ends within its own limits (kernel/build/startup_archive.py), long before


def _run_help() -> str:
    proc = subprocess.run([sys.executable, "-m", "osv_java", "run", "--help"], capture_output=True, text=True,
                          check=False)
    return proc.stdout


def _check_run_options(axes: dict[str, list[str | None]]) -> None:
    """--hugepages/--dynamic-heap are axes only where `osv-java run --help` lists them."""
    asked = [name for name, values in axes.items() if any(v is not None for v in values)]
    if not asked:
        return
    text = _run_help()
    for name in asked:
        if f"--{name}" not in text:
            raise UsageError(f"osv-java run has no --{name} option in this version, so --{name} cannot be an "
                             "axis of the experiment")
        listed = re.search(rf"--{re.escape(name)} \[([\w|]+)\]", text)
        choices = listed.group(1).split("|") if listed else []
        wrong = [v for v in axes[name] if v is not None and choices and v not in choices]
        if wrong:
            raise UsageError(f"--{name}: {wrong[0]!r} is not a value osv-java run takes",
                             hint=f"choose from {', '.join(choices)}")


def _available(configs: list[design.Config]) -> tuple[list[design.Config], list[tuple[str, str]], str]:
    """Drop configurations whose collector the JDK lacks; (kept, skipped with why, a note on the JDKs)."""
    kept, skipped, notes = [], [], []
    seen: dict[str | None, jdks.Jdk] = {}
    for config in configs:
        if config.jdk not in seen:
            seen[config.jdk] = jdks.select(config.jdk)
            notes.append(f"{config.jdk or 'default'} = {seen[config.jdk].describe()}")
        jdk = seen[config.jdk]
        if config.gc and design.GCS[config.gc][1] not in jdk.gcs:
            skipped.append((config.key, f"{jdk.describe()} has no {design.GCS[config.gc][1]} collector"))
        else:
            kept.append(config)
    return kept, skipped, "; ".join(notes)


class Progress:
    """One line on stderr, rewritten, with the time left; silent when stderr is not a terminal."""

    def __init__(self, total: int, jobs: int) -> None:
        self.total, self.jobs = total, jobs
        self.done = 0
        self.seconds: list[float] = []
        self.on = sys.stderr.isatty()
        self.started = time.monotonic()

    def update(self, record: execute.RunRecord) -> None:
        self.done += 1
        self.seconds.append(record.wall_s or 0.0)
        if not self.on:
            return
        left = sum(self.seconds) / len(self.seconds) * (self.total - self.done) / self.jobs
        minutes, secs = divmod(int(left + 0.5), 60)
        line = (f"[{self.done}/{self.total}] ~{minutes}m{secs:02d}s left · run {record.index} {record.config} "
                f"{record.outcome} {record.wall_s or 0:.1f}s")
        click.echo("\r\033[K" + line, nl=False, err=True)

    def finish(self) -> None:
        if self.on:
            click.echo("\r\033[K", nl=False, err=True)


def _run_all(runs: list[design.Run], jobs: int, one: Callable[[design.Run], execute.RunRecord]) -> bool:
    """Run the schedule in order, `jobs` at a time; True when Ctrl-C stopped it (the runs going are
    stopped too and recorded as interrupted)."""
    pool = ThreadPoolExecutor(max_workers=jobs)
    pending: set[Future[execute.RunRecord]] = set()
    queue = list(runs)
    try:
        while queue or pending:
            while queue and len(pending) < jobs:
                pending.add(pool.submit(one, queue.pop(0)))
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()
    except KeyboardInterrupt:
        execute.stop_all()
        click.echo("\nosv-java: interrupted; writing the report of the runs done so far", err=True)
        return True
    except BaseException:
        execute.stop_all()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return False


@click.command("gc-experiment", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": True})
@click.argument("app")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--gcs", default="g1,parallel,serial,zgc,shenandoah", show_default=True, metavar="LIST",
              help="Collectors: g1, parallel, serial, zgc, shenandoah, default (no flag).")
@click.option("--heaps", default="default", show_default=True, metavar="LIST",
              help="Maximum heaps (-Xmx): 256m,1g,...; default = no -Xmx.")
@click.option("--jdks", default=None, metavar="LIST", help="JDKs (17,25 or paths); default: osv-java run's choice.")
@click.option("--hugepages", "hugepages", default=None, metavar="LIST",
              help="Values of osv-java run --hugepages to compare (only if osv-java run has that option).")
@click.option("--dynamic-heap", "dynamic_heap", default=None, metavar="LIST",
              help="Values of osv-java run --dynamic-heap to compare (only if osv-java run has that option).")
@click.option("--target", type=click.Choice(["process", "vm"]), default="process", show_default=True,
              help="Where the JVM runs; VMs under software emulation are too slow to compare speed.")
@click.option("--repeat", type=click.IntRange(min=1), default=5, show_default=True,
              help="Measured runs per configuration.")
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True,
              help="Rounds run first and not counted (caches, image builds, CPU frequency).")
@click.option("--objective", type=click.Choice(reports.OBJECTIVES), default="throughput", show_default=True,
              help="What the one-line recommendation optimises.")
@click.option("--metric", default=None, metavar="NAME",
              help="Judge the objective on this figure instead (wall_s, pause_max_ms, app:NAME, ...).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs at once (more than 1 makes them compete for the CPUs: said in the report).")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Report folder (default: gc-experiment-DATE-TIME), replaced whole when the report is done.")
@click.option("--jvm-opt", "jvm_opts", multiple=True, metavar="OPT", help="A JVM option for every run (repeatable).")
@click.option("-m", "--memory", default=None, help="osv-java run -m for every run (sets the JVM's default heap).")
@click.option("-c", "--cpus", default=None, help="osv-java run -c for every run.")
@click.option("--timeout", type=click.FloatRange(min=1), default=600, show_default=True, metavar="SECONDS",
              help="Longest a run may take; a run stopped there is reported as a timeout.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the run order.")
def gc_experiment_command(app: str, args: tuple[str, ...], gcs: str, heaps: str, jdks: str | None,
                          hugepages: str | None, dynamic_heap: str | None, target: str, repeat: int, warmup: int,
                          objective: str, metric: str | None, jobs: int, output: Path | None,
                          jvm_opts: tuple[str, ...], memory: str | None, cpus: str | None, timeout: float,
                          seed: int) -> None:
    """Run APP [ARGS...] under every combination of collector, heap and JDK, interleaved and repeated,
    and write a report (results.json, results.csv, report.md, plots) with the best configuration per
    objective against the default (no GC or heap flags). The app may print `RESULT name=value` lines
    (e.g. `RESULT ops_per_s=1234`): they become figures of the report. Options may follow APP; put the
    app's own arguments after `--` when they look like options.
    """
    try:
        gc_axis, heap_axis = design.parse_gcs(gcs), design.parse_heaps(heaps)
        axes = {"hugepages": design.parse_switch(hugepages, "hugepages"),
                "dynamic-heap": design.parse_switch(dynamic_heap, "dynamic-heap")}
    except UsageError as exc:  # a bad value of an option: click's usage error (exit 2)
        raise click.UsageError(exc.message + (f" ({exc.hint})" if exc.hint else "")) from None
    _check_run_options(axes)
    if metric:
        try:
            reports.metric(metric)
        except KeyError:
            raise click.BadParameter(f"unknown figure {metric!r}", param_hint="--metric") from None
    if not Path(app).exists():
        raise UsageError(f"{app}: no such file", hint="give the app as for osv-java run: a jar or a script")
    configs = design.design(gc_axis, heap_axis, design.parse_jdks(jdks), axes["hugepages"], axes["dynamic-heap"])
    configs, skipped, jdk_note = _available(configs)
    default = design.reference(configs)
    runs = design.schedule(configs, repeat, warmup, seed)
    started_at = datetime.datetime.now().astimezone()
    destination = output or Path(f"gc-experiment-{started_at:%Y%m%d-%H%M%S}")
    folder = reports.staging(destination)
    options = [*(["-m", memory] if memory else []), *(["-c", cpus] if cpus else [])]
    words = sys.argv[sys.argv.index("gc-experiment") + 1:] if "gc-experiment" in sys.argv else [app, *args]
    meta = {"app": app, "args": list(args), "command": shlex.join(["osv-java", "gc-experiment", *words]),
            "started": started_at.isoformat(timespec="seconds"),
            "host": f"{platform.node()}, {os.cpu_count()} CPUs, Linux {platform.release()}", "cpus": os.cpu_count(),
            "target": target, "jdk_note": jdk_note, "repeat": repeat, "warmup": warmup, "jobs": jobs,
            "seed": seed, "objective": objective, "timeout": timeout, "jvm_options": list(jvm_opts),
            "configurations": len(configs), "runs_planned": len(runs)}
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    progress = Progress(len(runs), jobs)
    records: list[execute.RunRecord] = []
    lock = threading.Lock()
    start = time.monotonic()

    loads = [os.getloadavg()[0]]

    def one(run: design.Run) -> execute.RunRecord:
        relative = f"runs/{run.index:04d}-{run.config.key}"
        record = execute.execute(run, [app, *args], target, folder / relative, relative, options, jvm_opts, timeout)
        # the archive a process run's first run of the app leaves to be made: the next run neither
        # competes with that training nor starts otherwise than the runs after it
        background_training.wait_for_all(cache.root() / "startup", TRAINING_WAIT_S)
        with lock:
            records.append(record)
            loads.append(os.getloadavg()[0])
            progress.update(record)
        return record

    try:
        interrupted = _run_all(runs, jobs, one)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        progress.finish()
    meta["seconds"] = round(time.monotonic() - start, 1)
    meta["interrupted"] = interrupted
    meta["load_max"] = round(max(loads), 2)  # 1-minute load average, sampled after each run
    records.sort(key=lambda r: r.index)
    try:
        result = reports.Report(meta, configs, records, default.key, objective, metric, skipped)
        if interrupted:
            result.caveats.insert(0, f"interrupted after {len(records)} of {len(runs)} runs")
        drawn = plots.draw(folder, result)
        if not drawn:
            result.caveats.append("no plots: matplotlib is not installed (pip install 'osv-java[plots]')")
        reports.write(folder, result, drawn)
        reports.publish(folder, destination)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # nothing half-written is left beside DIR
        raise
    click.echo(result.recommendation)
    click.echo(f"report: {destination / 'report.md'}", err=True)
    if interrupted:
        sys.exit(EXIT_INTERRUPTED)
