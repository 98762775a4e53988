"""ELF checks for the validator: will the guest's dynamic loader accept every binary in the image?

The loader refuses a file of another class, byte order or machine, a DT_NEEDED it cannot find, and a
versioned symbol (GLIBC_2.xx, ...) the library it found does not define. Each of those is an error
here, found before a boot. Everything read from an ELF file is untrusted: any parse failure becomes an
ElfProblem, and every table walk is capped so a crafted file cannot make us loop or allocate without
bound.
"""

from __future__ import annotations

import io
import itertools
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from kernel.build.elfclosure import DEFAULT_LIBRARY_DIRS

if TYPE_CHECKING:
    from elftools.elf.dynamic import DynamicSection, DynamicSegment
from kernel.validate.finding import Finding

ELF_MAGIC = b"\x7fELF"
MAX_TAGS = 4096
MAX_VERSIONS = 4096
MAX_SYMBOLS = 200_000
MAX_SECTIONS = 4096
VER_FLG_BASE = 0x1
VER_FLG_WEAK = 0x2
# Calls that start a second program. They work in the guest, but a single-application VM was not
# sized or secured for a second process, so the user should know.
SPAWN_CALLS = frozenset(
    {
        "fork",
        "vfork",
        "execve",
        "execv",
        "execvp",
        "execvpe",
        "execl",
        "execle",
        "execlp",
        "execveat",
        "fexecve",
        "system",
        "popen",
        "posix_spawn",
        "posix_spawnp",
    }
)


class ElfProblem(Exception):
    """The bytes are not an ELF file the loader could use; the message says why."""


@dataclass(frozen=True)
class Arch:
    """What the loader compares before it maps a file: class, byte order and machine."""

    elfclass: int
    little_endian: bool
    machine: str

    def describe(self) -> str:
        order = "little-endian" if self.little_endian else "big-endian"
        return f"{self.elfclass}-bit {order} {self.machine.removeprefix('EM_')}"


X86_64 = Arch(64, True, "EM_X86_64")
I386 = Arch(32, True, "EM_386")


@dataclass(frozen=True)
class ElfFacts:
    """The parts of an ELF file the dynamic loader acts on."""

    arch: Arch
    etype: str
    interpreter: str | None
    needed: tuple[str, ...]
    run_paths: tuple[str, ...]  # DT_RPATH then DT_RUNPATH entries, unexpanded
    soname: str | None
    version_needs: tuple[tuple[str, tuple[str, ...]], ...]  # (library, required non-weak versions)
    version_defs: frozenset[str]
    imports: frozenset[str]  # undefined dynamic symbols


def looks_like_elf(head: bytes) -> bool:
    return head[:4] == ELF_MAGIC


def read_facts(stream: BinaryIO) -> ElfFacts:
    """Parse `stream`; ElfProblem for anything that is not a sound ELF file."""
    head = stream.read(4)
    stream.seek(0)
    if len(head) < 4:
        raise ElfProblem("file is shorter than an ELF header")
    if not looks_like_elf(head):
        raise ElfProblem(f"not an ELF file (starts with {head!r})")
    try:
        return _parse(stream)
    except ElfProblem:
        raise
    except RecursionError as exc:
        raise ElfProblem("ELF structures nest too deeply") from exc
    except Exception as exc:  # noqa: BLE001 - pyelftools raises many types on crafted input
        detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise ElfProblem(f"truncated or corrupt ELF file ({detail})") from exc


def read_facts_bytes(data: bytes) -> ElfFacts:
    return read_facts(io.BytesIO(data))


def read_facts_path(path: Path) -> ElfFacts:
    try:
        with open(path, "rb") as f:
            return read_facts(f)
    except OSError as exc:
        raise ElfProblem(f"cannot read it: {exc.strerror}") from exc


