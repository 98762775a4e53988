"""Which JDK modules a class path refers to, read from its class files (no JVM started).

jdeps answers the same question but starts a JVM to do it: one to two seconds under load, the largest
part of the first run of an edited jar, which otherwise restores its runtime's boot snapshot. Here
every class file's constant pool is read: the classes it names and every type in its descriptors and
signatures (any `Lpkg/Name;` in a UTF-8 constant, so a string that looks like one counts too); each
package is looked up in the JDK's package-to-module map (read once per JDK from its jmods, or with
its `jimage` tool from its run-time image when it has no jmods, as JDK 24+ builds may not). That
over-approximates what jdeps reports (a module too many makes a larger JRE, never a missing class)
and sees reflection no better than jdeps does. Each jar's answer is cached by its path, size and
mtime, so a language runtime's jars are read once and an edit rereads only the edited jar. None
(let jdeps decide) for a JDK with neither, or a class file this reader does not understand.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from jvmbridge.jdk import Jdk
from kernel import cache

FORMAT = 1  # of the cached answers
TYPE_IN_DESCRIPTOR = re.compile(rb"L([A-Za-z0-9_$/]+)[;<]")
# Constant pool tags -> bytes after the tag (Utf8, 1, is read by its length; Long and Double take two slots).
CONSTANT_SIZES = {3: 4, 4: 4, 5: 8, 6: 8, 7: 2, 8: 2, 9: 4, 10: 4, 11: 4, 12: 4, 15: 3, 16: 2, 17: 4, 18: 4, 19: 2,
                  20: 2}


class NotAClassFile(ValueError):
    """The bytes are not a class file this reader understands."""


def _constant_pool(data: bytes) -> tuple[dict[int, bytes], dict[int, int], int]:
    """A class file's UTF-8 constants, its Class and Module constants (index -> their name's index),
    and where the constant pool ends."""
    if data[:4] != b"\xca\xfe\xba\xbe" or len(data) < 10:
        raise NotAClassFile("bad magic")
    count = struct.unpack_from(">H", data, 8)[0]
    pos, index = 10, 1
    utf8: dict[int, bytes] = {}
    named: dict[int, int] = {}
    try:
        while index < count:
            tag = data[pos]
            if tag == 1:
                length = struct.unpack_from(">H", data, pos + 1)[0]
                utf8[index] = data[pos + 3:pos + 3 + length]
                pos += 3 + length
            elif tag in CONSTANT_SIZES:
                if tag in (7, 19):
                    named[index] = struct.unpack_from(">H", data, pos + 1)[0]
                pos += 1 + CONSTANT_SIZES[tag]
                index += 1 if tag in (5, 6) else 0
            else:
                raise NotAClassFile(f"constant pool tag {tag}")
            index += 1
    except (IndexError, struct.error) as exc:
        raise NotAClassFile("cut short") from exc
    if pos > len(data):
        raise NotAClassFile("cut short")
    return utf8, named, pos


def transitive_requires(module_info: bytes) -> list[str]:
    """The modules a module-info.class `requires transitive` (its Module attribute)."""
    utf8, named, pos = _constant_pool(module_info)
    pos += 6  # access flags, this class, super class
    interfaces = struct.unpack_from(">H", module_info, pos)[0]
    pos += 2 + 2 * interfaces
    for _ in range(2):  # fields, then methods: skip each with its attributes
        members = struct.unpack_from(">H", module_info, pos)[0]
        pos += 2
        for _ in range(members):
            attributes = struct.unpack_from(">H", module_info, pos + 6)[0]
            pos += 8
            for _ in range(attributes):
                pos += 6 + struct.unpack_from(">I", module_info, pos + 2)[0]
    for _ in range(struct.unpack_from(">H", module_info, pos)[0]):
        name_index, length = struct.unpack_from(">HI", module_info, pos + 2)
        if utf8.get(name_index) == b"Module":
            at = pos + 8 + 6  # name, flags, version
            found = []
            for i in range(struct.unpack_from(">H", module_info, at)[0]):
                module, flags = struct.unpack_from(">HH", module_info, at + 2 + 6 * i)
                if flags & 0x0020:  # ACC_TRANSITIVE
                    found.append(utf8[named[module]].decode())
            return found
        pos += 6 + length
    return []


def referenced_packages(data: bytes) -> set[str]:
    """Packages (as `a/b`) of the types a class file names."""
    utf8, named, _ = _constant_pool(data)
    names: set[bytes] = set()
    for i in named.values():
        name = utf8.get(i, b"")
        names.update(TYPE_IN_DESCRIPTOR.findall(name) if name.startswith(b"[") else [name])
    for value in utf8.values():
        if b"L" in value and (b";" in value or b"<" in value):
            names.update(TYPE_IN_DESCRIPTOR.findall(value))
    return {name.rpartition(b"/")[0].decode("utf-8", "replace") for name in names if b"/" in name}


def _class_files(entry: Path) -> Iterator[bytes]:
    if entry.is_dir():
        for path in sorted(entry.rglob("*.class")):
            yield path.read_bytes()
        return
    with zipfile.ZipFile(entry) as jar:
        for info in jar.infolist():
            if info.filename.endswith(".class") and not info.is_dir():
                yield jar.read(info)


def jdk_modules(jdk: Jdk) -> tuple[dict[str, str], dict[str, list[str]]] | None:
    """Package (`a/b`) -> module of the JDK, and module -> what it `requires transitive`, from its
    jmods or its run-time image (cached per JDK); None with neither."""
    jmods = jdk.home / "jmods"
    image = jdk.home / "lib" / "modules"
    if jdk.has_jmods:
        sources = sorted(jmods.glob("*.jmod"))
    elif image.is_file() and jdk.tool("jimage").exists():
        sources = [image]
    else:
        return None
    stamp = f"{FORMAT}|{jdk.home}|{jdk.version}|" + "|".join(
        f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sources)
    record = cache.ensure("jdkpackages") / (hashlib.sha256(stamp.encode()).hexdigest()[:24] + ".json")
    try:
        known = json.loads(record.read_text())
        return dict(known["packages"]), dict(known["transitive"])
    except (OSError, ValueError, KeyError):
        pass
    found = _from_jmods(sources) if jdk.has_jmods else _from_image(jdk, image)
    if found is None:
        return None
    packages, transitive = found
    known = {"packages": packages, "transitive": transitive}
    cache.write_file_atomic(record, json.dumps(known, sort_keys=True).encode())
    return packages, transitive


def _from_jmods(jmods: list[Path]) -> tuple[dict[str, str], dict[str, list[str]]]:
    packages: dict[str, str] = {}
    transitive: dict[str, list[str]] = {}
    for jmod in jmods:
        module = jmod.name.removesuffix(".jmod")
        with zipfile.ZipFile(jmod) as archive:  # a jmod is a zip behind a 4-byte header, which zipfile skips
            for name in archive.namelist():
                if name == "classes/module-info.class":
                    transitive[module] = transitive_requires(archive.read(name))
                elif name.startswith("classes/") and name.endswith(".class"):
                    packages.setdefault(name[len("classes/"):].rpartition("/")[0], module)
    return packages, transitive


def _from_image(jdk: Jdk, image: Path) -> tuple[dict[str, str], dict[str, list[str]]] | None:
    """The same from the run-time image, with the JDK's jimage tool (two JVM starts, once per JDK)."""
    listing = subprocess.run([str(jdk.tool("jimage")), "list", str(image)], capture_output=True, text=True,
                             check=False)
    if listing.returncode != 0:
        return None
    packages: dict[str, str] = {}
    module = ""
    for line in listing.stdout.splitlines():
        if line.startswith("Module: "):
            module = line[len("Module: "):].strip()
        elif module and line.startswith(" ") and line.strip().endswith(".class"):
            packages.setdefault(line.strip().rpartition("/")[0], module)
    transitive: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="osv-java-jimage-") as tmp:
        extract = subprocess.run([str(jdk.tool("jimage")), "extract", "--include", r"regex:/[^/]+/module-info\.class",
                                  "--dir", tmp, str(image)], capture_output=True, text=True, check=False)
        if extract.returncode != 0:
            return None
        for info in Path(tmp).glob("*/module-info.class"):
            transitive[info.parent.name] = transitive_requires(info.read_bytes())
    return (packages, transitive) if packages and transitive else None


