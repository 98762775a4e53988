"""Running the whole matrix: prechecks first, then the cells, at most `jobs` VMs at once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from osv_java.compat.model import Cell, CellResult
from osv_java.compat.prechecks import precheck, prepare_vm, shares_full_jre
from osv_java.compat.runner import Runner


def _precheck_all(cells: Sequence[Cell], runner: Runner, report: Callable[[CellResult], None]
                  ) -> tuple[dict[int, CellResult], list[int]]:
    """Results decided before anything runs (skips, a VM that cannot boot here), and the cells left to run."""
    results: dict[int, CellResult] = {}
    todo: list[int] = []
    for i, cell in enumerate(cells):
        early = precheck(cell, runner.examples)
        if early is None:
            todo.append(i)
        else:
            results[i] = early
    for i in sorted(results):
        report(results[i])
    if any(cells[i].target == "vm" for i in todo):
        problem = prepare_vm()
        if problem:
            for i in [i for i in todo if cells[i].target == "vm"]:
                results[i] = CellResult(cells[i], "failed", reason=problem)
                report(results[i])
                todo.remove(i)
    return results, todo


def _primers(cells: Sequence[Cell], todo: list[int], examples: Path
             ) -> tuple[dict[str, int], dict[int, threading.Event]]:
    """Per JDK, the first VM cell that links its full JRE, and an event set once it has finished."""
    primer_of: dict[str, int] = {}
    linked: dict[int, threading.Event] = {}
    for i in todo:
        if cells[i].target == "vm" and cells[i].jdk not in primer_of and shares_full_jre(cells[i], examples):
            primer_of[cells[i].jdk] = i
            linked[i] = threading.Event()
    return primer_of, linked


def run_matrix(cells: Sequence[Cell], runner: Runner,
               progress: Callable[[CellResult, int, int], None] | None = None) -> list[CellResult]:
    """Results for `cells` (same order). VM cells that link the full JRE of a JDK wait until the first
    such cell has built its image, so that JRE is linked once and the others find it in the cache."""
    done = 0

    def report(result: CellResult) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(result, done, len(cells))

    results, todo = _precheck_all(cells, runner, report)
    slots = {"vm": threading.Semaphore(runner.jobs), "process": threading.Semaphore(2 * runner.jobs)}
    primer_of, linked = _primers(cells, todo, runner.examples)
    # Process cells first (seconds each), then VM cells, the primers leading.
    order = sorted(todo, key=lambda i: (cells[i].target == "vm", i not in linked, i))

    def one(i: int) -> CellResult:
        cell = cells[i]
        primer = primer_of.get(cell.jdk)
        try:
            if primer is not None and primer != i and cell.target == "vm" and shares_full_jre(cell, runner.examples):
                linked[primer].wait()
            with slots[cell.target]:
                if runner.runs.stopping.is_set():
                    return CellResult(cell, "failed", reason="interrupted before the cell started")
                return runner.run(cell, linked[i].set if i in linked else None)
        finally:
            if i in linked:
                linked[i].set()

    with ThreadPoolExecutor(max_workers=max(1, len(order))) as pool:
        futures: dict[Future[CellResult], int] = {pool.submit(one, i): i for i in order}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in finished:
                    results[futures[future]] = future.result()
                    report(results[futures[future]])
        except KeyboardInterrupt:
            for event in linked.values():
                event.set()
            runner.runs.stop_all()
            raise
    return [results[i] for i in range(len(cells))]
