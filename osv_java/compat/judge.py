"""Judging a cell's output and exit status against what its example or program expects."""

from __future__ import annotations

from osv_java.compat.model import CONSOLE_LINES, EXIT_OSV_FAILURE, EXIT_SIGINT, Expected


def short(text: str, limit: int = 100) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


def first_difference(stream: str, expected: str, got: str) -> str | None:
    """One line saying where `got` first differs from `expected`, None when they are equal."""
    if expected == got:
        return None
    want, have = expected.splitlines(keepends=True), got.splitlines(keepends=True)
    for i, (w, h) in enumerate(zip(want, have, strict=False)):
        if w != h:
            return f"{stream} line {i + 1}: expected {short(w)}, got {short(h)}"
    if len(have) < len(want):
        return f"{stream}: {len(have)} lines, expected {len(want)} (first missing: {short(want[len(have)])})"
    return f"{stream}: {len(have) - len(want)} unexpected extra line(s), first {short(have[len(want)])}"


def console_lines(stdout: str, stderr: str, lines: int = CONSOLE_LINES) -> tuple[str, ...]:
    """The first lines of what the run printed, for the failure report."""
    out: list[str] = []
    for name, text in (("stdout", stdout), ("stderr", stderr)):
        shown = text.splitlines()
        out.append(f"--- {name} ({len(shown)} lines{', first ' + str(lines) if len(shown) > lines else ''}) ---")
        out += shown[:lines]
    return tuple(out)


def osv_failure(stderr: str) -> str:
    """The `osv-java: error:` line of a run that failed before or around the app (status 125)."""
    for line in stderr.splitlines():
        if line.startswith("osv-java: error:"):
            return "osv-java failed: " + line.removeprefix("osv-java: error:").strip()
    return f"osv-java failed with status {EXIT_OSV_FAILURE}"


FATAL_ERROR = "# A fatal error has been detected by the Java Runtime Environment:"


REPORT_SAVED = "# An error report file with more information is saved as:"


def jvm_crash_report(stdout: str) -> str | None:
    """The path of the hs_err report a JVM that died of a fatal error names on its stdout, if any."""
    if FATAL_ERROR not in stdout:
        return None
    lines = stdout.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.strip() == REPORT_SAVED:
            return lines[i + 1].removeprefix("#").strip() or None
    return None


def judge_example(expected: Expected, stdout: str, stderr: str, status: int) -> tuple[str, tuple[str, ...]]:
    """('', ()) when the run matches expected.json, else (one-line reason, expected-vs-got details)."""
    problems: list[str] = []
    if status != expected.exit:
        problems.append(f"exit {status}, expected {expected.exit}")
    for stream, want, got in (("stdout", expected.stdout, stdout), ("stderr", expected.stderr, stderr)):
        diff = first_difference(stream, want, got)
        if diff:
            problems.append(diff)
    if not problems:
        return "", ()
    reason = osv_failure(stderr) if status == EXIT_OSV_FAILURE != expected.exit else problems[0]
    return reason, (*problems, *console_lines(stdout, stderr))


def judge_program(program: object, stdout: str, stderr: str, status: int, *, stopped: bool = False
                  ) -> tuple[str, tuple[str, ...]]:
    """The same for a third-party program: its exit status and its stdout/stderr patterns.

    `stopped`: the run was ended with SIGINT (a server), so the JVM's 130 is the expected status.
    """
    from osv_java.compat.thirdparty import ThirdParty

    assert isinstance(program, ThirdParty)
    want = EXIT_SIGINT if stopped else program.exit
    problems: list[str] = []
    if status != want:
        problems.append(f"exit {status}, expected {want}")
    if not program.stdout_ok(stdout):
        kind = "the pattern" if program.stdout_is_regex else ""
        shown = short(program.stdout) if not program.stdout_is_regex else f"/{program.stdout}/"
        problems.append(f"stdout does not match {kind or 'the expected text'} {shown}: got {short(stdout)}")
    if not program.stderr_ok(stderr):
        problems.append(f"stderr does not match /{program.stderr_regex}/: got {short(stderr)}")
    if not problems:
        return "", ()
    reason = osv_failure(stderr) if status == EXIT_OSV_FAILURE != want else problems[0]
    return reason, (*problems, *console_lines(stdout, stderr))