def _parse(stream: BinaryIO) -> ElfFacts:
    # pyelftools on first use (see kernel.build.elfclosure.read_elf)
    from elftools.elf.dynamic import DynamicSection, DynamicSegment
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection
    from elftools.elf.sections import SymbolTableSection
    from elftools.elf.segments import InterpSegment

    elf = ELFFile(stream)
    arch = Arch(elf.elfclass, elf.little_endian, str(elf["e_machine"]))
    etype = str(elf["e_type"])
    if elf.num_sections() > MAX_SECTIONS:
        raise ElfProblem(f"{elf.num_sections()} sections, more than any real binary has")
    interpreter = None
    dynamic_segment: DynamicSegment | None = None
    for segment in itertools.islice(elf.iter_segments(), MAX_SECTIONS):
        if isinstance(segment, InterpSegment):
            interpreter = segment.get_interp_name()
        elif isinstance(segment, DynamicSegment):
            dynamic_segment = segment
    needed: list[str] = []
    rpath: list[str] = []
    runpath: list[str] = []
    soname = None
    needs: list[tuple[str, tuple[str, ...]]] = []
    defs: set[str] = set()
    imports: set[str] = set()
    dynamic_seen = False
    for section in itertools.islice(elf.iter_sections(), MAX_SECTIONS):
        if isinstance(section, DynamicSection) and not dynamic_seen:
            dynamic_seen = True
            soname = _read_tags(section, needed, rpath, runpath) or soname
        elif isinstance(section, GNUVerNeedSection):
            for verneed, auxes in itertools.islice(section.iter_versions(), MAX_VERSIONS):
                wanted = tuple(
                    str(aux.name)
                    for aux in itertools.islice(auxes, MAX_VERSIONS)
                    if not aux["vna_flags"] & VER_FLG_WEAK
                )
                needs.append((str(verneed.name), wanted))
        elif isinstance(section, GNUVerDefSection):
            for verdef, auxes in itertools.islice(section.iter_versions(), MAX_VERSIONS):
                first = next(iter(auxes), None)
                if first is not None and not verdef["vd_flags"] & VER_FLG_BASE:
                    defs.add(str(first.name))
        elif isinstance(section, SymbolTableSection) and section["sh_type"] == "SHT_DYNSYM":
            if section["sh_entsize"] == 0:
                raise ElfProblem("its dynamic symbol table has entries of size 0")
            for symbol in itertools.islice(section.iter_symbols(), MAX_SYMBOLS):
                if symbol["st_shndx"] == "SHN_UNDEF" and symbol.name:
                    imports.add(str(symbol.name))
    if not dynamic_seen and dynamic_segment is not None:
        soname = _read_tags(dynamic_segment, needed, rpath, runpath) or soname
    if interpreter is not None and ("\0" in interpreter or not interpreter):
        raise ElfProblem("its PT_INTERP names no interpreter")
    return ElfFacts(
        arch=arch,
        etype=etype,
        interpreter=interpreter,
        needed=tuple(dict.fromkeys(needed)),
        run_paths=tuple(p for p in [*rpath, *runpath] if p),
        soname=soname,
        version_needs=tuple(needs),
        version_defs=frozenset(defs),
        imports=frozenset(imports),
    )


def _read_tags(
    dynamic: DynamicSection | DynamicSegment, needed: list[str], rpath: list[str], runpath: list[str]
) -> str | None:
    soname = None
    for tag in itertools.islice(dynamic.iter_tags(), MAX_TAGS):
        tag_: Any = tag  # pyelftools sets needed/rpath/runpath/soname per tag kind
        kind = tag_.entry.d_tag
        if kind == "DT_NEEDED":
            needed.append(str(tag_.needed))
        elif kind == "DT_RPATH":
            rpath.extend(str(tag_.rpath).split(":"))
        elif kind == "DT_RUNPATH":
            runpath.extend(str(tag_.runpath).split(":"))
        elif kind == "DT_SONAME":
            soname = str(tag_.soname)
        elif kind == "DT_NULL":
            break
    return soname


def bzimage_arch(head: bytes) -> Arch:
    """The architecture an x86 bzImage runs: 64-bit when its boot header says it can enter 64-bit mode.

    Boot protocol 2.12+ carries xloadflags at 0x236 (bit 0: XLF_KERNEL_64); older kernels do not say,
    and qemu-system-x86_64 boots them as x86-64.
    """
    if len(head) < 0x238 or head[0x202:0x206] != b"HdrS":
        raise ElfProblem("not an x86 bzImage (no 'HdrS' boot header at 0x202)")
    version = int.from_bytes(head[0x206:0x208], "little")
    if version >= 0x020C:
        xloadflags = int.from_bytes(head[0x236:0x238], "little")
        return X86_64 if xloadflags & 1 else I386
    return X86_64


