"""Checks of what is inside an app's jars: native (JNI) libraries, entry integrity, classes.

JNI libraries ride inside jars (native/linux-x86_64/libfoo.so, META-INF/native/...) and are
extracted and loaded at run time, so a wrong one only shows when the app reaches it, long after a
boot. Here each one is read from the jar in memory and checked like any ELF file in the image.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
import zlib
from pathlib import Path

from jvmbridge.errors import UsageError
from kernel.build import app as apps
from kernel.validate.elf import (
    X86_64,
    Arch,
    ChainResolver,
    ElfProblem,
    Library,
    Resolver,
    SiblingResolver,
    check_object,
    read_facts_bytes,
)
from kernel.validate.finding import Finding

# What reading a damaged or hostile zip entry can raise.
ZIP_READ_ERRORS = (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError, zlib.error)

MAX_NATIVE_BYTES = 512 << 20
NATIVE_SUFFIX = re.compile(r"\.(so(\.\d+)*|dll|dylib|jnilib)$", re.IGNORECASE)
OTHER_OS = frozenset(
    {
        "win",
        "win32",
        "win64",
        "windows",
        "darwin",
        "mac",
        "macos",
        "macosx",
        "osx",
        "freebsd",
        "openbsd",
        "netbsd",
        "sunos",
        "solaris",
        "aix",
        "android",
        "musl",
        "alpine",
    }
)
OTHER_ARCH = frozenset(
    {
        "aarch64",
        "arm64",
        "arm",
        "armv6",
        "armv7",
        "armv7l",
        "armhf",
        "armel",
        "ppc",
        "ppc64",
        "ppc64le",
        "s390x",
        "riscv64",
        "loongarch64",
        "mips",
        "mips64",
        "mips64el",
        "x86",
        "i386",
        "i586",
        "i686",
        "x8632",
        "sparcv9",
    }
)
OUR_ARCH = frozenset({"x8664", "amd64", "x64"})


def platform_tokens(name: str) -> set[str]:
    """Lower-case words of an entry path, with x86_64 / x86-64 kept as one word."""
    text = name.lower().replace("x86_64", "x8664").replace("x86-64", "x8664").replace("x86_32", "x8632")
    return {t for t in re.split(r"[^a-z0-9]+", text) if t}


def for_other_platform(name: str) -> bool:
    """True when the entry's path or suffix says it is for another OS or CPU than x86-64 glibc Linux."""
    lower = name.lower()
    if lower.endswith((".dll", ".dylib", ".jnilib")):
        return True
    tokens = platform_tokens(posixpath.dirname(name)) | platform_tokens(posixpath.basename(name).split(".")[0])
    if tokens & OTHER_OS:
        return True
    return bool(tokens & OTHER_ARCH) and not tokens & OUR_ARCH


def native_entries(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    return [i for i in zf.infolist() if not i.is_dir() and NATIVE_SUFFIX.search(i.filename)]


def validate_jar_natives(
    jar: Path,
    resolver: Resolver | None = None,
    expected: Arch = X86_64,
    where: str = "the image",
    display: str | None = None,
) -> list[Finding]:
    """Findings for the JNI libraries inside `jar`.

    `resolver` finds the libraries they need outside the jar (the image's, or this machine's); without
    one only the libraries inside the jar count.
    """
    shown = display or str(jar)
    try:
        zf = apps.open_jar(jar)
    except UsageError as exc:
        return [Finding("error", "jar-unreadable", shown, exc.message, exc.hint or "")]
    findings: list[Finding] = []
    with zf:
        natives = native_entries(zf)
        if not natives:
            return []
        ours: dict[str, dict[str, Library]] = {}  # folder in the jar -> file name -> library
        others: list[str] = []
        for info in natives:
            if for_other_platform(info.filename):
                others.append(posixpath.dirname(info.filename) or info.filename)
                continue
            read = _read_native(zf, info, f"{shown}!/{info.filename}")
            if isinstance(read, Finding):
                findings.append(read)
                continue
            ours.setdefault(posixpath.dirname(info.filename), {})[posixpath.basename(info.filename)] = read
        usable = [lib for libs in ours.values() for lib in libs.values() if lib.facts.arch == expected]
        if others and not usable and not any(f.severity == "error" for f in findings):
            findings.append(_other_platforms_only(shown, others))
        for libs in ours.values():
            siblings = SiblingResolver(libs)
            chain: Resolver = ChainResolver(siblings, resolver) if resolver is not None else siblings
            for lib in libs.values():
                findings.extend(check_object(lib.path, lib.facts, chain, expected, app_code=True, where=where))
    return findings


def _read_native(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: str) -> Library | Finding:
    """One native library of the jar as the loader would see it, or why it cannot be used."""
    if info.file_size > MAX_NATIVE_BYTES:
        return Finding(
            "error",
            "jni-too-large",
            path,
            f"is {info.file_size} bytes, over the {MAX_NATIVE_BYTES >> 20} MiB limit for a native library",
            "ship a normal build of the library",
        )
    try:
        data = zf.read(info)
    except ZIP_READ_ERRORS as exc:
        return Finding(
            "error",
            "jar-corrupt",
            path,
            f"cannot be read from the jar ({exc})",
            "copy or download the jar again, or rebuild it",
        )
    try:
        facts = read_facts_bytes(data)
    except ElfProblem as exc:
        return Finding(
            "error",
            "elf-corrupt",
            path,
            f"is not a usable native library: {exc}",
            "rebuild the jar with an intact x86-64 Linux build of the library",
        )
    return Library(path, facts)


def _other_platforms_only(shown: str, others: list[str]) -> Finding:
    """A jar whose native code is all for other systems: fine if the app never loads it, so a warning."""
    platforms = sorted(set(others))
    return Finding(
        "warning",
        "jni-platform",
        shown,
        "carries native libraries only for other platforms ("
        + ", ".join(platforms[:6])
        + (", ..." if len(platforms) > 6 else "")
        + "), none for x86-64 Linux",
        "add the jar's linux-x86_64 variant to the class path, or make sure the app does not "
        "need its native code",
    )


def check_entries(jar: Path, display: str | None = None) -> list[Finding]:
    """Read every entry once: a CRC mismatch or truncated data is a finding, not a crash at run time."""
    shown = display or str(jar)
    try:
        zf = apps.open_jar(jar)
    except UsageError as exc:
        return [Finding("error", "jar-unreadable", shown, exc.message, exc.hint or "")]
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            try:
                with zf.open(info) as member:
                    while member.read(1 << 20):
                        pass
            except ZIP_READ_ERRORS as exc:
                return [
                    Finding(
                        "error",
                        "jar-corrupt",
                        shown,
                        f"entry {info.filename!r} is corrupt ({exc})",
                        "copy or download the jar again, or rebuild it (jar --create ...)",
                    )
                ]
    return []


def class_entry(main_class: str) -> str:
    return main_class.replace(".", "/") + ".class"


def has_class(entry: Path, main_class: str) -> bool:
    """True when the jar or class folder `entry` holds `main_class` (multi-release folders included)."""
    name = class_entry(main_class)
    if entry.is_dir():
        return (entry / name).is_file()
    try:
        zf = apps.open_jar(entry)
    except UsageError:
        return False
    with zf:
        names = set(zf.namelist())
    if name in names:
        return True
    return any(n.startswith("META-INF/versions/") and n.endswith("/" + name) for n in names)
