"""`osv-java compat`: every language example and third-party program on every JDK and target, as a matrix.

Each cell runs `osv-java run` in its own process, exactly as a user would, so a cell exercises the whole
path (resolve, build, boot, console, exit status) and a crash or a hang in one cell cannot take the
others with it. What cannot run here (a JDK, a language runtime or QEMU that is not installed) is
decided before anything starts and shows as skipped with the reason, never as passed.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import click

from jvmbridge.errors import OsvJavaError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "lang"
TARGETS = ("vm", "process")
DEFAULT_JDKS = "17,25"
DEFAULT_TIMEOUT = 900.0
EXIT_OSV_FAILURE = 125
EXIT_SIGINT = 130
CONSOLE_LINES = 12
BUILD_HINT = "run `python -m examples.build` to compile the examples"


@dataclass(frozen=True)
class Cell:
    """One run of the matrix: a language example's program (or a third-party program) on a JDK and target."""

    kind: str  # "lang" or "app"
    name: str  # the example's folder name, or the third-party program's name
    program: str  # file in the example folder; the program's name for "app"
    jdk: str  # feature version ("17") or a JDK folder, as --jdk takes it
    target: str  # "vm" or "process"
    with_runtimes: tuple[str, ...] = ()

    @property
    def row(self) -> str:
        if self.kind == "app":
            return f"{self.name} (app)"
        extra = f" --with {','.join(self.with_runtimes)}" if self.with_runtimes else ""
        return f"{self.name} {self.program}{extra}"

    @property
    def column(self) -> str:
        return f"jdk{self.jdk} {self.target}"

    @property
    def id(self) -> str:
        return f"{self.row} [{self.column}]"


@dataclass
class CellResult:
    """What happened in a cell; `reason` is one line, `details` the expected-vs-got and console lines."""

    cell: Cell
    status: str  # "passed", "failed" or "skipped"
    seconds: float = 0.0  # the whole cell, image build included
    reason: str = ""
    details: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    build_seconds: float = 0.0  # of `seconds`, building the image (VM cells; fast when cached)


@dataclass(frozen=True)
class Expected:
    """An example's expected.json: what to run it with and its exact result."""

    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    stdout: str
    stderr: str
    exit: int
    runs: tuple[tuple[str, tuple[str, ...]], ...]


class CompatError(OsvJavaError):
    """The matrix cannot be planned (a bad example folder, an unknown name)."""


def load_expected(folder: Path) -> Expected:
    """Read `folder`/expected.json; CompatError naming the file and the missing key."""
    path = folder / "expected.json"
    try:
        data = json.loads(path.read_text())
        return Expected(
            args=tuple(str(a) for a in data["args"]),
            env=tuple((str(k), str(v)) for k, v in data["env"].items()),
            stdout=str(data["stdout"]),
            stderr=str(data["stderr"]),
            exit=int(data["exit"]),
            runs=tuple((str(r["program"]), tuple(str(w) for w in r.get("with", ()))) for r in data["runs"]),
        )
    except OSError as exc:
        raise CompatError(f"cannot read {path}: {exc.strerror}",
                          hint="each example folder needs an expected.json") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CompatError(f"{path} is not a valid expected.json ({type(exc).__name__}: {exc})",
                          hint="see examples/lang/README.md for its keys") from None


def example_names(examples: Path) -> list[str]:
    """The example folders under `examples`, in the language table's order, then the others by name."""
    from kernel.languages import LANGUAGES

    found = sorted(p.name for p in examples.iterdir() if (p / "expected.json").is_file())
    order = {lang.name: i for i, lang in enumerate(LANGUAGES)}
    return sorted(found, key=lambda n: (order.get(n, len(order)), n))


def plan(langs: Sequence[str], jdks: Sequence[str], targets: Sequence[str], apps: Sequence[str],
         examples: Path) -> list[Cell]:
    """Every cell of the matrix: each run of each example and each program, on each JDK and target."""
    expected = {name: load_expected(examples / name) for name in langs}
    cells: list[Cell] = []
    for jdk in jdks:
        for target in targets:
            for name in langs:
                cells += [Cell("lang", name, program, jdk, target, with_)
                          for program, with_ in expected[name].runs]
            cells += [Cell("app", name, name, jdk, target) for name in apps]
    return cells


def split_list(value: str, known: Sequence[str], what: str) -> list[str]:
    """A comma-separated option value: 'all' is every known name, 'none' or '' is nothing."""
    words = [w.strip() for w in value.split(",") if w.strip()]
    if words in (["all"],):
        return list(known)
    if words in ([], ["none"]):
        return []
    unknown = [w for w in words if w not in known]
    if unknown:
        raise click.BadParameter(f"unknown {what} {', '.join(unknown)} (known: {', '.join(known)})")
    return list(dict.fromkeys(words))


