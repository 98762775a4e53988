"""Which policies a run gets: `choose(settings, machine)` from the run's hook options."""

from __future__ import annotations

from dataclasses import dataclass

from gc_hooks.dynamic_heap.policy import DynamicHeap
from gc_hooks.seam import Machine, Policy


@dataclass(frozen=True)
class HookSettings:
    """The hook options of `run` and `attach` (`--dynamic-heap on|off`, `--hugepages`, `--gc-log`)."""

    dynamic_heap: bool = True
    hugepages: str = "auto"
    gc_log: str | None = None


def choose(settings: HookSettings, machine: Machine) -> list[Policy]:
    """The policies of a run, in the order their options go on the JVM's command line."""
    policies: list[Policy] = []
    if settings.dynamic_heap:
        policies.append(DynamicHeap())
    return policies
