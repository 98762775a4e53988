"""Two JVMs of one --stw-group take turns: one held back by the other's lease collects as soon as
the lease is free, not a fixed gap later (which would put it in phase with the holder for good)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gc_hooks.pauses import HeapSample
from gc_hooks.seam import HookEvent
from gc_hooks.stw import MIN_GAP, Coordinator

MB = 1 << 20
TICK = 0.1


def filling(at: float, eden_mb: float) -> HeapSample:
    return HeapSample(at=at, eden_used=int(eden_mb * MB), eden_capacity=36 * MB, old_used=10 * MB,
                      old_capacity=100 * MB, young_count=0, full_count=0)


def test_a_jvm_held_back_by_the_lease_collects_at_the_next_tick(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSV_JAVA_RUN_DIR", str(tmp_path))
    events: list[tuple[str, HookEvent]] = []
    clock = {"now": 0.0}

    def a_collects() -> None:  # while a collects (and holds the lease), b's collection comes due
        b.observe(filling(clock["now"], 30), clock["now"])

    a = Coordinator(None, "turns", lambda e: events.append(("a", e)), a_collects)
    b = Coordinator(None, "turns", lambda e: events.append(("b", e)), lambda: None)
    for step in range(10):  # both fill eden at 20 MB/s: each sees a young collection coming
        clock["now"] = step * TICK
        b.predictor.add(filling(clock["now"], 10 + 2 * step))
    clock["now"] = 1.0
    assert a.coordinate("a's turn", clock["now"])
    assert b.collections == 0 and [e.what for n, e in events if n == "b"] == ["wait"], events

    clock["now"] += TICK
    b.observe(filling(clock["now"], 31), clock["now"])
    assert b.collections == 1, f"b waited a whole MIN_GAP ({MIN_GAP} s) after the lease came free: {events}"
    assert [e.what for n, e in events if n == "b"] == ["wait", "collect"]
