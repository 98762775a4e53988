"""Reports of the compatibility matrix: a compact text table, JSON, JUnit XML (for any CI) and Markdown.

All writers take the same results and lay them out as rows (program) x columns (JDK and target), in the
order the cells were planned, so every format shows the same matrix.
"""

from __future__ import annotations

import json
import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from osv_java.compat.model import CellResult

MARK = {"passed": "pass", "failed": "FAIL", "skipped": "skip"}
MD_MARK = {"passed": "✅ pass", "failed": "❌ **FAIL**", "skipped": "⏭️ skip"}


@dataclass(frozen=True)
class Meta:
    """About the whole run: how long it took and how it was run."""

    seconds: float
    jobs: int
    timeout: float


def axes(results: Sequence[CellResult]) -> tuple[list[str], list[str]]:
    """The rows and columns of the matrix, in first-seen order."""
    rows = list(dict.fromkeys(r.cell.row for r in results))
    columns = list(dict.fromkeys(r.cell.column for r in results))
    return rows, columns


def counts(results: Sequence[CellResult]) -> dict[str, int]:
    return {status: sum(r.status == status for r in results) for status in ("passed", "failed", "skipped")}


def summary(results: Sequence[CellResult], meta: Meta) -> str:
    n = counts(results)
    return (f"{len(results)} cells: {n['passed']} passed, {n['failed']} failed, {n['skipped']} skipped "
            f"in {meta.seconds:.1f} s (-j {meta.jobs})")


def _grid(results: Sequence[CellResult], mark: Callable[[CellResult], str]) -> tuple[list[str], list[list[str]]]:
    rows, columns = axes(results)
    by_key = {(r.cell.row, r.cell.column): r for r in results}
    grid = [[row, *(mark(by_key[row, c]) if (row, c) in by_key else "-" for c in columns)] for row in rows]
    return ["", *columns], grid


def _skips_by_reason(results: Sequence[CellResult]) -> dict[str, list[CellResult]]:
    """Skipped cells grouped by reason: one missing JDK skips a whole column, said once."""
    groups: dict[str, list[CellResult]] = {}
    for r in results:
        if r.status == "skipped":
            groups.setdefault(r.reason, []).append(r)
    return groups


def table(results: Sequence[CellResult], meta: Meta) -> str:
    """The compact text table, then each failure with its details and each skip reason once."""

    def mark(r: CellResult) -> str:
        return MARK[r.status] if r.status == "skipped" else f"{MARK[r.status]} {r.seconds:5.1f}s"

    header, grid = _grid(results, mark)
    widths = [max(len(line[i]) for line in [header, *grid]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
             for line in [header, *grid]]
    lines += ["", summary(results, meta)]
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        lines += ["", f"FAILED {r.cell.id} ({r.seconds:.1f} s): {r.reason}"]
        lines += [f"    {d}" for d in r.details]
        if r.command:
            lines.append(f"    command: {' '.join(r.command)}")
    for reason, group in _skips_by_reason(results).items():
        lines += ["", f"SKIPPED {len(group)} cell(s): {reason}"]
        lines.append("    " + ", ".join(r.cell.id for r in group))
    return "\n".join(lines)


def to_json(results: Sequence[CellResult], meta: Meta) -> str:
    rows, columns = axes(results)
    data = {
        "summary": {**counts(results), "cells": len(results), "seconds": round(meta.seconds, 3),
                    "jobs": meta.jobs, "timeout": meta.timeout},
        "rows": rows,
        "columns": columns,
        "cells": [
            {
                "kind": r.cell.kind, "name": r.cell.name, "program": r.cell.program,
                "with": list(r.cell.with_runtimes), "jdk": r.cell.jdk, "target": r.cell.target,
                "row": r.cell.row, "column": r.cell.column, "status": r.status,
                "seconds": round(r.seconds, 3), "build_seconds": round(r.build_seconds, 3),
                "reason": r.reason, "details": list(r.details),
                "command": list(r.command),
            }
            for r in results
        ],
    }
    return json.dumps(data, indent=1, ensure_ascii=False)


def to_junit(results: Sequence[CellResult], meta: Meta) -> str:
    """One testsuite per column (JDK and target), one testcase per cell: what CI systems display."""
    n = counts(results)
    root = ET.Element("testsuites", name="osv-java compat", tests=str(len(results)), failures=str(n["failed"]),
                      skipped=str(n["skipped"]), errors="0", time=f"{meta.seconds:.3f}")
    _, columns = axes(results)
    for column in columns:
        cells = [r for r in results if r.cell.column == column]
        c = counts(cells)
        suite = ET.SubElement(root, "testsuite", name=f"compat {column}", tests=str(len(cells)),
                              failures=str(c["failed"]), skipped=str(c["skipped"]), errors="0",
                              time=f"{sum(r.seconds for r in cells):.3f}")
        for r in cells:
            case = ET.SubElement(suite, "testcase", classname=f"compat.jdk{r.cell.jdk}.{r.cell.target}",
                                 name=r.cell.row, time=f"{r.seconds:.3f}")
            if r.status == "failed":
                failure = ET.SubElement(case, "failure", message=r.reason, type="mismatch")
                failure.text = "\n".join([*r.details, *([f"command: {' '.join(r.command)}"] if r.command else [])])
            elif r.status == "skipped":
                ET.SubElement(case, "skipped", message=r.reason)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(results: Sequence[CellResult], meta: Meta) -> str:
    def mark(r: CellResult) -> str:
        return MD_MARK[r.status] if r.status == "skipped" else f"{MD_MARK[r.status]} {r.seconds:.1f} s"

    header, grid = _grid(results, mark)
    header[0] = "program"
    lines = ["# osv-java compatibility matrix", "", summary(results, meta), "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in grid]
    failed = [r for r in results if r.status == "failed"]
    if failed:
        lines += ["", "## Failures"]
        for r in failed:
            lines += ["", f"### {r.cell.id}", "", f"{_md_escape(r.reason)}", "", "```", *r.details, "```"]
    skips = _skips_by_reason(results)
    if skips:
        lines += ["", "## Skipped", ""]
        lines += [f"- {_md_escape(reason)} ({len(group)} cells)" for reason, group in skips.items()]
    return "\n".join(lines) + "\n"


WRITERS: dict[str, Callable[[Sequence[CellResult], Meta], str]] = {
    "table": table, "json": to_json, "junit": to_junit, "markdown": to_markdown,
}


def render(fmt: str, results: Sequence[CellResult], meta: Meta) -> str:
    return WRITERS[fmt](results, meta)


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder: a reader never sees half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text if text.endswith("\n") else text + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