@dataclass(frozen=True)
class Library:
    """A library the loader would pick: where (for messages), its facts, and whether the image holds it."""

    path: str
    facts: ElfFacts
    in_image: bool = True


class Resolver(Protocol):
    """Finds what the guest's loader would load for a DT_NEEDED name or an interpreter path."""

    def find(self, name: str, needer_path: str, needer: ElfFacts) -> Library | None: ...

    def find_path(self, path: str) -> Library | None: ...


def search_dirs(needer_path: str, needer: ElfFacts, extra: Iterable[str]) -> list[str]:
    """The folders the loader searches: run paths ($ORIGIN expanded), then `extra`, then the defaults."""
    origin = posixpath.dirname(needer_path)
    dirs = [p.replace("${ORIGIN}", origin).replace("$ORIGIN", origin) for p in needer.run_paths]
    return [posixpath.normpath(d) for d in [*dirs, *extra, *DEFAULT_LIBRARY_DIRS] if d.startswith("/")]


class FileResolver:
    """Resolve inside a file system view: `lookup(path)` gives a readable host file for a guest path."""

    def __init__(
        self,
        lookup: Callable[[str], Path | None],
        extra_dirs: Iterable[str] = (),
        in_image: Callable[[str], bool] | None = None,
    ) -> None:
        self._lookup = lookup
        self._extra = tuple(extra_dirs)
        self._in_image = in_image
        self._cache: dict[str, ElfFacts | None] = {}

    def facts(self, path: str) -> ElfFacts | None:
        if path not in self._cache:
            host = self._lookup(path)
            facts: ElfFacts | None = None
            if host is not None:
                try:
                    facts = read_facts_path(host)
                except ElfProblem:
                    facts = None
            self._cache[path] = facts
        return self._cache[path]

    def find_path(self, path: str) -> Library | None:
        facts = self.facts(path)
        if facts is None:
            return None
        return Library(path, facts, self._in_image(path) if self._in_image else True)

    def find(self, name: str, needer_path: str, needer: ElfFacts) -> Library | None:
        if "/" in name:
            return self.find_path(name if name.startswith("/") else posixpath.join("/", name))
        for folder in search_dirs(needer_path, needer, self._extra):
            candidate = posixpath.join(folder, name)
            facts = self.facts(candidate)
            if facts is not None and facts.arch == needer.arch:
                return Library(candidate, facts, self._in_image(candidate) if self._in_image else True)
        return None


class ChainResolver:
    """Try resolvers in order: e.g. a jar's own sibling libraries first, then the image's."""

    def __init__(self, *resolvers: Resolver) -> None:
        self._resolvers = resolvers

    def find(self, name: str, needer_path: str, needer: ElfFacts) -> Library | None:
        for resolver in self._resolvers:
            found = resolver.find(name, needer_path, needer)
            if found is not None:
                return found
        return None

    def find_path(self, path: str) -> Library | None:
        for resolver in self._resolvers:
            found = resolver.find_path(path)
            if found is not None:
                return found
        return None


class SiblingResolver:
    """Libraries shipped next to each other (in one jar folder): apps load them together."""

    def __init__(self, libraries: dict[str, Library]) -> None:
        self._by_name = dict(libraries)
        for lib in libraries.values():
            if lib.facts.soname:
                self._by_name.setdefault(lib.facts.soname, lib)

    def find(self, name: str, needer_path: str, needer: ElfFacts) -> Library | None:
        lib = self._by_name.get(posixpath.basename(name))
        return lib if lib is not None and lib.facts.arch == needer.arch else None

    def find_path(self, path: str) -> Library | None:
        return None


def _newest_glibc(defs: Iterable[str]) -> str | None:
    versions = []
    for name in defs:
        if name.startswith("GLIBC_") and name[6:].replace(".", "").isdigit():
            versions.append((tuple(int(p) for p in name[6:].split(".") if p), name))
    return max(versions)[1] if versions else None


