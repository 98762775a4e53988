"""The experiment's results: per-configuration medians with intervals, the best configuration per
objective against the default, the caveats, and the files (results.json, results.csv, report.md).

Pure except for `write` and `publish`. Statistics are over the measured runs that ended cleanly;
failed runs (out of memory, crash, timeout) are counted, listed and make their configuration
ineligible for a recommendation, never dropped.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gc_hooks.experiment import measure, stats
from gc_hooks.experiment.design import Config
from gc_hooks.experiment.execute import RunRecord

OBJECTIVES = ("throughput", "latency", "footprint")
MIN_REPEATS = 5  # fewer measured runs than this and the intervals are only a rough guide
MIN_TO_CLAIM = 3  # no gain is claimed from fewer clean runs per side: two runs' bootstrap is their range


@dataclass(frozen=True)
class Metric:
    name: str
    title: str
    unit: str
    higher_better: bool = False


METRICS = [
    Metric("wall_s", "wall", "s"),
    Metric("cpu_s", "CPU", "s"),
    Metric("pauses", "pauses", ""),
    Metric("pause_total_ms", "pause total", "ms"),
    Metric("pause_p50_ms", "pause p50", "ms"),
    Metric("pause_p99_ms", "pause p99", "ms"),
    Metric("pause_max_ms", "pause max", "ms"),
    Metric("gc_share_pct", "GC share", "%"),
    Metric("stalls", "stalls", ""),
    Metric("stall_total_ms", "stall total", "ms"),
    Metric("stop_p99_ms", "pause+stall p99", "ms"),
    Metric("stop_max_ms", "pause+stall max", "ms"),
    Metric("pss_peak_mb", "peak PSS", "MB"),
    Metric("pss_mean_mb", "mean PSS", "MB"),
    Metric("heap_committed_mb", "heap committed", "MB"),
]


def metric(name: str) -> Metric:
    for m in METRICS:
        if m.name == name:
            return m
    if name.startswith("app:"):
        short = name[4:]
        return Metric(name, short, "", measure.higher_is_better(short))
    raise KeyError(name)


def number(value: float | None) -> str:
    """A figure with about three significant digits, never in exponent form."""
    if value is None:
        return "–"
    a = abs(value)
    if a >= 100 or a == 0:
        return f"{value:.0f}"
    if a >= 10:
        return f"{value:.1f}"
    if a >= 1:
        return f"{value:.2f}"
    digits = 3
    while a < 0.1 and digits < 6:
        a *= 10
        digits += 1
    return f"{value:.{digits}f}"


def cell(interval: stats.Interval | dict[str, Any] | None) -> str:
    """`median [low–high]` as report.md shows it."""
    if interval is None:
        return "–"
    if isinstance(interval, dict):
        interval = stats.Interval(interval["median"], interval["low"], interval["high"], interval["n"])
    if interval.n == 1 or interval.low == interval.high:
        return number(interval.median)
    return f"{number(interval.median)} [{number(interval.low)}–{number(interval.high)}]"


@dataclass
class ConfigResult:
    config: Config
    runs: list[RunRecord] = field(default_factory=list)  # measured runs (warm-ups excluded)
    metrics: dict[str, stats.Interval] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def ok_runs(self) -> list[RunRecord]:
        return [r for r in self.runs if r.ok]

    @property
    def eligible(self) -> bool:
        """Every measured run ended cleanly (a configuration that sometimes fails is not recommended)."""
        return bool(self.runs) and all(r.ok for r in self.runs)

    def values(self, name: str) -> list[float]:
        return [v for r in self.ok_runs if (v := r.figures().get(name)) is not None]


@dataclass
class Comparison:
    """A configuration against the default on one metric: the change in %, positive = better."""

    improvement: stats.Interval | None
    significant: bool

    def to_json(self) -> dict[str, Any]:
        return {"improvement_pct": None if self.improvement is None else self.improvement.to_json(),
                "significant": self.significant}


@dataclass
class ObjectiveResult:
    objective: str
    metric: str
    best: str | None  # config key
    comparison: Comparison | None
    runner_up: str | None
    text: str


def aggregate(configs: Sequence[Config], records: Sequence[RunRecord]) -> list[ConfigResult]:
    results = {c.key: ConfigResult(c) for c in configs}
    for record in records:
        if not record.warmup and record.config in results:
            results[record.config].runs.append(record)
    for result in results.values():
        result.outcomes = Counter(r.outcome for r in result.runs)
        names = dict.fromkeys(m.name for m in METRICS)
        for r in result.ok_runs:
            names.update(dict.fromkeys(k for k in r.figures() if k.startswith("app:")))
        for name in names:
            values = result.values(name)
            if values:
                result.metrics[name] = stats.median_interval(values)
    return list(results.values())


def objective_metric(objective: str, results: Sequence[ConfigResult], override: str | None = None) -> str:
    """The figure an objective is judged on: the app's own where it prints one, else ours."""
    if override:
        return override
    present = {name for r in results for name in r.metrics}
    if objective == "throughput":
        app = sorted(n for n in present if n.startswith("app:") and n.endswith("_per_s"))
        return app[0] if app else "wall_s"
    if objective == "latency":
        return "app:p99_ms" if "app:p99_ms" in present else "stop_p99_ms"
    if objective == "footprint":
        return "pss_peak_mb" if "pss_peak_mb" in present else "heap_committed_mb"
    raise ValueError(objective)


