"""Run every language example with a plain `java` launcher on the host and compare to expected.json.

This checks the table in kernel/build/languages.py (class path, main class, options) and the examples
together, on JDK 17 and, when installed, JDK 25. The runs happen two at a time in threads so the
whole module takes seconds, not minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, find_jdk

from examples import build
from kernel.build.languages import LANGUAGES, by_name, runtime_classpath

LANG_DIR = ROOT / "examples" / "lang"
FEATURES = (17, 25)


@dataclass(frozen=True)
class Run:
    lang: str
    program: str
    feature: int

    @property
    def id(self) -> str:
        return f"{self.lang}-{self.program}-jdk{self.feature}"


@dataclass(frozen=True)
class Outcome:
    command: list[str]
    stdout: str
    stderr: str
    exit: int


def expected(lang: str) -> dict:
    return json.loads((LANG_DIR / lang / "expected.json").read_text())


def command(run: Run, java: Path) -> list[str]:
    """What the image builder will do, on the host: runtime jars + options + main class + args."""
    lang = by_name(run.lang)
    exp = expected(run.lang)
    program = LANG_DIR / run.lang / run.program
    spec = next(r for r in exp["runs"] if r["program"] == run.program)
    if program.suffix == ".jar":
        extra = [p for name in spec["with"] for p in runtime_classpath(by_name(name), library_only=True)]
        cp = ":".join(str(p) for p in [program, *extra])
        return [str(java), "-cp", cp, lang.example_main or "Main", *exp["args"]]
    cp = ":".join(str(p) for p in runtime_classpath(lang))
    assert lang.main_class is not None
    options = lang.host_jvm_options(run.feature)
    return [str(java), *options, "-cp", cp, lang.main_class, *lang.script_args(str(program), exp["args"])]


def all_runs() -> list[Run]:
    return [
        Run(lang.name, spec["program"], feature)
        for feature in FEATURES
        for lang in LANGUAGES
        for spec in expected(lang.name)["runs"]
    ]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome | str]:
    """Build the compiled examples, then run everything; a str value says why a run was skipped."""
    failures = [r for r in build.build_all() if r.status == "failed"]
    assert not failures, failures[0].detail
    cwd = tmp_path_factory.mktemp("run")

    def one(run: Run) -> Outcome | str:
        jdk = find_jdk(run.feature)
        if jdk is None:
            return f"no JDK {run.feature} here"
        cmd = command(run, jdk.home / "bin" / "java")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **expected(run.lang)["env"]}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=120)
        return Outcome(cmd, proc.stdout, proc.stderr, proc.returncode)

    runs = all_runs()
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip([r.id for r in runs], pool.map(one, runs), strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("run", all_runs(), ids=lambda r: r.id)
def test_example_matches_expected(run: Run, outcomes: dict[str, Outcome | str]) -> None:
    outcome = outcomes[run.id]
    if isinstance(outcome, str):
        pytest.skip(outcome)
    exp = expected(run.lang)
    where = " ".join(outcome.command)
    assert outcome.stdout == exp["stdout"], where
    assert outcome.stderr == exp["stderr"], where
    assert outcome.exit == exp["exit"], where


def test_expected_files_are_complete() -> None:
    for lang in LANGUAGES:
        exp = expected(lang.name)
        assert set(exp) >= {"args", "env", "stdout", "stderr", "exit", "runs"}
        assert "GREETING" in exp["env"] and exp["exit"] == 3 and exp["args"]
        for spec in exp["runs"]:
            program = LANG_DIR / lang.name / spec["program"]
            if program.suffix != ".jar":
                assert program.is_file()
                assert program.suffix in lang.extensions
