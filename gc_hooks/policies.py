"""Which policies a run gets, and what they add up to at each place of the seam (gc_hooks.seam).

`osv_java` turns the user's options into `HookSettings`; `choose` makes the policies; `plan` gathers
what the runner, the image builder and PID 1 need from them, so none of those knows a policy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from gc_hooks.seam import HostMonitor, Machine, Policy, SupervisorSpec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from gc_hooks.hugepages.plan import KernelPages


@dataclass(frozen=True)
class HookSettings:
    """The user's choices, from `osv-java run` or `osv-java attach` options."""

    dynamic_heap: bool = True
    hugepages: str = "auto"
    gc_log: str | None = None  # record the run's GC events in this host file
    stw_lb: str | None = None  # haproxy:SOCKET:BACKEND/SERVER: collect while drained from the balancer
    stw_group: str | None = None  # JVMs of this group on one machine never collect at the same time
    startup_priority: bool = True  # C2 compiles on idle CPU time while the JVM starts


def choose(settings: HookSettings, machine: Machine, pages: KernelPages | None = None) -> list[Policy]:
    """The policies for a run, in the order they act. `pages`: the huge-page state to plan for, when
    not this host's (an exported image runs elsewhere)."""
    policies: list[Policy] = []
    if settings.dynamic_heap:
        from gc_hooks.dynamic_heap.policy import DynamicHeap

        policies.append(DynamicHeap())
    if settings.hugepages != "off" or machine.target == "vm":  # off in a VM still turns the guest's THP off
        from gc_hooks.hugepages import HugePages

        policies.append(HugePages(settings.hugepages, dynamic_heap=settings.dynamic_heap, kernel=pages))
    if settings.gc_log is not None:
        from gc_hooks.gc_log import GcLog

        policies.append(GcLog(settings.gc_log))
    if settings.stw_lb is not None or settings.stw_group is not None:
        from gc_hooks.stw import StwLoadBalancer

        policies.append(StwLoadBalancer(settings.stw_lb, settings.stw_group))
    if settings.startup_priority and machine.target != "attach":  # an attached JVM has started
        from gc_hooks.startup_priority import StartupPriority

        policies.append(StartupPriority())
    return policies


@dataclass
class Plan:
    """What a run's policies ask for at each place; made once per run by `plan`."""

    machine: Machine
    policies: list[Policy] = field(default_factory=list)
    guest_modules: tuple[str, ...] = ()
    jvm_options: list[str] = field(default_factory=list)
    kernel_cmdline: list[str] = field(default_factory=list)
    qemu_args: list[str] = field(default_factory=list)
    guest_settings: dict[str, str] = field(default_factory=dict)
    supervisors: list[SupervisorSpec] = field(default_factory=list)
    monitors: dict[str, HostMonitor] = field(default_factory=dict)  # policy name -> its host side

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.policies]

    def setting_fields(self) -> list[str]:
        """The guest settings as PID 1 takes them ("PATH=VALUE")."""
        return [f"{path}={value}" for path, value in self.guest_settings.items()]

    def supervisor_fields(self) -> list[str]:
        """The supervisors as PID 1 takes them (one JSON object each)."""
        return [json.dumps(spec.fields(), sort_keys=True) for spec in self.supervisors]


def plan(policies: list[Policy], machine: Machine) -> Plan:
    result = Plan(machine=machine, policies=list(policies))
    modules: list[str] = []
    for policy in policies:
        modules += [m for m in policy.guest_modules() if m not in modules]
        result.jvm_options += policy.jvm_options(machine)
        result.kernel_cmdline += policy.kernel_cmdline(machine)
        result.qemu_args += policy.qemu_args(machine)
        result.guest_settings.update(policy.guest_settings(machine))
        spec = policy.supervisor(machine)
        if spec is not None:
            result.supervisors.append(spec)
        monitor = policy.host_monitor(machine)
        if monitor is not None:
            result.monitors[policy.name] = monitor
    result.guest_modules = tuple(modules)
    return result