def compare(result: ConfigResult, default: ConfigResult, name: str) -> Comparison:
    ratio = stats.ratio_interval(result.values(name), default.values(name))
    if ratio is None:
        return Comparison(None, False)
    if metric(name).higher_better:
        pct = stats.Interval(100 * (ratio.median - 1), 100 * (ratio.low - 1), 100 * (ratio.high - 1), ratio.n)
    else:
        pct = stats.Interval(100 * (1 - ratio.median), 100 * (1 - ratio.high), 100 * (1 - ratio.low), ratio.n)
    enough = min(len(result.values(name)), len(default.values(name))) >= MIN_TO_CLAIM
    return Comparison(pct, pct.low > 0 and enough)


def pct_range(low: float, high: float) -> str:
    """`19–27 %`, but `-8 to +242 %` once a bound is negative: `-8–242 %` reads as a minus range."""
    if low < 0 or high < 0:
        return f"{low:+.0f} to {high:+.0f} %"
    return f"{low:.0f}–{high:.0f} %"


PHRASES = {"throughput": "more throughput", "latency": "lower latency", "footprint": "less memory"}


def judge(objective: str, results: Sequence[ConfigResult], default_key: str, override: str | None = None
          ) -> ObjectiveResult:
    """The best eligible configuration on one objective, and what it gains over the default."""
    name = objective_metric(objective, results, override)
    m = metric(name)
    default = next(r for r in results if r.config.key == default_key)
    ranked = sorted((r for r in results if r.eligible and name in r.metrics),
                    key=lambda r: -r.metrics[name].median if m.higher_better else r.metrics[name].median)
    what = f"{PHRASES[objective]} ({m.title}{f', {m.unit}' if m.unit else ''})"
    if not ranked:
        return ObjectiveResult(objective, name, None, None, None, f"no configuration ran cleanly on every run: "
                               f"nothing to recommend for {objective}")
    best = ranked[0]
    runner_up = ranked[1].config.key if len(ranked) > 1 else None
    if not default.ok_runs or name not in default.metrics:
        failed = ", ".join(f"{k} {v}" for k, v in default.outcomes.items() if k != measure.OK) or "no figure"
        return ObjectiveResult(objective, name, best.config.key, None, runner_up,
                               f"{best.config.label}: best on {objective}; the default could not be compared "
                               f"({failed})")
    if best.config.key == default_key:
        return ObjectiveResult(objective, name, best.config.key, None, runner_up,
                               f"nothing beats the default on {objective}: it has the best {m.title}")
    comparison = compare(best, default, name)
    imp = comparison.improvement
    assert imp is not None
    span = f"95 % CI {pct_range(imp.low, imp.high)}" if imp.low != imp.high else "a single run each"
    if comparison.significant and not m.higher_better and imp.median >= 50:
        # "99.9 % less" reads badly: say how many times less (default / best)
        def times(pct: float) -> str:
            return number(100 / (100 - pct)) if pct < 100 else "∞"

        text = (f"{best.config.label}: {times(imp.median)}x {what} than the default "
                f"(95 % CI {times(imp.low)}–{times(imp.high)}x)")
    elif comparison.significant:
        text = f"{best.config.label}: {imp.median:.0f} % {what} than the default ({span})"
    elif imp.n < MIN_TO_CLAIM:
        text = (f"too few clean runs to tell ({imp.n} per configuration; --repeat {MIN_TO_CLAIM} or more): the best "
                f"on {objective}, {best.config.label}, is {imp.median:+.0f} % against the default ({span})")
    else:
        text = (f"nothing beats the default on {objective} beyond the noise: the best, {best.config.label}, "
                f"is {imp.median:+.0f} % ({span})")
    return ObjectiveResult(objective, name, best.config.key, comparison, runner_up, text)


