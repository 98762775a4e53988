"""The packages depend one way, osv_java -> kernel -> gc_hooks -> jvmbridge, with no import cycles between
modules. Every import counts: inside functions and under TYPE_CHECKING too."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("jvmbridge", "gc_hooks", "kernel", "osv_java")  # lowest first
STDLIB_ONLY = ("kernel.formats",)  # byte formats: no project imports at all


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_imports() -> dict[str, set[str]]:
    """Module -> the project modules it imports (anywhere in the file)."""
    modules = {_module_name(p): p for layer in LAYERS for p in (ROOT / layer).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target.split(".")[0] in LAYERS:
                    found.add(target)
        graph[name] = found
    return graph


def test_every_import_points_down_or_across() -> None:
    upward = []
    for module, imported in project_imports().items():
        rank = LAYERS.index(module.split(".")[0])
        upward += [f"{module} -> {target}" for target in imported if LAYERS.index(target.split(".")[0]) > rank]
    assert upward == []


def test_byte_formats_import_nothing_of_the_project() -> None:
    graph = project_imports()
    leaks = [f"{m} -> {t}" for m, ts in graph.items() if m.startswith(STDLIB_ONLY) for t in ts
             if not t.startswith(STDLIB_ONLY)]
    assert leaks == []


def test_the_guest_imports_only_what_is_zipped_with_it() -> None:
    """PID 1 runs with the standard library and the guest-safe parts of gc_hooks and jvmbridge."""
    graph = project_imports()
    allowed = ("kernel.guest", "gc_hooks", "jvmbridge")
    leaks = [f"{m} -> {t}" for m, ts in graph.items() if m.startswith("kernel.guest") for t in ts
             if not t.startswith(allowed)]
    assert leaks == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    graph = project_imports()
    # a package's __init__ is imported with each of its modules: edges into it are not cycles
    graph = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
