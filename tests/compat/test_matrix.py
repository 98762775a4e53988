"""The real compatibility matrix: every language example on JDK 17 (and 25 where installed) on the host and
in VMs, the third-party programs, and a broken example that must show up red with its reason.

Each matrix is one `osv-java compat` run (cells in parallel, as a user or CI runs it); the tests are one
per cell, so a failure names its cell and carries compat's own explanation.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from compat_helpers import ROOT, Matrix, compat_argv, run_compat

from osv_java.compat import model
from osv_java.compat.model import EXAMPLES, Cell

pytestmark = pytest.mark.slow

LANGS = model.example_names(EXAMPLES)
APPS = ["h2", "ant", "checkstyle", "saxon", "jetty"]
VM_APPS = ["h2", "jetty"]
# The JDK 25 VM column doubles the VM time; it runs when asked for (CI with time to spare).
VM_JDKS = ["17", "25"] if os.environ.get("OSV_JAVA_COMPAT_VM25") == "1" else ["17"]


def _params(jdks: list[str], target: str, apps: list[str]) -> list[Any]:
    """One param per cell, so a failure names its cell."""
    return [pytest.param(cell, id=cell.id) for cell in model.plan(LANGS, jdks, [target], apps, EXAMPLES)]


def _check(matrix: Matrix, cell: Cell) -> None:
    got = matrix.cells[cell.id]
    if got["status"] == "skipped" and cell.jdk != "17":
        pytest.skip(got["reason"])
    assert got["status"] == "passed", matrix.explain(cell.id)


def _exit_status_follows_failures(matrix: Matrix) -> None:
    failed = [c for c in matrix.report["cells"] if c["status"] == "failed"]
    assert matrix.status == (1 if failed else 0), matrix.stderr[-3000:]
    assert f"{len(matrix.report['cells'])} cells: " in matrix.stdout


@pytest.fixture(scope="module")
def process_matrix(osv_cache: Path, examples_built: Path, tmp_path_factory: pytest.TempPathFactory) -> Matrix:
    out = tmp_path_factory.mktemp("compat-process") / "report.json"
    start = time.monotonic()
    matrix = run_compat(["--targets", "process", "--jdks", "17,25", "--apps"], osv_cache, out)
    print(f"\nprocess matrix (JDK 17+25, {len(matrix.report['cells'])} cells): {time.monotonic() - start:.1f} s")
    return matrix


@pytest.fixture(scope="module")
def vm_matrix(osv_cache: Path, examples_built: Path, tmp_path_factory: pytest.TempPathFactory) -> Matrix:
    out = tmp_path_factory.mktemp("compat-vm") / "report.json"
    start = time.monotonic()
    matrix = run_compat(["--targets", "vm", "--jdks", ",".join(VM_JDKS), f"--apps={','.join(VM_APPS)}"],
                        osv_cache, out, timeout=1800)
    print(f"\nVM matrix (JDK {'+'.join(VM_JDKS)}, {len(matrix.report['cells'])} cells): "
          f"{time.monotonic() - start:.1f} s")
    return matrix


@pytest.mark.parametrize("cell", _params(["17", "25"], "process", APPS))
def test_process_cell(process_matrix: Matrix, cell: Cell) -> None:
    _check(process_matrix, cell)


def test_process_matrix_exit_status_and_table(process_matrix: Matrix) -> None:
    _exit_status_follows_failures(process_matrix)
    header = process_matrix.stdout.splitlines()[0].split()
    assert header[:2] == ["jdk17", "process"]
    for lang in LANGS:
        assert any(line.startswith(f"{lang} ") for line in process_matrix.stdout.splitlines()), lang


@pytest.mark.vm
@pytest.mark.parametrize("cell", _params(VM_JDKS, "vm", VM_APPS))
def test_vm_cell(vm_matrix: Matrix, cell: Cell) -> None:
    _check(vm_matrix, cell)


@pytest.mark.vm
def test_vm_matrix_exit_status_and_build_times(vm_matrix: Matrix) -> None:
    _exit_status_follows_failures(vm_matrix)
    ran = [c for c in vm_matrix.report["cells"] if c["status"] != "skipped"]
    assert ran and all(0 < c["build_seconds"] <= c["seconds"] for c in ran)


def _broken_examples(root: Path) -> Path:
    """A copy of the clojure example expecting other output, and a Groovy script that throws."""
    examples = root / "examples"
    shutil.copytree(EXAMPLES / "clojure", examples / "clojure")
    expected = json.loads((examples / "clojure" / "expected.json").read_text())
    expected["stdout"] = expected["stdout"].replace("(Clojure)", "(Clojure 1.12)")
    (examples / "clojure" / "expected.json").write_text(json.dumps(expected))
    thrower = examples / "thrower"
    thrower.mkdir()
    (thrower / "main.groovy").write_text('println "starting"\nthrow new IllegalStateException("deliberately broken")\n')
    (thrower / "expected.json").write_text(json.dumps({
        "args": [], "env": {}, "stdout": "starting\n", "stderr": "", "exit": 0,
        "runs": [{"program": "main.groovy", "with": []}],
    }))
    return examples


def test_broken_example_shows_red_with_its_reason(tmp_path: Path, osv_cache: Path) -> None:
    examples = _broken_examples(tmp_path)
    report = tmp_path / "report.xml"
    proc = subprocess.run(
        [*compat_argv(), "--examples", str(examples), "--targets", "process", "--jdks", "17",
         "--format", "junit", "-o", str(report)],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
        env={**os.environ, "OSV_JAVA_CACHE": str(osv_cache)},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "2 cells: 0 passed, 2 failed, 0 skipped" in out
    assert ("FAILED clojure main.clj [jdk17 process]" in out
            and "stdout line 1: expected 'Hello, world! (Clojure 1.12)\\n', got 'Hello, world! (Clojure)\\n'" in out)
    assert "FAILED thrower main.groovy [jdk17 process]" in out and "exit 1, expected 0" in out
    assert "IllegalStateException: deliberately broken" in out  # the console's first lines
    suites = ET.parse(report).getroot()
    assert suites.get("failures") == "2"
    messages = sorted(f.get("message", "") for f in suites.iter("failure"))
    assert messages[0].startswith("exit 1, expected 0") and messages[1].startswith("stdout line 1")


def test_missing_jdk_is_skipped_not_passed(tmp_path: Path, osv_cache: Path) -> None:
    out = tmp_path / "report.json"
    matrix = run_compat(["--langs", "java", "--targets", "process", "--jdks", "17,99"], osv_cache, out)
    assert matrix.status == 0, matrix.stdout + matrix.stderr
    cells = matrix.cells
    assert cells["java app.jar [jdk17 process]"]["status"] == "passed"
    skipped = cells["java app.jar [jdk99 process]"]
    assert skipped["status"] == "skipped" and "no JDK 99 found" in skipped["reason"]
    assert "SKIPPED 1 cell(s): JDK 99 is not installed" in matrix.stdout
