"""The report's PNGs (matplotlib, Agg backend): pause distributions, heap over time, throughput
against footprint. matplotlib is optional (the `plots` extra): without it the report says so.

What to draw (names, colours, rows) is decided by small pure functions, tested without matplotlib;
the drawing functions only lay it out."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gc_hooks.experiment.design import Config
from gc_hooks.experiment.report import ConfigResult, Metric, Report, metric

PAUSES, HEAP, TRADEOFF = "pauses.png", "heap.png", "tradeoff.png"

# one colour per collector, so a collector's heap sizes read as one family; the default is black
COLLECTOR_COLOURS = {"g1": "tab:blue", "parallel": "tab:green", "serial": "tab:purple", "zgc": "tab:orange",
                     "shenandoah": "tab:brown"}
DEFAULT_COLOUR = "black"
STALL_COLOUR = "tab:red"
# one marker per heap size (in the order the sizes were asked for); a star is kept for the default
HEAP_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")


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


def short_names(configs: Sequence[Config], default_key: str) -> dict[str, str]:
    """Labels for the plots: the key without the JDK when every configuration has the same one, and
    the default called so (the plots mark it too)."""
    one_jdk = len({c.jdk for c in configs}) == 1
    return {c.key: "default" if c.key == default_key else (replace(c, jdk=None).key if one_jdk else c.key)
            for c in configs}


@dataclass(frozen=True)
class Style:
    colour: str
    marker: str


def styles(configs: Sequence[Config], default_key: str) -> dict[str, Style]:
    """Colour by collector, marker by heap size: 20 configurations stay tellable apart, where a
    colour cycle of 10 repeats."""
    heaps = list(dict.fromkeys(c.heap for c in configs if c.key != default_key))
    out = {}
    for c in configs:
        if c.key == default_key:
            out[c.key] = Style(DEFAULT_COLOUR, "*")
        else:
            colour = COLLECTOR_COLOURS.get(c.gc or "", "tab:gray")
            out[c.key] = Style(colour, HEAP_MARKERS[heaps.index(c.heap) % len(HEAP_MARKERS)])
    return out


@dataclass(frozen=True)
class PauseRow:
    label: str
    values: list[float]
    stalls: bool  # allocation/relocation stalls of the app's threads, not pauses of the collector
    default: bool


def pause_rows(report: Report) -> list[PauseRow]:
    """A row of pauses per configuration with any, and under it a row of its stalls when it had some:
    ZGC's and Shenandoah's pauses are tiny, but a thread that outruns the collector waits, and a
    picture without those waits would flatter them."""
    names = short_names(report.configs, report.default_key)
    rows = []
    for r in report.results:
        default = r.config.key == report.default_key
        pauses = [p for run in r.ok_runs for p in run.gc.pause_ms]
        stalls = [s for run in r.ok_runs for s in run.gc.stall_ms]
        if pauses:
            rows.append(PauseRow(f"{names[r.config.key]} (n={len(pauses)})", pauses, False, default))
        if stalls:
            rows.append(PauseRow(f"{names[r.config.key]} stalls (n={len(stalls)})", stalls, True, default))
    return rows


ABOVE, BELOW = (7, 5), (7, -13)  # a point's name, in points from it


def label_offsets(points: dict[str, tuple[float, float]]) -> dict[str, tuple[int, int]]:
    """Where each point's name goes: below the point when its nearest neighbour (on axes scaled to
    their spans) sits above it, else above, so that two close points do not write over each other."""
    if len(points) < 2:
        return {key: ABOVE for key in points}
    xs, ys = [p[0] for p in points.values()], [p[1] for p in points.values()]
    dx, dy = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    out = {}
    for key, (x, y) in points.items():
        nearest = min((other for other in points if other != key),
                      key=lambda o: math.hypot((points[o][0] - x) / dx, (points[o][1] - y) / dy))
        out[key] = BELOW if points[nearest][1] > y else ABOVE
    return out


def axis_label(m: Metric, better: bool = True) -> str:
    """`title (unit) — more is better`; an app figure's unit is read from its name (`_per_s`, `_ms`)."""
    unit = m.unit
    if not unit and m.name.startswith("app:"):
        unit = "/s" if m.name.endswith("_per_s") else "ms" if m.name.endswith("_ms") else ""
    text = f"{m.title}{f' ({unit})' if unit else ''}"
    if better:
        text += f" — {'more' if m.higher_better else 'less'} is better"
    return text


