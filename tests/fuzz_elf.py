"""Fuzz the validator's ELF checks: mutated real ELF files, alone and inside a jar.

Run with `python -m tests.fuzz_elf --minutes N` (or `make fuzz`). Each input is a real library from
this machine with bytes overwritten in the places the loader reads (ELF header, program and section
headers, the dynamic section, version tables, symbols) and sometimes truncated. The property: the
validator answers with facts or an ElfProblem, and a jar holding the bytes yields findings; any other
exception is a crash, saved under --crashes and reported. Hypothesis drives the mutations, so a crash
is shrunk to a small reproducer.
"""

from __future__ import annotations

import argparse
import collections
import io
import re
import sys
import time
import traceback
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel.validate.elf import X86_64, ElfProblem, Library, SiblingResolver, check_object, read_facts_bytes
from kernel.validate.jar import validate_jar_natives

SEED_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libffi.so.8",
    "/usr/lib/x86_64-linux-gnu/libz.so.1",
    "/bin/true",
    "/usr/lib/x86_64-linux-gnu/libacl.so.1",
    "/lib/x86_64-linux-gnu/libdl.so.2",
)
INTERESTING = (0, 1, 2, 3, 0x7F, 0x80, 0xFF, 0x40, 0x3E, 0xB7)
WIDE = (0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF, 1 << 40, 64, 56)


@dataclass(frozen=True)
class Seed:
    name: str
    data: bytes
    regions: tuple[tuple[int, int], ...]  # (offset, length) of the structures the loader reads


def _regions(data: bytes) -> tuple[tuple[int, int], ...]:
    regions = [(0, 64)]
    elf = ELFFile(io.BytesIO(data))
    regions.append((elf["e_phoff"], elf["e_phnum"] * elf["e_phentsize"]))
    regions.append((elf["e_shoff"], elf["e_shnum"] * elf["e_shentsize"]))
    wanted = (".dynamic", ".gnu.version_r", ".gnu.version_d", ".dynsym", ".dynstr", ".interp", ".gnu.version")
    for section in elf.iter_sections():
        if section.name in wanted and section["sh_size"]:
            regions.append((section["sh_offset"], min(section["sh_size"], 4096)))
    return tuple((o, n) for o, n in regions if n > 0 and o + n <= len(data))


def load_seeds() -> list[Seed]:
    seeds = []
    for candidate in SEED_CANDIDATES:
        path = Path(candidate)
        if not path.is_file():
            continue
        data = path.read_bytes()
        if data[:4] != b"\x7fELF" or len(data) > 512 << 10:
            continue
        seeds.append(Seed(path.name, data, _regions(data)))
    if not seeds:
        raise SystemExit("fuzz_elf: no seed ELF files found on this machine (looked at " + ", ".join(SEED_CANDIDATES))
    return seeds


@dataclass
class Stats:
    executions: int = 0
    parsed: int = 0
    problems: collections.Counter[str] = field(default_factory=collections.Counter)
    findings: collections.Counter[str] = field(default_factory=collections.Counter)
    crashes: list[str] = field(default_factory=list)
    slowest: float = 0.0


def mutate(seed: Seed, edits: list[tuple[int, int, int, int]], truncate: int | None) -> bytes:
    """Apply (region, offset, width, value) edits; `truncate` keeps only that fraction (per mille)."""
    data = bytearray(seed.data)
    for region, offset, width, value in edits:
        start, length = seed.regions[region % len(seed.regions)]
        pos = start + offset % length
        size = (1, 2, 4, 8)[width % 4]
        data[pos : pos + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
    if truncate is not None:
        data = data[: len(data) * truncate // 1000]
    return bytes(data)


def check_one(data: bytes, stats: Stats, with_jar: bool) -> None:
    """The property under test: facts or ElfProblem; findings from a jar, never an exception."""
    started = time.monotonic()
    stats.executions += 1
    try:
        facts = read_facts_bytes(data)
    except ElfProblem as exc:
        stats.problems[re.sub(r"\d+", "N", str(exc).split("(")[0]).strip()[:60]] += 1
    else:
        stats.parsed += 1
        lib = Library("fuzz.so", facts)
        resolver = SiblingResolver({"fuzz.so": lib})
        for finding in check_object("fuzz.so", facts, resolver, X86_64, app_code=True):
            stats.findings[finding.code] += 1
    if with_jar:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            zf.writestr("native/linux-x86_64/libfuzz.so", data)
        jar = _scratch_jar()
        jar.write_bytes(buffer.getvalue())
        for finding in validate_jar_natives(jar):
            stats.findings["jar:" + finding.code] += 1
    stats.slowest = max(stats.slowest, time.monotonic() - started)


_SCRATCH: list[Path] = []


def _scratch_jar() -> Path:
    return _SCRATCH[0]


def make_test(seeds: list[Seed], stats: Stats, examples: int):  # type: ignore[no-untyped-def]
    edit = st.tuples(
        st.integers(0, 15),
        st.integers(0, 1 << 16),
        st.integers(0, 3),
        st.one_of(st.sampled_from(INTERESTING), st.sampled_from(WIDE), st.integers(0, (1 << 64) - 1)),
    )

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=False,
    )
    @given(
        seed=st.sampled_from(seeds),
        edits=st.lists(edit, min_size=0, max_size=12),
        truncate=st.one_of(st.none(), st.integers(0, 1000)),
        with_jar=st.booleans(),
    )
    def fuzz(seed: Seed, edits: list[tuple[int, int, int, int]], truncate: int | None, with_jar: bool) -> None:
        check_one(mutate(seed, edits, truncate), stats, with_jar)

    return fuzz


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz_elf", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to fuzz")
    parser.add_argument("--crashes", type=Path, default=Path("fuzz-crashes"), help="where to save crashing inputs")
    args = parser.parse_args(argv)
    import tempfile

    seeds = load_seeds()
    stats = Stats()
    deadline = time.monotonic() + args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="osv-java-fuzz-") as tmp:
        _SCRATCH.append(Path(tmp) / "fuzz.jar")
        test = make_test(seeds, stats, examples=2000)
        rounds = 0
        while time.monotonic() < deadline:
            rounds += 1
            try:
                test()
            except Exception as exc:  # noqa: BLE001 - a crash is the result we are looking for
                args.crashes.mkdir(parents=True, exist_ok=True)
                report = args.crashes / f"crash-{rounds}.txt"
                report.write_text("".join(traceback.format_exception(exc)))
                stats.crashes.append(f"{type(exc).__name__}: {exc} (traceback in {report})")
                print(f"fuzz_elf: crash: {type(exc).__name__}: {exc}", file=sys.stderr)
    minutes = args.minutes
    print(
        f"fuzz_elf: {stats.executions} executions in {minutes:g} minutes over {len(seeds)} seeds "
        f"({', '.join(s.name for s in seeds)})"
    )
    print(f"  parsed as ELF: {stats.parsed}; rejected with ElfProblem: {stats.executions - stats.parsed}")
    print(f"  slowest single input: {stats.slowest:.3f} s")
    print("  ElfProblem kinds: " + ", ".join(f"{k} ({n})" for k, n in stats.problems.most_common(8)))
    print("  findings: " + ", ".join(f"{k} ({n})" for k, n in stats.findings.most_common()))
    print(f"  crashes (exceptions escaping the validator): {len(stats.crashes)}")
    for crash in stats.crashes:
        print(f"    {crash}")
    return 1 if stats.crashes else 0


if __name__ == "__main__":
    sys.exit(main())
