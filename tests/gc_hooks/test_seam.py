"""The gc_hooks seam: the runner beside a JVM, the plan of a run's policies, and the --gc-log policy's
parts (pure logic; the policy end to end is in tests/process and tests/vm)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from gc_hooks.gc_log import GcLog, GcLogTail, GcLogWriter
from gc_hooks.host import HostSide
from gc_hooks.policies import HookSettings, Plan, choose, plan
from gc_hooks.runner import SupervisorRunner
from gc_hooks.seam import Channel, HookEvent, Machine, Policy, Supervisor, SupervisorSpec
from jvmbridge.errors import UsageError
from kernel.vm import qemu

MACHINE = Machine(target="vm", memory_mb=1024, cpus=2, jdk_feature=17)


class Recorder:
    def __init__(self) -> None:
        self.events: list[HookEvent] = []
        self.messages: list[tuple[str, str, str]] = []

    def emit(self, event: HookEvent) -> None:
        self.events.append(event)

    def send(self, policy: str, kind: str, data: str) -> None:
        self.messages.append((policy, kind, data))


class Counting(Supervisor):
    interval = 0.05

    def start(self, pid: int, channel: Channel) -> None:
        self.channel = channel
        self.ticks = 0
        channel.emit(HookEvent("counting", "start", f"pid {pid}"))

    def tick(self, now: float) -> None:
        self.ticks += 1
        if self.settings.get("fail_at") == self.ticks:
            raise RuntimeError("boom")

    def stop(self, exited: bool) -> None:
        self.channel.emit(HookEvent("counting", "stop", f"exited={exited}", after=str(self.ticks)))


class Slow(Counting):
    interval = 60.0  # a tick within the test is the one at start

    def tick(self, now: float) -> None:
        super().tick(now)
        self.channel.emit(HookEvent("counting", "tick", str(self.ticks)))


def spec(**settings: Any) -> SupervisorSpec:
    return SupervisorSpec("counting", __name__, "Counting", settings)


def test_runner_ticks_and_stops_each_supervisor() -> None:
    channel = Recorder()
    runner = SupervisorRunner([spec()], channel)
    runner.start(1234)
    time.sleep(0.4)
    runner.stop(exited=False)
    whats = [e.what for e in channel.events]
    assert whats == ["start", "stop"]
    assert channel.events[0].why == "pid 1234" and channel.events[1].why == "exited=False"
    assert int(channel.events[1].after) >= 3


def test_a_failing_supervisor_is_reported_and_dropped_while_others_go_on() -> None:
    channel = Recorder()
    runner = SupervisorRunner([spec(fail_at=2), SupervisorSpec("x", __name__, "NoSuchClass")], channel)
    assert [e.what for e in channel.events] == ["failed"]  # the one that cannot load
    assert "NoSuchClass" in channel.events[0].why
    runner.start(1)
    time.sleep(0.4)
    assert runner.active == []
    runner.stop(exited=True)
    failed = [e for e in channel.events if e.what == "failed"]
    assert len(failed) == 2 and "tick: RuntimeError: boom" in failed[1].why
    assert not any(e.what == "stop" for e in channel.events)  # dropped: not called again


def test_a_delayed_supervisor_is_loaded_and_started_after_its_delay_and_ticks_at_once() -> None:
    channel = Recorder()
    delayed = SupervisorSpec("counting", __name__, "Slow", {}, delay=0.3)
    runner = SupervisorRunner([delayed], channel)
    runner.start(7)
    time.sleep(0.1)
    assert channel.events == [] and runner.active == []  # not loaded before its delay
    deadline = time.monotonic() + 10
    while len(channel.events) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert runner.active == ["counting"]
    # it ticked at once: its delay was its wait, not one interval (a minute) more
    assert [(e.what, e.why) for e in channel.events] == [("start", "pid 7"), ("tick", "1")]
    runner.stop(exited=True)
    assert [e.what for e in channel.events] == ["start", "tick", "stop"]


def test_a_run_that_ends_before_the_delay_never_loads_the_supervisor() -> None:
    channel = Recorder()
    runner = SupervisorRunner([SupervisorSpec("x", __name__, "NoSuchClass", delay=30.0)], channel)
    runner.start(1)
    time.sleep(0.05)
    runner.stop(exited=True)
    assert channel.events == []  # loading it would have failed: it was never tried


def test_the_delay_travels_with_the_spec() -> None:
    spec_ = SupervisorSpec("x", "m", "C", {"a": 1}, delay=0.5)
    assert SupervisorSpec.from_fields(spec_.fields()) == spec_
    assert SupervisorSpec.from_fields({"policy": "x", "module": "m", "cls": "C"}).delay == 0.0


def test_the_dynamic_heap_supervisor_waits_one_interval_except_when_attached() -> None:
    from gc_hooks.dynamic_heap.policy import DynamicHeap

    policy = DynamicHeap(interval=0.5)
    for target, delay in (("vm", 0.5), ("process", 0.5), ("attach", 0.0)):
        supervisor = policy.supervisor(Machine(target=target, memory_mb=1024, cpus=2, jdk_feature=17))
        assert supervisor is not None and supervisor.delay == delay, target


def test_spec_refuses_a_class_that_is_not_a_supervisor() -> None:
    with pytest.raises(TypeError, match="not a Supervisor"):
        SupervisorSpec("x", "builtins", "dict").make()


def test_hook_event_travels_as_fields() -> None:
    event = HookEvent("dynamic-heap", "shrink", "idle", "900M", "120M", time=12.5)
    fields = {k: str(v) for k, v in event.fields().items()}  # as the wire format carries them
    assert HookEvent.from_fields(fields) == event
    assert event.line() == "dynamic-heap: shrink 900M -> 120M (idle)"


class Everywhere(Policy):
    name = "everywhere"

    def guest_modules(self) -> tuple[str, ...]:
        return ("virtio_balloon",)

    def jvm_options(self, machine: Machine) -> list[str]:
        return [f"-Xmx{machine.memory_mb}m"]

    def kernel_cmdline(self, machine: Machine) -> list[str]:
        return ["transparent_hugepage=madvise"]

    def qemu_args(self, machine: Machine) -> list[str]:
        return ["-device", "virtio-balloon-device"]

    def guest_settings(self, machine: Machine) -> dict[str, str]:
        return {"/sys/kernel/mm/transparent_hugepage/enabled": "madvise"}

    def supervisor(self, machine: Machine) -> SupervisorSpec | None:
        return spec()


def test_plan_gathers_every_place_once() -> None:
    result = plan([Everywhere(), Everywhere()], MACHINE)
    assert result.guest_modules == ("virtio_balloon",)
    assert result.jvm_options == ["-Xmx1024m", "-Xmx1024m"]
    assert result.qemu_args == ["-device", "virtio-balloon-device"] * 2
    assert result.guest_settings == {"/sys/kernel/mm/transparent_hugepage/enabled": "madvise"}
    assert len(result.supervisors) == 2 and result.names == ["everywhere", "everywhere"]


def test_no_flags_no_gc_log(tmp_path: Path) -> None:
    assert not any(isinstance(p, GcLog) for p in choose(HookSettings(), MACHINE))
    [policy] = [p for p in choose(HookSettings(gc_log=str(tmp_path / "gc.log")), MACHINE) if isinstance(p, GcLog)]
    assert policy.host_file == str(tmp_path / "gc.log")


def test_gc_log_refuses_a_path_it_cannot_write(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a folder"):
        GcLog(str(tmp_path / "missing" / "gc.log"))
    with pytest.raises(UsageError, match="a folder"):
        GcLog(str(tmp_path))


def test_gc_log_tail_sends_whole_lines_and_the_rest_at_the_end(tmp_path: Path) -> None:
    log = tmp_path / "gc.log"
    channel = Recorder()
    tail = GcLogTail({"path": str(log)})
    tail.start(1, channel)
    tail.tick(0.0)  # no file yet
    log.write_bytes(b"[1ns][info][gc] Using G1\n[2ns][info][gc] GC(0) Pause")
    tail.tick(0.0)
    with log.open("ab") as f:
        f.write(b" Young (Normal) (G1 Evacuation Pause) 3M->1M(8M) 1.0ms\n[3ns] tail without newline")
    tail.tick(0.0)
    tail.stop(exited=True)
    sent = [data for _, kind, data in channel.messages if kind == "lines"]
    assert sent[0] == "[1ns][info][gc] Using G1\n"
    assert sent[1].startswith("[2ns][info][gc] GC(0) Pause Young") and sent[1].endswith("1.0ms\n")
    assert sent[2] == "[3ns] tail without newline"
    assert "".join(sent) == log.read_text()


def test_gc_log_writer_renames_into_place_only_at_the_end(tmp_path: Path) -> None:
    target = tmp_path / "gc.log"
    writer = GcLogWriter(str(target), cleanup=None)
    host = HostSide(Plan(machine=MACHINE, monitors={"gc-log": writer}))
    host.start(None)
    host.send("gc-log", "lines", "a\n")
    host.send("other", "lines", "ignored\n")
    assert not target.exists()
    host.stop()
    assert target.read_text() == "a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["gc.log"]


def test_snapshot_shape_ignores_what_differs_between_runs(tmp_path: Path) -> None:
    kernel = tmp_path / "bzImage"
    initrd = tmp_path / "initrd"
    kernel.write_bytes(b"k")
    initrd.write_bytes(b"i")

    def config(run: str, memory_mb: int = 512, **more: Any) -> qemu.MachineConfig:
        return qemu.MachineConfig(kernel=kernel, initramfs=initrd, memory_mb=memory_mb, cpus=2, accel="tcg",
                                  cmdline=["console=ttyS0"], serial_log=tmp_path / run / "console.log",
                                  chardevs=[("osv.ctl", f"/{run}/ctl.sock")], qmp_socket=tmp_path / run / "qmp",
                                  forwards=[("127.0.0.1", 8080 if run == "a" else 9090, 80)], **more)

    assert config("a").shape() == config("b").shape()
    balloon = ["-device", "virtio-balloon-device"]
    assert config("a").shape() != config("a", extra_args=balloon).shape()
    assert config("a").shape() != config("a", memory_mb=1024).shape()


def test_snapshot_shape_is_the_same_for_two_images_of_one_runtime(tmp_path: Path) -> None:
    """Two apps' images hold the same kernel, base initramfs and runtime disk in their own folders:
    the shape leaves the folders out (the snapshot key has the files' contents: Image.runtime_key)."""
    def config(folder: str, initrd_size: int = 1) -> qemu.MachineConfig:
        image = tmp_path / folder
        image.mkdir(exist_ok=True)
        for name, size in (("vmlinuz", 1), ("base.img", initrd_size), ("runtime.img", 4096)):
            (image / name).write_bytes(b"")
            os.truncate(image / name, size)
        return qemu.MachineConfig(kernel=image / "vmlinuz", initramfs=image / "base.img", memory_mb=512, cpus=2,
                                  accel="tcg", cmdline=["console=ttyS0"], serial_log=image / "console.log",
                                  memory_image=image / "runtime.img")

    assert config("app-one").shape() == config("app-two").shape()
    assert not any("app-one" in arg for arg in config("app-one").shape())
    # A base initramfs big enough to move the persistent-memory range changes the machine.
    assert config("app-one").shape() != config("app-three", initrd_size=500 << 20).shape()
