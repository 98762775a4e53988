"""Running one cell as `osv-java run` in its own process, exactly as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from jvmbridge.errors import OsvJavaError
from kernel.vm.monitor import free_port
from osv_java.compat.judge import (
    console_lines,
    judge_example,
    judge_program,
    jvm_crash_report,
    osv_failure,
    short,
)
from osv_java.compat.model import (
    DEFAULT_TIMEOUT,
    EXAMPLES,
    EXIT_OSV_FAILURE,
    ROOT,
    Cell,
    CellResult,
    CompatError,
    load_expected,
)
from osv_java.compat.probe import wait_for_page
from osv_java.compat.processes import Runs, stop


@dataclass
class Runner:
    """Runs cells as `osv-java run` processes, at most `jobs` VMs (and twice as many host JVMs) at once."""

    examples: Path = EXAMPLES
    jobs: int = 2
    timeout: float = DEFAULT_TIMEOUT
    runs: Runs = field(default_factory=Runs)
    port_locks: dict[int, threading.Lock] = field(default_factory=dict)

    def base_command(self, cell: Cell) -> list[str]:
        return [sys.executable, "-m", "osv_java", "run", "--target", cell.target, "--jdk", cell.jdk,
                "--timeout", f"{self.timeout:g}"]

    def app_words(self, cell: Cell) -> tuple[list[str], list[str], Path]:
        """(options naming the app, the app and its arguments, working folder), shared by build and run."""
        from osv_java.compat import thirdparty

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
        from osv_java.compat import thirdparty

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
            argv += [f"--volume={folder}:{folder}:ro" for folder in file_folders(program.files)]
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
        from osv_java.compat import thirdparty

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
        from osv_java.compat.thirdparty import ThirdParty

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
                problems.append(f"GET {url}: the page lacks {short(check.body)}; got {short(body)}")
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


def file_folders(files: Sequence[str]) -> list[Path]:
    """The folders holding `files` (repository paths), without folders already inside another one."""
    folders = sorted({(ROOT / f) if (ROOT / f).is_dir() else (ROOT / f).parent for f in files})
    return [f for f in folders if not any(o != f and o in f.parents for o in folders)]
