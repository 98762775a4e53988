"""A guest JVM's crash is a failed compat cell, never run again; its hs_err report is named in the details."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from osv_java.compat.judge import jvm_crash_report
from osv_java.compat.model import Cell
from osv_java.compat.runner import Runner

HS_ERR = """#
# A fatal error has been detected by the Java Runtime Environment:
#
#  SIGSEGV (0xb) at pc=0x00007f7a290b44e0, pid=98, tid=143
#
# Problematic frame:
# J 787 c1 Work$Op0.f(JI)J (44 bytes) @ 0x00007f7a290b44e0 [0x00007f7a290b44c0+0x0000000000000020]
#
# An error report file with more information is saved as:
# /work/app/hs_err_pid98.log
#
"""


def test_the_report_a_crashed_jvm_names_is_found() -> None:
    assert jvm_crash_report(HS_ERR) == "/work/app/hs_err_pid98.log"


def test_no_report_without_a_fatal_error() -> None:
    assert jvm_crash_report("# An error report file with more information is saved as:\n# /x\n") is None
    assert jvm_crash_report("Hello\n") is None
    assert jvm_crash_report(HS_ERR.split("# An error")[0]) is None, "a crash whose report could not be written"


def test_a_vm_cell_whose_jvm_crashed_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = Runner()
    runs: list[list[str]] = []

    def crashed(argv: list[str], cwd: Path, timeout: float) -> tuple[subprocess.Popen[bytes], str, str, bool]:
        runs.append(argv)
        proc = subprocess.Popen(["sh", "-c", "exit 134"])
        proc.wait()
        return proc, HS_ERR, "", False

    monkeypatch.setattr(runner, "_run_to_end", crashed)
    result = runner._run(Cell("lang", "java", "app.jar", "17", "vm"))
    assert len(runs) == 1, "a JVM crash is not run again"
    assert result.status == "failed"
    assert result.details[0] == "JVM fatal error report: /work/app/hs_err_pid98.log"
    assert "# J 787 c1 Work$Op0.f(JI)J" in "\n".join(result.details)
