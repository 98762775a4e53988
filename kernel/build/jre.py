"""A minimal JRE for an app: the modules jdeps finds, linked with jlink, cached per (JDK, modules).

When jdeps cannot decide (reflection, scripting languages), a larger module set is linked instead
and the caller says so once.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from jvmbridge.errors import BuildError, DependencyError
from jvmbridge.jdk import Jdk
from kernel import cache
from kernel.build import classdeps
from kernel.progress import say

# Linked when jdeps cannot see what the app needs: Java SE plus the JDK modules apps reach reflectively.
FALLBACK_MODULES = (
    "java.se",
    "jdk.unsupported",
    "jdk.zipfs",
    "jdk.crypto.ec",
    "jdk.httpserver",
    "jdk.net",
    "jdk.localedata",
    "jdk.charsets",
    "jdk.management",
    "jdk.jfr",
    "jdk.dynalink",
    "jdk.attach",
    "jdk.jdi",
    "jdk.xml.dom",
    "jdk.security.auth",
)
# Always present: the launcher's own needs and what kernel services use in the guest.
BASE_MODULES = ("java.base",)
# In every image (about 0.5 MB): what `osv-java shell --vm` loads into the JVM, an attach agent
# (java.instrument) carrying py4j (which logs through java.logging).
SERVICE_MODULES = ("java.instrument", "java.logging")


def _tool(jdk: Jdk, name: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    path = jdk.tool(name)
    if not path.exists():
        raise DependencyError(
            f"{jdk.describe()} has no {name}",
            hint=f"install the full JDK (apt-get install openjdk-{jdk.feature}-jdk-headless) or pass --jdk",
        )
    return subprocess.run([str(path), *args], capture_output=True, text=True, check=False)


def app_modules(jdk: Jdk, classpath: list[Path]) -> list[str] | None:
    """Modules the class path needs, read from its class files (kernel.build.classdeps: no JVM), else
    according to jdeps (cached by content); None when jdeps cannot tell."""
    if not classpath:
        return None
    h = hashlib.sha256(f"{jdk.home}|{jdk.version}".encode())
    for path in classpath:
        h.update(str(path).encode() + b"\0")
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in files:
            st = f.stat()
            h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}".encode())
    record = cache.ensure("jdeps") / (h.hexdigest()[:24] + ".json")
    if record.exists():
        try:
            cached = json.loads(record.read_text())
            return None if cached is None else list(cached)
        except ValueError:
            pass
    modules = classdeps.modules(jdk, classpath)
    if modules is None:
        modules = _run_jdeps(jdk, classpath)
    cache.write_file_atomic(record, json.dumps(modules).encode())
    return modules


def _run_jdeps(jdk: Jdk, classpath: list[Path]) -> list[str] | None:
    args = [
        "--print-module-deps",
        "--ignore-missing-deps",
        "--multi-release",
        str(jdk.feature),
        "-q",
    ]
    proc = _tool(jdk, "jdeps", [*args, *(str(p) for p in classpath)])
    if proc.returncode != 0:
        return None
    line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    modules = [m for m in line.split(",") if m]
    return modules or list(BASE_MODULES)


def _modules_record(jdk: Jdk) -> Path | None:
    image = jdk.home / "lib" / "modules"
    if not image.exists():
        return None
    stamp = f"{jdk.home}|{jdk.version}|{image.stat().st_size}|{image.stat().st_mtime_ns}"
    return cache.root() / "jdk-modules" / (hashlib.sha256(stamp.encode()).hexdigest()[:24] + ".json")


def _remembered_modules(jdk: Jdk) -> set[str] | None:
    record = _modules_record(jdk)
    if record is None or not record.exists():
        return None
    try:
        return set(json.loads(record.read_text()))
    except ValueError:
        return None


def available_modules(jdk: Jdk) -> set[str]:
    """The JDK's modules, remembered per JDK (a JVM start on every run would cost a tenth of a second)."""
    remembered = _remembered_modules(jdk)
    if remembered is not None:
        return remembered
    proc = _tool(jdk, "java", ["--list-modules"])
    modules = {line.split("@")[0] for line in proc.stdout.split()}
    record = _modules_record(jdk)
    if record is not None and proc.returncode == 0 and modules:
        cache.ensure("jdk-modules")
        cache.write_file_atomic(record, json.dumps(sorted(modules)).encode())
    return modules


def _folder(jdk: Jdk, wanted: list[str]) -> Path:
    libjvm = jdk.home / "lib" / "server" / "libjvm.so"
    stamp = f"{jdk.home}|{jdk.version}|{libjvm.stat().st_size}|{libjvm.stat().st_mtime_ns}|{','.join(wanted)}"
    return cache.root() / "jre" / f"{jdk.feature}-{hashlib.sha256(stamp.encode()).hexdigest()[:20]}"


def linked(jdk: Jdk, modules: list[str]) -> Path | None:
    """The JRE link() would return, when it is in the cache already; None otherwise. Writes nothing."""
    present = _remembered_modules(jdk)
    if present is None:
        return None
    wanted = sorted(set(modules) | set(BASE_MODULES))
    folder = _folder(jdk, [m for m in wanted if m in present])
    return folder if (folder / "bin" / "java").exists() else None


def link(jdk: Jdk, modules: list[str], progress: bool = True) -> Path:
    """The cached jlinked JRE holding `modules` (built on first use)."""
    if not jdk.can_jlink:
        raise DependencyError(
            f"jlink cannot run on {jdk.describe()}: it has no jmods folder",
            hint=f"apt-get install openjdk-{jdk.feature}-jdk-headless (which ships jmods), or use JDK 24+",
        )
    wanted = sorted(set(modules) | set(BASE_MODULES))
    present = available_modules(jdk)
    missing = [m for m in wanted if m not in present]
    if missing and set(missing) - set(FALLBACK_MODULES):
        raise BuildError(
            f"{jdk.describe()} lacks the JDK modules {', '.join(sorted(missing))}",
            hint="use a JDK that has them (--jdk), or remove the code that needs them",
        )
    wanted = [m for m in wanted if m in present]  # the fallback set names a few optional ones
    final = _folder(jdk, wanted)
    cache.ensure("jre")
    if (final / "bin" / "java").exists():
        return final
    if progress:
        say(f"linking a JRE with {len(wanted)} modules from {jdk.describe()}")
    with cache.atomic_dir(final) as tmp:
        out = tmp / "jre"
        args = [
            "--add-modules",
            ",".join(wanted),
            "--output",
            str(out),
            "--strip-debug",
            "--no-header-files",
            "--no-man-pages",
            "--generate-cds-archive",
            # Compressed class data costs little at start-up: the classes it needs come from the CDS
            # archive, not the jimage; the image (and so the boot) gets much smaller.
            "--compress=zip-6" if jdk.feature >= 21 else "--compress=2",
        ]
        proc = _tool(jdk, "jlink", args)
        if proc.returncode != 0:
            raise BuildError(
                f"jlink failed on {jdk.describe()}: {(proc.stderr or proc.stdout).strip()[-400:]}",
                hint="check the JDK is complete, or try another with --jdk",
            )
        # The archive for -XX:-UseCompressedOops (heaps over 32 GB) doubles the CDS bytes for a rare case;
        # such a JVM runs without CDS instead.
        for nocoops in out.glob("lib/server/classes_nocoops*.jsa"):
            nocoops.unlink()
        for child in out.iterdir():
            child.rename(tmp / child.name)
        out.rmdir()
    return final
