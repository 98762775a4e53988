"""Where a hung guest's vCPUs are, from QEMU's monitor: the picture a boot-hang error carries.

A guest that hangs with a quiet kernel log leaves nothing on the console. What tells the kinds of
hang apart is each vCPU's state, read a few times: all halted with interrupts on is a guest waiting
for an interrupt that never comes (a lost timer or device interrupt); a vCPU whose RIP stays in one
place with interrupts off spins in the kernel; RIPs that move are a guest that is slow, not stuck.
The kernel runs without KASLR (kernel.vm.qemu), so a kernel RIP can be looked up in the Debian
package's System.map later.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from kernel.vm.monitor import Monitor

_CPU = re.compile(r"^CPU#(\d+)", re.M)
_RIP = re.compile(r"RIP=([0-9a-f]+) RFL=([0-9a-f]+) .*?CPL=(\d) .*?HLT=(\d)")
IF_FLAG = 0x200  # RFLAGS.IF: the vCPU takes interrupts


@dataclass(frozen=True)
class VcpuState:
    index: int
    rip: int
    interrupts_on: bool
    user: bool  # CPL 3
    halted: bool


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
        states.append(VcpuState(index, int(rip, 16), bool(int(flags, 16) & IF_FLAG), cpl == "3", hlt == "1"))
    return states


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


def picture(monitor: Monitor, samples: int = 3, interval: float = 0.2) -> str:
    """The vCPUs' state over `samples` reads, and QEMU's own run state."""
    status = monitor.execute("query-status")
    run_state = status.get("status", "?") if isinstance(status, dict) else "?"
    taken = []
    for n in range(samples):
        if n:
            time.sleep(interval)
        taken.append(parse_registers(monitor.human("info registers -a")))
    return f"QEMU run state: {run_state}\n{summarise(taken)}"
