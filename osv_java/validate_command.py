"""`osv-java validate IMAGE_DIR|APP`: check an image or an app without booting anything.

Exit statuses: 0 clean (info findings allowed), 1 with error or warning findings, 2 for usage errors
(a path that does not exist, a folder that is not an image, a bad option value). Findings go to
stdout, as lines or (--json) as a list of objects, so they can be piped; errors about the command
itself go to stderr as one `osv-java: error:` line.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import click

from jvmbridge import jdk as jdks
from jvmbridge.errors import OsvJavaError
from kernel.validate.checks import Finding, validate_app, validate_image

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _usage_error(message: str, hint: str | None) -> None:
    click.echo(f"osv-java: error: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
    sys.exit(EXIT_USAGE)


def _app_findings(
    target: str, classpath: str | None, jdk_spec: str | None, lang: str | None, with_runtimes: tuple[str, ...]
) -> list[Finding]:
    """Resolve the app like `run` does; a broken app is a finding, a bad command line a usage error."""
    from osv_java import launch  # late: it pulls in the image builder

    if classpath is None:
        path = Path(target)
        if not path.exists() and not path.is_symlink():
            _usage_error(f"{path} does not exist", "give an image folder (osv-java build -o DIR) or an app file")
        if path.is_dir():
            _usage_error(
                f"{path} is a folder but not an osv-java image (it has no image.json)",
                "give an image folder made by `osv-java build APP -o DIR`, or a jar or script",
            )
    try:
        jdk = jdks.select(jdk_spec)
    except OsvJavaError as exc:
        _usage_error(exc.message, exc.hint)
    try:
        spec = launch.resolve_app(target, [], classpath, lang, with_runtimes, jdk.feature, on_host=False).spec
    except OsvJavaError as exc:
        code = "no-main-class" if "no Main-Class" in exc.message else "app-unreadable"
        shown = classpath or target
        message = exc.message
        for prefix in (shown, str(Path(shown).resolve())):
            if message.startswith(prefix + " "):
                message = message[len(prefix) + 1 :]
        return [Finding("error", code, shown, message, exc.hint or "")]
    return validate_app(spec, jdk, None)


@click.command("validate")
@click.argument("target", metavar="IMAGE_DIR|APP")
@click.option(
    "-cp",
    "--class-path",
    "--classpath",
    "classpath",
    metavar="PATH",
    help="Jars and class folders joined by ':'; TARGET is then the main class.",
)
@click.option("--jdk", "jdk_spec", metavar="PATH|VERSION", help="JDK the app will be linked from.")
@click.option("--lang", metavar="NAME", help="Language of a script when its file ending does not say.")
@click.option("--with", "with_runtimes", multiple=True, metavar="LANG", help="Add a language runtime.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as a JSON list.")
@click.pass_context
def validate_command(
    ctx: click.Context,
    target: str,
    classpath: str | None,
    jdk_spec: str | None,
    lang: str | None,
    with_runtimes: tuple[str, ...],
    as_json: bool,
) -> None:
    """Check an image folder or an app: ELF files, JNI libraries, main class, modules, manifest, kernel.

    Exit status 0 when clean, 1 with error or warning findings, 2 on usage errors.
    """
    debug = bool(ctx.find_root().params.get("debug", False))
    try:
        folder = Path(target)
        if classpath is None and folder.is_dir() and (folder / "image.json").exists():
            findings = validate_image(folder)
        else:
            findings = _app_findings(target, classpath, jdk_spec, lang, with_runtimes)
    except KeyboardInterrupt:
        click.echo("osv-java: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except OsvJavaError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"osv-java: error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        sys.exit(EXIT_FINDINGS)
    except OSError as exc:
        if debug:
            traceback.print_exc()
        where = f" {exc.filename}" if exc.filename else ""
        click.echo(f"osv-java: error: cannot validate {target}: {exc.strerror}{where}", err=True)
        click.echo("hint: check the files are readable and the temporary folder ($TMPDIR) has space", err=True)
        sys.exit(EXIT_FINDINGS)
    _report(findings, as_json)
    sys.exit(EXIT_FINDINGS if any(f.severity in ("error", "warning") for f in findings) else EXIT_CLEAN)


def _report(findings: list[Finding], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([f.as_dict() for f in findings], indent=1))
        return
    for finding in findings:
        click.echo(finding.line())
    counts = {s: sum(1 for f in findings if f.severity == s) for s in ("error", "warning", "info")}
    if not findings:
        click.echo("clean: no findings")
    else:
        click.echo(f"{counts['error']} errors, {counts['warning']} warnings, {counts['info']} info")