def _pauses(plt: Any, report: Report) -> Any:
    """One box per configuration over every pause of its clean measured runs (stalls in red), log scale."""
    rows = pause_rows(report)
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(8.5, 0.42 * len(rows) + 1.8))
    import matplotlib

    # `vert` is deprecated from 3.10 on, `orientation` does not exist before it
    major, minor = (int(x) for x in matplotlib.__version__.split(".")[:2])
    sideways = {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}
    box = ax.boxplot([r.values for r in rows], **sideways, whis=(1, 99), showfliers=True, patch_artist=True,
                     flierprops={"markersize": 2, "alpha": 0.4}, medianprops={"color": "black"})
    for patch, row in zip(box["boxes"], rows, strict=True):
        patch.set_facecolor(STALL_COLOUR if row.stalls else "0.85" if not row.default else "gold")
        patch.set_alpha(0.6 if row.stalls else 1.0)
    ax.set_yticks(range(1, len(rows) + 1), [r.label for r in rows])
    for tick, row in zip(ax.get_yticklabels(), rows, strict=True):
        if row.default:
            tick.set_fontweight("bold")
        if row.stalls:
            tick.set_color(STALL_COLOUR)
    ax.set_xscale("log")
    ax.set_xlabel("time the app's threads stood still (ms, log scale)\n"
                  "box: quartiles, line: median, whiskers: p1–p99, dots: beyond")
    stalled = any(r.stalls for r in rows)
    ax.set_title("GC pauses per configuration over all measured runs; the default in gold"
                 + ("\nred: allocation stalls, where the app's threads waited for a concurrent collector"
                    if stalled else ""), fontsize=11)
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.invert_yaxis()
    return fig


