"""Which policies a run gets: `osv_java` turns the user's options into `HookSettings`, `choose` makes
the policies (gc_hooks.seam), in the order they act."""

from __future__ import annotations

from dataclasses import dataclass

from gc_hooks.seam import Machine, Policy


@dataclass(frozen=True)
class HookSettings:
    """The user's choices, from `osv-java run` or `osv-java attach` options."""

    dynamic_heap: bool = True
    hugepages: str = "auto"
    gc_log: str | None = None  # record the run's GC events in this host file


def choose(settings: HookSettings, machine: Machine) -> list[Policy]:
    """The policies for a run, in the order they act."""
    policies: list[Policy] = []
    if settings.hugepages != "off" or machine.target == "vm":  # off in a VM still turns the guest's THP off
        from gc_hooks.hugepages import HugePages

        policies.append(HugePages(settings.hugepages, dynamic_heap=settings.dynamic_heap))
    return policies