def check_object(
    path: str,
    facts: ElfFacts,
    resolver: Resolver,
    expected: Arch,
    app_code: bool,
    where: str = "the image",
) -> list[Finding]:
    """Findings for one ELF file as the guest's loader would see it."""
    if facts.arch != expected:
        return [
            Finding(
                "error",
                "elf-arch",
                path,
                f"is a {facts.arch.describe()} ELF file, but the kernel runs {expected.describe()}",
                "replace it with a build for x86-64 Linux (for a jar, the linux-x86-64 variant)",
            )
        ]
    if facts.etype not in ("ET_EXEC", "ET_DYN"):
        return []  # kernel modules and object files: only the machine matters
    findings = _interpreter_findings(path, facts, resolver, where)
    resolved, needed_findings = _needed_findings(path, facts, resolver, where)
    findings += needed_findings
    findings += _version_findings(path, facts, resolver, resolved)
    if app_code:
        findings += _spawn_findings(path, facts)
    return findings


def _interpreter_findings(path: str, facts: ElfFacts, resolver: Resolver, where: str) -> list[Finding]:
    """PT_INTERP: the loader the kernel starts must be there and of the same machine."""
    if facts.interpreter is None:
        return []
    interp = resolver.find_path(facts.interpreter)
    if interp is None:
        return [
            Finding(
                "error",
                "elf-interp",
                path,
                f"its interpreter {facts.interpreter} is not in {where}",
                "link it against the system's dynamic loader (/lib64/ld-linux-x86-64.so.2)",
            )
        ]
    if interp.facts.arch != facts.arch:
        return [
            Finding(
                "error",
                "elf-interp",
                path,
                f"its interpreter {facts.interpreter} is for {interp.facts.arch.describe()}",
                "rebuild it for x86-64 Linux",
            )
        ]
    return []


def _needed_findings(
    path: str, facts: ElfFacts, resolver: Resolver, where: str
) -> tuple[dict[str, Library], list[Finding]]:
    """DT_NEEDED: each library must resolve, and be one the image holds; returns what resolved."""
    findings: list[Finding] = []
    resolved: dict[str, Library] = {}
    for name in facts.needed:
        lib = resolver.find(name, path, facts)
        if lib is None:
            findings.append(
                Finding(
                    "error",
                    "elf-needed",
                    path,
                    f"needs {name}, which is not in {where}",
                    f"ship {name} next to it, or use a build of it that does not need {name}",
                )
            )
            continue
        resolved[name] = lib
        if not lib.in_image:
            findings.append(
                Finding(
                    "warning",
                    "elf-needed-host",
                    path,
                    f"needs {name}, found on this machine at {lib.path} but not among the libraries the "
                    "image will hold",
                    f"bundle {name} next to the native library in the jar",
                )
            )
    return resolved, findings


def _version_findings(
    path: str, facts: ElfFacts, resolver: Resolver, resolved: dict[str, Library]
) -> list[Finding]:
    """Versioned symbols (GLIBC_2.xx, ...): the library the loader picks must define each one needed."""
    findings: list[Finding] = []
    for library, versions in facts.version_needs:
        provider = resolved.get(library)
        if provider is None:
            if library in facts.needed:
                continue  # already reported as missing
            provider = resolver.find(library, path, facts)
            if provider is None:
                continue  # a version reference to a library pulled in by another one
        if not provider.facts.version_defs:
            continue  # the loader only warns about libraries without version information
        missing = [v for v in versions if v not in provider.facts.version_defs]
        if missing:
            newest = _newest_glibc(provider.facts.version_defs)
            glibc = newest and any(v.startswith("GLIBC_") for v in missing)
            has = f" (it provides up to {newest})" if glibc else ""
            findings.append(
                Finding(
                    "error",
                    "elf-version",
                    path,
                    f"needs {', '.join(missing)} from {library}, which {provider.path} does not define{has}",
                    "use a build of it made for an older glibc, or run osv-java on a system whose "
                    f"{library} is at least that new",
                )
            )
    return findings


def _spawn_findings(path: str, facts: ElfFacts) -> list[Finding]:
    """App code that starts other programs: worth knowing in a single-application VM."""
    calls = sorted(facts.imports & SPAWN_CALLS)
    if not calls:
        return []
    return [
        Finding(
            "info",
            "elf-spawn",
            path,
            f"calls {', '.join(calls)}: it starts other programs, which run as a second process "
            "inside the single-application VM",
            "make sure every program it starts is in the image, and size -m for both",
        )
    ]
