"""What the user asked to run: a jar, a class path and main class, or a script of a JVM language.

Like `java`, a jar's manifest names its Main-Class and its Class-Path (relative to the jar, or absolute);
the class path here is that closure, with every file at its real host path.
"""

from __future__ import annotations

import os
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jvmbridge.errors import UsageError

if TYPE_CHECKING:  # zipfile is loaded by the functions that open a jar: a script's run reads none
    import zipfile

MAX_MANIFEST_BYTES = 1 << 20
# A jar is a zip the user hands us: refuse the ones that would blow up when read (zip bombs) before
# reading them. Real jars stay far below these (a 60 MB language runtime expands to ~150 MB).
MAX_JAR_ENTRIES = 500_000
MAX_JAR_EXPANDED = 4 << 30  # sum of the declared sizes of all entries
MAX_ENTRY_RATIO = 200  # uncompressed : compressed, for entries past BOMB_ENTRY_SIZE
BOMB_ENTRY_SIZE = 64 << 20
MAX_SYMLINK_TARGET = 4096


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

    def all_paths(self) -> tuple[Path, ...]:
        paths = [*self.classpath, *self.runtime]
        if self.script is not None:
            paths.append(self.script)
        return tuple(dict.fromkeys(paths))


def _escapes(name: str) -> bool:
    """True for a zip entry name that would land outside the folder it is unpacked into."""
    if name.startswith(("/", "\\")):
        return True
    if len(name) > 1 and name[0].isalpha() and name[1] == ":" and name[2:3] in ("", "/", "\\"):
        return True  # a Windows drive path
    return ".." in name.replace("\\", "/").split("/")


def check_jar_structure(jar: Path, zf: zipfile.ZipFile) -> None:
    """UsageError for a zip bomb, an entry escaping the jar's root, or a symlink pointing out of it.

    Only the central directory is read (and symlink targets, which are tiny), so this is cheap.
    """
    import zipfile
    infos = zf.infolist()
    if len(infos) > MAX_JAR_ENTRIES:
        raise UsageError(
            f"{jar} has {len(infos)} entries, over the limit of {MAX_JAR_ENTRIES}",
            hint="this is not a normal jar (a zip bomb?); rebuild it with the jar tool",
        )
    total = 0
    offsets: set[int] = set()
    for info in infos:
        name = info.filename
        if _escapes(name):
            raise UsageError(
                f"{jar} has an entry {name!r} that escapes the jar's root",
                hint="rebuild the jar with relative entry names (jar --create -C DIR .)",
            )
        if info.header_offset in offsets:
            raise UsageError(
                f"{jar} has entries sharing the same data (an overlapping zip bomb), e.g. {name!r}",
                hint="this is not a normal jar; rebuild it with the jar tool",
            )
        offsets.add(info.header_offset)
        total += info.file_size
        if total > MAX_JAR_EXPANDED:
            raise UsageError(
                f"{jar} expands to over {MAX_JAR_EXPANDED >> 30} GiB, past the limit (a zip bomb?)",
                hint="rebuild the jar without the oversized entries",
            )
        if info.file_size > BOMB_ENTRY_SIZE and info.file_size > MAX_ENTRY_RATIO * max(info.compress_size, 1):
            raise UsageError(
                f"{jar}: entry {name!r} expands from {info.compress_size} to {info.file_size} bytes, "
                f"over {MAX_ENTRY_RATIO}:1 (a zip bomb?)",
                hint="rebuild the jar without that entry",
            )
        if info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16):
            if info.file_size > MAX_SYMLINK_TARGET:
                raise UsageError(f"{jar}: symlink {name!r} has a {info.file_size}-byte target",
                                 hint="rebuild the jar without symlinks")
            try:
                target = zf.read(info).decode("utf-8", errors="replace")
            except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error) as exc:
                raise UsageError(
                    f"{jar} is a truncated or corrupt jar: symlink {name!r} cannot be read ({exc})",
                    hint="copy or download the jar again, or rebuild it",
                ) from exc
            parent = name.rstrip("/").rpartition("/")[0]
            if target.startswith(("/", "\\")) or climbs_out(parent, target):
                raise UsageError(
                    f"{jar}: symlink {name!r} points to {target!r}, outside the jar",
                    hint="rebuild the jar with the file itself instead of a symlink",
                )


