"""The `dynamic-heap` Policy: launch flags that leave room to grow, the balloon device for VMs, and
the supervisor that steers the heap while the JVM runs."""

from __future__ import annotations

from typing import ClassVar

from gc_hooks.seam import HostMonitor, Machine, Policy, SupervisorSpec, user_sets

MAX_RAM_PERCENTAGE = 75  # the heap may grow to most of the machine; the supervisor keeps it small
UNCOMMIT_DELAY_S = 1  # ZGC/Shenandoah give idle memory back after this (the default is 300 s)
BALLOON = "virtio-balloon-device,free-page-reporting=on,deflate-on-oom=on"

_HEAP_MAX = ("-Xmx", "-XX:MaxHeapSize=", "-XX:MaxRAMPercentage=", "-XX:MaxRAMFraction=", "-XX:MaxRAM=")
_COLLECTORS = ("-XX:+UseZGC", "-XX:+UseShenandoahGC", "-XX:+UseParallelGC", "-XX:+UseSerialGC",
               "-XX:+UseEpsilonGC")


def _chosen(options: tuple[str, ...], flag: str) -> bool:
    """The last of -XX:+Flag / -XX:-Flag given wins, as in HotSpot."""
    name = flag[5:]
    last = None
    for option in options:
        if option in (f"-XX:+{name}", f"-XX:-{name}"):
            last = option
    return last == flag


class DynamicHeap(Policy):
    name: ClassVar[str] = "dynamic-heap"

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval

    def guest_modules(self) -> tuple[str, ...]:
        return ("virtio_balloon",)

    def jvm_options(self, machine: Machine) -> list[str]:
        user = machine.user_jvm_options
        options: list[str] = []
        if machine.memory_mb and not user_sets(user, *_HEAP_MAX):
            # the machine (a VM, or -m) is the JVM's own: let the heap grow into most of it. A process
            # on a shared host without -m keeps the JVM's default (a quarter of RAM or of its cgroup):
            # G1 cannot be held below its maximum while it grows, so a larger one only risks the host.
            options.append(f"-XX:MaxRAMPercentage={MAX_RAM_PERCENTAGE}")
        other = any(_chosen(user, flag) for flag in _COLLECTORS)
        if not other and not user_sets(user, "-XX:+ExplicitGCInvokesConcurrent", "-XX:-ExplicitGCInvokesConcurrent"):
            options.append("-XX:+ExplicitGCInvokesConcurrent")  # G1: our shrink is a concurrent cycle
        if _chosen(user, "-XX:+UseZGC") and not user_sets(user, "-XX:ZUncommitDelay="):
            options.append(f"-XX:ZUncommitDelay={UNCOMMIT_DELAY_S}")
        if _chosen(user, "-XX:+UseShenandoahGC") and not user_sets(user, "-XX:ShenandoahUncommitDelay="):
            # an experimental flag on 17 and 25: without the unlock before it the JVM refuses to start
            options += ["-XX:+UnlockExperimentalVMOptions", f"-XX:ShenandoahUncommitDelay={UNCOMMIT_DELAY_S * 1000}"]
        return options

    def qemu_args(self, machine: Machine) -> list[str]:
        return ["-device", BALLOON] if machine.target == "vm" else []

    def host_monitor(self, machine: Machine) -> HostMonitor | None:
        if machine.target != "vm":
            return None
        # imported here: the module is the host's, and the guest's copy of this one stays small
        from gc_hooks.dynamic_heap.balloon import BalloonMonitor

        return BalloonMonitor()

    def supervisor(self, machine: Machine) -> SupervisorSpec | None:
        settings: dict[str, object] = {"interval": self.interval, "target": machine.target}
        if machine.cpus:
            settings["cpus"] = machine.cpus
        # its first look is one interval in: loaded then, it takes nothing from a JVM that is starting
        # (20 ms of a 0.4 s Clojure hello's, measured). `attach` checks the JVM it is given at once.
        delay = 0.0 if machine.target == "attach" else self.interval
        return SupervisorSpec(self.name, "gc_hooks.dynamic_heap.supervisor", "DynamicHeapSupervisor", settings,
                              delay=delay)
