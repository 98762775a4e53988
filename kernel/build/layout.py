"""Where things are in an image, and the host programs the guest runs (its Python and busybox).

Shared by the image builder and the image checks, which must agree on them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from jvmbridge.errors import DependencyError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
GUEST_SOURCES = PROJECT_ROOT / "kernel" / "guest"
PYTHON_HOME = "/osv/python"
JRE_IN_IMAGE = "/osv/jre"
RUNTIME_DISK = "runtime.img"  # the JRE as a read-only EROFS image, mounted at JRE_IN_IMAGE
RUNTIME_VOLUME = "osv-jre"  # its volume name, as tools such as dump.erofs show it
MODULES_IN_IMAGE = "/osv/modules"
# Modules only some runs load (-v's fuse and virtiofs) sit on the runtime disk, not in the initramfs,
# whose every byte the kernel copies at each boot: runs that never load them do not pay for them.
MODULES_ON_RUNTIME_DISK = f"{JRE_IN_IMAGE}/.osv-modules"
# The app's start-up archive travels with the app's own files (the initramfs's app part, or the
# files sent after a boot snapshot's restore), not on the runtime disk: that disk, like the base
# initramfs, is the runtime's, so that every app of a runtime restores the same snapshot.
STARTUP_ARCHIVE_IN_IMAGE = "/osv/startup"
INIT_TEMPLATE = GUEST_SOURCES / "init.sh"  # /init, run by busybox; it execs PID 1's Python
BUSYBOX_IN_IMAGE = "/bin/busybox"
# The busybox commands /init and the JVM's start (kernel.build.launcher) use, as links in /bin.
BUSYBOX_COMMANDS = ("base64", "env", "hostname", "insmod", "ip", "mkdir", "mkfifo", "mount", "nc", "usleep")
# Guest environment for PID 1, passed on the kernel command line (the kernel hands unknown
# key=value parameters to init as its environment).
INIT_ENV = {
    "PYTHONHOME": PYTHON_HOME,
    "PYTHONHASHSEED": "0",  # early boot has no entropy; hash randomisation would block or abort
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUTF8": "1",
    "PYTHONCOERCECLOCALE": "0",
}


def guest_python() -> Path:
    """The interpreter the guest runs PID 1 with: Debian's python3 (small, stdlib mostly built in), else ours."""
    override = os.environ.get("OSV_JAVA_GUEST_PYTHON")
    if override:
        return Path(override)
    for candidate in (Path("/usr/bin/python3"), Path(sys.executable)):
        if candidate.exists():
            return candidate.resolve()
    raise DependencyError("no Python interpreter for the guest", hint="apt-get install python3")


def guest_busybox() -> Path:
    """The busybox that runs /init (Debian's busybox-static: no loader, no libraries to start)."""
    for candidate in (Path("/bin/busybox"), Path("/usr/bin/busybox")):
        if candidate.exists():
            return candidate.resolve()
    raise DependencyError("busybox is not installed: the guest's /init needs it",
                          hint="apt-get install busybox-static")