def climbs_out(parent: str, target: str) -> bool:
    """True when `target`, taken relative to folder `parent`, climbs above the root."""
    depth = len([p for p in parent.split("/") if p])
    for part in target.replace("\\", "/").split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def open_jar(jar: Path) -> zipfile.ZipFile:
    """Open `jar` after checking it is a whole, sane zip; UsageError naming the problem otherwise."""
    import zipfile

    check_file(jar, "jar")
    try:
        with open(jar, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise UsageError(f"cannot read jar {jar}: {exc.strerror}", hint="check its permissions") from None
    try:
        zf = zipfile.ZipFile(jar)
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as exc:
        if head[:2] == b"PK":
            raise UsageError(
                f"{jar} is a truncated or corrupt jar ({exc})",
                hint="copy or download the jar again, or rebuild it (jar --create ...)",
            ) from exc
        raise UsageError(
            f"{jar} is not a jar: it is not a zip archive",
            hint="give the path of a .jar file (built with `jar --create` or your build tool)",
        ) from exc
    except OSError as exc:
        raise UsageError(f"cannot read jar {jar}: {exc.strerror}", hint="check its permissions") from None
    try:
        check_jar_structure(jar, zf)
    except BaseException:
        zf.close()
        raise
    return zf


def read_manifest(jar: Path) -> dict[str, str]:
    """The main attributes of a jar's META-INF/MANIFEST.MF; UsageError when the jar is unreadable."""
    import zipfile

    zf = open_jar(jar)
    try:
        with zf:
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
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError, zlib.error) as exc:
        raise UsageError(
            f"{jar} is a truncated or corrupt jar: its manifest cannot be read ({exc})",
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
    """UsageError unless `path` is an existing regular file (not a folder, device or FIFO)."""
    if not path.exists():
        if path.is_symlink():
            raise UsageError(f"{what} {path} is a broken symlink", hint="point it at an existing file")
        raise UsageError(f"{what} {path} does not exist", hint="check the path")
    if path.is_dir():
        raise UsageError(f"{what} {path} is a folder, not a file", hint=f"give the {what} file itself")
    if not path.is_file():
        raise UsageError(f"{what} {path} is not a regular file", hint=f"give the {what} file itself")


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


def launch_arguments(app: AppSpec) -> list[str]:
    """What follows the JVM options: `-jar JAR` like java, or `-cp PATH MAIN`.

    A jar plus runtimes (--with scala) cannot use -jar, which ignores -cp: it runs as
    `-cp JAR:ITS-CLASS-PATH:RUNTIMES Main-Class` instead.
    """
    if app.kind == "jar" and not app.runtime:
        assert app.jar is not None
        return ["-jar", str(app.jar)]
    return ["-cp", ":".join(str(p) for p in (*app.classpath, *app.runtime)), app.main_class]


def manifest_links(paths: tuple[Path, ...] | list[Path]) -> dict[str, Path]:
    """Class-Path entries of the jars in `paths` that name one of `paths` through a symlink: literal
    path -> the file it resolves to. The image holds them as symlinks, so each entry exists in the
    guest exactly as on the host (CDS records which entries exist; the JVM resolves each one again)."""
    wanted = set(paths)
    links: dict[str, Path] = {}
    for jar in paths:
        if not (jar.is_file() and jar.suffix in (".jar", ".zip")):
            continue
        try:
            attributes = read_manifest(jar)
        except UsageError:
            continue
        for item in attributes.get("Class-Path", "").split():
            item = item.removeprefix("file:")
            literal = os.path.normpath(item if item.startswith("/") else str(jar.parent / item))
            if ".." in literal.split("/") or not os.path.exists(literal):
                continue
            target = Path(literal).resolve()
            if str(target) != literal and target in wanted:
                links[literal] = target
    return links


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
        raise UsageError(
            "the class path is empty", hint="give -cp a list of jars or class folders joined by ':'"
        )
    if not main_class or "/" in main_class or main_class.endswith(".class"):
        raise UsageError(
            f"{main_class!r} is not a class name",
            hint="give the main class as a dotted name, e.g. com.example.Main",
        )
    return AppSpec(kind="classpath", main_class=main_class, classpath=tuple(classpath_closure(entries)))
