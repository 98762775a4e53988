"""The pause picture and the STW decisions as pure logic: windows, percentiles, predictions, leases."""

from __future__ import annotations

import pytest

from gc_hooks.haproxy import ServerStat, parse_target
from gc_hooks.lease import Lease
from gc_hooks.pauses import HeapSample, Pause, PausePicture, PauseWindows, Predictor, percentile
from gc_hooks.stw import choose_server, due
from jvmbridge.gclog import PAUSE, PAUSE_START, SAFEPOINT, GcLogParser, split_line

MB = 1 << 20


def test_percentile_is_nearest_rank() -> None:
    values = sorted(float(v) for v in range(1, 101))
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99 and percentile(values, 100) == 100
    assert percentile([], 50) is None


def test_windows_count_only_their_pauses_and_the_time_stopped() -> None:
    windows = PauseWindows((10.0, 60.0))
    windows.add(Pause(start=5.0, duration=0.5, cause="Allocation Failure"))
    windows.add(Pause(start=55.0, duration=0.1))
    windows.add(Pause(start=58.0, duration=0.3))
    ten, minute = windows.stats(now=60.0)
    assert (ten.count, minute.count) == (2, 3)
    assert ten.max == pytest.approx(0.3) and minute.max == pytest.approx(0.5)
    assert ten.share == pytest.approx(0.4 / 10) and minute.share == pytest.approx(0.9 / 60)


def test_stopped_share_counts_safepoints_when_the_log_has_them() -> None:
    windows = PauseWindows((10.0,))
    windows.add(Pause(start=1.0, duration=0.2))
    windows.add_stop(Pause(start=1.0, duration=0.25))  # the GC's safepoint, a little longer
    windows.add_stop(Pause(start=4.0, duration=0.05))  # a safepoint that is not a GC
    [stats] = windows.stats(now=10.0)
    assert stats.count == 1 and stats.stopped == pytest.approx(0.3)


def sample(at: float, eden: int, young: int = 0, full: int = 0, old: int = 100 * MB,
           eden_cap: int = 100 * MB, old_cap: int = 400 * MB) -> HeapSample:
    return HeapSample(at, eden * MB if eden < MB else eden, eden_cap, old, old_cap, young, full)


def test_next_young_collection_from_eden_and_the_allocation_rate() -> None:
    predictor = Predictor()
    for i in range(6):
        predictor.add(sample(i * 0.5, 10 * i))  # 20 MB/s into a 100 MB eden
    prediction = predictor.predict()
    assert prediction is not None and prediction.allocation_rate == pytest.approx(20 * MB)
    assert prediction.next_young == pytest.approx((100 - 50) / 20)


def test_allocation_across_a_young_collection_counts_eden_filling_up() -> None:
    predictor = Predictor()
    predictor.add(sample(0.0, 80))
    predictor.add(sample(1.0, 100, young=0))
    predictor.add(sample(2.0, 100, young=1))  # collected; hsperfdata still shows eden full
    predictor.add(sample(3.0, 20, young=1))  # now it shows what was allocated since
    prediction = predictor.predict()
    assert prediction is not None and prediction.allocation_rate == pytest.approx(40 * MB / 3)


def test_a_collection_we_caused_does_not_count_as_eden_full() -> None:
    predictor = Predictor()
    predictor.add(sample(0.0, 0))
    predictor.add(sample(1.0, 30))
    predictor.induced()
    predictor.add(sample(2.0, 0, young=1, full=1))
    predictor.add(sample(3.0, 30, young=1, full=1))
    prediction = predictor.predict()
    assert prediction is not None and prediction.allocation_rate == pytest.approx(20 * MB)


def test_next_major_when_the_old_generation_no_longer_holds_a_promotion() -> None:
    predictor = Predictor()
    old = 300 * MB
    at = 0.0
    for young in range(4):  # each young collection promotes 40 MB into a 400 MB old generation
        predictor.add(sample(at, 90, young=young, old=old))
        at += 1.0
        old += 40 * MB
        predictor.add(sample(at, 10, young=young + 1, old=old))
        at += 0.1
    prediction = predictor.predict()
    assert prediction is not None and prediction.next_major is not None
    assert prediction.next_major == pytest.approx(prediction.next_young)  # 20 MB left < 40 MB promoted


