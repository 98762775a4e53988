"""PID 1 for a machine that no osv-java host watches: a libvirt domain or a KubeVirt VM.

`osv-java export` appends the run request to the initramfs (RUN_FILE) and /init execs this instead
of kernel.guest.pid1. The machine is q35 with virtio-pci: the runtime image is a read-only virtio
disk (RUNTIME_DEVICE), the network QEMU's user mode on virtio-net. The app's stdout and stderr are
the serial console, the policies' supervisors run beside the JVM and say their failures there, and
the last line of the console is `osv-java: exit status N` (a VM that powers off has no other way to
tell its engine how the app ended). Then it powers off. Standard library only, like PID 1.
"""

from __future__ import annotations

import json
import os
import sys

from gc_hooks.runner import SupervisorRunner
from gc_hooks.seam import HookEvent, SupervisorSpec
from kernel.guest import dhcp, disks, network, wire
from kernel.guest.pid1 import (
    BOOT_FILE,
    MS_NODEV,
    MS_NOSUID,
    MS_RDONLY,
    apply_settings,
    exit_status,
    load_module,
    mount,
    power_off,
)
from kernel.guest.spawn import spawn

RUN_FILE = "/osv/run.txt"
RUNTIME_DEVICE = "/dev/vda"
CONSOLE = "/dev/console"
EXIT_LINE = "osv-java: exit status {status}"  # parsed by tests and by users' scripts: keep it stable


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class ConsoleChannel:
    """gc_hooks.seam.Channel with no host: failures and warnings go to the console."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose

    def emit(self, event: HookEvent) -> None:
        if self.verbose or event.what in ("failed", "warning"):
            say(f"osv-java: {event.line()}")

    def send(self, policy: str, kind: str, data: str) -> None:
        """Messages for a host monitor: nobody is there to read them."""


def mount_runtime(boot: wire.Message) -> None:
    """The JRE's EROFS image from the read-only virtio disk (no DAX: a block device, not memory)."""
    # the virtio core ("modules") first: the PCI transport needs its symbols
    for module in [*boot.get("modules", []), *boot.get("pci_modules", []), *boot.get("disk_modules", [])]:
        load_module(module)
    device = disks.wait_for(RUNTIME_DEVICE)
    mount(device, wire.first(boot, "runtime_mount") or "/osv/jre", "erofs", MS_RDONLY)


def start_jvm(request: wire.Message) -> int:
    """Fork and exec the JVM with the console as its stdout and stderr, nothing on stdin."""

    def stdio() -> tuple[int, int, int]:  # in this order: the first free fds may be 0 and 1
        null = os.open("/dev/null", os.O_RDONLY)
        console = os.open(CONSOLE, os.O_WRONLY | os.O_NOCTTY)
        return null, console, console

    env = dict(item.split("=", 1) for item in request.get("env", []))
    return spawn(request["argv"], env, wire.first(request, "cwd") or "/", stdio)


def wait_for(pid: int) -> int:
    """Reap everything re-parented to PID 1 until the JVM exits; its wait status."""
    while True:
        reaped, wait_status = os.wait()
        if reaped == pid:
            return wait_status


def supervisors(request: wire.Message, pid: int) -> SupervisorRunner | None:
    specs = [SupervisorSpec.from_fields(json.loads(text)) for text in request.get("hook", [])]
    if not specs:
        return None
    runner = SupervisorRunner(specs, ConsoleChannel(wire.first(request, "verbose") == "1"))
    runner.start(pid)
    return runner


def main() -> None:
    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    with open(BOOT_FILE, "rb") as f:
        boot = wire.decode(f.read())
    with open(RUN_FILE, "rb") as f:
        request = wire.decode(f.read())
    mount_runtime(boot)
    network.loopback_up()
    try:
        # QEMU user mode's addresses unless the request names others (KubeVirt's masquerade); with
        # net_dhcp they are the fallback when no DHCP server answers
        modules = boot.get("net_modules", [])
        address = wire.first(request, "net_address") or network.GUEST_ADDRESS
        gateway = wire.first(request, "net_gateway") or network.GATEWAY
        dns = wire.first(request, "net_dns", network.DNS) or None
        if wire.first(request, "net_dhcp") == "1":
            say(network.configure_by_dhcp(modules, load_module, dhcp.obtain, address, gateway, dns))
        else:
            network.configure(modules, load_module, address=address, gateway=gateway, dns=dns)
    except OSError as exc:
        say(f"osv-java: networking not available: {exc}")
    apply_settings(request)
    pid = start_jvm(request)
    for module in boot.get("hook_modules", []):  # the balloon, once the JVM runs
        try:
            load_module(module)
        except OSError as exc:
            say(f"osv-java: cannot load {module}: {exc}")
    runner = supervisors(request, pid)
    status = exit_status(wait_for(pid))
    if runner is not None:
        runner.stop(exited=True)
    say(EXIT_LINE.format(status=status))
    power_off()


def run() -> None:
    """Entry point of /init on an exported machine: PID 1 must never return or raise."""
    try:
        main()
    except BaseException as exc:  # noqa: BLE001
        say(f"osv-java: {type(exc).__name__}: {exc}")
        say(EXIT_LINE.format(status=125))
        power_off()
