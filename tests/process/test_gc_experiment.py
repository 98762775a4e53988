"""`osv-java gc-experiment` end to end on the process target: a small sweep (2 collectors x 2 heaps x 2
repeats, plus the default) of a short workload, with a heap too small for its live set."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from osvtest import JDK17, OSV, ROOT, Osv, explain, text

from gc_hooks.experiment import report

# a 16 MB live set: an 8 MB heap cannot hold it; 4 million operations keep each JVM up for a second or
# more, so the memory sampler (every 0.1 s) sees every run
WORKLOAD = ["examples/gclive/gclive.jar", "4", "16"]
CELL = re.compile(r"^(?P<m>-?[\d.]+)(?: \[(?P<lo>-?[\d.]+)–(?P<hi>-?[\d.]+)\])?$")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, osv_cache: Path, examples_built: Path) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("gcx") / "report"
    runner = Osv(env={**os.environ, "OSV_JAVA_CACHE": str(osv_cache)}, console_log=out / "none")
    proc = runner("gc-experiment", *WORKLOAD, "--gcs", "serial,parallel", "--heaps", "8m,64m", "--jdks", JDK17,
                  "--repeat", "2", "--warmup", "0", "-o", str(out), timeout=600)
    assert proc.returncode == 0, explain(proc)
    return {"dir": out, "proc": proc, "json": json.loads((out / "results.json").read_text())}


def test_every_artefact_is_written(sweep: dict[str, Any]) -> None:
    out: Path = sweep["dir"]
    for name in ("results.json", "results.csv", "report.md", "pauses.png", "heap.png", "tradeoff.png"):
        assert (out / name).is_file(), name
    for name in ("pauses.png", "heap.png", "tradeoff.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    assert not leftovers, "the report folder is filled under a temporary name and renamed into place"
    data = sweep["json"]
    assert len(data["configs"]) == 5 and len(data["runs"]) == 10
    for run in data["runs"]:
        assert (out / run["folder"] / "gc.log").stat().st_size > 0, run


def test_one_line_recommendation_on_stdout(sweep: dict[str, Any]) -> None:
    lines = text(sweep["proc"].stdout).splitlines()
    assert len(lines) == 1
    assert lines[0] == sweep["json"]["recommendation"]
    # two runs per configuration are too few to claim a gain
    assert lines[0].startswith(("too few clean runs to tell (2 per configuration", "nothing beats the default")), \
        lines[0]


def test_runs_are_interleaved(sweep: dict[str, Any]) -> None:
    runs = sorted(sweep["json"]["runs"], key=lambda r: r["index"])
    keys = [r["config"] for r in runs]
    assert sorted(keys[:5]) == sorted(keys[5:]) == sorted(c["key"] for c in sweep["json"]["configs"])


def test_out_of_memory_is_reported_not_dropped(sweep: dict[str, Any]) -> None:
    data = sweep["json"]
    configs = {c["key"]: c for c in data["configs"]}
    for key in ("serial-8m-jdk17", "parallel-8m-jdk17"):
        assert configs[key]["outcomes"] == {"oom": 2}, configs[key]
        assert not configs[key]["eligible"]
    for key in ("default-jdk17", "serial-64m-jdk17", "parallel-64m-jdk17"):
        assert configs[key]["outcomes"] == {"ok": 2}, configs[key]
        for name in ("wall_s", "cpu_s", "pauses", "pause_p99_ms", "pss_peak_mb", "heap_committed_mb",
                     "app:ops_per_s"):
            assert configs[key]["metrics"][name]["n"] == 2, (key, name)
    assert configs["serial-64m-jdk17"]["collector"] == "Serial"
    assert configs["parallel-64m-jdk17"]["metrics"]["heap_committed_mb"]["median"] <= 64
    assert data["objectives"]["throughput"]["best"] not in ("serial-8m-jdk17", "parallel-8m-jdk17")
    with open(sweep["dir"] / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10
    assert {r["outcome"] for r in rows if r["heap"] == "8m"} == {"oom"}
    assert all("OutOfMemoryError" in r["reason"] for r in rows if r["heap"] == "8m")
    md = (sweep["dir"] / "report.md").read_text()
    failed = md.split("## Failed runs")[1].split("##")[0]
    assert failed.count("| oom |") == 4
    assert "serial-8m-jdk17: 2 oom of 2 measured runs" in md


def _parse(cell: str) -> tuple[float, float, float] | None:
    m = CELL.match(cell.strip())
    if not m:
        return None
    mid = float(m["m"])
    return (mid, float(m["lo"]), float(m["hi"])) if m["lo"] else (mid, mid, mid)


def _close(shown: float, value: float) -> bool:
    """`shown` is `value` as report.number prints it (about three significant digits)."""
    return report.number(value) == report.number(shown) or abs(shown - value) <= max(0.006 * abs(value), 0.0006)


def test_numbers_in_report_md_match_results_json(sweep: dict[str, Any]) -> None:
    md = (sweep["dir"] / "report.md").read_text()
    table = md.split("## Configurations")[1].split("Flags of each configuration")[0]
    rows = [r for r in table.splitlines() if r.startswith("| ")]
    header = [h.strip() for h in rows[0].strip("|").split("|")]
    configs = {c["key"]: c for c in sweep["json"]["configs"]}
    titles = {f"{m.title} ({m.unit})" if m.unit else m.title: m.name for m in report.METRICS}
    titles.update({"ops_per_s": "app:ops_per_s"})
    checked = 0
    for row in rows[2:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        key = cells[0].strip("`")
        for title, value in zip(header[3:], cells[3:], strict=True):
            expected = configs[key]["metrics"].get(titles[title])
            if expected is None:
                assert value == "–", (key, title, value)
                continue
            shown = _parse(value)
            assert shown is not None, (key, title, value)
            for got, want in zip(shown, (expected["median"], expected["low"], expected["high"]), strict=True):
                assert _close(got, want), (key, title, value, expected)
            checked += 1
    assert checked >= 3 * 10
    best = md.split("## Best configuration per objective")[1].split("##")[0]
    assert sweep["json"]["recommendation"] in md
    for objective, judged in sweep["json"]["objectives"].items():
        line = next(x for x in best.splitlines() if x.startswith(f"| {objective} |"))
        if judged["improvement_pct"]:
            assert f"{judged['improvement_pct']['median']:+.1f} %" in line


def test_run_options_are_axes_passed_through(osv_cache: Path, examples_built: Path, tmp_path: Path) -> None:
    """--hugepages and --dynamic-heap values reach each run's `osv-java run` as given; a value that
    osv-java run does not take is refused in one line before anything runs."""
    env = {**os.environ, "OSV_JAVA_CACHE": str(osv_cache)}
    bad = subprocess.run([OSV, "gc-experiment", *WORKLOAD, "--hugepages", "on", "-o", str(tmp_path / "bad")],
                         capture_output=True, text=True, check=False, cwd=ROOT, env=env)
    assert bad.returncode == 125, bad.stderr
    assert bad.stderr.splitlines()[0] == "osv-java: error: --hugepages: 'on' is not a value osv-java run takes"
    assert not (tmp_path / "bad").exists()
    out = tmp_path / "axes"
    proc = subprocess.run([OSV, "gc-experiment", *WORKLOAD, "--gcs", "serial", "--heaps", "64m", "--jdks", JDK17,
                           "--hugepages", "off,thp", "--dynamic-heap", "off", "--repeat", "1", "--warmup", "0",
                           "-o", str(out)], capture_output=True, text=True, check=False, cwd=ROOT, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    runs = json.loads((out / "results.json").read_text())["runs"]
    commands = sorted(" ".join(r["command"]) for r in runs if "--jvm-opt=-XX:+UseSerialGC" in r["command"])
    assert len(commands) == 2
    assert all("--dynamic-heap=off" in c for c in commands)
    assert ["--hugepages=off" in c for c in commands].count(True) == 1
    assert ["--hugepages=thp" in c for c in commands].count(True) == 1


def test_ctrl_c_stops_the_runs_and_still_writes_the_report(osv_cache: Path, examples_built: Path,
                                                            tmp_path: Path) -> None:
    import signal
    import time

    out = tmp_path / "report"
    proc = subprocess.Popen([OSV, "gc-experiment", "examples/gcalloc/gcalloc.jar", "2000", "--gcs", "serial",
                             "--repeat", "3", "--warmup", "0", "--jdks", JDK17, "-o", str(out)],
                            env={**os.environ, "OSV_JAVA_CACHE": str(osv_cache)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".report.*/runs/*/stdout.txt")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3.0)  # the first run is under way (its gc.log appears only when it ends)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    data = json.loads((out / "results.json").read_text())
    assert data["meta"]["interrupted"] is True
    assert [r["outcome"] for r in data["runs"]] == ["interrupted"]
    assert data["caveats"][0] == "interrupted after 1 of 6 runs"
    assert stdout.startswith("no configuration ran cleanly")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report.")]


def test_a_run_past_the_time_limit_is_a_timeout(osv_cache: Path, examples_built: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = subprocess.run([OSV, "gc-experiment", "examples/gcalloc/gcalloc.jar", "2000", "--gcs", "default",
                           "--repeat", "1", "--warmup", "0", "--timeout", "3", "--jdks", JDK17, "-o", str(out)],
                          env={**os.environ, "OSV_JAVA_CACHE": str(osv_cache)}, capture_output=True, text=True,
                          check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "results.json").read_text())
    assert [(r["outcome"], r["exit_status"]) for r in data["runs"]] == [("timeout", 125)]
    assert "--timeout 3s" in data["runs"][0]["reason"]
    assert "| timeout |" in (out / "report.md").read_text()
