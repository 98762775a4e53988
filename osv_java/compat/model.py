"""The compatibility matrix's data: cells, their results, what an example expects, and the plan."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from jvmbridge.errors import OsvJavaError

ROOT = Path(__file__).resolve().parents[2]


EXAMPLES = ROOT / "examples" / "lang"


TARGETS = ("vm", "process")


DEFAULT_JDKS = "17,25"


DEFAULT_TIMEOUT = 900.0


EXIT_OSV_FAILURE = 125


EXIT_SIGINT = 130


CONSOLE_LINES = 12


BUILD_HINT = "run `python -m examples.build` to compile the examples"


@dataclass(frozen=True)
class Cell:
    """One run of the matrix: a language example's program (or a third-party program) on a JDK and target."""

    kind: str  # "lang" or "app"
    name: str  # the example's folder name, or the third-party program's name
    program: str  # file in the example folder; the program's name for "app"
    jdk: str  # feature version ("17") or a JDK folder, as --jdk takes it
    target: str  # "vm" or "process"
    with_runtimes: tuple[str, ...] = ()

    @property
    def row(self) -> str:
        if self.kind == "app":
            return f"{self.name} (app)"
        extra = f" --with {','.join(self.with_runtimes)}" if self.with_runtimes else ""
        return f"{self.name} {self.program}{extra}"

    @property
    def column(self) -> str:
        return f"jdk{self.jdk} {self.target}"

    @property
    def id(self) -> str:
        return f"{self.row} [{self.column}]"


@dataclass
class CellResult:
    """What happened in a cell; `reason` is one line, `details` the expected-vs-got and console lines."""

    cell: Cell
    status: str  # "passed", "failed" or "skipped"
    seconds: float = 0.0  # the whole cell, image build included
    reason: str = ""
    details: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    build_seconds: float = 0.0  # of `seconds`, building the image (VM cells; fast when cached)


@dataclass(frozen=True)
class Expected:
    """An example's expected.json: what to run it with and its exact result."""

    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    stdout: str
    stderr: str
    exit: int
    runs: tuple[tuple[str, tuple[str, ...]], ...]


class CompatError(OsvJavaError):
    """The matrix cannot be planned (a bad example folder, an unknown name)."""


def load_expected(folder: Path) -> Expected:
    """Read `folder`/expected.json; CompatError naming the file and the missing key."""
    path = folder / "expected.json"
    try:
        data = json.loads(path.read_text())
        return Expected(
            args=tuple(str(a) for a in data["args"]),
            env=tuple((str(k), str(v)) for k, v in data["env"].items()),
            stdout=str(data["stdout"]),
            stderr=str(data["stderr"]),
            exit=int(data["exit"]),
            runs=tuple((str(r["program"]), tuple(str(w) for w in r.get("with", ()))) for r in data["runs"]),
        )
    except OSError as exc:
        raise CompatError(f"cannot read {path}: {exc.strerror}",
                          hint="each example folder needs an expected.json") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CompatError(f"{path} is not a valid expected.json ({type(exc).__name__}: {exc})",
                          hint="see examples/lang/README.md for its keys") from None


def example_names(examples: Path) -> list[str]:
    """The example folders under `examples`, in the language table's order, then the others by name."""
    from kernel.build.languages import LANGUAGES

    found = sorted(p.name for p in examples.iterdir() if (p / "expected.json").is_file())
    order = {lang.name: i for i, lang in enumerate(LANGUAGES)}
    return sorted(found, key=lambda n: (order.get(n, len(order)), n))


def plan(langs: Sequence[str], jdks: Sequence[str], targets: Sequence[str], apps: Sequence[str],
         examples: Path) -> list[Cell]:
    """Every cell of the matrix: each run of each example and each program, on each JDK and target."""
    expected = {name: load_expected(examples / name) for name in langs}
    cells: list[Cell] = []
    for jdk in jdks:
        for target in targets:
            for name in langs:
                cells += [Cell("lang", name, program, jdk, target, with_)
                          for program, with_ in expected[name].runs]
            cells += [Cell("app", name, name, jdk, target) for name in apps]
    return cells


def split_list(value: str, known: Sequence[str], what: str) -> list[str]:
    """A comma-separated option value: 'all' is every known name, 'none' or '' is nothing."""
    words = [w.strip() for w in value.split(",") if w.strip()]
    if words in (["all"],):
        return list(known)
    if words in ([], ["none"]):
        return []
    unknown = [w for w in words if w not in known]
    if unknown:
        raise click.BadParameter(f"unknown {what} {', '.join(unknown)} (known: {', '.join(known)})")
    return list(dict.fromkeys(words))
