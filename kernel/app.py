"""What the user asked to run: a jar, a class path and main class, or a script of a JVM language.

Like `java`, a jar's manifest names its Main-Class and its Class-Path (relative to the jar, or absolute);
the class path here is that closure, with every file at its real host path.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from jvmbridge.errors import UsageError

MAX_MANIFEST_BYTES = 1 << 20


@dataclass(frozen=True)
class AppSpec:
    """The program to run, resolved to host paths."""

    kind: str  # "jar", "classpath" or "script"
    main_class: str
    classpath: tuple[Path, ...]  # jars and class folders, in order
    jar: Path | None = None  # for kind "jar": run with `java -jar`
    script: Path | None = None  # for kind "script"
    language: str = "java"
    runtime: tuple[Path, ...] = ()  # language runtime jars added with --with or for scripts
    files: tuple[Path, ...] = field(default_factory=tuple)  # every host path the image must hold

    def all_paths(self) -> tuple[Path, ...]:
        paths = [*self.classpath, *self.runtime]
        if self.script is not None:
            paths.append(self.script)
        return tuple(dict.fromkeys(paths))


def read_manifest(jar: Path) -> dict[str, str]:
    """The main attributes of a jar's META-INF/MANIFEST.MF; UsageError when the jar is unreadable."""
    check_file(jar, "jar")
    try:
        with zipfile.ZipFile(jar) as zf:
            try:
                info = zf.getinfo("META-INF/MANIFEST.MF")
            except KeyError:
                return {}
            if info.file_size > MAX_MANIFEST_BYTES:
                raise UsageError(
                    f"{jar}: META-INF/MANIFEST.MF is {info.file_size} bytes, over the 1 MiB limit",
                    hint="rebuild the jar with a normal manifest",
                )
            text = zf.read(info).decode("utf-8", errors="replace")
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError) as exc:
        raise UsageError(
            f"{jar} is not a readable jar ({exc})",
            hint="rebuild the jar (jar --create ...) or check the file was copied whole",
        ) from exc
    return parse_manifest(text)


def parse_manifest(text: str) -> dict[str, str]:
    """Main section of a manifest: 'Name: value' lines, continuation lines start with one space."""
    attributes: dict[str, str] = {}
    last: str | None = None
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw == "":
            break  # end of the main section
        if raw.startswith(" ") and last is not None:
            attributes[last] += raw[1:]
            continue
        name, sep, value = raw.partition(":")
        if sep:
            last = name.strip()
            attributes[last] = value.strip()
    return attributes


def check_file(path: Path, what: str) -> None:
    if not path.exists():
        raise UsageError(f"{what} {path} does not exist", hint="check the path")
    if path.is_dir():
        raise UsageError(f"{what} {path} is a folder, not a file", hint=f"give the {what} file itself")


def manifest_classpath(jar: Path, attributes: dict[str, str]) -> list[Path]:
    """Class-Path entries of `jar`, resolved like java does (relative to the jar's folder)."""
    entries = []
    for item in attributes.get("Class-Path", "").split():
        if item.startswith("file:"):
            item = item[5:]
        path = Path(item) if item.startswith("/") else jar.parent / item
        if path.exists():
            entries.append(path.resolve())
    return entries


def classpath_closure(entries: list[Path]) -> list[Path]:
    """The entries plus every jar their manifests' Class-Path names, transitively, without repeats."""
    out: list[Path] = []
    pending = list(entries)
    while pending:
        entry = pending.pop(0)
        if entry in out:
            continue
        out.append(entry)
        if entry.is_file() and entry.suffix in (".jar", ".zip"):
            pending.extend(manifest_classpath(entry, read_manifest(entry)))
    return out


def from_jar(jar: Path) -> AppSpec:
    jar = jar.resolve() if jar.exists() else jar
    attributes = read_manifest(jar)
    main = attributes.get("Main-Class", "").strip()
    if not main:
        raise UsageError(
            f"{jar} has no Main-Class in its manifest",
            hint="run it as `osv-java run -cp JAR MAIN.CLASS`, or rebuild it with `jar --main-class ...`",
        )
    classpath = classpath_closure([jar])
    return AppSpec(kind="jar", main_class=main, classpath=tuple(classpath), jar=jar)


def from_classpath(classpath: str, main_class: str) -> AppSpec:
    entries = []
    for item in classpath.split(":"):
        if not item:
            continue
        path = Path(item)
        if not path.exists():
            raise UsageError(f"class path entry {item} does not exist", hint="check the -cp value")
        if path.is_file():
            read_manifest(path)  # a clear error now for a file that is not a jar
        entries.append(path.resolve())
    if not entries:
        raise UsageError("the class path is empty", hint="give -cp a list of jars or class folders joined by ':'")
    if not main_class or "/" in main_class or main_class.endswith(".class"):
        raise UsageError(
            f"{main_class!r} is not a class name",
            hint="give the main class as a dotted name, e.g. com.example.Main",
        )
    return AppSpec(kind="classpath", main_class=main_class, classpath=tuple(classpath_closure(entries)))
