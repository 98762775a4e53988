"""Where a hung guest's vCPUs are, from QEMU's monitor: the picture a boot-hang error carries.

A guest that hangs with a quiet kernel log leaves nothing on the console. What tells the kinds of
hang apart is each vCPU's state, read a few times: all halted with interrupts on is a guest waiting
for an interrupt that never comes (a lost timer or device interrupt); a vCPU whose RIP stays in one
place with interrupts off spins in the kernel; RIPs that move are a guest that is slow, not stuck.
Under software emulation RIP is only written back when the vCPU leaves a translated block for
QEMU's loop (a return, an indirect jump, an exception), so a vCPU spinning in a tight loop shows the
last such point; two more readings tell the rest: the kernel-text words on each vCPU's stack (its
callers) and how much host CPU each vCPU thread burnt meanwhile (a spinning vCPU burns a whole CPU;
one blocked inside QEMU burns none). The kernel runs without KASLR (kernel.vm.qemu), so kernel
addresses can be looked up in the System.map of Debian's matching -dbg package.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from jvmbridge.proc import stat_cpu_seconds
from kernel.vm.monitor import Monitor

_CPU = re.compile(r"^CPU#(\d+)", re.M)
_RIP = re.compile(r"RIP=([0-9a-f]+) RFL=([0-9a-f]+) .*?CPL=(\d) .*?HLT=(\d)")
_RSP = re.compile(r"RSP=([0-9a-f]+)")
_WORD = re.compile(r"\b0x([0-9a-f]{16})\b")
IF_FLAG = 0x200  # RFLAGS.IF: the vCPU takes interrupts
KERNEL_TEXT = (0xFFFFFFFF80000000, 0xFFFFFFFFFF000000)  # the kernel image and its modules
STACK_WORDS = 48


@dataclass(frozen=True)
class VcpuState:
    index: int
    rip: int
    interrupts_on: bool
    user: bool  # CPL 3
    halted: bool
    rsp: int = 0


def parse_registers(text: str) -> list[VcpuState]:
    """The state of each vCPU in the output of the human monitor's `info registers -a`."""
    states = []
    starts = [(m.start(), int(m.group(1))) for m in _CPU.finditer(text)]
    for n, (start, index) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(text)
        found = _RIP.search(text, start, end)
        if found is None:
            continue
        rip, flags, cpl, hlt = found.groups()
        rsp = _RSP.search(text, start, end)
        states.append(VcpuState(index, int(rip, 16), bool(int(flags, 16) & IF_FLAG), cpl == "3", hlt == "1",
                                int(rsp.group(1), 16) if rsp else 0))
    return states


def code_words(memory_dump: str) -> list[int]:
    """The words in the output of the human monitor's `x /Ngx ADDR` that point into kernel text."""
    words = []
    for line in memory_dump.splitlines():
        _, _, values = line.partition(":")
        words += [int(w, 16) for w in _WORD.findall(values)]
    return [w for w in words if KERNEL_TEXT[0] <= w < KERNEL_TEXT[1]]


def vcpu_threads(qemu_pid: int) -> dict[str, tuple[str, float]]:
    """QEMU's vCPU threads ("CPU 0/TCG" ...): name -> (scheduler state, CPU seconds used)."""
    threads = {}
    for task in Path(f"/proc/{qemu_pid}/task").glob("*"):
        try:
            name = (task / "comm").read_text().strip()
            stat = (task / "stat").read_text()
        except OSError:
            continue  # a thread that ended meanwhile
        if not name.startswith("CPU "):
            continue
        threads[name] = (stat.rpartition(")")[2].split()[0], stat_cpu_seconds(stat))  # state: after "(comm)"
    return threads


def thread_usage(before: dict[str, tuple[str, float]], after: dict[str, tuple[str, float]], seconds: float) -> str:
    """One line: each vCPU thread's state and the share of a host CPU it used between the two readings."""
    parts = []
    for name in sorted(after):
        state, used = after[name]
        share = (used - before.get(name, (state, used))[1]) / seconds if seconds > 0 else 0.0
        parts.append(f"{name} {state} {share:.0%}")
    return "host threads (state, CPU used): " + ", ".join(parts) if parts else ""


def summarise(samples: list[list[VcpuState]]) -> str:
    """One line per vCPU over the samples: where it was each time and how."""
    by_cpu: dict[int, list[VcpuState]] = {}
    for sample in samples:
        for state in sample:
            by_cpu.setdefault(state.index, []).append(state)
    lines = []
    for index, states in sorted(by_cpu.items()):
        rips = " ".join(f"{s.rip:x}" for s in states)
        halted = sum(s.halted for s in states)
        masked = sum(not s.interrupts_on for s in states)
        where = "user" if all(s.user for s in states) else "kernel" if not any(s.user for s in states) else "mixed"
        moving = "RIP moves" if len({s.rip for s in states}) > 1 else "RIP stays"
        lines.append(f"vCPU {index}: {where}, halted {halted}/{len(states)}, interrupts off {masked}/{len(states)}, "
                     f"{moving}: {rips}")
    return "\n".join(lines)


def stacks(monitor: Monitor, states: list[VcpuState]) -> list[str]:
    """Per vCPU in the kernel, the kernel-text words on its stack from RSP up: its callers, mostly."""
    lines = []
    for state in states:
        if state.user or not state.rsp:
            continue
        dump = monitor.human(f"x /{STACK_WORDS}gx 0x{state.rsp:x}", cpu=state.index)
        words = " ".join(f"{w:x}" for w in code_words(dump)) or "none"
        lines.append(f"vCPU {state.index} stack (kernel-text words from RSP {state.rsp:x} up): {words}")
    return lines


def picture(monitor: Monitor, qemu_pid: int | None = None, samples: int = 3, interval: float = 0.2) -> str:
    """The vCPUs' state over `samples` reads, their stacks and host threads, and QEMU's own run state."""
    status = monitor.execute("query-status")
    run_state = status.get("status", "?") if isinstance(status, dict) else "?"
    threads_before = vcpu_threads(qemu_pid) if qemu_pid else {}
    started = time.monotonic()
    taken = []
    for n in range(samples):
        if n:
            time.sleep(interval)
        taken.append(parse_registers(monitor.human("info registers -a")))
    usage = thread_usage(threads_before, vcpu_threads(qemu_pid), time.monotonic() - started) if qemu_pid else ""
    lines = [f"QEMU run state: {run_state}", summarise(taken), *stacks(monitor, taken[-1]), usage]
    return "\n".join(line for line in lines if line)
