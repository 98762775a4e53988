"""Find JDKs on this machine and describe them (version, vendor, jlink ability).

A JDK is described once from its `release` file and folder layout; nothing here starts a JVM, so
discovery costs a few file reads.
"""

from __future__ import annotations

import functools
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from jvmbridge.errors import DependencyError, UsageError

SEARCH_ROOTS = ("/usr/lib/jvm", "/opt/java", "/opt/jdk", "/usr/local/lib/jvm", "/opt")


@dataclass(frozen=True)
class Jdk:
    """One installed JDK."""

    home: Path
    version: str  # full version, e.g. "17.0.15"
    vendor: str
    has_jmods: bool

    @property
    def feature(self) -> int:
        """The feature release number: 17 for 17.0.15."""
        return int(self.version.split(".")[0].split("-")[0].split("+")[0])

    def tool(self, name: str) -> Path:
        return self.home / "bin" / name

    @property
    def can_jlink(self) -> bool:
        """jlink needs jmods, or (JDK 24+, JEP 493) a run-time image built to be linkable."""
        if not self.tool("jlink").exists():
            return False
        return self.has_jmods or self.feature >= 24

    def describe(self) -> str:
        return f"{self.vendor} {self.version} at {self.home}"


def _read_release(home: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (home / "release").read_text(errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            parts = shlex.split(value) if value.strip() else [""]
            values[key.strip()] = parts[0] if parts else ""
    return values


@functools.lru_cache(maxsize=64)
def probe(home: Path) -> Jdk:
    """Describe the JDK at `home`; UsageError when it is not one."""
    home = Path(home)
    if not home.is_dir():
        raise UsageError(
            f"JDK path {home} is not a folder",
            hint="give --jdk the JDK's home folder (the one holding bin/java), or a version such as 17",
        )
    if not (home / "bin" / "java").exists() or not (home / "release").exists():
        raise UsageError(
            f"{home} is not a JDK: it has no bin/java or no release file",
            hint="give --jdk the JDK's home folder (the one holding bin/java and release), or a version such as 17",
        )
    release = _read_release(home)
    version = release.get("JAVA_VERSION", "")
    if not version:
        raise UsageError(f"{home}/release names no JAVA_VERSION", hint="give --jdk a complete JDK")
    vendor = release.get("IMPLEMENTOR", "") or "unknown vendor"
    return Jdk(home=home.resolve(), version=version, vendor=vendor, has_jmods=(home / "jmods").is_dir())


def _candidates() -> list[Path]:
    seen: list[Path] = []
    for root in SEARCH_ROOTS:
        base = Path(root)
        if not base.is_dir():
            continue
        for child in sorted(base.iterdir()):
            if (child / "bin" / "java").exists() and (child / "release").exists():
                real = child.resolve()
                if real not in seen:
                    seen.append(real)
    return seen


def find_all() -> list[Jdk]:
    """Every JDK found in the usual install folders and JAVA_HOME, newest first."""
    homes = _candidates()
    java_home = os.environ.get("JAVA_HOME")
    if java_home and Path(java_home).is_dir():
        real = Path(java_home).resolve()
        if real not in homes:
            homes.insert(0, real)
    jdks = []
    for home in homes:
        try:
            jdks.append(probe(home))
        except UsageError:
            continue
    return sorted(jdks, key=lambda j: [int(p) if p.isdigit() else 0 for p in j.version.split(".")], reverse=True)


def select(spec: str | None) -> Jdk:
    """Pick a JDK: a path, a feature version ("17"), or by default JAVA_HOME, else the newest found."""
    if spec:
        if spec.isdigit():
            for jdk in find_all():
                if jdk.feature == int(spec):
                    return jdk
            found = ", ".join(f"{j.feature} ({j.home})" for j in find_all()) or "none"
            raise DependencyError(
                f"no JDK {spec} found (found: {found})",
                hint=f"install one (apt-get install openjdk-{spec}-jdk-headless) or pass --jdk PATH",
            )
        return probe(Path(spec))
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        return probe(Path(java_home))
    jdks = find_all()
    if not jdks:
        raise DependencyError(
            "no JDK found (looked at JAVA_HOME and " + ", ".join(SEARCH_ROOTS) + ")",
            hint="apt-get install openjdk-17-jdk-headless, or pass --jdk PATH",
        )
    return jdks[0]
