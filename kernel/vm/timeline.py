"""The boot timeline of a run, from the host's clock and the times the guest reported.

A pure function of what was measured: the host's monotonic times at which QEMU started and each
message arrived, and the guest's own times in those messages (seconds since its kernel started).
The guest clock is placed on the host's by the smallest offset seen (the message that travelled
fastest). A snapshot's save stops the guest clock, so after one only the run's own messages count.
"""

from __future__ import annotations

from dataclasses import dataclass

from kernel.guest import wire

Arrival = tuple[wire.Message, float]  # a message and the host time it arrived


@dataclass(frozen=True)
class Measured:
    t_qemu: float  # host time QEMU started
    t_gone: float  # host time QEMU had exited
    hello: Arrival | None  # PID 1's hello; None for a restored machine (it said hello before the snapshot)
    started: Arrival | None  # None for a ready snapshot's machine (its JVM started before the snapshot)
    exited: Arrival
    restored_at: float | None = None  # seconds after QEMU's start the snapshot was loaded
    saved_at: float | None = None  # seconds after QEMU's start a snapshot was saved
    ready_at: float | None = None  # seconds after QEMU's start the app was ready (kernel.vm.ready)
    ready_saved_at: float | None = None  # ... and its ready snapshot saved
    resumed: bool = False  # the machine was a ready snapshot's (or a started JVM's): the JVM ran already
    launched_at: float | None = None  # seconds after QEMU's start a started JVM was handed the app


def _offset(arrival: Arrival) -> float:
    message, at = arrival
    return at - float(wire.number(message, "t") or 0.0)


def boot_timeline(m: Measured) -> dict[str, float]:
    """Event name -> seconds since QEMU started."""
    timeline = {"qemu_start": 0.0}
    if m.restored_at is not None:
        timeline["snapshot_restored"] = m.restored_at
    if m.saved_at is not None:
        timeline["snapshot_saved"] = m.saved_at
    if m.ready_at is not None:
        timeline["app_ready"] = m.ready_at
    if m.ready_saved_at is not None:
        timeline["ready_saved"] = m.ready_saved_at
    if m.launched_at is not None:
        timeline["app_launched"] = m.launched_at
    run_offsets = [_offset(arrival) for arrival in (m.started, m.exited) if arrival is not None]
    boot_offsets = [_offset(m.hello)] if m.hello is not None else []
    if m.saved_at is None:
        boot_offsets += run_offsets  # one clock throughout: take the best-measured offset
    if m.hello is not None:
        kernel_start = min(boot_offsets) - m.t_qemu  # guest clock zero (kernel start) after QEMU start
        timeline["kernel_start"] = kernel_start
        timeline["pid1_start"] = kernel_start + float(wire.number(m.hello[0], "t_pid1") or 0.0)
    offset = min(boot_offsets if m.saved_at is None else run_offsets) - m.t_qemu
    # A ready snapshot's JVM started and entered main before the snapshot: only its exit is this run's;
    # a started JVM's entered the app's main in this run.
    events: tuple[tuple[str, str], ...] = (("t_main", "main_entered"), ("t_exit", "app_exit"))
    if m.resumed and m.launched_at is None:
        events = (("t_exit", "app_exit"),)
    elif not m.resumed:
        events = (("t_exec", "jvm_exec"), *events)
    for key, name in events:
        for message, _ in [arrival for arrival in (m.started, m.exited) if arrival is not None]:
            value = wire.number(message, key)
            if value is not None:
                # the guest's clock stood still while a ready snapshot was saved: the exit has its own offset
                own = m.ready_saved_at is not None and message is m.exited[0]
                timeline[name] = (_offset(m.exited) - m.t_qemu if own else offset) + value
    if m.launched_at is not None and timeline.get("main_entered", m.launched_at) < m.launched_at:
        del timeline["main_entered"]  # a runtime's main class the zygote initialised before it waited
    timeline["vm_gone"] = m.t_gone - m.t_qemu
    return timeline