# --- what can run here ---------------------------------------------------------------------------


@functools.cache
def _jdk_problem(spec: str) -> str | None:
    from jvmbridge import jdk as jdks

    try:
        jdks.select(spec)
    except OsvJavaError as exc:
        return f"JDK {spec} is not installed: {exc.message}"
    return None


@functools.cache
def _qemu_problem() -> str | None:
    from kernel import qemu

    try:
        qemu.qemu_binary()
    except OsvJavaError as exc:
        return f"{exc.message} (needed by --target vm)"
    return None


@functools.cache
def _runtime_problem(language: str, library_only: bool) -> str | None:
    from kernel import languages

    try:
        languages.runtime_classpath(languages.by_name(language), library_only=library_only)
    except OsvJavaError as exc:
        return f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    return None


@functools.cache
def _app_problem(name: str) -> str | None:
    from kernel import thirdparty

    try:
        thirdparty.classpath(thirdparty.by_name(name))
    except OsvJavaError as exc:
        return f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    return None


def precheck(cell: Cell, examples: Path) -> CellResult | None:
    """A skipped (or failed) result when `cell` cannot run here, None when it can."""
    from kernel import languages

    def skipped(reason: str) -> CellResult:
        return CellResult(cell, "skipped", reason=reason)

    problem = _jdk_problem(cell.jdk) or (_qemu_problem() if cell.target == "vm" else None)
    if problem:
        return skipped(problem)
    if cell.kind == "app":
        problem = _app_problem(cell.name)
        return skipped(problem) if problem else None
    program = examples / cell.name / cell.program
    if not program.is_file():
        return CellResult(cell, "failed", reason=f"{program} is missing", details=(f"hint: {BUILD_HINT}",))
    if program.suffix not in (".jar", ".zip"):
        try:
            language = languages.detect(program)
        except OsvJavaError as exc:
            return CellResult(cell, "failed", reason=exc.message, details=(f"hint: {exc.hint}",))
        if language.runs_scripts:
            problem = _runtime_problem(language.name, False)
    for name in cell.with_runtimes:
        problem = problem or _runtime_problem(name, True)
    return skipped(problem) if problem else None


def _shares_full_jre(cell: Cell, examples: Path) -> bool:
    """True when the cell's image links every JDK module, so its JRE is the one other such cells use."""
    from kernel import languages

    if cell.kind == "app":
        return False  # run with -cp: jdeps decides its modules
    names = list(cell.with_runtimes)
    program = examples / cell.name / cell.program
    if program.suffix not in (".jar", ".zip"):
        names.append(languages.detect(program).name)
    return any(languages.by_name(n).needs_all_modules for n in names)


# --- judging a run ---------------------------------------------------------------------------------


def _short(text: str, limit: int = 100) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


def first_difference(stream: str, expected: str, got: str) -> str | None:
    """One line saying where `got` first differs from `expected`, None when they are equal."""
    if expected == got:
        return None
    want, have = expected.splitlines(keepends=True), got.splitlines(keepends=True)
    for i, (w, h) in enumerate(zip(want, have, strict=False)):
        if w != h:
            return f"{stream} line {i + 1}: expected {_short(w)}, got {_short(h)}"
    if len(have) < len(want):
        return f"{stream}: {len(have)} lines, expected {len(want)} (first missing: {_short(want[len(have)])})"
    return f"{stream}: {len(have) - len(want)} unexpected extra line(s), first {_short(have[len(want)])}"


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
    from kernel.thirdparty import ThirdParty

    assert isinstance(program, ThirdParty)
    want = EXIT_SIGINT if stopped else program.exit
    problems: list[str] = []
    if status != want:
        problems.append(f"exit {status}, expected {want}")
    if not program.stdout_ok(stdout):
        kind = "the pattern" if program.stdout_is_regex else ""
        shown = _short(program.stdout) if not program.stdout_is_regex else f"/{program.stdout}/"
        problems.append(f"stdout does not match {kind or 'the expected text'} {shown}: got {_short(stdout)}")
    if not program.stderr_ok(stderr):
        problems.append(f"stderr does not match /{program.stderr_regex}/: got {_short(stderr)}")
    if not problems:
        return "", ()
    reason = osv_failure(stderr) if status == EXIT_OSV_FAILURE != want else problems[0]
    return reason, (*problems, *console_lines(stdout, stderr))