def _median_run(result: ConfigResult) -> Any:
    runs = sorted((r for r in result.ok_runs if r.gc.heap_timeline), key=lambda r: r.wall_s or 0)
    return runs[len(runs) // 2] if runs else None


def _heap(plt: Any, report: Report) -> Any:
    """Small multiples: heap used after each collection and the committed heap, over the JVM's uptime,
    of the run with the median wall time of each configuration (the default first)."""
    shown = [(r, run) for r in report.results if (run := _median_run(r)) is not None]
    if not shown:
        return None
    shown.sort(key=lambda pair: pair[0].config.key != report.default_key)
    names = short_names(report.configs, report.default_key)
    cols = min(3, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows + 0.6), sharex=True, sharey=True,
                             squeeze=False)
    for ax in axes.flat[len(shown):]:
        ax.set_visible(False)
    for ax, (result, run) in zip(axes.flat, shown, strict=False):
        t = [p[0] for p in run.gc.heap_timeline]
        ax.plot(t, [p[1] for p in run.gc.heap_timeline], ".-", markersize=2, linewidth=0.8,
                color="tab:blue", label="used after GC")
        cap = [(p[0], p[2]) for p in run.gc.heap_timeline if p[2] is not None]
        if cap:
            ax.step([c[0] for c in cap], [c[1] for c in cap], where="post", linewidth=1.2, color="tab:orange",
                    label="committed")
        else:
            ax.text(0.98, 0.95, "committed: not in this collector's log", transform=ax.transAxes, ha="right",
                    va="top", fontsize=7, color="0.4")
        default = result.config.key == report.default_key
        title = f"{names[result.config.key]} ({run.gc.collector or '?'}; run {run.index})"
        ax.set_title(title, fontsize=9, fontweight="bold" if default else "normal")
        if default:
            for spine in ax.spines.values():
                spine.set_edgecolor("goldenrod")
                spine.set_linewidth(2)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("JVM uptime (s)")
    for ax in axes[:, 0]:
        ax.set_ylabel("heap (MB)")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=8, ncol=2)
    fig.suptitle("Heap over time: the run with the median wall time of each configuration (default framed)",
                 x=0.02, ha="left", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


def _tradeoff(plt: Any, report: Report) -> Any:
    """The objective asked for (throughput, unless latency was asked) against footprint, medians with
    their 95 % intervals, each point named; colour by collector, marker by heap, the default a black
    star and the best on the objective ringed. An open-loop app has a fixed rate, so its latency is
    what trades against memory."""
    x_name = next(j.metric for j in report.judged if j.objective == "footprint")
    y_objective = "latency" if report.objective == "latency" else "throughput"
    y_judged = next(j for j in report.judged if j.objective == y_objective)
    y_name = y_judged.metric
    points = [r for r in report.results if x_name in r.metrics and y_name in r.metrics]
    if not points:
        return None
    names = short_names(report.configs, report.default_key)
    look = styles(report.configs, report.default_key)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    offsets = label_offsets({r.config.key: (r.metrics[x_name].median, r.metrics[y_name].median) for r in points})
    for r in points:
        x, y = r.metrics[x_name], r.metrics[y_name]
        default = r.config.key == report.default_key
        style = look[r.config.key]
        ax.errorbar([x.median], [y.median], xerr=[[x.median - x.low], [x.high - x.median]],
                    yerr=[[y.median - y.low], [y.high - y.median]], fmt=style.marker, color=style.colour,
                    markersize=14 if default else 7, capsize=3, elinewidth=0.8, alpha=0.9, zorder=3 if default else 2)
        if r.config.key == y_judged.best and not default:
            ax.plot([x.median], [y.median], "o", markersize=17, markerfacecolor="none", markeredgecolor="red",
                    markeredgewidth=1.5, zorder=4)
        ax.annotate(names[r.config.key] + ("" if r.eligible else " (failed runs)"), (x.median, y.median),
                    textcoords="offset points", xytext=offsets[r.config.key], fontsize=8,
                    fontweight="bold" if default else "normal", color=style.colour)
    xm, ym = metric(x_name), metric(y_name)
    ax.set_xlabel(axis_label(xm))
    ax.set_ylabel(axis_label(ym))
    from matplotlib.lines import Line2D
    from matplotlib.ticker import EngFormatter

    ax.yaxis.set_major_formatter(EngFormatter())
    ax.grid(alpha=0.3)
    legend = [Line2D([], [], marker="*", color=DEFAULT_COLOUR, linestyle="", markersize=12, label="the default")]
    legend += [Line2D([], [], marker="o", color=COLLECTOR_COLOURS[gc], linestyle="", label=gc)
               for gc in COLLECTOR_COLOURS if any(r.config.gc == gc for r in points)]
    heaps = list(dict.fromkeys(r.config.heap for r in points if r.config.key != report.default_key))
    shapes = {look[r.config.key].marker: r.config.heap for r in points if r.config.key != report.default_key}
    legend += [Line2D([], [], marker=mark, color="0.3", linestyle="", label=f"-Xmx{heap}" if heap else "no -Xmx")
               for mark, heap in shapes.items() if heap in heaps]
    if y_judged.best and y_judged.best != report.default_key:
        legend.append(Line2D([], [], marker="o", markersize=11, markerfacecolor="none", markeredgecolor="red",
                             linestyle="", label=f"best on {y_objective}"))
    ax.legend(handles=legend, fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title(f"{y_objective.capitalize()} against footprint: medians with 95 % intervals over the measured "
                 "runs", fontsize=11)
    return fig
