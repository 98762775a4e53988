"""Provide a kernel: Debian's cloud kernel package unpacked into the cache, or the user's own bzImage.

The Debian package ships no modules.dep, so module dependencies are read from each module's
`.modinfo` section (depends=, vermagic=) with pyelftools.
"""

from __future__ import annotations

import io
import json
import lzma
import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jvmbridge.errors import DependencyError, UsageError
from kernel import cache, safetar
from kernel.progress import say

META_PACKAGE = "linux-image-cloud-amd64"

# Modules PID 1 loads, in an order seen working; dependencies are added from .modinfo anyway.
DISK_MODULES = ("nd_e820", "nd_pmem", "erofs")  # before the JVM: its runtime image, in memory
BOOT_MODULES = ("virtio_mmio", "virtio_console")
NET_MODULES = ("virtio_net",)
PCI_MODULES = ("virtio_pci", "virtio_blk")  # q35 (exported machines): virtio over PCI, the runtime as a disk
VOLUME_MODULES = ("fuse", "virtiofs")  # -v: host folders shared over virtiofs

# What the guest needs from the kernel config: option -> why. "y" or "m" both do.
REQUIRED_CONFIG = {
    "BLK_DEV_INITRD": "the image is an initramfs",
    "DEVTMPFS": "PID 1 mounts /dev as devtmpfs",
    "TMPFS": "writable /tmp for the JVM",
    "PROC_FS": "the JVM reads /proc",
    "SYSFS": "PID 1 finds virtio ports in /sys",
    "BINFMT_SCRIPT": "/init is a script, run by busybox",
    "UNIX": "the JVM's attach mechanism uses UNIX sockets",
    "INET": "networking for -p/--publish",
    "FUTEX": "the JVM's threads",
    "VIRTIO": "all devices are virtio",
    "VIRTIO_MMIO": "microvm has virtio-mmio devices only",
    "VIRTIO_CONSOLE": "the app's stdin/stdout/stderr and the control channel",
    "VIRTIO_NET": "networking for -p/--publish",
    "EROFS_FS": "the JRE is an EROFS image",
    "X86_PMEM_LEGACY": "the JRE's image sits in guest memory marked persistent (memmap=SIZE!BASE)",
    "BLK_DEV_PMEM": "the JRE's image is mounted from /dev/pmem0",
    "PCI": "legacy persistent memory is registered during PCI resource setup",
    "SERIAL_8250_CONSOLE": "the kernel console log (shown when a boot fails)",
}
# What -v needs on top: a kernel without it still runs every app that has no volume.
VOLUME_CONFIG = {
    "FUSE_FS": "-v/--volume folders (virtiofs is a FUSE transport)",
    "VIRTIO_FS": "-v/--volume folders, shared live with the host",
}
RECOMMENDED_CONFIG = {
    "VIRTIO_BALLOON": "dynamic memory",
    "TRANSPARENT_HUGEPAGE": "the JVM heap on 2 MB pages",
    "ACPI": "microvm describes its virtio-mmio devices in ACPI tables",
    "FS_DAX": "the JVM maps the JRE's files straight from guest memory (else they are copied)",
}


@dataclass(frozen=True)
class Kernel:
    """A kernel image with (optionally) its modules folder and config."""

    image: Path
    modules: Path | None  # the folder holding kernel/... (lib/modules/RELEASE)
    config: Path | None
    release: str

    def module_path(self, name: str) -> Path | None:
        if self.modules is None:
            return None
        return module_index(self.modules).get(name.replace("-", "_"))


def check_bzimage(path: Path) -> None:
    """UsageError unless `path` is an x86 bzImage (boot protocol header "HdrS" at 0x202)."""
    if not path.exists():
        raise UsageError(f"kernel {path} does not exist", hint="give --kernel the path of a bzImage")
    if not path.is_file():
        raise UsageError(f"kernel {path} is not a file", hint="give --kernel the path of a bzImage")
    with open(path, "rb") as f:
        head = f.read(0x210)
    if len(head) < 0x206 or head[0x202:0x206] != b"HdrS":
        raise UsageError(
            f"kernel {path} is not an x86 bzImage (no 'HdrS' boot header)",
            hint="give --kernel a bzImage such as /boot/vmlinuz-*, not a vmlinux ELF or a compressed file",
        )