# --- running one cell ------------------------------------------------------------------------------


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


class _Runs:
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


@dataclass
class Runner:
    """Runs cells as `osv-java run` processes, at most `jobs` VMs (and twice as many host JVMs) at once."""

    examples: Path = EXAMPLES
    jobs: int = 2
    timeout: float = DEFAULT_TIMEOUT
    runs: _Runs = field(default_factory=_Runs)
    port_locks: dict[int, threading.Lock] = field(default_factory=dict)

    def base_command(self, cell: Cell) -> list[str]:
        return [sys.executable, "-m", "osv_java", "run", "--target", cell.target, "--jdk", cell.jdk,
                "--timeout", f"{self.timeout:g}"]

    def app_words(self, cell: Cell) -> tuple[list[str], list[str], Path]:
        """(options naming the app, the app and its arguments, working folder), shared by build and run."""
        from kernel import thirdparty

        if cell.kind == "lang":
            folder = self.examples / cell.name
            expected = load_expected(folder)
            options = [f"--with={w}" for w in cell.with_runtimes]
            return options, [str((folder / cell.program).resolve()), *expected.args], folder.resolve()
        program = thirdparty.by_name(cell.name)
        cp = ":".join(str(p) for p in thirdparty.classpath(program))
        return ["-cp", cp], [program.main_class, *program.args], ROOT

    def command(self, cell: Cell, host_port: int | None = None) -> tuple[list[str], Path]:
        """The `osv-java run` command line of `cell` and the folder it runs in."""
        from kernel import thirdparty

        options, app, cwd = self.app_words(cell)
        argv = [*self.base_command(cell), *options]
        if cell.kind == "lang":
            argv += [f"--env={k}={v}" for k, v in load_expected(self.examples / cell.name).env]
            return [*argv, *app], cwd
        program = thirdparty.by_name(cell.name)
        argv += [f"--jvm-opt={opt}" for opt in program.jvm_options]
        if cell.target == "vm":
            # The program names its files relative to the repository root, its working folder; in the
            # guest that folder is the host's, and each file's folder is shared at the same path.
            argv += [f"--volume={folder}:{folder}:ro" for folder in _file_folders(program.files)]
        if program.http is not None and host_port is not None:
            argv.append(f"--publish=127.0.0.1:{host_port}:{program.http.port}")
        return [*argv, *app], cwd

    def build_command(self, cell: Cell, output: Path) -> tuple[list[str], Path]:
        """`osv-java build` of the cell's image: the run then finds it in the cache."""
        options, app, cwd = self.app_words(cell)
        argv = [sys.executable, "-m", "osv_java", "build", "--jdk", cell.jdk, *options, app[0], "-o", str(output)]
        return argv, cwd

    def build(self, cell: Cell) -> CellResult | None:
        """Build a VM cell's image first, so that what a first build says on stderr (linking a JRE, notes)
        is not taken for the app's output, and a build failure is reported as one. None when it built."""
        with tempfile.TemporaryDirectory(prefix="osv-java-compat-") as tmp:
            argv, cwd = self.build_command(cell, Path(tmp) / "image")
            proc, stdout, stderr, timed_out = self._run_to_end(argv, cwd, self.timeout)
        if timed_out:
            return CellResult(cell, "failed", reason=f"the image build timed out after {self.timeout:g} s",
                              details=console_lines(stdout, stderr), command=tuple(argv))
        if proc.returncode != 0:
            why = osv_failure(stderr).replace("osv-java failed", "the image build failed", 1)
            return CellResult(cell, "failed", reason=why, details=console_lines(stdout, stderr),
                              command=tuple(argv))
        return None

    def _run_to_end(
        self, argv: list[str], cwd: Path, timeout: float
    ) -> tuple[subprocess.Popen[bytes], str, str, bool]:
        """Run a command to its end or `timeout`; (process, stdout, stderr, timed out)."""
        with _Output() as output:
            proc = self._spawn(argv, cwd, output)
            try:
                proc.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                stop(proc)
                self.runs.remove(proc)
            stdout, stderr = output.read()
        return proc, stdout, stderr, timed_out

    def env(self) -> dict[str, str]:
        path = os.environ.get("PYTHONPATH")
        return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}

    def run(self, cell: Cell, on_built: Callable[[], None] | None = None) -> CellResult:
        """Run one cell and judge it; never raises for a failure of the run itself.

        `on_built` is called once the image is built (or failed to), before the VM boots.
        """
        start = time.monotonic()
        built = 0.0
        try:
            failed = self.build(cell) if cell.target == "vm" else None
            built = time.monotonic() - start
            if on_built is not None:
                on_built()
            result = failed or self._run(cell)
        except OsvJavaError as exc:
            result = CellResult(cell, "failed", reason=exc.message,
                                details=(f"hint: {exc.hint}",) if exc.hint else ())
        except OSError as exc:
            result = CellResult(cell, "failed", reason=f"could not run osv-java: {exc}")
        except Exception as exc:  # noqa: BLE001 - one broken cell must not hide the rest of the matrix
            result = CellResult(cell, "failed", reason=f"compat itself failed: {type(exc).__name__}: {exc}")
        result.seconds = time.monotonic() - start
        result.build_seconds = built
        return result

    def _run(self, cell: Cell) -> CellResult:
        from kernel import thirdparty

        program = thirdparty.by_name(cell.name) if cell.kind == "app" else None
        if program is not None and program.http is not None:
            return self._run_server(cell, program)
        argv, cwd = self.command(cell)
        proc, stdout, stderr, timed_out = self._run_to_end(argv, cwd, self.timeout + 15)
        status = proc.returncode
        if timed_out:
            return CellResult(cell, "failed", reason=f"timed out after {self.timeout:g} s",
                              details=console_lines(stdout, stderr), command=tuple(argv))
        if program is None:
            reason, details = judge_example(load_expected(self.examples / cell.name), stdout, stderr, status)
        else:
            reason, details = judge_program(program, stdout, stderr, status)
        report = jvm_crash_report(stdout)
        if reason and report:  # a JVM crash is a failure like any other; its report is kept
            details = (f"JVM fatal error report: {report}", *details)
        return CellResult(cell, "failed" if reason else "passed", reason=reason, details=details,
                          command=tuple(argv))

    def _spawn(self, argv: list[str], cwd: Path, output: _Output) -> subprocess.Popen[bytes]:
        if self.runs.stopping.is_set():
            raise CompatError("interrupted before the cell started")
        proc = subprocess.Popen(argv, cwd=cwd, env=self.env(), stdin=subprocess.DEVNULL, stdout=output.out,
                                stderr=output.err, start_new_session=True)
        self.runs.add(proc)
        return proc

    def _run_server(self, cell: Cell, program: object) -> CellResult:
        """Start the server, GET its page from the host through -p, check it, then stop it with SIGINT."""
        from kernel.thirdparty import ThirdParty

        assert isinstance(program, ThirdParty) and program.http is not None
        check = program.http
        # On the host (--target process) the JVM itself binds the guest port: one such cell at a time.
        lock = self.port_locks.setdefault(check.port, threading.Lock()) if cell.target == "process" else None
        if lock is not None:
            lock.acquire()
        try:
            host_port = free_port()
            argv, cwd = self.command(cell, host_port)
            url = f"http://127.0.0.1:{host_port}{check.path}"
            with _Output() as output:
                proc = self._spawn(argv, cwd, output)
                try:
                    got = wait_for_page(url, proc, time.monotonic() + self.timeout)
                finally:
                    stop(proc)
                    self.runs.remove(proc)
                stdout, stderr = output.read()
        finally:
            if lock is not None:
                lock.release()
        status = proc.returncode
        problems: list[str] = []
        if isinstance(got, str):
            problems.append(got)
        else:
            http_status, body = got
            if http_status != check.status:
                problems.append(f"GET {url} answered {http_status}, expected {check.status}")
            if check.body not in body:
                problems.append(f"GET {url}: the page lacks {_short(check.body)}; got {_short(body)}")
        reason, details = judge_program(program, stdout, stderr, status, stopped=True)
        if problems:
            stopped_ok = reason == ""
            details = (*problems, *(details or console_lines(stdout, stderr)))
            reason = problems[0] if stopped_ok or status != EXIT_OSV_FAILURE else reason
        return CellResult(cell, "failed" if reason else "passed", reason=reason, details=details,
                          command=tuple(argv))


