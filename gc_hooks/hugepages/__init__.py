"""Huge pages from the very beginning, verified, and repaired for JVMs that run without them.

- `plan`: the pure planner (mode auto|thp|pool|off -> JVM flags, guest kernel settings, QEMU args);
- `system`: what the kernel offers and why a heap lacks huge pages;
- `collapse`: external MADV_COLLAPSE of a running JVM's heap, in bounded steps;
- `supervisor`: measures the heap's share beside the JVM, warns, repairs;
- `host`: a VM's guest RAM on the host's huge pages, measured and repaired (host only);
- `HugePages`: the policy at the seam (gc_hooks.seam).

Standard library only (with jvmbridge's stdlib modules): PID 1 runs the supervisor in the guest.
"""

from __future__ import annotations

from typing import ClassVar

from gc_hooks.hugepages.plan import MODES, KernelPages, Plan, plan
from gc_hooks.seam import HostMonitor, Machine, Policy, SupervisorSpec

__all__ = ["HugePages", "MODES", "KernelPages", "Plan", "plan"]


class HugePages(Policy):
    """The huge-pages policy: `mode` is auto, thp, pool or off; `kernel` the host's huge-page state
    (read once when not given: only process, attach and a VM's QEMU backend depend on it)."""

    name: ClassVar[str] = "hugepages"

    def __init__(self, mode: str = "auto", dynamic_heap: bool = True, kernel: KernelPages | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"hugepages mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode
        self.dynamic_heap = dynamic_heap
        self._kernel = kernel
        self._plans: dict[Machine, Plan] = {}

    def kernel(self) -> KernelPages:
        if self._kernel is None:
            from gc_hooks.hugepages.system import read_kernel

            self._kernel = read_kernel()
        return self._kernel

    def plan(self, machine: Machine) -> Plan:
        if machine not in self._plans:
            self._plans[machine] = plan(self.mode, machine, self.dynamic_heap, self.kernel())
        return self._plans[machine]

    def jvm_options(self, machine: Machine) -> list[str]:
        return list(self.plan(machine).jvm_options)

    def qemu_args(self, machine: Machine) -> list[str]:
        return list(self.plan(machine).qemu_args)

    def guest_settings(self, machine: Machine) -> dict[str, str]:
        return dict(self.plan(machine).guest_settings)

    def supervisor(self, machine: Machine) -> SupervisorSpec | None:
        chosen = self.plan(machine)
        if chosen.chosen == "off":
            return None
        return SupervisorSpec(self.name, "gc_hooks.hugepages.supervisor", "HugePagesSupervisor", chosen.settings())

    def host_monitor(self, machine: Machine) -> HostMonitor | None:
        if machine.target != "vm" or machine.memory_mb is None or self.plan(machine).chosen == "off":
            return None
        # imported here: the module is the host's, and the guest's copy of this one stays small
        from gc_hooks.hugepages.host import GuestRamMonitor

        return GuestRamMonitor(machine.memory_mb)