def test_counters_that_move_only_at_collections_predict_by_intervals() -> None:
    predictor = Predictor()
    for young in range(4):  # JDK 25: `used` reads 0 between collections, one every 2 s
        predictor.add(sample(young * 2.0, 0, young=young))
        predictor.add(sample(young * 2.0 + 1.0, 0, young=young))
    prediction = predictor.predict()
    assert prediction is not None and not prediction.eden_moves
    assert prediction.next_young == pytest.approx(1.0)


def test_due_only_near_a_collection_and_not_right_after_one() -> None:
    predictor = Predictor()
    for i in range(10):
        predictor.add(sample(i * 0.5, 10 * i))
    last = sample(4.5, 90)
    assert "young collection due" in (due(predictor.predict(), last, lead=1.0, since_last=30) or "")
    assert due(predictor.predict(), last, lead=0.1, since_last=30) is None
    assert due(predictor.predict(), last, lead=1.0, since_last=0.2) is None


def stat(name: str, status: str) -> ServerStat:
    return ServerStat("web", name, status, 0, 0, 1)


def test_one_server_out_at_a_time_and_never_the_last_one_up() -> None:
    assert choose_server([stat("a", "UP"), stat("b", "UP")], "a") is None
    assert "b" in (choose_server([stat("a", "UP"), stat("b", "DRAIN")], "a") or "")
    assert "last server up" in (choose_server([stat("a", "UP"), stat("b", "DOWN")], "a") or "")
    assert "out already" in (choose_server([stat("a", "UP"), stat("b", "MAINT"), stat("c", "UP")], "a") or "")


def test_stw_lb_target_syntax() -> None:
    assert parse_target("haproxy:/run/h.sock:web/app1") == ("/run/h.sock", "web", "app1")
    for bad in ("haproxy:/run/h.sock:web", "nginx:/s:web/a", "haproxy::web/a", "haproxy:/s:/a"):
        with pytest.raises(ValueError):
            parse_target(bad)


def test_a_lease_is_one_holder_at_a_time(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSV_JAVA_RUN_DIR", str(tmp_path))
    first, second = Lease("group-x"), Lease("group-x")
    assert first.try_acquire() and not second.try_acquire()
    first.release()
    assert second.try_acquire() and second.holder() is not None
    second.release()


def test_parser_reports_pause_starts_and_the_jvm_clock() -> None:
    line = split_line("[4152148853313ns][13520726980ns][info][gc,start] GC(19) Pause Young (Allocation Failure)")
    assert line.nanotime == pytest.approx(4152.148853313) and line.uptime == pytest.approx(13.52072698)
    parser = GcLogParser(starts=True)
    [start] = parser.feed("[4152000000000ns][13500000000ns][info][gc,start] GC(19) Pause Young (Allocation Failure)")
    assert start.kind == PAUSE_START and start.cause == "Allocation Failure" and start.logged_at == 4152.0
    assert parser.feed("[4152004000000ns][13504000000ns][info][gc] GC(19) Pause Young (Allocation Failure) "
                       "105M->85M(279M) 3.956ms") == []
    events = parser.feed('[4152005000000ns][13505000000ns][info][safepoint] Safepoint "ParallelGCFailedAllocation", '
                         "Time since last: 1 ns, Reaching safepoint: 4697 ns, Cleanup: 1 ns, At safepoint: 4000000 ns, "
                         "Total: 4004697 ns")
    assert [e.kind for e in events] == [PAUSE, SAFEPOINT]
    picture = PausePicture()
    picture.event(start, read_at=4152.001)
    for event in events:
        picture.event(event, read_at=4152.0055)
    summary = picture.summary()
    assert summary["pauses"] == 1
    lateness = picture.lateness()
    assert lateness.began == [pytest.approx(0.001)] and lateness.ended == [pytest.approx(0.0005)]
    assert "Pause Young (Allocation Failure)" in picture.table("JVM 1")
