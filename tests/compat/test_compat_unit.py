"""Pure logic of `osv-java compat`: planning the cells, judging a run, and the four report formats."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import click
import pytest

from osv_java.compat import judge, model, prechecks, processes, report, runner, thirdparty
from osv_java.compat.model import ROOT, Cell, CellResult, Expected

EXPECTED = Expected(args=("world",), env=(("GREETING", "Hello"),), stdout="Hello, world!\nbye\n",
                    stderr="exiting with status 3\n", exit=3, runs=(("main.clj", ()),))
META = report.Meta(seconds=12.5, jobs=2, timeout=900)


def _results() -> list[CellResult]:
    ok = CellResult(Cell("lang", "clojure", "main.clj", "17", "vm"), "passed", seconds=11.2)
    bad = CellResult(Cell("lang", "clojure", "main.clj", "17", "process"), "failed", seconds=1.5,
                     reason="exit 1, expected 3", details=("exit 1, expected 3", "--- stderr (1 lines) ---", "boom"),
                     command=("osv-java", "run", "main.clj"))
    skip = [CellResult(Cell("lang", "clojure", "main.clj", "25", t), "skipped", reason="no JDK 25 found")
            for t in ("vm", "process")]
    app = CellResult(Cell("app", "h2", "h2", "17", "vm"), "passed", seconds=20.0)
    return [ok, bad, *skip, app]


# --- planning --------------------------------------------------------------------------------------


def test_plan_covers_every_run_of_every_example_on_every_jdk_and_target() -> None:
    examples = ROOT / "examples" / "lang"
    names = model.example_names(examples)
    assert names[:2] == ["java", "scala"] and len(names) == 8
    cells = model.plan(names, ["17", "25"], ["vm", "process"], ["h2"], examples)
    runs = sum(len(model.load_expected(examples / n).runs) for n in names)
    assert len(cells) == (runs + 1) * 2 * 2
    assert len({c.id for c in cells}) == len(cells)
    scala = [c for c in cells if c.name == "scala" and c.jdk == "17" and c.target == "vm"]
    assert [(c.program, c.with_runtimes) for c in scala] == [("app.jar", ("scala",)), ("main.scala", ())]
    assert Cell("lang", "scala", "app.jar", "17", "vm", ("scala",)).row == "scala app.jar --with scala"


def test_split_list_accepts_all_none_and_names_and_refuses_unknown() -> None:
    known = ["java", "scala", "clojure"]
    assert model.split_list("all", known, "language") == known
    assert model.split_list("none", known, "language") == []
    assert model.split_list(" clojure, java,clojure", known, "language") == ["clojure", "java"]
    with pytest.raises(click.BadParameter, match="unknown language cobol"):
        model.split_list("java,cobol", known, "language")


def test_load_expected_names_the_bad_file(tmp_path: Path) -> None:
    (tmp_path / "expected.json").write_text('{"args": []}')
    with pytest.raises(model.CompatError, match="expected.json is not a valid expected.json.*KeyError"):
        model.load_expected(tmp_path)
    with pytest.raises(model.CompatError, match="cannot read"):
        model.load_expected(tmp_path / "missing")


def test_missing_jdk_is_skipped_with_the_reason_and_missing_jar_fails(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    gone = prechecks.precheck(Cell("lang", "demo", "app.jar", "99", "process"), tmp_path)
    assert gone is not None and gone.status == "skipped" and "no JDK 99 found" in gone.reason
    unbuilt = prechecks.precheck(Cell("lang", "demo", "app.jar", "17", "process"), tmp_path)
    assert unbuilt is not None and unbuilt.status == "failed" and "app.jar is missing" in unbuilt.reason
    assert "examples.build" in unbuilt.details[0]


def test_program_folders_are_shared_once() -> None:
    jetty = thirdparty.by_name("jetty")
    assert runner.file_folders(jetty.files) == [ROOT / "examples" / "apps" / "jetty"]
    assert runner.file_folders(()) == []


# --- judging ---------------------------------------------------------------------------------------


def test_judge_example_passes_only_the_exact_result() -> None:
    assert judge.judge_example(EXPECTED, EXPECTED.stdout, EXPECTED.stderr, 3) == ("", ())
    reason, details = judge.judge_example(EXPECTED, "Hello, world!\nbye\n", EXPECTED.stderr, 1)
    assert reason == "exit 1, expected 3"
    reason, details = judge.judge_example(EXPECTED, "Hello, moon!\nbye\n", EXPECTED.stderr, 3)
    assert reason == "stdout line 1: expected 'Hello, world!\\n', got 'Hello, moon!\\n'"
    assert "--- stdout (2 lines) ---" in details and "Hello, moon!" in details


def test_judge_example_reports_osv_java_own_failure_first() -> None:
    stderr = "osv-java: error: no JDK 21 found\nhint: install one\n"
    reason, details = judge.judge_example(EXPECTED, "", stderr, 125)
    assert reason == "osv-java failed: no JDK 21 found"
    assert "exit 125, expected 3" in details


def test_first_difference_says_missing_and_extra_lines() -> None:
    assert judge.first_difference("stdout", "a\nb\n", "a\nb\n") is None
    assert judge.first_difference("stdout", "a\nb\n", "a\n") == "stdout: 1 lines, expected 2 (first missing: 'b\\n')"
    assert judge.first_difference("stderr", "a\n", "a\nwarn\n") == (
        "stderr: 1 unexpected extra line(s), first 'warn\\n'")


def test_judge_program_uses_the_tables_patterns_and_sigint_status() -> None:
    h2 = thirdparty.by_name("h2")
    good = "ANSWER | NAME\n42     | OSV-JAVA\n(1 row, 3 ms)\n"
    assert judge.judge_program(h2, good, "", 0) == ("", ())
    reason, _ = judge.judge_program(h2, good.replace("42", "41"), "", 0)
    assert reason.startswith("stdout does not match the pattern")
    jetty = thirdparty.by_name("jetty")
    assert judge.judge_program(jetty, "", "INFO started\n", 130, stopped=True) == ("", ())
    assert judge.judge_program(jetty, "", "", 1, stopped=True)[0] == "exit 1, expected 130"


# --- reports ---------------------------------------------------------------------------------------


def test_table_has_the_matrix_the_failure_details_and_each_skip_reason_once() -> None:
    text = report.table(_results(), META)
    lines = text.splitlines()
    assert lines[0].split() == ["jdk17", "vm", "jdk17", "process", "jdk25", "vm", "jdk25", "process"]
    assert lines[1].startswith("clojure main.clj") and "pass  11.2s" in lines[1] and "FAIL   1.5s" in lines[1]
    assert lines[1].count("skip") == 2
    assert lines[2].startswith("h2 (app)") and lines[2].split()[-3:] == ["-", "-", "-"]
    assert "5 cells: 2 passed, 1 failed, 2 skipped in 12.5 s (-j 2)" in text
    assert "FAILED clojure main.clj [jdk17 process] (1.5 s): exit 1, expected 3\n    exit 1" in text
    assert "    command: osv-java run main.clj" in text
    assert text.count("no JDK 25 found") == 1 and "SKIPPED 2 cell(s): no JDK 25 found" in text


def test_json_report_round_trips() -> None:
    data = json.loads(report.to_json(_results(), META))
    assert data["summary"] == {"passed": 2, "failed": 1, "skipped": 2, "cells": 5, "seconds": 12.5, "jobs": 2,
                               "timeout": 900}
    assert data["columns"] == ["jdk17 vm", "jdk17 process", "jdk25 vm", "jdk25 process"]
    failed = [c for c in data["cells"] if c["status"] == "failed"]
    assert failed[0]["reason"] == "exit 1, expected 3" and failed[0]["details"][-1] == "boom"


def test_junit_has_one_suite_per_column_with_failures_and_skips() -> None:
    root = ET.fromstring(report.to_junit(_results(), META))
    assert root.tag == "testsuites" and root.get("tests") == "5" and root.get("failures") == "1"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == ["compat jdk17 vm", "compat jdk17 process", "compat jdk25 vm", "compat jdk25 process"]
    failure = suites["compat jdk17 process"].find("testcase/failure")
    assert failure is not None and failure.get("message") == "exit 1, expected 3"
    assert failure.text is not None and "boom" in failure.text and "command: osv-java run" in failure.text
    skipped = suites["compat jdk25 vm"].find("testcase/skipped")
    assert skipped is not None and skipped.get("message") == "no JDK 25 found"
    case = suites["compat jdk17 vm"].findall("testcase")
    assert [(c.get("name"), c.get("classname")) for c in case] == [("clojure main.clj", "compat.jdk17.vm"),
                                                                    ("h2 (app)", "compat.jdk17.vm")]


def test_markdown_table_is_well_formed() -> None:
    text = report.to_markdown(_results(), META)
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert len({row.count("|") for row in rows}) == 1 and len(rows) == 4
    assert "❌ **FAIL** 1.5 s" in rows[2] and "## Failures" in text and "- no JDK 25 found (2 cells)" in text


def test_write_atomically_replaces_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "report.xml"
    target.write_text("old")
    report.write_atomically(target, "new")
    assert target.read_text() == "new\n" and [p.name for p in tmp_path.iterdir()] == ["report.xml"]
    with pytest.raises(FileNotFoundError):
        report.write_atomically(tmp_path / "no" / "report.xml", "x")


# --- stopping a run --------------------------------------------------------------------------------


def test_stop_also_ends_children_in_their_own_session(tmp_path: Path) -> None:
    """QEMU runs in a session of its own: stopping the run's process group alone would leave it."""
    pidfile = tmp_path / "pids"
    script = f"setsid sleep 300 & echo $! > {pidfile}; trap '' INT; sleep 300"
    proc = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    deadline = time.monotonic() + 10
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    orphan = int(pidfile.read_text())
    os.kill(orphan, 0)  # running, in another session
    processes.stop(proc, grace=0.5)
    assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 5
    while Path(f"/proc/{orphan}").exists() and "Z" not in Path(f"/proc/{orphan}/stat").read_text().split()[2]:
        assert time.monotonic() < deadline, "the child in its own session is still running"
        time.sleep(0.05)
