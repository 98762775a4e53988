"""The pure parts of gc-experiment: the design and its interleaved schedule, the statistics, what a run's
GC log, output and exit say (on the real logs of every collector on JDK 17 and 25), and the judgement."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

import pytest

from gc_hooks.experiment import design, measure, report, stats
from gc_hooks.experiment.design import Config
from gc_hooks.experiment.execute import RunRecord
from jvmbridge.errors import UsageError

LOGS = Path(__file__).parent.parent / "data" / "gclogs"
PAUSE_LINE = re.compile(r"\]\[gc(,phases)? *\] GC\((\d+)\) (?:[YOyo]: )?Pause .*? \d+\.\d+(ms|s)$", re.M)
COLLECTORS = {"g1": "G1", "parallel": "Parallel", "serial": "Serial", "z": "Z", "shenandoah": "Shenandoah"}
K = 1 << 10


def test_design_is_every_combination_plus_the_default() -> None:
    configs = design.design(design.parse_gcs("g1,parallel"), design.parse_heaps("256m,1G"), design.parse_jdks("17,25"))
    assert len(configs) == 2 * 2 * 2 + 2
    assert len({c.key for c in configs}) == len(configs)
    defaults = [c for c in configs if c.is_default]
    assert [c.jdk for c in defaults] == ["17", "25"]
    assert design.reference(configs) == Config(jdk="17")
    g1 = Config("g1", "1g", "25")
    assert g1.key == "g1-1g-jdk25"
    assert g1.run_options() == ["--jdk=25", "--jvm-opt=-XX:+UseG1GC", "--jvm-opt=-Xmx1g"]
    assert g1.label == "--jdk 25 -XX:+UseG1GC -Xmx1g"
    assert Config().label == "default" and Config().run_options() == []


def test_design_with_the_default_among_the_axes_has_it_once() -> None:
    configs = design.design(design.parse_gcs("default,serial"), design.parse_heaps("default"), [None])
    assert [c.key for c in configs] == ["default", "serial"]


def test_switch_axes_pass_through_to_osv_java_run() -> None:
    configs = design.design([None], [None], [None], design.parse_switch("on,off", "hugepages"))
    assert [c.run_options() for c in configs if not c.is_default] == [["--hugepages=on"], ["--hugepages=off"]]


@pytest.mark.parametrize(("parse", "text"), [(design.parse_gcs, "g1,cms"), (design.parse_heaps, "lots")])
def test_bad_axis_values_are_usage_errors(parse: object, text: str) -> None:
    with pytest.raises(UsageError):
        parse(text)  # type: ignore[operator]


def test_schedule_interleaves_shuffled_rounds_warmups_first() -> None:
    configs = design.design(design.parse_gcs("g1,parallel,serial"), design.parse_heaps("64m,1g"), [None])
    runs = design.schedule(configs, repeats=4, warmup=1, seed=3)
    assert len(runs) == len(configs) * 5
    assert [r.index for r in runs] == list(range(len(runs)))
    n = len(configs)
    orders = []
    for rnd in range(5):
        block = runs[rnd * n:(rnd + 1) * n]
        assert sorted(r.config.key for r in block) == sorted(c.key for c in configs)
        assert all(r.round == rnd and r.warmup == (rnd == 0) for r in block)
        orders.append([r.config.key for r in block])
    assert len({tuple(o) for o in orders}) > 1, "each round is shuffled afresh"
    assert design.schedule(configs, 4, 1, 3) == runs
    assert design.schedule(configs, 4, 1, 4) != runs


def test_percentile_interpolates_like_numpy() -> None:
    assert stats.percentile([1, 2, 3, 4], 0.5) == 2.5
    assert stats.percentile([5], 0.99) == 5
    assert stats.percentile(list(range(101)), 0.99) == pytest.approx(99)


def test_median_interval_is_seeded_and_brackets_the_median() -> None:
    values = [10.0, 11.0, 9.5, 10.2, 30.0, 10.1, 9.9]
    a = stats.median_interval(values)
    assert a == stats.median_interval(values)
    assert a.median == statistics.median(values) and a.n == 7
    assert min(values) <= a.low <= a.median <= a.high <= max(values)
    assert a.high < 30, "one slow run does not drag the median's interval"
    assert stats.median_interval([4.0]) == stats.Interval(4.0, 4.0, 4.0, 1)


def test_ratio_interval() -> None:
    same = stats.ratio_interval([10, 11, 9, 10, 10], [10, 9, 11, 10, 10])
    assert same is not None and same.low <= 1 <= same.high
    better = stats.ratio_interval([20, 21, 19, 20, 22], [10, 9, 11, 10, 10])
    assert better is not None and better.low > 1.5
    assert stats.ratio_interval([1.0], [0.0]) is None


def test_app_results() -> None:
    out = "hello\nRESULT ops_per_s=1234.5\nRESULT p50_ms=0.5 p99_ms=1.5e1\nRESULT ops_per_s=99\nRESULTS x=1\n"
    assert measure.app_results(out) == {"ops_per_s": 99.0, "p50_ms": 0.5, "p99_ms": 15.0}
    assert measure.higher_is_better("ops_per_s") and not measure.higher_is_better("p99_ms")


@pytest.mark.parametrize(("status", "stderr", "timed_out", "outcome"), [
    (0, "", False, measure.OK),
    (1, 'Exception in thread "main" java.lang.OutOfMemoryError: Java heap space\n', False, measure.OOM),
    (1, "Error occurred during initialization of VM\nToo small maximum heap\n", False, measure.OOM),
    (134, "# A fatal error has been detected by the Java Runtime Environment:\n", False, measure.CRASH),
    (137, "", False, measure.CRASH),
    (125, "osv-java: error: the app did not finish within --timeout 5s; it was stopped\n", False, measure.TIMEOUT),
    (130, "", True, measure.TIMEOUT),
    (125, "osv-java: error: no JDK 99 found\n", False, measure.ERROR),
    (3, "", False, measure.FAILED),
])
def test_classify(status: int, stderr: str, timed_out: bool, outcome: str) -> None:
    got, why = measure.classify(status, stderr, timed_out)
    assert got == outcome
    assert (why == "") == (outcome == measure.OK)


@pytest.mark.parametrize("gc", sorted(COLLECTORS))
@pytest.mark.parametrize("jdk", [17, 25])
def test_every_collector_on_17_and_25_has_real_logs_that_summarise(gc: str, jdk: int) -> None:
    logs = sorted(LOGS.glob(f"{gc}-jdk{jdk}*.log"))
    assert logs, f"no log of {gc} on JDK {jdk} in {LOGS}"
    for log in logs:
        text = log.read_text()
        summary = measure.summarize(text)
        assert summary.collector == COLLECTORS[gc]
        assert summary.pauses == len(PAUSE_LINE.findall(text)) > 0
        assert summary.pause_max_ms == pytest.approx(max(summary.pause_ms))
        assert summary.pause_p50_ms is not None and summary.pause_p50_ms <= summary.pause_p99_ms  # type: ignore[operator]
        assert summary.uptime_s and 0 <= summary.gc_share_pct < 100  # type: ignore[operator]
        if gc != "z" or "jdk17-tight" in log.name:  # generational ZGC logs no capacity at info level
            assert summary.heap_committed_mb, log.name


@pytest.mark.parametrize(("name", "committed"), [
    ("g1-jdk17-tight.log", 98304 * K), ("parallel-jdk17-tight.log", (22016 + 65536) * K),
    ("serial-jdk17-tight.log", (29504 + 65536) * K), ("shenandoah-jdk17-tight.log", None),
    ("z-jdk17-tight.log", 96 << 20), ("g1-jdk25-tight.log", None),
])
def test_heap_committed_at_exit(name: str, committed: int | None) -> None:
    assert measure.exit_heap_committed((LOGS / name).read_text().splitlines()) == committed


def _record(index: int, config: Config, ops: float | None, pss: float, outcome: str = measure.OK) -> RunRecord:
    r = RunRecord(index, config.key, index, False, outcome=outcome, wall_s=2.0, cpu_s=1.0, pss_peak_mb=pss,
                  pss_mean_mb=pss / 2)
    if ops is not None:
        r.app = {"ops_per_s": ops}
    return r


def _report(default_ops: list[float], parallel_ops: list[float]) -> report.Report:
    default, parallel, tiny = Config(), Config("parallel", "512m"), Config("serial", "8m")
    records = [_record(i, default, v, 200) for i, v in enumerate(default_ops)]
    records += [_record(10 + i, parallel, v, 300) for i, v in enumerate(parallel_ops)]
    records += [_record(20 + i, tiny, None, 40, measure.OOM) for i in range(2)]
    meta = {"repeat": len(default_ops), "jobs": 1, "target": "process"}
    return report.Report(meta, [default, parallel, tiny], records, "default", "throughput")


def test_judge_a_clear_gain() -> None:
    rep = _report([100, 102, 98, 101, 99], [123, 125, 121, 124, 122])
    assert re.fullmatch(r"-XX:\+UseParallelGC -Xmx512m: 23 % more throughput \(ops_per_s\) than the default "
                        r"\(95 % CI \d+–\d+ %\)", rep.recommendation), rep.recommendation
    footprint = next(j for j in rep.judged if j.objective == "footprint")
    assert footprint.best == "default", "the configuration whose runs ran out of memory is never the best"
    assert any("serial-8m: 2 oom of 2" in c for c in rep.caveats)
    data = rep.to_json()
    assert {c["key"]: c["outcomes"] for c in data["configs"]}["serial-8m"] == {"oom": 2}
    assert len(rep.csv().splitlines()) == 1 + 12


def test_judge_noise_is_not_a_gain() -> None:
    rep = _report([100, 120, 90, 110, 95], [104, 92, 125, 99, 111])
    assert rep.recommendation.startswith("nothing beats the default on throughput beyond the noise"), \
        rep.recommendation


def test_number_and_cell_formats() -> None:
    assert [report.number(v) for v in (1234.5, 56.78, 3.14159, 0.01234, 0.0)] == ["1234", "56.8", "3.14", "0.0123", "0"]
    assert report.cell(stats.Interval(2.0, 1.5, 2.5, 3)) == "2.00 [1.50–2.50]"
    assert report.cell(None) == "–"


def test_zgc_allocation_and_relocation_stalls_count_for_latency() -> None:
    text = (LOGS / "z-jdk17-tight.log").read_text()
    summary = measure.summarize(text)
    stall_ms = [float(x) for x in re.findall(r"\] (?:Allocation|Relocation) Stall \(\w+\) (\d+\.\d+)ms$", text, re.M)]
    assert summary.stalls == len(stall_ms) > 0
    assert summary.stall_total_ms == pytest.approx(sum(stall_ms))
    assert summary.stop_max_ms == pytest.approx(max(stall_ms + summary.pause_ms))
    assert summary.stop_p99_ms is not None and summary.stop_p99_ms > summary.pause_p99_ms  # type: ignore[operator]


def test_two_runs_are_too_few_to_claim_a_gain() -> None:
    rep = _report([100, 101], [150, 151])
    assert rep.recommendation.startswith("too few clean runs to tell (2 per configuration; --repeat 3 or more)"), \
        rep.recommendation
    assert any(c.startswith("only 2 measured run(s)") for c in rep.caveats)


def test_a_collector_the_jdk_lacks_is_skipped_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """Debian's JDK 17 has Shenandoah; builds without it exist (Oracle's): such cells are skipped, said why."""
    from dataclasses import dataclass

    from osv_java import gc_experiment_command as command

    @dataclass
    class NoShenandoah:
        gcs: tuple[str, ...] = ("G1", "Parallel", "Serial", "Z")

        def describe(self) -> str:
            return "Oracle 17.0.9 at /opt/jdk17"

    monkeypatch.setattr(command.jdks, "select", lambda spec: NoShenandoah())
    configs = design.design(design.parse_gcs("g1,shenandoah"), [None], ["17"])
    kept, skipped, note = command._available(configs)
    assert [c.key for c in kept] == ["default-jdk17", "g1-jdk17"]
    assert skipped == [("shenandoah-jdk17", "Oracle 17.0.9 at /opt/jdk17 has no Shenandoah collector")]
    assert note == "17 = Oracle 17.0.9 at /opt/jdk17"


def test_a_busy_machine_is_a_caveat() -> None:
    rep = _report([100, 102, 98, 101, 99], [123, 125, 121, 124, 122])
    assert not any("busy" in c for c in rep.caveats)
    busy = report.Report({"repeat": 5, "jobs": 1, "target": "process", "load_max": 9.5, "cpus": 2},
                         rep.configs, rep.records, "default", "throughput")
    assert busy.caveats[0].startswith("the machine was busy: a load average of up to 9.5 on 2 CPUs")


def test_a_large_cut_is_said_as_a_factor() -> None:
    default, zgc = Config(), Config("zgc")
    records = []
    for i, (p99, z99) in enumerate([(40, 0.02), (42, 0.021), (38, 0.019), (41, 0.02), (39, 0.022)]):
        for j, (config, value) in enumerate(((default, p99), (zgc, z99))):
            r = _record(2 * i + j, config, None, 200)
            r.app = {"p99_ms": value}
            records.append(r)
    rep = report.Report({"repeat": 5, "jobs": 1, "target": "process"}, [default, zgc], records, "default",
                        "latency")
    assert re.fullmatch(r"-XX:\+UseZGC: 2000x lower latency \(p99_ms\) than the default \(95 % CI \d+–\d+x\)",
                        rep.recommendation), rep.recommendation


def test_the_best_on_one_objective_shows_its_cost_on_the_others() -> None:
    rep = _report([100, 102, 98, 101, 99], [123, 125, 121, 124, 122])
    trades = rep.tradeoffs()
    assert len(trades) == 1 and trades[0].startswith("`-XX:+UseParallelGC -Xmx512m` (best on throughput): ")
    assert "footprint -50 % [-50–-50]" in trades[0], trades[0]  # 300 MB against the default's 200
    assert "What each best configuration costs" in rep.markdown()


def test_an_interval_across_zero_is_said_with_signs() -> None:
    assert report.pct_range(19.2, 27.4) == "19–27 %"
    assert report.pct_range(-8.3, 242.4) == "-8 to +242 %"
    rep = _report([100, 120, 90, 110, 95], [104, 92, 125, 99, 111])
    assert re.search(r"\(95 % CI -\d+ to \+\d+ %\)$", rep.recommendation), rep.recommendation
