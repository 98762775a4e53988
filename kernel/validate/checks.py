"""Find what would break an image before it boots: ELF files the loader would refuse, JNI libraries
for the wrong platform, a main class that is not there, JDK modules the JRE lacks, an image that does
not match its manifest, a kernel without what the guest needs.

Booting is slow (seconds under TCG) and a broken image fails with a loader message on a console, so
every check here reads files only. `check_before_build` runs the app checks inside every build.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import posixpath
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from jvmbridge import jdk as jdks
from jvmbridge.errors import BuildError, OsvJavaError
from jvmbridge.jdk import Jdk
from kernel import cache, linux
from kernel.build import app as apps
from kernel.build import elfclosure, jre
from kernel.build.app import AppSpec
from kernel.build.layout import JRE_IN_IMAGE, MODULES_IN_IMAGE, PYTHON_HOME, RUNTIME_DISK, guest_python
from kernel.formats import cpio_read
from kernel.progress import warn
from kernel.validate.elf import (
    X86_64,
    Arch,
    ElfProblem,
    FileResolver,
    bzimage_arch,
    check_object,
    looks_like_elf,
    read_facts_path,
)
from kernel.validate.finding import Finding, sort_findings
from kernel.validate.jar import check_entries, class_entry, has_class, native_entries
from kernel.validate.jar import validate_jar_natives as _jar_natives

__all__ = [
    "Finding",
    "check_before_build",
    "validate_app",
    "validate_image",
    "validate_jar_natives",
]

# The java launcher loads libjvm.so and the JRE's own libraries by full path before any app code runs,
# so a DT_NEEDED on them is satisfied by the already-loaded copy: search there too.
JRE_LIBRARY_DIRS = (f"{JRE_IN_IMAGE}/lib", f"{JRE_IN_IMAGE}/lib/server")
# The guest's own programs: its Python, the JRE and the kernel modules share one folder.
OSV_FOLDER = posixpath.commonpath([PYTHON_HOME, JRE_IN_IMAGE, MODULES_IN_IMAGE]) + "/"
SYSTEM_PREFIXES = (OSV_FOLDER, "/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/", "/etc/", "/init")
# java.base's native libraries: present in every linked JRE, so their closure is in every image.
BASE_JRE_LIBRARIES = (
    "bin/java",
    "lib/libjli.so",
    "lib/libjava.so",
    "lib/server/libjvm.so",
    "lib/libnet.so",
    "lib/libnio.so",
    "lib/libzip.so",
    "lib/libjimage.so",
    "lib/libverify.so",
    "lib/libjsig.so",
)
MAX_JDEPS_SECONDS = 300
# The fix for an image that does not match what was built: build it again.
REBUILD_HINT = "rebuild the image with `osv-java build APP -o DIR`"


def validate_jar_natives(jar: Path, jdk: Jdk | None = None) -> list[Finding]:
    """Findings for the JNI libraries inside `jar`, resolved against what an image built with `jdk` holds
    (or, without a JDK, against this machine's libraries)."""
    if jdk is None:
        resolver = FileResolver(_host_file)
        return sort_findings(_jar_natives(jar, resolver, where="this machine's library folders"))
    return sort_findings(_jar_natives(jar, _prebuild_resolver(jdk)))


def _host_file(path: str) -> Path | None:
    candidate = Path(path)
    return candidate if candidate.is_file() else None


@functools.lru_cache(maxsize=8)
def _image_library_set(jdk_home: Path) -> frozenset[str]:
    """Real host paths of the system libraries every image built from this JDK holds."""
    roots = [jdk_home / rel for rel in BASE_JRE_LIBRARIES if (jdk_home / rel).is_file()]
    with contextlib.suppress(OsvJavaError):
        roots.append(guest_python())
    try:
        closure = elfclosure.resolve(roots, extra_dirs=[str(jdk_home / "lib"), str(jdk_home / "lib" / "server")])
    except OsvJavaError:
        return frozenset()
    return frozenset(str(p) for p in closure.files)


def _prebuild_resolver(jdk: Jdk) -> FileResolver:
    """Libraries as an image built from `jdk` will have them: the JDK's own, and the system closure."""
    in_image = _image_library_set(jdk.home)
    home = str(jdk.home)

    def lookup(path: str) -> Path | None:
        if path.startswith(JRE_IN_IMAGE + "/"):
            path = home + path[len(JRE_IN_IMAGE) :]
        return _host_file(path)

    def held(path: str) -> bool:
        return path.startswith(home + "/") or os.path.realpath(path) in in_image

    return FileResolver(lookup, extra_dirs=[f"{home}/lib", f"{home}/lib/server"], in_image=held)


# ---------------------------------------------------------------- the app


def jdk_modules(jdk: Jdk) -> set[str] | None:
    """The modules `jdk` can link: its jmods, else the MODULES line of its release file."""
    jmods = jdk.home / "jmods"
    if jmods.is_dir():
        names = {p.name[: -len(".jmod")] for p in jmods.glob("*.jmod")}
        if names:
            return names
    return release_modules(jdk.home / "release")


def release_modules(release: Path) -> set[str] | None:
    try:
        text = release.read_text(errors="replace")
    except OSError:
        return None
    m = re.search(r'^MODULES="?([^"\n]*)"?', text, re.MULTILINE)
    return set(m.group(1).split()) if m else None


def _needed_modules(spec: AppSpec, jdk: Jdk) -> list[str] | None:
    paths = [*spec.classpath, *spec.runtime]
    try:
        return jre.app_modules(jdk, paths)
    except OsvJavaError:
        return run_jdeps(jdk, paths)  # a read-only cache: ask jdeps without keeping the answer


def run_jdeps(jdk: Jdk, paths: list[Path]) -> list[str] | None:
    """The JDK modules `paths` use, by jdeps; None when jdeps cannot tell."""
    tool = jdk.tool("jdeps")
    if not tool.exists() or not paths:
        return None
    argv = [
        str(tool),
        "--print-module-deps",
        "--ignore-missing-deps",
        "--multi-release",
        str(jdk.feature),
        "-q",
    ]
    try:
        proc = subprocess.run(
            [*argv, *map(str, paths)], capture_output=True, text=True, check=False, timeout=MAX_JDEPS_SECONDS
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return None
    return [m for m in lines[-1].split(",") if m] or ["java.base"]


def _module_findings(
    needed: list[str] | None, jdk: Jdk, jre_modules: list[str] | None, where: str, what: str
) -> list[Finding]:
    findings: list[Finding] = []
    if needed is None:
        return [
            Finding(
                "info",
                "modules-unknown",
                where,
                "jdeps could not tell which JDK modules the app needs",
                "the image links the Java SE module set instead",
            )
        ]
    available = jdk_modules(jdk)
    if available is not None:
        lacking = sorted(set(needed) - available)
        if lacking:
            findings.append(
                Finding(
                    "error",
                    "module-missing-jdk",
                    where,
                    f"needs JDK modules {', '.join(lacking)}, which {jdk.describe()} does not have",
                    "pass --jdk a full JDK that has them (java --list-modules shows a JDK's modules)",
                )
            )
    if jre_modules is not None:
        lacking = sorted(set(needed) - set(jre_modules))
        if available is not None:
            lacking = [m for m in lacking if m in available]
        if lacking:
            findings.append(
                Finding(
                    "error",
                    "module-missing",
                    where,
                    f"needs JDK modules {', '.join(lacking)}, which {what} lacks",
                    "rebuild the image (osv-java build) so the JRE is linked with them",
                )
            )
    return findings


def _folder_symlinks(folder: Path) -> list[Finding]:
    """Symlinks in a class folder that point outside it are left out of the image: say so."""
    findings = []
    try:
        links = [p for p in folder.rglob("*") if p.is_symlink()]
    except OSError:
        return []
    for link in links[:1000]:
        target = Path(os.path.realpath(link))
        if not cpio_read.within(folder.resolve(), target):
            findings.append(
                Finding(
                    "warning",
                    "classpath-symlink",
                    str(link),
                    f"points to {target}, outside {folder}; it is left out of the image",
                    "copy the file into the class folder instead of linking to it",
                )
            )
    return findings


def _classpath_gaps(jar: Path) -> list[Finding]:
    try:
        attributes = apps.read_manifest(jar)
    except OsvJavaError:
        return []
    findings = []
    for item in attributes.get("Class-Path", "").split():
        raw = item[5:] if item.startswith("file:") else item
        path = Path(raw) if raw.startswith("/") else jar.parent / raw
        if not path.exists():
            findings.append(
                Finding(
                    "warning",
                    "classpath-missing",
                    str(jar),
                    f"its manifest's Class-Path names {item}, which does not exist ({path})",
                    "put that jar next to it, or remove it from the Class-Path",
                )
            )
    return findings


def validate_app(spec: AppSpec, jdk: Jdk, jre_modules: list[str] | None) -> list[Finding]:
    """Findings for an app before it is built: its jars, JNI code, main class and JDK modules.

    `jre_modules` are the modules the image's JRE will hold (None: only check the JDK has them).
    """
    findings: list[Finding] = []
    entries = [*spec.classpath, *spec.runtime]
    resolver: FileResolver | None = None
    for entry in entries:
        if entry.is_dir():
            findings += _folder_symlinks(entry)
            continue
        if not entry.is_file():
            findings.append(
                Finding(
                    "error",
                    "classpath-missing",
                    str(entry),
                    "is on the class path but does not exist",
                    "check the path",
                )
            )
            continue
        if entry in spec.classpath and entry.suffix.lower() in (".jar", ".zip"):
            corrupt = check_entries(entry)
            findings += corrupt
            if corrupt:
                continue
            findings += _classpath_gaps(entry)
        if _has_natives(entry):
            resolver = resolver or _prebuild_resolver(jdk)
            findings += _jar_natives(entry, resolver)
    if not any(f.code in ("jar-unreadable", "jar-corrupt") for f in findings):
        if spec.main_class and not any(has_class(e, spec.main_class) for e in entries if e.exists()):
            where = str(spec.jar or (entries[0] if entries else spec.main_class))
            findings.append(
                Finding(
                    "error",
                    "main-class-missing",
                    where,
                    f"main class {spec.main_class} ({class_entry(spec.main_class)}) is not in the class path",
                    "fix the Main-Class in the jar's manifest (or the main class given), or add its jar",
                )
            )
        # jdeps takes seconds: not worth it for the Java SE fallback set, or when the app is broken anyway.
        broken = any(f.severity == "error" for f in findings)
        skip_jdeps = broken or spec.kind == "script" or (jre_modules is not None and "java.se" in jre_modules)
        if not skip_jdeps and entries:
            findings += _module_findings(
                _needed_modules(spec, jdk),
                jdk,
                jre_modules,
                str(spec.jar or entries[0]),
                "the JRE to be linked",
            )
    return sort_findings(findings)


def _has_natives(jar: Path) -> bool:
    try:
        with apps.open_jar(jar) as zf:
            return bool(native_entries(zf))
    except OsvJavaError:
        return True  # let the natives check report the unreadable jar


_PRINTED: set[tuple[str, str, str]] = set()


def check_before_build(spec: AppSpec, jdk: Jdk, modules: list[str] | tuple[str, ...]) -> None:
    """Stop a build on error findings (BuildError naming the first); print each warning once to stderr."""
    findings = validate_app(spec, jdk, list(modules))
    for finding in findings:
        if finding.severity != "warning":
            continue
        key = (finding.code, finding.path, finding.message)
        if key not in _PRINTED:
            _PRINTED.add(key)
            warn(f"{finding.path}: {finding.message}")
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more; `osv-java validate` lists them)" if len(errors) > 1 else ""
        raise BuildError(f"{first.path}: {first.message}{more}", hint=first.hint or None)


# ---------------------------------------------------------------- the image


def _load_manifest(folder: Path) -> tuple[dict[str, Any] | None, list[Finding]]:
    path = folder / "image.json"
    if not path.is_file():
        return None, [
            Finding(
                "error",
                "image-manifest",
                str(path),
                "is missing",
                REBUILD_HINT,
            )
        ]
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return None, [
            Finding(
                "error",
                "image-manifest",
                str(path),
                f"is not valid JSON ({exc})",
                REBUILD_HINT,
            )
        ]
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return None, [
            Finding(
                "error",
                "image-manifest",
                str(path),
                'has no "files" table',
                REBUILD_HINT,
            )
        ]
    return manifest, []


def _inputs(manifest: dict[str, Any], *keys: str) -> Any:
    value: Any = manifest.get("inputs", {})
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _kernel_findings(folder: Path, manifest: dict[str, Any]) -> tuple[Arch, list[Finding]]:
    findings: list[Finding] = []
    kernel = folder / "vmlinuz"
    arch = X86_64
    if not kernel.is_file():
        return arch, [Finding("error", "kernel-missing", str(kernel), "is missing", REBUILD_HINT)]
    try:
        with open(kernel, "rb") as f:
            arch = bzimage_arch(f.read(0x240))
    except ElfProblem as exc:
        findings.append(
            Finding(
                "error",
                "kernel-not-bzimage",
                str(kernel),
                str(exc),
                "rebuild with --kernel pointing at a bzImage (e.g. /boot/vmlinuz-*)",
            )
        )
    expected = _inputs(manifest, "kernel", "sha256")
    if isinstance(expected, str) and cache.file_digest(kernel) != expected:
        findings.append(
            Finding(
                "error",
                "sha256-mismatch",
                str(kernel),
                "does not match the sha256 in image.json (changed after the build)",
                REBUILD_HINT,
            )
        )
    findings += _kernel_config_findings(kernel, manifest)
    return arch, findings


def _kernel_config_findings(kernel: Path, manifest: dict[str, Any]) -> list[Finding]:
    """The kernel's config, when it is on this machine, must have what the guest needs."""
    findings: list[Finding] = []
    config = _inputs(manifest, "kernel", "config")
    if isinstance(config, str) and Path(config).is_file():
        required, recommended = linux.missing_config(linux.read_config(Path(config)))
        if required:
            findings.append(
                Finding(
                    "error",
                    "kernel-config",
                    config,
                    f"lacks {', '.join(required)}",
                    "use a kernel built with these options (y or m), or the default kernel",
                )
            )
        if recommended:
            findings.append(
                Finding(
                    "info",
                    "kernel-config",
                    config,
                    f"lacks (recommended) {', '.join(recommended)}",
                    "enable them for dynamic memory and huge pages",
                )
            )
    else:
        findings.append(
            Finding(
                "info",
                "kernel-config-unknown",
                str(kernel),
                "its config is not on this machine; cannot check it has what the guest needs",
                "keep the kernel's config file beside it (config-RELEASE) when you use --kernel",
            )
        )
    return findings


def _holder(record: object) -> str:
    """Which file of the image holds a manifest entry: the runtime disk or the initramfs."""
    return str(record.get("disk", "initramfs.img")) if isinstance(record, dict) else "initramfs.img"


def _manifest_findings(tree: cpio_read.Tree, manifest: dict[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    files: dict[str, Any] = manifest["files"]
    present = tree.files()
    for path, record in sorted(files.items()):
        host = present.get(path)
        if host is None:
            findings.append(
                Finding("error", "file-missing", path,
                        f"is listed in image.json but not in {_holder(record)}", REBUILD_HINT)
            )
            continue
        if not isinstance(record, dict):
            continue
        if record.get("size") is not None and record.get("size") != host.stat().st_size:
            findings.append(
                Finding(
                    "error",
                    "size-mismatch",
                    path,
                    f"is {host.stat().st_size} bytes in {_holder(record)}, image.json says {record.get('size')}",
                    REBUILD_HINT,
                )
            )
        elif record.get("sha256") is not None and record.get("sha256") != cache.file_digest(host):
            findings.append(
                Finding("error", "sha256-mismatch", path, "does not match its sha256 in image.json", REBUILD_HINT)
            )
    for path, host in sorted(present.items()):
        # Empty files (placeholders such as the guest's os.py landmark) carry no content to check.
        if path not in files and host.stat().st_size > 0:
            findings.append(
                Finding("warning", "file-unlisted", path, "is in initramfs.img but not in image.json", REBUILD_HINT)
            )
    for name, member in sorted(tree.members.items()):
        if member.link is not None and not member.link.startswith("/") and apps.climbs_out(
            posixpath.dirname(name), member.link
        ):
            findings.append(
                Finding(
                    "error",
                    "symlink-escapes",
                    "/" + name,
                    f"points to {member.link}, above the image root",
                    REBUILD_HINT,
                )
            )
    return findings


def _is_app_path(path: str) -> bool:
    return not path.startswith(SYSTEM_PREFIXES)


def _elf_findings(tree: cpio_read.Tree, arch: Arch) -> list[Finding]:
    findings: list[Finding] = []

    def lookup(path: str) -> Path | None:
        return tree.host_path(path)

    resolver = FileResolver(lookup, extra_dirs=JRE_LIBRARY_DIRS)
    for path, host in sorted(tree.files().items()):
        try:
            with open(host, "rb") as f:
                head = f.read(4)
        except OSError:
            continue
        if not looks_like_elf(head):
            name = posixpath.basename(path)
            if name.endswith(".so") or ".so." in name:
                findings.append(
                    Finding(
                        "error",
                        "elf-corrupt",
                        path,
                        "is named like a shared library but is not an ELF file",
                        "replace it with an intact x86-64 Linux build",
                    )
                )
            continue
        try:
            facts = read_facts_path(host)
        except ElfProblem as exc:
            findings.append(
                Finding("error", "elf-corrupt", path, str(exc), "replace it with an intact x86-64 Linux build")
            )
            continue
        findings += check_object(path, facts, resolver, arch, app_code=_is_app_path(path))
    return findings


def _jar_findings(tree: cpio_read.Tree, arch: Arch) -> list[Finding]:
    resolver = FileResolver(tree.host_path, extra_dirs=JRE_LIBRARY_DIRS)
    findings: list[Finding] = []
    for path, host in sorted(tree.files().items()):
        if path.endswith((".jar", ".zip")) and _is_app_path(path):
            findings += _jar_natives(host, resolver, expected=arch, display=path)
    return findings


def _command_findings(tree: cpio_read.Tree, manifest: dict[str, Any]) -> tuple[list[Path], list[Finding]]:
    """The JVM command's launcher and class path must be in the image; returns the class path (unpacked)."""
    command = manifest.get("jvm_command")
    if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
        return [], [
            Finding(
                "error",
                "jvm-command",
                "image.json",
                "has no jvm_command",
                REBUILD_HINT,
            )
        ]
    findings: list[Finding] = []
    if tree.host_path(command[0]) is None:
        findings.append(
            Finding(
                "error",
                "jvm-missing",
                command[0],
                "the JVM launcher is not in the image",
                REBUILD_HINT,
            )
        )
    paths: list[str] = []
    for i, arg in enumerate(command[:-1]):
        if arg in ("-cp", "-classpath", "--class-path"):
            paths += [p for p in command[i + 1].split(":") if p]
        elif arg == "-jar":
            paths.append(command[i + 1])
    unpacked: list[Path] = []
    for path in paths:
        real = tree.resolve(path)
        if real is None:
            findings.append(
                Finding(
                    "error",
                    "classpath-missing",
                    path,
                    "is on the JVM's class path but not in the image",
                    REBUILD_HINT,
                )
            )
        else:
            unpacked.append(tree.root / real)
    return unpacked, findings


def _app_in_image(tree: cpio_read.Tree, manifest: dict[str, Any], classpath: list[Path]) -> list[Finding]:
    findings: list[Finding] = []
    main = _inputs(manifest, "app", "main_class")
    kind = _inputs(manifest, "app", "kind")
    runtime = [tree.root / r for p in (_inputs(manifest, "app", "runtime") or []) if (r := tree.resolve(p))]
    entries = [*classpath, *runtime]
    if isinstance(main, str) and main and entries and not any(has_class(e, main) for e in entries if e.exists()):
        findings.append(
            Finding(
                "error",
                "main-class-missing",
                str(_inputs(manifest, "app", "jar") or main),
                f"main class {main} ({class_entry(main)}) is not in the image's class path",
                "fix the Main-Class in the jar's manifest, or rebuild with the jar holding it",
            )
        )
    jre_modules = release_modules(tree.root / JRE_IN_IMAGE.strip("/") / "release")
    if kind == "script" or jre_modules is None or "java.se" in jre_modules or not classpath:
        return findings
    home = _inputs(manifest, "jdk", "home")
    try:
        jdk = jdks.probe(Path(home)) if isinstance(home, str) and Path(home).is_dir() else jdks.select(None)
    except OsvJavaError:
        return [
            *findings,
            Finding(
                "info",
                "modules-unchecked",
                JRE_IN_IMAGE,
                "no JDK on this machine to ask which modules the app needs",
                "install a JDK or set JAVA_HOME",
            ),
        ]
    needed = run_jdeps(jdk, [p for p in entries if p.exists()])
    findings += _module_findings(needed, jdk, sorted(jre_modules), JRE_IN_IMAGE, "the image's JRE")
    return [f for f in findings if f.code != "module-missing-jdk"]


def _add_runtime_disk(tree: cpio_read.Tree, folder: Path, manifest: dict[str, Any]) -> Finding | None:
    """Unpack the JRE's EROFS image into `tree` at its mount point; a finding if it cannot be read."""
    from kernel.formats import erofs_read

    disk = folder / RUNTIME_DISK
    if not disk.is_file():
        if "runtime_disk" in manifest.get("sizes", {}):
            return Finding("error", "runtime-disk-missing", str(disk), "is missing", REBUILD_HINT)
        return None  # an image from before the JRE moved to its own disk
    try:
        erofs_read.unpack_into(tree, disk, JRE_IN_IMAGE.strip("/"))
    except (erofs_read.ErofsError, OSError) as exc:
        return Finding("error", "runtime-disk-corrupt", str(disk), str(exc), REBUILD_HINT)
    return None


def validate_image(folder: Path) -> list[Finding]:
    """Findings for a built image folder (vmlinuz, initramfs.img, image.json)."""
    manifest, findings = _load_manifest(folder)
    if manifest is None:
        return findings
    arch, kernel_findings = _kernel_findings(folder, manifest)
    findings += kernel_findings
    archive = folder / "initramfs.img"
    if not archive.is_file():
        return sort_findings(
            [
                *findings,
                Finding(
                    "error",
                    "initramfs-missing",
                    str(archive),
                    "is missing",
                    REBUILD_HINT,
                ),
            ]
        )
    with tempfile.TemporaryDirectory(prefix="osv-java-validate-") as tmp:
        try:
            tree = cpio_read.unpack_file(archive, Path(tmp))
        except cpio_read.CpioError as exc:
            return sort_findings(
                [
                    *findings,
                    Finding(
                        "error",
                        "initramfs-corrupt",
                        str(archive),
                        str(exc),
                        REBUILD_HINT,
                    ),
                ]
            )
        disk_finding = _add_runtime_disk(tree, folder, manifest)
        if disk_finding is not None:
            return sort_findings([*findings, disk_finding])
        findings += _manifest_findings(tree, manifest)
        findings += _elf_findings(tree, arch)
        findings += _jar_findings(tree, arch)
        classpath, command_findings = _command_findings(tree, manifest)
        findings += command_findings
        findings += _app_in_image(tree, manifest, classpath)
    return sort_findings(findings)
