"""The JVM that `osv-java jvm ...` and `osv-java shell` look into: one on this host (PID), or the one in
an osv-java VM (--vm NAME, reached through the run's relay). Commands decide which once, here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import click

from jvmbridge import hsperf, smaps
from jvmbridge.errors import JvmError
from jvmbridge.events import DECORATORS
from jvmbridge.proc import is_alive
from kernel.vm import registry


@dataclasses.dataclass(frozen=True)
class HeapPagesSummary:
    """The heap's resident bytes and those on huge pages, wherever they were read (host or guest smaps)."""

    rss: int
    huge: int
    kind: str  # anon, shmem (ZGC), hugetlb (a pool)
    source: str  # how the heap was found

    @property
    def share(self) -> float:
        return self.huge / self.rss if self.rss else 0.0


class JvmHandle:
    """What the commands need of a JVM; `close` when done (a context manager)."""

    title = "JVM"
    same_clock = True  # its -Xlog nanoTime is this host's monotonic clock

    def stats(self) -> hsperf.JvmStats:
        raise NotImplementedError

    def heap_pages(self) -> HeapPagesSummary | str:
        """The heap's pages, or why they cannot be read."""
        raise NotImplementedError

    def jcmd(self, line: str, timeout: float) -> str:
        raise NotImplementedError

    def machine_memory(self) -> registry.VmMemory | None:
        """For a JVM in a VM: the guest's memory after the balloon and QEMU's resident set."""
        return None

    def events(self, decorators: str = DECORATORS, starts: bool = False) -> Any:
        """A context manager whose value has `events(timeout)` and `stream` (jvmbridge.events)."""
        raise NotImplementedError

    def shell(self, timeout: float | None) -> None:
        raise NotImplementedError

    def running(self) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> JvmHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HostJvm(JvmHandle):
    """A JVM on this host, by pid: hsperfdata mapped once, attach and VM.log for the rest."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.title = f"JVM {pid}"
        self._perf: hsperf.PerfData | None = None
        self._heap_info: smaps.HeapInfo | None = None
        self._asked = False

    def stats(self) -> hsperf.JvmStats:
        if self._perf is None:
            self._perf = hsperf.PerfData.open(self.pid)
        return self._perf.stats()

    def heap_pages(self) -> HeapPagesSummary | str:
        try:  # the heap's range is asked of the JVM (GC.heap_info) once
            pages = smaps.heap_pages(self.pid, self._heap_info, ask=not self._asked)
        except JvmError as exc:
            return exc.message
        self._asked = True
        if pages.source == "heap_info":
            self._heap_info = smaps.HeapInfo(pages.start, pages.end, pages.region_size)
        if not pages.mappings:
            return "the heap's mappings were not found in smaps"
        return HeapPagesSummary(pages.rss, pages.huge, pages.kind, pages.source)

    def jcmd(self, line: str, timeout: float) -> str:
        from jvmbridge.attach import attach

        return attach(self.pid, timeout).jcmd(line)

    def events(self, decorators: str = DECORATORS, starts: bool = False) -> Any:
        from jvmbridge.events import follow

        return follow(self.pid, decorators=decorators, starts=starts)

    def shell(self, timeout: float | None) -> None:
        from jvmbridge import live

        live.shell(self.pid, timeout=timeout or 30.0)

    def running(self) -> bool:
        return is_alive(self.pid)

    def close(self) -> None:
        if self._perf is not None:
            self._perf.close()
            self._perf = None


class VmJvm(JvmHandle):
    """The JVM inside osv-java VM `name`: the kernel services answer through the run's relay."""

    same_clock = False  # the guest's monotonic clock is not ours

    def __init__(self, name: str) -> None:
        self.name = name
        self.title = f"VM {name}"
        record = registry.lookup(name)
        assert record is not None
        self.record = record
        self._scratch = tempfile.TemporaryDirectory(prefix="osv-java-vmjvm-")

    def stats(self) -> hsperf.JvmStats:
        """The guest JVM's counters: the kernel services send its hsperfdata file over."""
        snapshot = Path(self._scratch.name) / "hsperfdata"
        snapshot.write_bytes(registry.fetch_perfdata(self.record))
        with hsperf.PerfData(snapshot) as pd:
            return pd.stats()

    def heap_pages(self) -> HeapPagesSummary | str:
        """Read from the guest's smaps by the kernel services."""
        try:
            found = registry.fetch_hugepages(self.record)
        except (JvmError, ValueError) as exc:
            return str(exc)
        if not found.get("found"):
            return "the heap's mappings were not found in the guest's smaps"
        return HeapPagesSummary(int(str(found["rss"])), int(str(found["huge"])), str(found["kind"]),
                                str(found["source"]))

    def jcmd(self, line: str, timeout: float) -> str:
        return registry.request(self.record, "jcmd " + line).decode(errors="replace")

    def machine_memory(self) -> registry.VmMemory | None:
        return registry.fetch_memory(self.record)

    def events(self, decorators: str = DECORATORS, starts: bool = False) -> Any:
        from kernel.vm.guest_jvm import VmEvents

        return VmEvents(self.name, decorators=decorators, starts=starts)

    def shell(self, timeout: float | None) -> None:
        from kernel.vm import guest_jvm

        guest_jvm.shell(self.name, timeout=timeout or 180.0)

    def running(self) -> bool:
        return registry.lookup(self.name, missing_ok=True) is not None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._scratch.cleanup()


def handle(pid: int | None, vm_name: str | None) -> JvmHandle:
    """The JVM the user named: PID or --vm NAME, exactly one of them."""
    if (pid is None) == (vm_name is None):
        raise click.UsageError("give either PID or --vm NAME")
    return VmJvm(vm_name) if vm_name is not None else HostJvm(pid)  # type: ignore[arg-type]
