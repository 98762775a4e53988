"""The `osv-java compat` command."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import click

from osv_java.compat.matrix import run_matrix
from osv_java.compat.model import (
    DEFAULT_JDKS,
    DEFAULT_TIMEOUT,
    EXAMPLES,
    EXIT_SIGINT,
    TARGETS,
    CellResult,
    CompatError,
    example_names,
    plan,
    split_list,
)
from osv_java.compat.runner import Runner


@click.command("compat")
@click.option("--langs", default="all", show_default=True, metavar="LIST",
              help="Comma-separated example folders (languages), 'all' or 'none'.")
@click.option("--jdks", default=DEFAULT_JDKS, show_default=True, metavar="LIST",
              help="Comma-separated JDKs: feature versions or JDK folders.")
@click.option("--targets", default="vm,process", show_default=True, metavar="LIST", help="vm, process or both.")
@click.option("--apps", "apps", is_flag=False, flag_value="all", default=None, metavar="[LIST]",
              help="Also run the third-party programs (all, or the ones named).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "junit", "markdown"]), default="table",
              show_default=True, help="Report format, for -o (or stdout without -o).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report here (the table still goes to stdout).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=min(2, os.cpu_count() or 1), show_default=True,
              help="VMs run at once (host JVMs: twice as many).")
@click.option("--timeout", type=click.FloatRange(min=1), default=DEFAULT_TIMEOUT, show_default=True,
              metavar="SECONDS", help="Longest a cell may take, image build included.")
@click.option("--examples", type=click.Path(file_okay=False, exists=True, path_type=Path), default=EXAMPLES,
              help="Folder of example folders, each with an expected.json.")
def compat_command(langs: str, jdks: str, targets: str, apps: str | None, fmt: str, output: Path | None,
                   jobs: int, timeout: float, examples: Path) -> None:
    """Run every example on every JDK and target and print the compatibility matrix.

    Exit status 0 only when no cell failed; skipped cells (a JDK or runtime not installed) say why.
    """
    from osv_java.compat import report, thirdparty

    try:
        lang_names = split_list(langs, example_names(examples), "language")
        app_names = split_list(apps or "none", [p.name for p in thirdparty.PROGRAMS], "program")
        target_names = split_list(targets, TARGETS, "target")
        jdk_specs = list(dict.fromkeys(w.strip() for w in jdks.split(",") if w.strip()))
        if not jdk_specs:
            raise click.BadParameter("give at least one JDK", param_hint="--jdks")
        cells = plan(lang_names, jdk_specs, target_names, app_names, examples)
    except CompatError as exc:
        raise click.ClickException(exc.message + (f" (hint: {exc.hint})" if exc.hint else "")) from None
    if not cells:
        raise click.UsageError("nothing to run: no languages and no --apps")

    def progress(result: CellResult, done: int, total: int) -> None:
        why = f": {result.reason}" if result.reason else ""
        click.echo(f"[{done}/{total}] {result.status:<7} {result.seconds:6.1f}s  {result.cell.id}{why}", err=True)

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started in the background by a shell: runs are stopped with SIGINT (servers, timeouts), and a
        # JVM that inherits it ignored would not stop; Ctrl-C handling is restored for compat and them.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    runner = Runner(examples=examples.resolve(), jobs=jobs, timeout=timeout)
    try:
        results = run_matrix(cells, runner, progress)
    except KeyboardInterrupt:
        click.echo("osv-java: interrupted; every run was stopped", err=True)
        sys.exit(EXIT_SIGINT)
    meta = report.Meta(seconds=time.monotonic() - started, jobs=jobs, timeout=timeout)
    table = report.render("table", results, meta)
    if output is not None:
        try:
            report.write_atomically(output, report.render(fmt, results, meta))
        except OSError as exc:
            raise click.ClickException(f"cannot write the report to {output}: {exc.strerror}") from None
        click.echo(table)
    elif fmt == "table":
        click.echo(table)
    else:
        click.echo(report.render(fmt, results, meta))
    sys.exit(1 if any(r.status == "failed" for r in results) else 0)