def caveats(results: Sequence[ConfigResult], judged: Sequence[ObjectiveResult], repeats: int, jobs: int,
            target: str, skipped: Sequence[tuple[str, str]], load: float | None = None,
            cpus: int | None = None) -> list[str]:
    out: list[str] = []
    if load is not None and cpus and load > cpus:
        out.append(f"the machine was busy: a load average of up to {load:.1f} on {cpus} CPUs during the runs; "
                   "other work inflates wall times and their spread (CPU times suffer less)")
    if repeats < MIN_REPEATS:
        out.append(f"only {repeats} measured run(s) per configuration: intervals from fewer than {MIN_REPEATS} "
                   "are rough (the bootstrap cannot see rare slow runs); use --repeat 10 before acting")
    if jobs > 1:
        out.append(f"-j {jobs}: runs overlapped and shared the machine's CPUs and memory bandwidth, which "
                   "penalises collectors with more GC threads; use -j 1 for figures to act on")
    if target == "vm":
        out.append("VM target: where KVM is not available QEMU emulates the CPU (TCG), 10–30x slower, and "
                   "memory is QEMU's resident set, not the JVM's")
    by_key = {r.config.key: r for r in results}
    for j in judged:
        if j.best and j.runner_up:
            a, b = by_key[j.best].metrics.get(j.metric), by_key[j.runner_up].metrics.get(j.metric)
            if a and b and a.overlaps(b):
                out.append(f"{j.objective}: the intervals of the best ({j.best}) and the runner-up "
                           f"({j.runner_up}) overlap, so their order is not established")
    for r in results:
        bad = {k: v for k, v in r.outcomes.items() if k != measure.OK}
        if bad:
            what = ", ".join(f"{v} {k}" for k, v in sorted(bad.items()))
            out.append(f"{r.config.key}: {what} of {len(r.runs)} measured runs; not eligible for a recommendation")
    for key, why in skipped:
        out.append(f"{key}: skipped, {why}")
    return out


def flat_row(record: RunRecord, config: Config, app_names: Sequence[str]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "index": record.index, "config": record.config, "gc": config.gc or "default",
        "heap": config.heap or "default", "jdk": config.jdk or "default", "hugepages": config.hugepages or "",
        "dynamic_heap": config.dynamic_heap or "", "round": record.round, "warmup": int(record.warmup),
        "outcome": record.outcome, "reason": record.reason, "exit_status": record.exit_status,
        "collector": record.gc.collector or "",
    }
    figures = record.figures()
    row.update({m.name: figures.get(m.name) for m in METRICS})
    row["memory_source"] = record.memory_source
    row.update({f"app_{n}": record.app.get(n) for n in app_names})
    row["folder"] = record.folder
    return row


def run_json(record: RunRecord) -> dict[str, Any]:
    data = asdict(record)
    data["gc"] = {k: v for k, v in data["gc"].items() if k not in ("pause_ms", "stall_ms", "heap_timeline")}
    return data


