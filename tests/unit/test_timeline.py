"""The boot timeline as a pure function of the host's arrival times and the guest's own clock."""

from __future__ import annotations

import pytest

from kernel.guest import wire
from kernel.vm.timeline import Measured, boot_timeline


def msg(op: str, **fields: float) -> wire.Message:
    return {"op": [op], **{k: [str(v)] for k, v in fields.items()}}


def test_cold_boot_places_the_guest_clock_by_the_fastest_message() -> None:
    # guest clock zero is at host 101.0; the hello took 0.2 s to arrive, the others 0.05 s
    m = Measured(t_qemu=100.0, t_gone=106.0,
                 hello=(msg("hello", t=1.5, t_pid1=1.2), 102.7),
                 started=(msg("started", t=2.0, t_exec=1.9), 103.05),
                 exited=(msg("exit", t=4.0, t_exit=3.9, t_main=2.5), 105.05))
    timeline = boot_timeline(m)
    assert timeline["kernel_start"] == pytest.approx(1.05)
    assert timeline["pid1_start"] == pytest.approx(2.25)
    assert timeline["jvm_exec"] == pytest.approx(2.95)
    assert timeline["main_entered"] == pytest.approx(3.55)
    assert timeline["app_exit"] == pytest.approx(4.95)
    assert timeline["vm_gone"] == pytest.approx(6.0)
    assert "snapshot_restored" not in timeline and "snapshot_saved" not in timeline


def test_after_a_save_only_the_runs_own_messages_place_the_run() -> None:
    # the guest clock stood still for the 1.0 s the save took: the hello's offset is 1 s off for the run
    m = Measured(t_qemu=0.0, t_gone=8.0,
                 hello=(msg("hello", t=1.0, t_pid1=0.8), 2.0),
                 started=(msg("started", t=2.0, t_exec=1.9), 4.0),
                 exited=(msg("exit", t=3.0, t_exit=2.95), 5.0),
                 saved_at=3.5)
    timeline = boot_timeline(m)
    assert timeline["kernel_start"] == pytest.approx(1.0)
    assert timeline["jvm_exec"] == pytest.approx(3.9)
    assert timeline["snapshot_saved"] == 3.5


def test_a_restored_run_has_no_kernel_or_pid1_start() -> None:
    m = Measured(t_qemu=10.0, t_gone=12.0, hello=None,
                 started=(msg("started", t=50.0, t_exec=49.9), 10.6),
                 exited=(msg("exit", t=51.0, t_exit=50.95), 11.6),
                 restored_at=0.3)
    timeline = boot_timeline(m)
    assert "kernel_start" not in timeline and "pid1_start" not in timeline
    assert timeline["snapshot_restored"] == 0.3
    assert timeline["jvm_exec"] == pytest.approx(0.5)


def test_a_ready_snapshot_save_and_restore() -> None:
    # the save: the guest clock stood still for the 0.5 s of the save, so the exit has its own offset
    m = Measured(t_qemu=100.0, t_gone=110.0,
                 hello=(msg("hello", t=1.5, t_pid1=1.2), 102.55),
                 started=(msg("started", t=2.0, t_exec=1.9), 103.05),
                 exited=(msg("exit", t=6.0, t_exit=5.9), 107.55),
                 ready_at=4.0, ready_saved_at=4.5)
    timeline = boot_timeline(m)
    assert timeline["app_ready"] == 4.0 and timeline["ready_saved"] == 4.5
    assert timeline["jvm_exec"] == pytest.approx(2.95) and timeline["app_exit"] == pytest.approx(7.45)
    # a restore of it: the JVM ran already, only its exit belongs to this run
    restored = boot_timeline(Measured(t_qemu=200.0, t_gone=203.0, hello=None, started=None,
                                      exited=(msg("exit", t=50.0, t_exit=49.9), 202.5),
                                      restored_at=0.1, resumed=True))
    assert list(restored) == ["qemu_start", "snapshot_restored", "app_exit", "vm_gone"]
    assert restored["app_exit"] == pytest.approx(2.4)


def test_a_started_jvm_handed_its_app() -> None:
    # restored at 0.1 s, handed the app at 0.15 s; its main class initialised at guest 49.2 (0.7 s)
    handed = boot_timeline(Measured(t_qemu=200.0, t_gone=203.0, hello=None, started=None,
                                    exited=(msg("exit", t=50.0, t_exit=49.9, t_main=49.2), 202.5),
                                    restored_at=0.1, resumed=True, launched_at=0.15))
    assert list(handed) == ["qemu_start", "snapshot_restored", "app_launched", "main_entered", "app_exit", "vm_gone"]
    assert handed["main_entered"] == pytest.approx(1.7)
    # a runtime's main class the zygote initialised before it waited: not this run's
    preloaded = boot_timeline(Measured(t_qemu=200.0, t_gone=203.0, hello=None, started=None,
                                       exited=(msg("exit", t=50.0, t_exit=49.9, t_main=45.0), 202.5),
                                       restored_at=0.1, resumed=True, launched_at=0.15))
    assert "main_entered" not in preloaded and preloaded["app_exit"] == pytest.approx(2.4)
