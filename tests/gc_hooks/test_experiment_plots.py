"""What the gc-experiment plots show, decided apart from matplotlib: names, colours and markers, the
rows of the pause plot (stalls included), axis labels; and that the three PNGs are drawn."""

from __future__ import annotations

from pathlib import Path

import pytest

from gc_hooks.experiment import design, measure, plots, report
from gc_hooks.experiment.design import Config
from gc_hooks.experiment.execute import RunRecord

LOGS = Path(__file__).parent.parent / "data" / "gclogs"


def _configs(jdks: str) -> list[Config]:
    return design.design(design.parse_gcs("g1,parallel,serial,zgc,shenandoah"), design.parse_heaps("64m,512m"),
                         design.parse_jdks(jdks))


def test_names_drop_the_jdk_all_share_and_call_the_default_so() -> None:
    one = _configs("25")
    names = plots.short_names(one, design.reference(one).key)
    assert names["default-jdk25"] == "default" and names["g1-64m-jdk25"] == "g1-64m"
    two = _configs("17,25")
    names = plots.short_names(two, design.reference(two).key)
    assert names["default-jdk17"] == "default" and names["default-jdk25"] == "default-jdk25"
    assert names["zgc-512m-jdk17"] == "zgc-512m-jdk17", "two JDKs: the JDK stays in the name"


def test_colour_is_the_collector_and_marker_the_heap() -> None:
    configs = _configs("17,25")
    look = plots.styles(configs, design.reference(configs).key)
    assert look["default-jdk17"] == plots.Style("black", "*")
    assert look["g1-64m-jdk17"].colour == look["g1-512m-jdk25"].colour != look["parallel-64m-jdk17"].colour
    assert look["g1-64m-jdk17"].marker == look["zgc-64m-jdk25"].marker != look["g1-512m-jdk17"].marker
    per_jdk = [c for c in configs if c.jdk == "25" and not c.is_default]
    assert len({look[c.key] for c in per_jdk}) == len(per_jdk) == 10, "within a JDK no two points look alike"


def _run(index: int, config: Config, log: str) -> RunRecord:
    record = RunRecord(index, config.key, 0, False, outcome=measure.OK, wall_s=1.0)
    record.gc = measure.summarize((LOGS / log).read_text())
    return record


def test_pause_rows_show_stalls_beside_pauses() -> None:
    default, zgc = Config(), Config("zgc", "96m")
    records = [_run(0, default, "g1-jdk17-tight.log"), _run(1, zgc, "z-jdk17-tight.log")]
    rep = report.Report({"repeat": 1, "jobs": 1, "target": "process"}, [default, zgc], records, "default",
                        "latency")
    rows = plots.pause_rows(rep)
    z = records[1].gc
    assert z.stalls > 0 and len(z.stall_ms) == z.stalls
    assert [(r.label, r.stalls, r.default) for r in rows] == [
        (f"default (n={records[0].gc.pauses})", False, True),
        (f"zgc-96m (n={z.pauses})", False, False),
        (f"zgc-96m stalls (n={z.stalls})", True, False)]
    assert rows[2].values == z.stall_ms
    assert "stall_ms" not in report.run_json(records[1])["gc"], "per-event lists stay out of results.json"


@pytest.mark.parametrize(("name", "label"), [
    ("app:ops_per_s", "ops_per_s (/s) — more is better"),
    ("app:p99_ms", "p99_ms (ms) — less is better"),
    ("pss_peak_mb", "peak PSS (MB) — less is better"),
    ("stop_p99_ms", "pause+stall p99 (ms) — less is better"),
])
def test_axis_labels_carry_units_and_direction(name: str, label: str) -> None:
    assert plots.axis_label(report.metric(name)) == label


def test_the_three_plots_are_drawn(tmp_path: Path) -> None:
    if not plots.available():
        pytest.skip("matplotlib is not installed (the plots extra)")
    default, zgc = Config(), Config("zgc", "96m")
    records = []
    for i in range(3):
        for j, (config, log, pss) in enumerate(((default, "g1-jdk17-tight.log", 300), (zgc, "z-jdk17-tight.log", 200))):
            record = _run(2 * i + j, config, log)
            record.pss_peak_mb, record.app = pss + i, {"ops_per_s": 1000.0 + 10 * i + j}
            records.append(record)
    rep = report.Report({"repeat": 3, "jobs": 1, "target": "process"}, [default, zgc], records, "default",
                        "throughput")
    assert plots.draw(tmp_path, rep) == [plots.PAUSES, plots.HEAP, plots.TRADEOFF]
    for name in (plots.PAUSES, plots.HEAP, plots.TRADEOFF):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_close_points_put_their_names_apart() -> None:
    offsets = plots.label_offsets({"g1-64m": (92.0, 137.0), "parallel-64m": (93.0, 119.0), "default": (660.0, 67.0)})
    assert offsets["g1-64m"] == plots.ABOVE and offsets["parallel-64m"] == plots.BELOW
    assert plots.label_offsets({"only": (1.0, 1.0)}) == {"only": plots.ABOVE}
