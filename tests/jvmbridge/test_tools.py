"""JDK tools through ToolProvider in this process's one JPype JVM, and the process fallback."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from jvmbridge.jdk import Jdk
from jvmbridge.tools import JPYPE, SUBPROCESS, in_process_home, run_subprocess, run_tool

jpype = pytest.importorskip("jpype")


def test_jar_through_both_backends(jdk17: Jdk, tmp_path: Path) -> None:
    if in_process_home() not in (None, str(jdk17.home)):
        pytest.skip("this test session's JPype JVM belongs to another JDK")
    via_process = run_tool(jdk17, "jar", ["--version"], backend=SUBPROCESS)
    via_jpype = run_tool(jdk17, "jar", ["--version"], backend=JPYPE)
    assert jpype.isJVMStarted() and Path(in_process_home() or "").resolve() == jdk17.home
    assert via_process.returncode == via_jpype.returncode == 0
    assert (via_process.stdout + via_process.stderr).strip() == (via_jpype.stdout + via_jpype.stderr).strip()
    # a real job: create a jar in-process, list it with a process
    (tmp_path / "a.txt").write_text("hello")
    made = run_tool(
        jdk17, "jar", ["--create", "--file", str(tmp_path / "x.jar"), "-C", str(tmp_path), "a.txt"]
    )
    assert made.returncode == 0, made.stderr
    assert "a.txt" in zipfile.ZipFile(tmp_path / "x.jar").namelist()
    listed = run_subprocess(jdk17, "jar", ["--list", "--file", str(tmp_path / "x.jar")])
    assert "a.txt" in listed.stdout
    bad = run_tool(jdk17, "jar", ["--no-such-option"], backend=JPYPE)
    assert bad.returncode != 0 and bad.stderr


def test_other_jdk_falls_back_to_a_process(jdk17: Jdk, jdk25: Jdk) -> None:
    run_tool(jdk17, "jar", ["--version"], backend=JPYPE)  # the session's JVM is now JDK 17's
    result = run_tool(jdk25, "jar", ["--version"], backend=JPYPE)
    assert result.returncode == 0 and "25" in result.stdout + result.stderr
