"""The report's PNGs (matplotlib, Agg backend): pause distributions, heap over time, throughput
against footprint. matplotlib is optional (the `plots` extra): without it the report says so."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from gc_hooks.experiment.report import Report, metric

PAUSES, HEAP, TRADEOFF = "pauses.png", "heap.png", "tradeoff.png"


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw(folder: Path, report: Report) -> list[str]:
    """Write the plots into `folder`; the names written."""
    if not available():
        return []
    plt = _pyplot()
    written = []
    for name, fn in ((PAUSES, _pauses), (HEAP, _heap), (TRADEOFF, _tradeoff)):
        fig = fn(plt, report)
        if fig is not None:
            fig.savefig(folder / name, dpi=110, bbox_inches="tight")
            plt.close(fig)
            written.append(name)
    return written


def _pauses(plt: Any, report: Report) -> Any:
    """One box per configuration over every pause of its clean measured runs, log scale."""
    rows = [(r.config.key, [p for run in r.ok_runs for p in run.gc.pause_ms]) for r in report.results]
    rows = [(k, v) for k, v in rows if v]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.6))
    ax.boxplot([v for _, v in rows], vert=False, whis=(1, 99), showfliers=True,
               flierprops={"markersize": 2, "alpha": 0.4})
    ax.set_yticks(range(1, len(rows) + 1), [f"{k} (n={len(v)})" for k, v in rows])
    ax.set_xscale("log")
    ax.set_xlabel("GC pause (ms, log scale); box: quartiles, whiskers: p1–p99, dots: beyond")
    ax.set_title("Pause distribution per configuration (all measured runs)")
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.invert_yaxis()
    return fig


def _median_run(result: Any) -> Any:
    runs = sorted((r for r in result.ok_runs if r.gc.heap_timeline), key=lambda r: r.wall_s or 0)
    return runs[len(runs) // 2] if runs else None


def _heap(plt: Any, report: Report) -> Any:
    """Small multiples: heap used after each collection and the committed heap, over the JVM's uptime,
    of the run with the median wall time of each configuration."""
    shown = [(r, run) for r in report.results if (run := _median_run(r)) is not None]
    if not shown:
        return None
    cols = min(3, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), sharex=True, sharey=True, squeeze=False)
    for ax in axes.flat[len(shown):]:
        ax.set_visible(False)
    for ax, (result, run) in zip(axes.flat, shown, strict=False):
        t = [p[0] for p in run.gc.heap_timeline]
        ax.plot(t, [p[1] for p in run.gc.heap_timeline], ".-", markersize=2, linewidth=0.8, label="after GC")
        cap = [(p[0], p[2]) for p in run.gc.heap_timeline if p[2] is not None]
        if cap:
            ax.step([c[0] for c in cap], [c[1] for c in cap], where="post", linewidth=1.2, label="committed")
        ax.set_title(f"{result.config.key} (run {run.index})", fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("JVM uptime (s)")
    for ax in axes[:, 0]:
        ax.set_ylabel("heap (MB)")
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Heap over time (median run of each configuration)")
    fig.tight_layout()
    return fig


def _tradeoff(plt: Any, report: Report) -> Any:
    """The objective asked for (throughput, unless latency was asked) against footprint, medians with
    their 95 % intervals; the default as a black star. An open-loop app has a fixed rate, so its
    latency is what trades against memory."""
    x_name = next(j.metric for j in report.judged if j.objective == "footprint")
    y_objective = "latency" if report.objective == "latency" else "throughput"
    y_name = next(j.metric for j in report.judged if j.objective == y_objective)
    points = [r for r in report.results if x_name in r.metrics and y_name in r.metrics]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(8.5, 5))
    for r in points:
        x, y = r.metrics[x_name], r.metrics[y_name]
        default = r.config.key == report.default_key
        ax.errorbar([x.median], [y.median], xerr=[[x.median - x.low], [x.high - x.median]],
                    yerr=[[y.median - y.low], [y.high - y.median]], fmt="*" if default else "o",
                    markersize=13 if default else 6, capsize=3, color="black" if default else None,
                    label=r.config.key + ("" if r.eligible else " (failed runs)"))
    xm, ym = metric(x_name), metric(y_name)
    ax.set_xlabel(f"{xm.title} ({xm.unit}) — less is better")
    ax.set_ylabel(f"{ym.title}{f' ({ym.unit})' if ym.unit else ''} — {'more' if ym.higher_better else 'less'} "
                  "is better")
    from matplotlib.ticker import EngFormatter

    ax.yaxis.set_major_formatter(EngFormatter())
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title(f"{y_objective.capitalize()} against footprint (medians with 95 % intervals; ★ the default)")
    return fig
