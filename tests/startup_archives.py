"""Helpers of the start-up archive tests (process and VM targets): small jars, where a class came from,
and the archive a run left in the cache."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from osvtest import compile_java, jar_of

from jvmbridge import jdk as jdks
from jvmbridge.errors import OsvJavaError

# -Xlog:class+load=info: "[0.031s][info][class,load] clojure.main source: shared objects file (top)"
CLASS_LOAD = re.compile(r"^\[[^\]]*\]\[info\s*\]\[class,load\s*\] (\S+) source: (.+)$", re.M)
ARCHIVE_WARNINGS = ("Unable to use shared archive", "[error", "[warning][cds", "[warning][aot")


def jdk_or_skip(feature: str) -> jdks.Jdk:
    try:
        return jdks.select(feature)
    except OsvJavaError:
        pytest.skip(f"JDK {feature} is not installed here")


def greeter_jar(tmp: Path, name: str, jar: Path) -> Path:
    """A jar whose main class `name` prints 'NAME says hi' and its arguments."""
    classes = compile_java(
        tmp, name.lower(),
        f"public class {name} {{ public static void main(String[] a) {{"
        f' System.out.println("{name} says hi " + java.util.Arrays.toString(a)); }} }}')
    return jar_of(classes, jar, f"Main-Class: {name}\n")


def sources(output: str) -> dict[str, str]:
    """Class name -> where the JVM loaded it from, out of -Xlog:class+load lines."""
    return dict(CLASS_LOAD.findall(output))


def from_archive(output: str, class_name: str) -> bool:
    return sources(output).get(class_name, "").startswith("shared objects file")


def app_lines(output: str) -> str:
    """`output` without the JVM's log lines (they start with '[')."""
    return "".join(line for line in output.splitlines(keepends=True) if not line.startswith("["))


def archive_of(cache: Path, label: str) -> Path:
    """The newest archive the cache holds for `label` (a jar or script path)."""
    found = []
    for meta_path in (cache / "startup").glob("*/meta.json"):
        meta = json.loads(meta_path.read_text())
        if meta.get("label") == label and "file" in meta:
            found.append(meta_path.parent / meta["file"])
    assert found, f"no start-up archive for {label} in {cache / 'startup'}"
    return max(found, key=lambda p: p.stat().st_mtime_ns)


def damage(archive: Path) -> None:
    """Overwrite bytes in the middle of `archive` and put its mtime back, as a disk error would leave it."""
    st = archive.stat()
    with open(archive, "r+b") as f:
        f.seek(st.st_size // 2)
        f.write(b"\xde\xad\xbe\xef" * 1024)
    os.utime(archive, ns=(st.st_atime_ns, st.st_mtime_ns))
