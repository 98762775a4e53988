"""The shared-library closure of ELF programs, resolved with pyelftools the way lddtree does (no ldd).

For each ELF file we read its class, byte order, machine, interpreter, DT_NEEDED, DT_RPATH/DT_RUNPATH,
and resolve every needed library against $ORIGIN-relative run paths, then the default library folders,
keeping only libraries of the same class, byte order and machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jvmbridge.errors import BuildError

DEFAULT_LIBRARY_DIRS = (
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
)


@dataclass(frozen=True)
class ElfInfo:
    """What the dynamic loader needs to know about one ELF file."""

    path: Path
    elfclass: int  # 32 or 64
    little_endian: bool
    machine: str  # e_machine, e.g. "EM_X86_64"
    interpreter: str | None
    needed: tuple[str, ...]
    run_paths: tuple[str, ...]  # DT_RPATH and DT_RUNPATH entries, $ORIGIN expanded

    def compatible(self, other: ElfInfo) -> bool:
        return (self.elfclass, self.little_endian, self.machine) == (
            other.elfclass,
            other.little_endian,
            other.machine,
        )


def is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def read_elf(path: Path) -> ElfInfo:
    """Parse the headers and dynamic section of `path`; BuildError when it is not a sound ELF file."""
    # pyelftools on first use: importing it costs every new image's build 30 ms, most of which read no ELF
    from elftools.common.exceptions import ELFError
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile
    from elftools.elf.segments import InterpSegment

    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            interpreter = None
            needed: list[str] = []
            run_paths: list[str] = []
            for segment in elf.iter_segments():
                if isinstance(segment, InterpSegment):
                    interpreter = segment.get_interp_name()
            for section in elf.iter_sections():
                if not isinstance(section, DynamicSection):
                    continue
                for tag_ in section.iter_tags():
                    tag: Any = tag_  # pyelftools sets needed/rpath/runpath per tag kind
                    if tag.entry.d_tag == "DT_NEEDED":
                        needed.append(tag.needed)
                    elif tag.entry.d_tag == "DT_RPATH":
                        run_paths.extend(tag.rpath.split(":"))
                    elif tag.entry.d_tag == "DT_RUNPATH":
                        run_paths.extend(tag.runpath.split(":"))
            origin = str(path.parent)
            expanded = tuple(
                p.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for p in run_paths if p
            )
            return ElfInfo(
                path=path,
                elfclass=elf.elfclass,
                little_endian=elf.little_endian,
                machine=elf["e_machine"],
                interpreter=interpreter,
                needed=tuple(needed),
                run_paths=expanded,
            )
    except (ELFError, ValueError, KeyError, AssertionError, EOFError, UnicodeDecodeError) as exc:
        raise BuildError(
            f"{path} is not a readable ELF file ({exc})",
            hint="replace it with an intact copy built for x86-64 Linux",
        ) from exc
    except OSError as exc:
        raise BuildError(
            f"cannot read {path}: {exc.strerror}", hint="check the file exists and is readable"
        ) from exc


@dataclass
class Closure:
    """Every file needed to run some ELF programs: the programs, their interpreter and libraries."""

    files: dict[Path, ElfInfo] = field(default_factory=dict)  # real path -> info
    sonames: dict[str, Path] = field(default_factory=dict)  # soname -> the real path chosen for it
    aliases: dict[Path, Path] = field(default_factory=dict)  # path the loader will look at -> real path
    missing: dict[str, list[Path]] = field(default_factory=dict)  # soname -> files that needed it


def _find_library(name: str, needer: ElfInfo, search: Iterable[str]) -> tuple[Path, ElfInfo] | None:
    for folder in [*needer.run_paths, *search]:
        candidate = Path(folder) / name
        if candidate.is_file() and is_elf(candidate):
            try:
                info = read_elf(candidate.resolve())
            except BuildError:
                continue
            if info.compatible(needer):
                return candidate, info
    return None


def resolve(
    roots: Iterable[Path],
    extra_dirs: Iterable[str] = (),
    library_dirs: Iterable[str] = DEFAULT_LIBRARY_DIRS,
) -> Closure:
    """Resolve the closure of `roots`; `extra_dirs` are searched first (like LD_LIBRARY_PATH)."""
    search = [*extra_dirs, *library_dirs]
    closure = Closure()
    queue: list[ElfInfo] = []
    for root in roots:
        info = read_elf(root.resolve())
        if info.path not in closure.files:
            closure.files[info.path] = info
            queue.append(info)
    while queue:
        info = queue.pop(0)
        wanted = list(info.needed)
        if info.interpreter:
            interp = Path(info.interpreter)
            if interp.exists():
                real = interp.resolve()
                closure.aliases[interp] = real
                if real not in closure.files:
                    closure.files[real] = read_elf(real)
            else:
                closure.missing.setdefault(info.interpreter, []).append(info.path)
        for name in wanted:
            if name in closure.sonames:
                continue
            found = _find_library(name, info, search)
            if found is None:
                closure.missing.setdefault(name, []).append(info.path)
                continue
            looked_at, lib = found
            closure.sonames[name] = lib.path
            alias = Path(os.path.normpath(looked_at))
            if alias != lib.path:
                closure.aliases[alias] = lib.path
            if lib.path not in closure.files:
                closure.files[lib.path] = lib
                queue.append(lib)
    return closure