def read_config(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("CONFIG_"):  # every run reads it: no regex for its 5,000 lines
            key, sep, value = line[7:].partition("=")
            if sep and key:
                values[key] = value
    return values


def missing_config(config: dict[str, str], volumes: bool = False) -> tuple[list[str], list[str]]:
    """(required options missing, recommended options missing), each as 'CONFIG_X (why)'; what -v
    needs is required only for a run with `volumes`."""
    def absent(table: dict[str, str]) -> list[str]:
        return [f"CONFIG_{k} ({why})" for k, why in table.items() if config.get(k) not in ("y", "m")]

    if volumes:
        return absent(REQUIRED_CONFIG) + absent(VOLUME_CONFIG), absent(RECOMMENDED_CONFIG)
    return absent(REQUIRED_CONFIG), absent(RECOMMENDED_CONFIG) + absent(VOLUME_CONFIG)


def modinfo(path: Path) -> dict[str, list[str]]:
    """The key=value pairs of a module's .modinfo section (keys may repeat)."""
    from elftools.common.exceptions import ELFError  # only image builds read modules
    from elftools.elf.elffile import ELFFile

    data = path.read_bytes()
    if path.suffix == ".xz":
        data = lzma.decompress(data)
    try:
        elf = ELFFile(io.BytesIO(data))
        section = elf.get_section_by_name(".modinfo")
    except ELFError as exc:
        raise UsageError(
            f"kernel module {path} is not an ELF file ({exc})", hint="reinstall the kernel modules"
        ) from exc
    info: dict[str, list[str]] = {}
    if section is None:
        return info
    for item in section.data().split(b"\0"):
        key, sep, value = item.decode(errors="replace").partition("=")
        if sep:
            info.setdefault(key, []).append(value)
    return info


_INDEX: dict[Path, dict[str, Path]] = {}


def module_index(modules: Path) -> dict[str, Path]:
    """Module name (underscores) -> file, for every .ko/.ko.xz below `modules`."""
    if modules not in _INDEX:
        index: dict[str, Path] = {}
        for ko in sorted(modules.rglob("*.ko*")):
            name = ko.name.split(".ko")[0].replace("-", "_")
            index.setdefault(name, ko)
        _INDEX[modules] = index
    return _INDEX[modules]


def load_order(kernel: Kernel, wanted: tuple[str, ...]) -> list[tuple[str, Path]]:
    """The modules to load for `wanted`, dependencies first. Built-in modules are skipped."""
    if kernel.modules is None:
        return []
    builtin = _builtin_modules(kernel.modules)
    order: list[tuple[str, Path]] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        name = name.replace("-", "_")
        if name in seen or name in builtin:
            return
        path = kernel.module_path(name)
        if path is None:
            raise DependencyError(
                f"kernel module {name} not found under {kernel.modules}"
                + (f" (needed by {' -> '.join(chain)})" if chain else ""),
                hint="use a kernel with the module built in, or pass --modules with the matching modules folder",
            )
        seen.add(name)
        for dep in modinfo(path).get("depends", [""])[0].split(","):
            if dep:
                visit(dep, (*chain, name))
        order.append((name, path))

    for name in wanted:
        visit(name, ())
    return order


def volume_modules(kernel: Kernel) -> list[tuple[str, Path]] | None:
    """fuse and virtiofs (with what they need) in load order; None when `kernel`'s modules lack them
    (neither a module nor built in): such a kernel runs apps, but not with -v."""
    try:
        return load_order(kernel, VOLUME_MODULES)
    except DependencyError:
        return None


def check_volume_support(kernel: Kernel) -> None:
    """One clear error, before anything is built, when -v is asked of a kernel without virtiofs."""
    if volume_modules(kernel) is None:
        raise DependencyError(
            f"-v needs virtiofs, which kernel {kernel.image} lacks (no fuse or virtiofs module under "
            f"{kernel.modules})",
            hint="use a kernel built with CONFIG_FUSE_FS and CONFIG_VIRTIO_FS (y or m) and its modules, "
                 "or the default kernel",
        )


def _builtin_modules(modules: Path) -> set[str]:
    listing = modules / "modules.builtin"
    if not listing.exists():
        return set()
    return {Path(line).name.split(".ko")[0].replace("-", "_") for line in listing.read_text().split()}


def _default_record() -> Path:
    return cache.root() / "kernels" / "default.json"


def default_kernel(fetch: bool = True, progress: bool = True) -> Kernel:
    """Debian's cloud kernel from the cache, fetched first when it is not there yet."""
    record = _default_record()
    if record.exists():
        try:
            data = json.loads(record.read_text())
            folder = Path(data["folder"])
            if (folder / "vmlinuz").exists():
                return _kernel_in(folder)
        except (OSError, ValueError, KeyError):
            pass
    if not fetch:
        raise DependencyError("no kernel in the cache", hint="run `osv-java kernel fetch` (or `make kernel`)")
    return fetch_debian_kernel(progress=progress)


def _kernel_in(folder: Path) -> Kernel:
    release = (folder / "release").read_text().strip()
    return Kernel(
        image=folder / "vmlinuz",
        modules=folder / "modules",
        config=folder / "config",
        release=release,
    )


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise DependencyError(
            f"{cmd[0]} is not installed",
            hint="the default kernel is fetched with Debian's package tools; pass --kernel PATH on other systems",
        ) from exc
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise DependencyError(
            f"`{' '.join(cmd)}` failed: {last}",
            hint="run `apt-get update` (as root) and try again, or pass --kernel PATH",
        )
    return proc.stdout


def _resolve_package() -> tuple[str, str]:
    """The concrete kernel package the meta package points at, and its version."""
    out = _run(["apt-cache", "depends", META_PACKAGE])
    m = re.search(r"Depends:\s*(linux-image-\S+)", out)
    if not m:
        raise DependencyError(
            f"apt knows no {META_PACKAGE}",
            hint="run `apt-get update` (as root) on a Debian machine, or pass --kernel PATH",
        )
    package = m.group(1)
    policy = _run(["apt-cache", "policy", package])
    v = re.search(r"Candidate:\s*(\S+)", policy)
    if not v or v.group(1) == "(none)":
        raise DependencyError(f"apt has no candidate for {package}", hint="run `apt-get update` and try again")
    return package, v.group(1)


def _extract_deb(deb: Path, dest: Path) -> None:
    """Unpack a .deb's data archive (ar, then tar.xz) with the standard library."""
    data = deb.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise DependencyError(f"{deb} is not a Debian package", hint="delete it and run `osv-java kernel fetch`")
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = data[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
                safetar.extract_all(tar, dest, str(deb))
            return
    raise DependencyError(f"{deb} has no data archive", hint="delete it and run `osv-java kernel fetch`")


def fetch_debian_kernel(progress: bool = True) -> Kernel:
    """Download Debian's cloud kernel package with apt and unpack kernel, config and modules."""
    package, version = _resolve_package()
    kernels = cache.ensure("kernels")
    final = kernels / f"{package}_{version}"
    if not (final / "vmlinuz").exists():
        if progress:
            say(f"fetching {package} {version} into {kernels}")
        with cache.atomic_dir(final) as tmp, tempfile.TemporaryDirectory(dir=kernels, prefix=".tmp-dl-") as dl:
            _run(["apt-get", "download", f"{package}={version}"], cwd=Path(dl))
            debs = sorted(Path(dl).glob("*.deb"))
            if not debs:
                raise DependencyError(f"apt-get download {package} produced no file", hint="check apt's sources")
            unpacked = Path(dl) / "root"
            _extract_deb(debs[0], unpacked)
            vmlinuz = sorted((unpacked / "boot").glob("vmlinuz-*"))
            configs = sorted((unpacked / "boot").glob("config-*"))
            module_roots = sorted((unpacked / "lib" / "modules").glob("*"))
            if not vmlinuz or not module_roots:
                raise DependencyError(f"{package} holds no vmlinuz or modules", hint="pass --kernel PATH")
            vmlinuz[0].rename(tmp / "vmlinuz")
            if configs:
                configs[0].rename(tmp / "config")
            module_roots[0].rename(tmp / "modules")
            (tmp / "release").write_text(module_roots[0].name + "\n")
            (tmp / "package").write_text(f"{package} {version}\n")
    cache.write_file_atomic(_default_record(), json.dumps({"folder": str(final)}).encode())
    return _kernel_in(final)


def user_kernel(image: Path, modules: Path | None) -> Kernel:
    """The user's --kernel bzImage and --modules folder (lib/modules/RELEASE or a folder of .ko files)."""
    check_bzimage(image)
    config: Path | None = None
    release = image.name
    if modules is not None:
        if not modules.is_dir():
            raise UsageError(f"--modules {modules} is not a folder", hint="give the lib/modules/RELEASE folder")
        release = modules.name
        candidates = (modules / "config", modules / "build" / ".config", image.parent / f"config-{release}",
                      image.parent / "config")
        for candidate in candidates:
            if candidate.exists():
                config = candidate
                break
    else:
        guess = image.parent / image.name.replace("vmlinuz", "config")
        if guess != image and guess.exists():
            config = guess
    return Kernel(image=image.resolve(), modules=modules.resolve() if modules else None, config=config, release=release)
