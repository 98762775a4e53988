"""A libvirtd for the tests: the machine's own when one answers, else one started here and stopped after.

Ours runs in a private mount namespace with its own qemu.conf bind-mounted over /etc/libvirt's, so
nothing of the machine's configuration changes. That qemu.conf runs QEMU as root: where /dev/kvm is
root's alone (no udev to give it to the kvm group), libvirt otherwise finds KVM usable when it probes
QEMU as root and unusable for the qemu user, drops its capability cache and probes again at every
start, a minute each time here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

URI = "qemu:///system"
QEMU_CONF = 'user = "root"\ngroup = "root"\n'


def missing() -> str | None:
    for tool in ("libvirtd", "virtlogd", "virsh"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install libvirt-daemon-system)"
    if os.geteuid() != 0:
        return "a system libvirtd needs root"
    return None


def answers() -> bool:
    try:
        return subprocess.run(["virsh", "-c", URI, "version"], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def virsh(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True, timeout=timeout, check=False)


@contextlib.contextmanager
def daemon(workdir: Path) -> Iterator[None]:
    """The machine's libvirtd if it runs; else ours, for the duration."""
    if answers():
        yield
        return
    conf = workdir / "qemu.conf"
    conf.write_text(QEMU_CONF)
    pids = {name: workdir / f"{name}.pid" for name in ("virtlogd", "libvirtd")}
    script = (f"mount --bind {conf} /etc/libvirt/qemu.conf && "
              f"virtlogd -d --pid-file {pids['virtlogd']} && libvirtd -d --pid-file {pids['libvirtd']}")
    subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script], check=True, timeout=60)
    try:
        deadline = time.monotonic() + 60
        while not answers():
            if time.monotonic() > deadline:
                raise RuntimeError("the libvirtd started for the tests does not answer")
            time.sleep(0.5)
        yield
    finally:
        for pid_file in reversed(list(pids.values())):
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)


def wait_gone(name: str, timeout: float) -> bool:
    """True once the domain has ended (a transient domain that powers off is gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if virsh("domstate", name, timeout=30).returncode != 0:
            return True
        time.sleep(0.5)
    return False
