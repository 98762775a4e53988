"""Run an unpacked OCI bundle the way a container engine would, with util-linux instead of runc: a new
mount and PID namespace, /proc, /dev and /sys mounted in, the image's user, working
folder, environment and entrypoint from umoci's config.json, inside a memory cgroup with a limit."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import memcg

# Runs in the new namespaces as their PID 1, then execs (through unshare --root) the entrypoint,
# which so becomes PID 1 of the container. TMPFS=1 mounts a tmpfs on /tmp, as `docker run --tmpfs
# /tmp` or a Kubernetes emptyDir there would; otherwise /tmp is the image's own.
SETUP = r"""
set -e
R=$1; shift
mount --make-rprivate /
mount --bind "$R" "$R"
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount --rbind /sys "$R/sys"
if [ "$TMPFS" = 1 ]; then mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"; fi
exec "$@"
"""


def tools_missing() -> str | None:
    """Why these tests cannot run here, or None."""
    for tool in ("skopeo", "umoci", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install skopeo umoci util-linux)"
    if os.geteuid() != 0:
        return "namespaces and cgroups need root"
    if memory_root() is None:
        return "no memory cgroup (v2 with the memory controller, or v1) to make a child with a limit in"
    return None


def unpack(layout: Path, ref: str, bundle: Path) -> dict:
    """umoci unpack; returns the runtime config (config.json) it wrote from the image's config."""
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:{ref}", str(bundle)], check=True,
                   capture_output=True, timeout=300)
    return json.loads((bundle / "config.json").read_text())


def _v2_memory_root() -> Path | None:
    """The unified hierarchy's root, when it hands the memory controller to its children (systemd
    does): a child of our own cgroup could not get it while we are in it (no internal processes)."""
    root = Path("/sys/fs/cgroup")
    subtree = root / "cgroup.subtree_control"
    if subtree.exists() and "memory" in subtree.read_text().split() and os.access(root, os.W_OK):
        return root
    return None


def _v1_memory_root() -> Path | None:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            folder = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            return folder if os.access(folder, os.W_OK) else None
    return None


def memory_root() -> tuple[Path, int] | None:
    """Where a memory cgroup with a limit can be made: (folder, cgroup version)."""
    v2 = _v2_memory_root()
    if v2 is not None:
        return v2, 2
    v1 = _v1_memory_root()
    return (v1, 1) if v1 is not None else None


@contextlib.contextmanager
def memory_cgroup(limit_mb: int) -> Iterator[Path]:
    """A child memory cgroup (v2 if the unified hierarchy has the controller, else v1) with a limit."""
    found = memory_root()
    if found is None:
        raise RuntimeError("no writable memory cgroup (v2 or v1) to make a child in")
    root, version = found
    with memcg.child(root, "osv-export-test") as folder:
        limit_file = "memory.max" if version == 2 else "memory.limit_in_bytes"
        (folder / limit_file).write_text(str(limit_mb << 20))
        yield folder


def command(bundle: Path, config: dict, args: list[str] | None = None,
            extra_env: dict[str, str] | None = None, tmpfs: bool = False) -> list[str]:
    """The command that runs the bundle's process (its args, or the entrypoint with `args` instead of
    the image's Cmd), with a tmpfs on /tmp when asked."""
    process = config["process"]
    argv = list(process["args"])
    if args is not None:
        argv = argv[:4] + list(args)  # the entrypoint is 4 words (kernel.build.container.ENTRYPOINT)
    env = [e for e in process["env"] if not e.startswith("TERM=")]
    env += [f"{k}={v}" for k, v in (extra_env or {}).items()]
    user = process["user"]
    inner = ["env", "-i", *env, shutil.which("unshare") or "unshare", f"--root={bundle / 'rootfs'}",
             f"--wd={process['cwd']}", "--setgid", str(user["gid"]), "--setuid", str(user["uid"]), "--", *argv]
    return ["env", f"TMPFS={int(tmpfs)}", "unshare", "--mount", "--pid", "--fork", "--kill-child", "--",
            "/bin/sh", "-c", SETUP, "sh",
            str(bundle / "rootfs"), *inner]


def in_cgroup(cgroup: Path) -> Callable[[], None]:
    def enter() -> None:  # before exec: everything the container starts is under the limit
        (cgroup / "cgroup.procs").write_text(str(os.getpid()))

    return enter


def run(bundle: Path, config: dict, cgroup: Path, args: list[str] | None = None,
        extra_env: dict[str, str] | None = None, timeout: float = 300,
        tmpfs: bool = False) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(command(bundle, config, args, extra_env, tmpfs), capture_output=True, timeout=timeout,
                          preexec_fn=in_cgroup(cgroup), check=False)


def start(bundle: Path, config: dict, cgroup: Path, args: list[str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command(bundle, config, args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=in_cgroup(cgroup))


def entrypoint_pid(cgroup: Path, timeout: float = 60) -> int:
    """The host's PID of the container's entrypoint (the kernel services), found in the cgroup."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in (cgroup / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if argv[0].endswith(b"/python3") and any(b"kernel.guest.container" in a for a in argv[1:4]):
                    return int(pid)
        time.sleep(0.1)
    raise TimeoutError("the container's entrypoint did not start")
