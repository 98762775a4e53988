"""What `osv-java export` takes from the user, checked: the format, the options it can honour, names,
ports and the output folder (new or empty, written under a temporary name and renamed when whole).
Every refusal is one line naming the format or the value, and the fix (exit 125)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from jvmbridge.errors import UsageError
from osv_java import options

FORMATS = ("oci", "libvirt", "kubevirt")


@dataclass(frozen=True)
class Refusal:
    """An option a format cannot honour, and what the user does instead."""

    option: str
    fix: str


# What each format refuses, by the option's parameter name.
REFUSED: dict[str, dict[str, Refusal]] = {
    "oci": {
        "memory": Refusal("-m", "drop -m and give the engine the limit (docker run --memory 512m, or "
                                "resources.limits.memory in Kubernetes): the JVM and the dynamic heap follow it"),
        "cpus": Refusal("-c", "drop -c and give the engine the CPUs (docker run --cpus 2, or resources.limits.cpu)"),
        "volume": Refusal("-v", "drop -v and mount the folder with the engine (docker run -v HOST:GUEST)"),
        "gc_log": Refusal("--gc-log", "drop --gc-log and log with the JVM: --jvm-opt=-Xlog:gc:stderr"),
        "kernel_path": Refusal("--kernel", "drop --kernel: an OCI image runs on the engine's kernel"),
        "modules_dir": Refusal("--modules", "drop --modules: an OCI image runs on the engine's kernel"),
        "accel": Refusal("--accel", "drop --accel: a container runs on the engine's CPU"),
        "name": Refusal("--name", "name the image with --tag, the container with the engine"),
    },
    "libvirt": {
        "volume": Refusal("-v", "drop -v and add a <filesystem> (virtiofs) to the domain yourself"),
        "gc_log": Refusal("--gc-log", "drop --gc-log and log with the JVM: --jvm-opt=-Xlog:gc:stderr (the console)"),
        "stw_lb": Refusal("--stw-lb", "drop --stw-lb: the coordinator runs on an osv-java host (osv-java run)"),
        "stw_group": Refusal("--stw-group", "drop --stw-group: the leases live on an osv-java host (osv-java run)"),
        "tag": Refusal("--tag", "drop --tag (oci only); name the domain with --name"),
        "image": Refusal("--image", "drop --image (kubevirt only)"),
    },
}
REFUSED["kubevirt"] = {
    **{k: v for k, v in REFUSED["libvirt"].items() if k not in ("tag", "image")},
    "volume": Refusal("-v", "drop -v and add a volume to the VirtualMachine yourself"),
    "tag": Refusal("--tag", "drop --tag and give the image's full reference with --image REGISTRY/NAME:TAG"),
    "accel": Refusal("--accel", "drop --accel: KubeVirt chooses (KVM on its nodes)"),
}
REFUSED["oci"]["image"] = Refusal("--image", "drop --image and name the image with --tag")
IMAGE_REF = re.compile(r"[a-z0-9][a-z0-9.-]*(:[0-9]+)?(/[a-z0-9._-]+)*(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?")
K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # DNS-1123 label
REF_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_format(name: str) -> str:
    if name not in FORMATS:
        raise UsageError(f"--format {name!r} is not a format osv-java exports",
                         hint=f"use --format {' or '.join(FORMATS)}")
    return name


def check_refused(fmt: str, given: dict[str, object]) -> None:
    """UsageError for the first option given that `fmt` cannot honour."""
    for param, refusal in REFUSED.get(fmt, {}).items():
        value = given.get(param)
        if value not in (None, (), False):
            shown = value[0] if isinstance(value, tuple) else value
            raise UsageError(f"--format {fmt} cannot honour {refusal.option} {shown}", hint=refusal.fix)


def check_output(output: Path) -> Path:
    """The resolved output folder, which must be new or empty: export never overwrites."""
    output = output.resolve()
    if output.exists() and not output.is_dir():
        raise UsageError(f"-o {output} is a file, not a folder", hint="give -o a new or empty folder")
    if output.is_dir() and any(output.iterdir()):
        raise UsageError(f"-o {output} exists and is not empty", hint="give -o a new or empty folder, "
                         "or remove this one first")
    return output


@contextmanager
def staged(output: Path) -> Iterator[Path]:
    """A temporary folder beside `output`, renamed to it when the body completes, removed if it fails."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}-", dir=output.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if output.exists():
            output.rmdir()  # empty, checked before
        os.rename(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def published(spec: str) -> tuple[str, int, int]:
    """-p [[ADDR:]HOST:]GUEST; GUEST alone publishes the same port on the host."""
    if ":" not in spec:
        if not spec.isdigit():
            raise UsageError(f"-p {spec!r} is not a port number nor HOST:GUEST", hint="e.g. -p 8080 or -p 80:8080")
        spec = f"{spec}:{spec}"
    return options.publish(spec)


def exposed_port(spec: str) -> int:
    """-p for an image: the guest port (the host side is the engine's, at run time)."""
    return published(spec)[2]


@dataclass(frozen=True)
class MachineShape:
    name: str
    memory_mb: int
    cpus: int
    accel: str
    publish: list[tuple[str, int, int]]
    env: dict[str, str]


DOMAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def libvirt_machine(app: str, name: str | None, memory: str | None, cpus: str | None, accel: str | None,
                    publish: tuple[str, ...], env: dict[str, str]) -> MachineShape:
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", Path(app).stem)[:40] or "app"
    chosen = name or f"osv-{stem}"
    if not DOMAIN_NAME.fullmatch(chosen):
        raise UsageError(f"--name {chosen!r} is not a domain name",
                         hint="use letters, digits, '.', '_' and '-', e.g. --name hello")
    return MachineShape(name=chosen, memory_mb=options.memory_mb(memory or "1G"), cpus=options.cpus(cpus or "2"),
                        accel=accel or "kvm", env=env,
                        publish=[published(p) for p in publish])
