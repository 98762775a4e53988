"""The configurations of an experiment and the order of its runs (pure: no processes, no files).

A configuration is one value per axis (collector, maximum heap, JDK, and the run options
--hugepages/--dynamic-heap); None on an axis means "no flag", so the configuration with None everywhere
is what `osv-java run` does unasked: the default every other configuration is measured against. Runs
are interleaved: each round runs every configuration once, in an order shuffled per round from a
seed, so that drift of the machine (other load, thermal state, caches) falls on all alike.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass

from jvmbridge.errors import UsageError

# collector name -> (JVM flag, the name jvmbridge.jdk reports for it)
GCS: dict[str, tuple[str, str]] = {
    "g1": ("-XX:+UseG1GC", "G1"),
    "parallel": ("-XX:+UseParallelGC", "Parallel"),
    "serial": ("-XX:+UseSerialGC", "Serial"),
    "zgc": ("-XX:+UseZGC", "Z"),
    "shenandoah": ("-XX:+UseShenandoahGC", "Shenandoah"),
}
GC_ALIASES = {"z": "zgc", "g1gc": "g1", "parallelgc": "parallel", "serialgc": "serial", "shen": "shenandoah"}
DEFAULT_WORD = "default"
_HEAP = re.compile(r"^\d+[kKmMgG]?$")
_SWITCH = re.compile(r"^[a-z0-9-]+$")


@dataclass(frozen=True)
class Config:
    """One configuration: None on an axis means that axis's flag is not given."""

    gc: str | None = None
    heap: str | None = None
    jdk: str | None = None
    hugepages: str | None = None
    dynamic_heap: str | None = None

    @property
    def is_default(self) -> bool:
        return self.gc is None and self.heap is None and self.hugepages is None and self.dynamic_heap is None

    @property
    def key(self) -> str:
        """A short stable name, also a folder name: g1-512m, default-jdk25, parallel-1g-hp-off."""
        parts = [self.gc or DEFAULT_WORD]
        if self.heap:
            parts.append(self.heap.lower())
        if self.jdk:
            parts.append("jdk" + re.sub(r"[^A-Za-z0-9.]+", "_", self.jdk.rstrip("/").rsplit("/", 1)[-1]))
        if self.hugepages:
            parts.append(f"hp-{self.hugepages}")
        if self.dynamic_heap:
            parts.append(f"dh-{self.dynamic_heap}")
        return "-".join(parts)

    def jvm_options(self) -> list[str]:
        options = [GCS[self.gc][0]] if self.gc else []
        if self.heap:
            options.append(f"-Xmx{self.heap}")
        return options

    def run_options(self) -> list[str]:
        """The `osv-java run` options of this configuration (before the app)."""
        options = [f"--jdk={self.jdk}"] if self.jdk else []
        if self.hugepages:
            options.append(f"--hugepages={self.hugepages}")
        if self.dynamic_heap:
            options.append(f"--dynamic-heap={self.dynamic_heap}")
        return options + [f"--jvm-opt={o}" for o in self.jvm_options()]

    @property
    def label(self) -> str:
        """What a user would type: the flags, or 'the default' when there are none."""
        words = self.jvm_options()
        if self.hugepages:
            words.append(f"--hugepages {self.hugepages}")
        if self.dynamic_heap:
            words.append(f"--dynamic-heap {self.dynamic_heap}")
        if self.jdk:
            words.insert(0, f"--jdk {self.jdk}")
        text = " ".join(words)
        return text if not self.is_default else f"default{f' (--jdk {self.jdk})' if self.jdk else ''}"


@dataclass(frozen=True)
class Run:
    """One planned run: its position in the schedule, its configuration, and whether it is a warm-up."""

    index: int
    config: Config
    round: int
    warmup: bool


def split(text: str | None) -> list[str]:
    return [w.strip() for w in (text or "").split(",") if w.strip()]


def parse_gcs(text: str | None) -> list[str | None]:
    out: list[str | None] = []
    for word in split(text):
        name = GC_ALIASES.get(word.lower(), word.lower())
        if name == DEFAULT_WORD:
            out.append(None)
        elif name in GCS:
            out.append(name)
        else:
            raise UsageError(f"--gcs: unknown collector {word!r}",
                             hint=f"choose from {', '.join([*GCS, DEFAULT_WORD])}")
    return list(dict.fromkeys(out)) or [None]


def parse_heaps(text: str | None) -> list[str | None]:
    out: list[str | None] = []
    for word in split(text):
        if word.lower() == DEFAULT_WORD:
            out.append(None)
        elif _HEAP.match(word):
            out.append(word.lower())
        else:
            raise UsageError(f"--heaps: {word!r} is not a heap size", hint="sizes as for -Xmx: 256m, 1g, 1536m")
    return list(dict.fromkeys(out)) or [None]


def parse_jdks(text: str | None) -> list[str | None]:
    return list(dict.fromkeys(split(text))) or [None]  # type: ignore[return-value]


def parse_switch(text: str | None, option: str) -> list[str | None]:
    """--hugepages/--dynamic-heap axis values, passed through to `osv-java run` as given."""
    out: list[str | None] = []
    for word in split(text):
        if not _SWITCH.match(word):
            raise UsageError(f"--{option}: {word!r} is not a value osv-java run takes")
        out.append(None if word == DEFAULT_WORD else word)
    return list(dict.fromkeys(out)) or [None]


def design(gcs: list[str | None], heaps: list[str | None], jdks: list[str | None],
           hugepages: list[str | None] | None = None, dynamic_heap: list[str | None] | None = None) -> list[Config]:
    """Every combination, plus the default (no flags) on each JDK when the axes do not include it."""
    configs = [Config(g, h, j, hp, dh) for j, g, h, hp, dh in
               itertools.product(jdks, gcs, heaps, hugepages or [None], dynamic_heap or [None])]
    defaults = [Config(jdk=jdk) for jdk in jdks]
    return list(dict.fromkeys([*defaults, *configs]))


def reference(configs: list[Config]) -> Config:
    """The default the others are compared with: no flags, on the first JDK asked for."""
    return next(c for c in configs if c.is_default)


def schedule(configs: list[Config], repeats: int, warmup: int, seed: int) -> list[Run]:
    """Rounds of every configuration in a freshly shuffled order; warm-up rounds first."""
    rng = random.Random(seed)
    runs: list[Run] = []
    for rnd in range(warmup + repeats):
        order = list(configs)
        rng.shuffle(order)
        runs += [Run(len(runs) + i, c, rnd, rnd < warmup) for i, c in enumerate(order)]
    return runs