@dataclass
class Report:
    meta: dict[str, Any]
    configs: list[Config]
    records: list[RunRecord]
    default_key: str
    objective: str
    metric_override: str | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.results = aggregate(self.configs, self.records)
        self.judged = [judge(o, self.results, self.default_key, self.metric_override if o == self.objective
                             else None) for o in OBJECTIVES]
        self.caveats = caveats(self.results, self.judged, int(self.meta.get("repeat", 0)),
                               int(self.meta.get("jobs", 1)), str(self.meta.get("target", "")), self.skipped,
                               self.meta.get("load_max"), self.meta.get("cpus"))

    @property
    def recommendation(self) -> str:
        return next(j.text for j in self.judged if j.objective == self.objective)

    def tradeoffs(self) -> list[str]:
        """For the best on each objective, its change on the other two (a cut in memory often costs
        throughput): `label` (best on X): throughput -25 % [-30–-20], latency +29 % [...]."""
        by_key = {r.config.key: r for r in self.results}
        default = by_key[self.default_key]
        out = []
        for j in self.judged:
            if not j.best or j.best == self.default_key:
                continue
            parts = []
            for other in self.judged:
                if other.objective == j.objective:
                    continue
                imp = compare(by_key[j.best], default, other.metric).improvement
                if imp is not None:
                    parts.append(f"{other.objective} {imp.median:+.0f} % [{imp.low:+.0f}–{imp.high:+.0f}]")
            if parts:
                out.append(f"`{by_key[j.best].config.label}` (best on {j.objective}): {', '.join(parts)}")
        return out

    @property
    def app_names(self) -> list[str]:
        return sorted({n for r in self.records for n in r.app})

    def to_json(self) -> dict[str, Any]:
        by_key = {r.config.key: r for r in self.results}
        default = by_key[self.default_key]
        configs = []
        for r in self.results:
            configs.append({
                "key": r.config.key, "label": r.config.label, "gc": r.config.gc, "heap": r.config.heap,
                "jdk": r.config.jdk, "hugepages": r.config.hugepages, "dynamic_heap": r.config.dynamic_heap,
                "flags": r.config.run_options(), "is_default": r.config.key == self.default_key,
                "runs": len(r.runs), "ok": len(r.ok_runs), "outcomes": dict(r.outcomes), "eligible": r.eligible,
                "collector": next((x.gc.collector for x in r.runs if x.gc.collector), None),
                "metrics": {k: v.to_json() for k, v in r.metrics.items()},
                "vs_default": {j.objective: compare(r, default, j.metric).to_json() for j in self.judged
                               if r.config.key != self.default_key},
            })
        return {
            "meta": self.meta, "default": self.default_key, "objective": self.objective,
            "recommendation": self.recommendation,
            "objectives": {j.objective: {"metric": j.metric, "best": j.best, "runner_up": j.runner_up,
                                         "text": j.text,
                                         **(j.comparison.to_json() if j.comparison else {"improvement_pct": None,
                                                                                        "significant": False})}
                           for j in self.judged},
            "configs": configs, "caveats": self.caveats, "tradeoffs": self.tradeoffs(),
            "skipped": [{"config": k, "reason": why} for k, why in self.skipped],
            "runs": [run_json(r) for r in self.records],
        }

    def csv(self) -> str:
        by_key = {c.key: c for c in self.configs}
        out = io.StringIO()
        rows = [flat_row(r, by_key[r.config], self.app_names) for r in self.records]
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        return out.getvalue()

    def markdown(self, plots: Sequence[str] = ()) -> str:
        meta = self.meta
        lines = [f"# GC experiment: {meta.get('app', '')}", ""]
        lines += [f"- command: `{meta.get('command', '')}`",
                  f"- when: {meta.get('started', '')}, {number(meta.get('seconds'))} s; host: {meta.get('host', '')}",
                  f"- target: {meta.get('target')}; JDK: {meta.get('jdk_note', '')}",
                  f"- schedule: {len(self.configs)} configurations x ({meta.get('warmup')} warm-up + "
                  f"{meta.get('repeat')} measured) rounds, each round in a shuffled order (seed {meta.get('seed')}), "
                  f"{meta.get('jobs')} at a time",
                  f"- the default: `{self.default_key}`, osv-java run with no GC or heap flags", ""]
        lines += ["## Recommendation", "", f"**{self.recommendation}**", "",
                  "## Best configuration per objective", "",
                  "| objective | judged on | best | median [95 % CI] | default | vs default [95 % CI] |",
                  "| --- | --- | --- | --- | --- | --- |"]
        by_key = {r.config.key: r for r in self.results}
        default = by_key[self.default_key]
        for j in self.judged:
            m = metric(j.metric)
            best = by_key[j.best] if j.best else None
            change = "–"
            if j.comparison and j.comparison.improvement:
                imp = j.comparison.improvement
                change = f"{imp.median:+.1f} % [{imp.low:+.1f}–{imp.high:+.1f}]" + ("" if j.comparison.significant
                                                                                   else " (noise)")
            lines.append(f"| {j.objective} | {m.title}{f' ({m.unit})' if m.unit else ''}"
                         f"{' ↑' if m.higher_better else ' ↓'} | {best.config.label if best else '–'} | "
                         f"{cell(best.metrics.get(j.metric)) if best else '–'} | "
                         f"{cell(default.metrics.get(j.metric))} | {change} |")
        lines += ["", "Change in %: positive is better (more throughput, less latency or memory).", ""]
        trades = self.tradeoffs()
        if trades:
            lines += ["What each best configuration costs on the other objectives, against the default:", ""]
            lines += [f"- {t}" for t in trades]
            lines.append("")
        shown = [m for m in METRICS if any(m.name in r.metrics for r in self.results)]
        shown += [metric(f"app:{n}") for n in self.app_names]
        lines += ["## Configurations", "",
                  "Medians over the clean measured runs, with 95 % bootstrap intervals in brackets. "
                  + ("PSS columns: the resident set of QEMU, the whole VM (guest kernel, PID 1 and the JVM)."
                     if meta.get("target") == "vm" else "PSS: the JVM's proportional set size."), "",
                  "| configuration | collector | runs ok | " + " | ".join(
                      f"{m.title}{f' ({m.unit})' if m.unit else ''}" for m in shown) + " |",
                  "| --- | --- | --- | " + " | ".join("---" for _ in shown) + " |"]
        for r in self.results:
            collector = next((x.gc.collector for x in r.runs if x.gc.collector), "") or ""
            lines.append(f"| `{r.config.key}` | {collector} | {len(r.ok_runs)}/{len(r.runs)} | "
                         + " | ".join(cell(r.metrics.get(m.name)) for m in shown) + " |")
        lines += ["", "Flags of each configuration:", ""]
        lines += [f"- `{r.config.key}`: `{r.config.label}`" for r in self.results]
        failed = [x for x in self.records if not x.ok]
        lines += ["", "## Failed runs", ""]
        if failed:
            lines += ["| run | configuration | warm-up | outcome | exit | why | files |",
                      "| --- | --- | --- | --- | --- | --- | --- |"]
            for x in failed:
                lines.append(f"| {x.index} | `{x.config}` | {'yes' if x.warmup else 'no'} | {x.outcome} | "
                             f"{x.exit_status} | {x.reason.replace('|', '/')} | {x.folder} |")
        else:
            lines.append("None: every run ended cleanly.")
        lines += ["", "## Caveats", ""]
        lines += [f"- {c}" for c in self.caveats] or ["- none found"]
        if plots:
            lines += ["", "## Plots", ""]
            lines += [f"![{p}]({p})" for p in plots]
        lines += ["", "## Method", "",
                  "Each run is `osv-java run --gc-log FILE` in a process of its own. Wall time: the whole "
                  "command, JVM start-up included. CPU: the run's process tree (wait4) minus osv-java's own. "
                  "Memory: PSS of the JVM (RSS of QEMU for VMs) sampled every 0.1 s. Pauses: the GC's own "
                  "stop-the-world pauses from the log (ZGC and Shenandoah: their pause phases); GC share: "
                  "total pause time over the JVM's uptime. Committed heap: the largest heap capacity the log "
                  "shows. App figures: its `RESULT name=value` lines. Intervals: percentile bootstrap of the "
                  "median (2000 resamples, seeded); a change against the default is the ratio of medians with "
                  "both groups resampled. Warm-up rounds are run and kept in results.csv but not counted.", ""]
        return "\n".join(lines)


def write(folder: Path, report: Report, plots: Sequence[str] = ()) -> None:
    (folder / "results.json").write_text(json.dumps(report.to_json(), indent=1, default=str) + "\n")
    (folder / "results.csv").write_text(report.csv())
    (folder / "report.md").write_text(report.markdown(plots))


def staging(destination: Path) -> Path:
    """A fresh folder beside `destination` to fill before `publish` renames it into place."""
    parent = destination.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=parent))


def publish(temp: Path, destination: Path) -> None:
    """Rename the filled folder into place; a previous report there is replaced only once this one is whole."""
    os.chmod(temp, 0o755)
    if destination.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{destination.name}.old.", dir=destination.resolve().parent))
        os.rename(destination, old / "previous")
        os.rename(temp, destination)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(temp, destination)
