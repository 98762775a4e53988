"""The zygote's classes for an image: osvjava.Zygote (kernel/guest/java), compiled once per source.

A guest JVM started with `-cp ZYGOTE_IN_IMAGE osvjava.Zygote FIFO READY_FILE` gets ready and waits;
a machine saved there restores with the JVM's start done, and PID 1 hands it the app (see the class).
Compiled for Java 17 with the build's JDK (its class files run on 17 and later), cached by the
source's digest; a JDK without javac gives no zygote (None), and runs then start their JVM as usual.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from jvmbridge.jdk import Jdk
from kernel import cache

SOURCE = Path(__file__).resolve().parent.parent / "guest" / "java" / "osvjava" / "Zygote.java"
ZYGOTE_IN_IMAGE = "/osv/zygote"
MAIN_CLASS = "osvjava.Zygote"
# What the zygote needs of the JVM: AppClassLoader.appendToClassPathForInstrumentation, to put the
# app's class path on the system class loader after the start
JVM_OPTIONS = ("--add-opens", "java.base/jdk.internal.loader=ALL-UNNAMED")


def available(jdk: Jdk) -> bool:
    """Whether images built with `jdk` carry the zygote (it takes javac to compile)."""
    return jdk.tool("javac").exists()


def classes(jdk: Jdk) -> dict[str, bytes] | None:
    """Class files by their path under ZYGOTE_IN_IMAGE; None when `jdk` has no javac."""
    if not available(jdk):
        return None
    javac = jdk.tool("javac")
    source = SOURCE.read_bytes()
    folder = cache.ensure("zygote") / hashlib.sha256(source).hexdigest()[:24]
    if not folder.is_dir():
        with cache.atomic_dir(folder) as staging:
            subprocess.run([str(javac), "--release", "17", "-d", str(staging), str(SOURCE)], check=True,
                           capture_output=True, timeout=300)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.class"))}