def reduced(modules: set[str], transitive: dict[str, list[str]]) -> list[str]:
    """`modules` without those another of them implies (reads through `requires transitive`), as
    jdeps --print-module-deps lists them: the same set gives the same JRE (kernel.build.jre.link)."""
    implied: set[str] = set()
    for module in modules:
        todo = list(transitive.get(module, []))
        while todo:
            name = todo.pop()
            if name not in implied:
                implied.add(name)
                todo += transitive.get(name, [])
    return sorted(m for m in modules if m not in implied or m == "java.base")


def _entry_modules(entry: Path, packages: dict[str, str], jdk: Jdk) -> set[str]:
    """JDK modules one class path entry refers to; a jar's answer is cached by path, size and mtime."""
    record = None
    if entry.is_file():
        st = entry.stat()
        stamp = f"{FORMAT}|{jdk.home}|{jdk.version}|{entry}|{st.st_size}|{st.st_mtime_ns}"
        record = cache.ensure("classdeps") / (hashlib.sha256(stamp.encode()).hexdigest()[:24] + ".json")
        try:
            return set(json.loads(record.read_text()))
        except (OSError, ValueError):
            pass
    modules: set[str] = set()
    for data in _class_files(entry):
        modules.update(packages[p] for p in referenced_packages(data) if p in packages)
    if record is not None:
        cache.write_file_atomic(record, json.dumps(sorted(modules)).encode())
    return modules


def modules(jdk: Jdk, classpath: list[Path]) -> list[str] | None:
    """The JDK modules `classpath` refers to, sorted; None when this cannot tell (ask jdeps)."""
    try:
        known = jdk_modules(jdk)
        if known is None:
            return None
        packages, transitive = known
        found: set[str] = {"java.base"}
        for entry in classpath:
            if entry.exists():
                found |= _entry_modules(entry, packages, jdk)
    except (NotAClassFile, zipfile.BadZipFile, OSError, struct.error, KeyError, UnicodeDecodeError):
        return None
    return reduced(found, transitive)
