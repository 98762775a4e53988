"""PID 1's side of the gc_hooks seam: the policies' supervisors beside the guest JVM.

Imported only after the JVM has started. Their decisions and messages travel to the host on the
control channel ("hook-event", "hook-message"), where kernel.vm.runner hands them to the policies' host
monitors. Standard library only, like the rest of PID 1.
"""

from __future__ import annotations

import json

from gc_hooks.runner import SupervisorRunner
from gc_hooks.seam import HookEvent, SupervisorSpec
from kernel.guest import wire

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kernel.guest.control import Control


class ControlChannel:
    """gc_hooks.seam.Channel over the control port."""

    def __init__(self, control: Control) -> None:
        self.control = control

    def emit(self, event: HookEvent) -> None:
        self.control.send("hook-event", **event.fields())

    def send(self, policy: str, kind: str, data: str) -> None:
        self.control.send("hook-message", policy=policy, kind=kind, data=data)


def start(control: Control, message: wire.Message, pid: int) -> SupervisorRunner | None:
    """Start the supervisors the host's "hooks" message names; None when it names none."""
    specs = [SupervisorSpec.from_fields(json.loads(text)) for text in message.get("hook", [])]
    if not specs:
        return None
    runner = SupervisorRunner(specs, ControlChannel(control))
    runner.start(pid)
    return runner
