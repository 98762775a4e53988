"""`osv-java validate IMAGE_DIR|APP`: check an image or an app without booting anything.

Exit statuses: 0 clean (info findings allowed), 1 with error or warning findings. Findings go to
stdout, as lines or (--json) as a list of objects, so they can be piped. When the check itself cannot
run (a path that does not exist, a folder that is not an image, no usable JDK, an unreadable file) the
error takes every command's way out (osv_java.cli.ToolGroup): one `osv-java: error:` line and a hint on
stderr, exit status 125; click's usage errors (an unknown option) exit with 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from jvmbridge import jdk as jdks
from jvmbridge.errors import OsvJavaError, UsageError
from kernel.validate.checks import Finding, validate_app, validate_image

EXIT_CLEAN = 0
EXIT_FINDINGS = 1


def _app_findings(
    target: str, classpath: str | None, jdk_spec: str | None, lang: str | None, with_runtimes: tuple[str, ...]
) -> list[Finding]:
    """Resolve the app like `run` does; a broken app is a finding, a bad command line an OsvJavaError."""
    from osv_java import launch  # late: it pulls in the image builder

    if classpath is None:
        path = Path(target)
        if not path.exists() and not path.is_symlink():
            raise UsageError(
                f"{path} does not exist", hint="give an image folder (osv-java build -o DIR) or an app file"
            )
        if path.is_dir():
            raise UsageError(
                f"{path} is a folder but not an osv-java image (it has no image.json)",
                hint="give an image folder made by `osv-java build APP -o DIR`, or a jar or script",
            )
    jdk = jdks.select(jdk_spec)
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
def validate_command(
    target: str,
    classpath: str | None,
    jdk_spec: str | None,
    lang: str | None,
    with_runtimes: tuple[str, ...],
    as_json: bool,
) -> None:
    """Check an image folder or an app: ELF files, JNI libraries, main class, modules, manifest, kernel.

    Exit status 0 when clean, 1 with error or warning findings, 125 when the check cannot run.
    """
    try:
        folder = Path(target)
        if classpath is None and folder.is_dir() and (folder / "image.json").exists():
            findings = validate_image(folder)
        else:
            findings = _app_findings(target, classpath, jdk_spec, lang, with_runtimes)
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        raise OsvJavaError(
            f"cannot validate {target}: {exc.strerror}{where}",
            hint="check the files are readable and the temporary folder ($TMPDIR) has space",
        ) from exc
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
