"""The seam between the kernel services and the GC policies.

A policy says where it acts by overriding the methods of `Policy`; the places that call them know
nothing else about it:

- at image build: `guest_modules` (kernel modules PID 1 loads; part of the image key);
- at launch: `jvm_options`, `kernel_cmdline` (part of the boot snapshot's key), `qemu_args`
  (devices on the host's QEMU command line) and `guest_settings` (files PID 1 writes in the guest,
  such as /sys/kernel/mm/transparent_hugepage/enabled, before the JVM starts);
- while the JVM runs: a `Supervisor` beside the JVM (in PID 1 inside a VM, in osv-java itself for
  `--target process` and `osv-java attach`), named by a `SupervisorSpec` so PID 1 can make it in the
  guest; and a `HostMonitor` on the host for the length of the run (QMP while a VM runs, and the
  messages the policy's supervisor sends).

Every decision a policy makes is a `HookEvent` (time, policy, what, why, from, to).

This module and every Supervisor import only the standard library: PID 1 runs them in the guest.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

TARGETS = ("vm", "process", "attach")
# In a qemu_args argument, the guest RAM's size in MB as QEMU gets it (`-m`: the memory asked for plus
# the runtime image's persistent-memory range), known only when the command line is made.
RAM_MB = "{ram_mb}"


@dataclass(frozen=True)
class Machine:
    """What a policy knows when it plans a run."""

    target: str  # one of TARGETS
    memory_mb: int | None  # the VM's memory, -m for a process, None when unknown (attach)
    cpus: int | None
    jdk_feature: int
    user_jvm_options: tuple[str, ...] = ()  # the user's own; a policy leaves alone what they set


@dataclass(frozen=True)
class HookEvent:
    """One decision of a policy: shown by `osv-java jvm events` and the bootchart."""

    policy: str
    what: str  # a short verb: "shrink", "grow", "collapse", "drain", ...
    why: str
    before: str = ""
    after: str = ""
    time: float = field(default_factory=time.time)  # Unix seconds

    def fields(self) -> dict[str, object]:
        return {"policy": self.policy, "what": self.what, "why": self.why, "before": self.before,
                "after": self.after, "time": self.time}

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> HookEvent:
        return cls(policy=str(fields.get("policy", "")), what=str(fields.get("what", "")),
                   why=str(fields.get("why", "")), before=str(fields.get("before", "")),
                   after=str(fields.get("after", "")), time=float(fields.get("time", 0.0)))

    def line(self) -> str:
        change = f" {self.before} -> {self.after}" if (self.before or self.after) else ""
        return f"{self.policy}: {self.what}{change} ({self.why})"


class Channel(Protocol):
    """How a supervisor reports: events for everyone, messages for its own policy's HostMonitor."""

    def emit(self, event: HookEvent) -> None: ...

    def send(self, policy: str, kind: str, data: str) -> None: ...


class Supervisor:
    """Runs beside one JVM: `start` once the JVM exists, `tick` every `interval` seconds, `stop` when
    the JVM has exited or the supervisor is detached (undo what must not outlive it).

    A supervisor's own failure must never harm the app: the runner reports it as an event and stops
    calling it.
    """

    interval: float = 1.0

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings

    def start(self, pid: int, channel: Channel) -> None:
        """The JVM `pid` runs (in the supervisor's own pid namespace)."""

    def tick(self, now: float) -> None:
        """Called every `interval` seconds while the JVM runs; `now` is time.monotonic()."""

    def stop(self, exited: bool) -> None:
        """The JVM exited (`exited`), or the supervisor is being detached from a JVM that goes on."""


@dataclass(frozen=True)
class SupervisorSpec:
    """A Supervisor class by module and name, with JSON-safe settings: PID 1 makes it in the guest.

    `delay`: seconds after the JVM starts before the supervisor is loaded and started (it ticks at once
    then). One with nothing to do at first takes no CPU from the JVM while it starts, and a short run
    never loads it."""

    policy: str
    module: str
    cls: str
    settings: dict[str, Any] = field(default_factory=dict)
    delay: float = 0.0

    def make(self) -> Supervisor:
        supervisor = getattr(importlib.import_module(self.module), self.cls)(self.settings)
        if not isinstance(supervisor, Supervisor):
            raise TypeError(f"{self.module}.{self.cls} is not a Supervisor")
        return supervisor

    def fields(self) -> dict[str, Any]:
        return {"policy": self.policy, "module": self.module, "cls": self.cls, "settings": self.settings,
                "delay": self.delay}

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> SupervisorSpec:
        return cls(policy=str(fields["policy"]), module=str(fields["module"]), cls=str(fields["cls"]),
                   settings=dict(fields.get("settings") or {}), delay=float(fields.get("delay", 0.0)))


class VmSide(Protocol):
    """What a HostMonitor may use of a running VM (kernel.vm.runner gives it)."""

    name: str
    qemu_pid: int

    def qmp(self, command: str, **arguments: Any) -> Any:
        """Run a QMP command on the VM's monitor and return its answer."""
        ...

    def request(self, line: str, timeout: float = 30.0) -> bytes:
        """Ask the VM's PID 1 through the run's relay: `hsperf` (the JVM's counters file) or
        `jcmd COMMAND ARGS` (its output); raises JvmError when PID 1 answers with an error."""
        ...


class HostMonitor:
    """A policy's host side for the length of a run: QMP actions while a VM runs, and the messages of
    the policy's supervisor (from the guest, or from the same process for --target process)."""

    # False when the policy still works without it (a machine run by another engine, osv-java export)
    essential: ClassVar[bool] = True

    def start(self, vm: VmSide | None) -> None:
        """The run began: QEMU is up and its monitor answers (`vm`), or None for a JVM on the host."""

    def report(self, event: HookEvent) -> None:
        """A decision the monitor made itself; the run's HostSide puts its own `emit` here at start."""

    def message(self, kind: str, data: str) -> None:
        """The policy's supervisor in the guest sent `data` (Channel.send)."""

    def event(self, event: HookEvent) -> None:
        """Any policy's supervisor in the guest made a decision."""

    def stop(self) -> None:
        """The VM is stopping."""


class Policy:
    """A GC policy. Every place is a no-op here; a policy overrides the places where it acts."""

    name: ClassVar[str] = "policy"

    def guest_modules(self) -> tuple[str, ...]:
        """Kernel module names (without .ko) PID 1 loads before the JVM starts; part of the image key."""
        return ()

    def jvm_options(self, machine: Machine) -> list[str]:
        """JVM options at launch, before the user's own (which win where HotSpot lets the last one win)."""
        return []

    def kernel_cmdline(self, machine: Machine) -> list[str]:
        return []

    def qemu_args(self, machine: Machine) -> list[str]:
        """Arguments for the host's QEMU (devices, memory backends: size them with RAM_MB)."""
        return []

    def guest_settings(self, machine: Machine) -> dict[str, str]:
        """Files PID 1 writes (path -> content) before the JVM starts, e.g. sysfs knobs."""
        return {}

    def supervisor(self, machine: Machine) -> SupervisorSpec | None:
        return None

    def host_monitor(self, machine: Machine) -> HostMonitor | None:
        return None


def user_sets(options: tuple[str, ...] | list[str], *prefixes: str) -> bool:
    """Whether the user's JVM options already set one of `prefixes` (e.g. "-Xmx", "-XX:MaxHeapSize=")."""
    return any(option.startswith(prefix) for option in options for prefix in prefixes)