class _Output:
    """A run's stdout and stderr in temporary files: no pipe can fill up while a server is checked."""

    def __enter__(self) -> _Output:
        self.out: IO[bytes] = tempfile.TemporaryFile()
        self.err: IO[bytes] = tempfile.TemporaryFile()
        return self

    def read(self) -> tuple[str, str]:
        texts = []
        for f in (self.out, self.err):
            f.seek(0)
            texts.append(f.read().decode(errors="replace"))
        return texts[0], texts[1]

    def __exit__(self, *exc: object) -> None:
        self.out.close()
        self.err.close()


def _file_folders(files: Sequence[str]) -> list[Path]:
    """The folders holding `files` (repository paths), without folders already inside another one."""
    folders = sorted({(ROOT / f) if (ROOT / f).is_dir() else (ROOT / f).parent for f in files})
    return [f for f in folders if not any(o != f and o in f.parents for o in folders)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_page(url: str, proc: subprocess.Popen[bytes], deadline: float) -> tuple[int, str] | str:
    """(status, body) of the first answer to GET `url`, or why there was none (the run ended, time ran out)."""
    while True:
        if proc.poll() is not None:
            return f"the server exited with status {proc.returncode} before answering GET {url}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return int(response.status), response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode(errors="replace")
        except OSError:
            pass
        if time.monotonic() > deadline:
            return f"no answer to GET {url} before the timeout"
        time.sleep(0.5)


# --- the matrix ------------------------------------------------------------------------------------


def prepare_vm() -> str | None:
    """Fetch the kernel and decide KVM or TCG once, so no cell does it (or says so) on its own."""
    from kernel import provision, qemu

    try:
        kernel = provision.default_kernel(progress=True)
        qemu.choose_accel("auto", kernel.image)
    except OsvJavaError as exc:
        return f"cannot boot VMs here: {exc.message}"
    return None


def run_matrix(cells: Sequence[Cell], runner: Runner,
               progress: Callable[[CellResult, int, int], None] | None = None) -> list[CellResult]:
    """Results for `cells` (same order). VM cells that link the full JRE of a JDK wait until the first
    such cell has built its image, so that JRE is linked once and the others find it in the cache."""
    results: dict[int, CellResult] = {}
    todo: list[int] = []
    for i, cell in enumerate(cells):
        early = precheck(cell, runner.examples)
        if early is None:
            todo.append(i)
        else:
            results[i] = early
    done = 0

    def report(result: CellResult) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(result, done, len(cells))

    for i in sorted(results):
        report(results[i])
    if any(cells[i].target == "vm" for i in todo):
        problem = prepare_vm()
        if problem:
            for i in [i for i in todo if cells[i].target == "vm"]:
                results[i] = CellResult(cells[i], "failed", reason=problem)
                report(results[i])
                todo.remove(i)

    slots = {"vm": threading.Semaphore(runner.jobs), "process": threading.Semaphore(2 * runner.jobs)}
    primer_of: dict[str, int] = {}  # JDK -> the first VM cell that links its full JRE
    linked: dict[int, threading.Event] = {}  # primer -> set once it has finished
    for i in todo:
        if (cells[i].target == "vm" and cells[i].jdk not in primer_of
                and _shares_full_jre(cells[i], runner.examples)):
            primer_of[cells[i].jdk] = i
            linked[i] = threading.Event()
    # Process cells first (seconds each), then VM cells, the primers leading.
    order = sorted(todo, key=lambda i: (cells[i].target == "vm", i not in linked, i))

    def one(i: int) -> CellResult:
        cell = cells[i]
        primer = primer_of.get(cell.jdk)
        try:
            if primer is not None and primer != i and _shares_full_jre(cell, runner.examples) \
                    and cell.target == "vm":
                linked[primer].wait()
            with slots[cell.target]:
                if runner.runs.stopping.is_set():
                    return CellResult(cell, "failed", reason="interrupted before the cell started")
                return runner.run(cell, linked[i].set if i in linked else None)
        finally:
            if i in linked:
                linked[i].set()

    with ThreadPoolExecutor(max_workers=max(1, len(order))) as pool:
        futures: dict[Future[CellResult], int] = {pool.submit(one, i): i for i in order}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in finished:
                    results[futures[future]] = future.result()
                    report(results[futures[future]])
        except KeyboardInterrupt:
            for event in linked.values():
                event.set()
            runner.runs.stop_all()
            raise
    return [results[i] for i in range(len(cells))]


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
    from kernel import thirdparty
    from osv_java import compat_report

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
    meta = compat_report.Meta(seconds=time.monotonic() - started, jobs=jobs, timeout=timeout)
    table = compat_report.render("table", results, meta)
    if output is not None:
        try:
            compat_report.write_atomically(output, compat_report.render(fmt, results, meta))
        except OSError as exc:
            raise click.ClickException(f"cannot write the report to {output}: {exc.strerror}") from None
        click.echo(table)
    elif fmt == "table":
        click.echo(table)
    else:
        click.echo(compat_report.render(fmt, results, meta))
    sys.exit(1 if any(r.status == "failed" for r in results) else 0)
