"""Running `osv-java compat` as a user does: a subprocess, with the session's osv-java cache."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def compat_argv() -> list[str]:
    """`osv-java compat`, as a user runs it."""
    return [sys.executable, "-m", "osv_java", "compat"]


@dataclass
class Matrix:
    """One compat run: its exit status, the printed table, the JSON report (cells by id)."""

    status: int
    stdout: str
    stderr: str
    report: dict[str, Any]

    @property
    def cells(self) -> dict[str, dict[str, Any]]:
        return {f"{c['row']} [{c['column']}]": c for c in self.report["cells"]}

    def explain(self, cell_id: str) -> str:
        cell = self.cells[cell_id]
        lines = [f"{cell_id}: {cell['status']} - {cell['reason']}", *cell["details"], " ".join(cell["command"])]
        return "\n".join(lines)


def run_compat(args: list[str], cache: Path, out: Path, timeout: float = 900) -> Matrix:
    """Run compat with `args`, the JSON report written to `out`."""
    import os

    env = {**os.environ, "OSV_JAVA_CACHE": str(cache)}
    proc = subprocess.run([*compat_argv(), *args, "--format", "json", "-o", str(out)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=timeout, check=False)
    if not out.exists():
        pytest.fail(f"compat wrote no report (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return Matrix(proc.returncode, proc.stdout, proc.stderr, json.loads(out.read_text()))
