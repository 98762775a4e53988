"""Run JDK tools (jar, jdeps, jlink, javac, ...) either as processes or through ToolProvider in one
in-process JVM (JPype), whichever is faster here.

A process per tool pays a JVM start each time; the in-process JVM pays it once but can only ever be
one JDK per Python process (JPype cannot restart or switch JVMs), so another JDK always falls back
to a process. benchmarks/tools.py measures both; the default follows its figures.
"""

from __future__ import annotations

import os
import subprocess
import threading
from dataclasses import dataclass
from typing import Any

from jvmbridge.errors import DependencyError
from jvmbridge.jdk import Jdk

SUBPROCESS, JPYPE = "subprocess", "jpype"
# benchmarks/tools.py, JDK 17, 2 cores (medians): jar --version 118 ms as a process vs 0.9 ms
# in-process, jlink --list-plugins 298 vs 3.5 ms, jdeps --list-deps 2.7 s vs 0.86 s; the JPype JVM
# starts once in 260 ms, so from the second tool call on in-process wins.
DEFAULT_BACKEND = os.environ.get("OSV_JAVA_TOOLS_BACKEND", JPYPE)

_lock = threading.Lock()


@dataclass(frozen=True)
class ToolResult:
    returncode: int
    stdout: str
    stderr: str


def run_tool(jdk: Jdk, name: str, args: list[str], backend: str | None = None) -> ToolResult:
    """Run JDK tool `name` with `args`; the in-process JVM when it can serve this JDK, else a process."""
    chosen = backend or DEFAULT_BACKEND
    if chosen == JPYPE and _jpype_can_serve(jdk):
        result = _run_jpype(jdk, name, args)
        if result is not None:
            return result
    return run_subprocess(jdk, name, args)


def run_subprocess(jdk: Jdk, name: str, args: list[str]) -> ToolResult:
    tool = jdk.tool(name)
    if not tool.exists():
        raise DependencyError(f"{jdk.describe()} has no {name}", hint="install a full JDK (not a JRE)")
    out = subprocess.run([str(tool), *args], capture_output=True, text=True)
    return ToolResult(out.returncode, out.stdout, out.stderr)


def _jpype() -> Any | None:
    try:
        import jpype
    except ImportError:
        return None
    return jpype


def in_process_home() -> str | None:
    """java.home of the JVM already started in this process, if any."""
    jpype = _jpype()
    if jpype is None or not jpype.isJVMStarted():
        return None
    return str(jpype.JClass("java.lang.System").getProperty("java.home"))


def _jpype_can_serve(jdk: Jdk) -> bool:
    jpype = _jpype()
    if jpype is None:
        return False
    home = in_process_home()
    if home is not None:
        if os.path.realpath(home) != os.path.realpath(jdk.home):
            return False  # one JVM per process, and it is another JDK's
        user_dir = str(jpype.JClass("java.lang.System").getProperty("user.dir"))
        return os.path.realpath(user_dir) == os.path.realpath(os.getcwd())  # relative paths agree
    return (jdk.home / "lib" / "server" / "libjvm.so").exists()


def _start(jdk: Jdk) -> Any:
    jpype = _jpype()
    assert jpype is not None
    with _lock:
        if not jpype.isJVMStarted():
            jpype.startJVM(
                str(jdk.home / "lib" / "server" / "libjvm.so"), "-Xshare:auto", convertStrings=True
            )
    return jpype


def _run_jpype(jdk: Jdk, name: str, args: list[str]) -> ToolResult | None:
    """The tool through java.util.spi.ToolProvider; None when the JDK offers no provider of that name."""
    jpype = _start(jdk)
    provider = jpype.JClass("java.util.spi.ToolProvider").findFirst(name)
    if not provider.isPresent():
        return None
    string_writer = jpype.JClass("java.io.StringWriter")
    print_writer = jpype.JClass("java.io.PrintWriter")
    out, err = string_writer(), string_writer()
    out_pw, err_pw = print_writer(out), print_writer(err)
    argv = jpype.JArray(jpype.JString)(list(args))
    rc = int(provider.get().run(out_pw, err_pw, argv))
    out_pw.flush()
    err_pw.flush()
    return ToolResult(rc, str(out.toString()), str(err.toString()))
