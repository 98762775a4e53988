"""Find JDKs on this machine and describe them (version, vendor, jlink ability, GCs, flags).

A JDK is described once from its `release` file and folder layout; nothing in probe() starts a JVM,
so discovery costs a few file reads. What only a running VM can tell (its collectors and manageable
flags) comes from one `java -XX:+PrintFlagsFinal -version`, asked lazily and cached on disk per
libjvm.so.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shlex
import subprocess
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

    def features(self) -> JdkFeatures:
        """Collectors and manageable flags (one cached JVM run per JDK build)."""
        return features(self)

    @property
    def gcs(self) -> tuple[str, ...]:
        return self.features().gcs

    @property
    def manageable_flags(self) -> dict[str, str]:
        return self.features().manageable


# a GC is built into libjvm.so when its -XX:+Use...GC flag exists and its memory pools are named in it
GC_MARKERS = {
    "G1": b"G1 Young Generation",
    "Parallel": b"PS Scavenge",
    "Serial": b"Tenured Gen",
    "Z": b"ZGC ",
    "Shenandoah": b"Shenandoah Pauses",
    "Epsilon": b"Epsilon Heap",
}
PROBE_FORMAT = 1
_FLAG_LINE = re.compile(r"^\s*(\S+)\s+(\w+)\s+=\s?(.*?)\s*\{([^}]*)\}")


@dataclass(frozen=True)
class JdkFeatures:
    gcs: tuple[str, ...]  # "G1", "Parallel", "Serial", "Z", "Shenandoah", "Epsilon"
    manageable: dict[str, str]  # flag name -> default value
    flags: dict[str, str]  # every flag -> value (with experimental and diagnostic ones)


def cache_dir() -> Path:
    return Path(os.environ.get("OSV_JAVA_CACHE") or Path.home() / ".cache" / "osv-java")


def _libjvm(jdk: Jdk) -> Path:
    for candidate in (
        jdk.home / "lib" / "server" / "libjvm.so",
        jdk.home / "jre" / "lib" / "server" / "libjvm.so",
    ):
        if candidate.exists():
            return candidate
    raise DependencyError(
        f"{jdk.home} has no lib/server/libjvm.so", hint="give --jdk a JDK with the server VM"
    )


def _probe_key(jdk: Jdk, libjvm: Path) -> str:
    st = libjvm.stat()
    raw = f"{PROBE_FORMAT}:{jdk.home}:{st.st_mtime_ns}:{st.st_size}"
    import hashlib  # here, as mmap below: a run that finds its JDK needs neither

    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def _run_probe(jdk: Jdk, libjvm: Path) -> JdkFeatures:
    cmd = [
        str(jdk.tool("java")),
        "-XX:+UnlockExperimentalVMOptions",
        "-XX:+UnlockDiagnosticVMOptions",
        "-XX:+PrintFlagsFinal",
        "-version",
    ]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DependencyError(f"cannot run {cmd[0]}: {exc}", hint="check that the JDK is complete") from exc
    if out.returncode != 0:
        raise DependencyError(f"{cmd[0]} -XX:+PrintFlagsFinal failed: {out.stderr.strip()[:200]}")
    flags: dict[str, str] = {}
    manageable: dict[str, str] = {}
    for line in out.stdout.splitlines():
        m = _FLAG_LINE.match(line)
        if not m:
            continue
        name, value, kinds = m.group(2), m.group(3), m.group(4)
        flags[name] = value
        if "manageable" in kinds:
            manageable[name] = value
    import mmap

    with open(libjvm, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as image:
        gcs = tuple(
            gc for gc, marker in GC_MARKERS.items() if f"Use{gc}GC" in flags and image.find(marker) >= 0
        )
    return JdkFeatures(gcs=gcs, manageable=manageable, flags=flags)


def _write_atomically(path: Path, data: str) -> None:
    import tempfile  # here: most runs only read what an earlier one wrote

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@functools.lru_cache(maxsize=16)
def features(jdk: Jdk) -> JdkFeatures:
    """What this JDK's VM supports, from $OSV_JAVA_CACHE/jdk-probes/ or one `java` run."""
    libjvm = _libjvm(jdk)
    path = cache_dir() / "jdk-probes" / f"{_probe_key(jdk, libjvm)}.json"
    try:
        data = json.loads(path.read_text())
        return JdkFeatures(gcs=tuple(data["gcs"]), manageable=data["manageable"], flags=data["flags"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    found = _run_probe(jdk, libjvm)
    record = {
        "home": str(jdk.home),
        "libjvm": str(libjvm),
        "gcs": list(found.gcs),
        "manageable": found.manageable,
        "flags": found.flags,
    }
    with contextlib.suppress(OSError):  # a read-only cache only costs the probe again next time
        _write_atomically(path, json.dumps(record, indent=1, sort_keys=True))
    return found


def _read_release(home: Path, keys: tuple[str, ...]) -> dict[str, str]:
    """The `release` file's values of `keys`, unquoted as a shell would (only those: MODULES alone is
    a long line, and shlex takes milliseconds over the whole file)."""
    values: dict[str, str] = {}
    for line in (home / "release").read_text(errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() in keys:
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
    release = _read_release(home, ("JAVA_VERSION", "IMPLEMENTOR"))
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
    return sorted(
        jdks, key=lambda j: [int(p) if p.isdigit() else 0 for p in j.version.split(".")], reverse=True
    )


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
