"""What can run here, decided before anything starts: a missing JDK, runtime, program or QEMU makes a
cell skipped with the reason, never passed."""

from __future__ import annotations

import functools
from pathlib import Path

from jvmbridge.errors import OsvJavaError
from osv_java.compat.model import BUILD_HINT, Cell, CellResult


@functools.cache
def _jdk_problem(spec: str) -> str | None:
    from jvmbridge import jdk as jdks

    try:
        jdks.select(spec)
    except OsvJavaError as exc:
        return f"JDK {spec} is not installed: {exc.message}"
    return None


@functools.cache
def _qemu_problem() -> str | None:
    from kernel.vm import qemu

    try:
        qemu.qemu_binary()
    except OsvJavaError as exc:
        return f"{exc.message} (needed by --target vm)"
    return None


@functools.cache
def _runtime_problem(language: str, library_only: bool) -> str | None:
    from kernel.build import languages

    try:
        languages.runtime_classpath(languages.by_name(language), library_only=library_only)
    except OsvJavaError as exc:
        return f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    return None


@functools.cache
def _app_problem(name: str) -> str | None:
    from osv_java.compat import thirdparty

    try:
        thirdparty.classpath(thirdparty.by_name(name))
    except OsvJavaError as exc:
        return f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    return None


def precheck(cell: Cell, examples: Path) -> CellResult | None:
    """A skipped (or failed) result when `cell` cannot run here, None when it can."""
    from kernel.build import languages

    def skipped(reason: str) -> CellResult:
        return CellResult(cell, "skipped", reason=reason)

    problem = _jdk_problem(cell.jdk) or (_qemu_problem() if cell.target == "vm" else None)
    if problem:
        return skipped(problem)
    if cell.kind == "app":
        problem = _app_problem(cell.name)
        return skipped(problem) if problem else None
    program = examples / cell.name / cell.program
    if not program.is_file():
        return CellResult(cell, "failed", reason=f"{program} is missing", details=(f"hint: {BUILD_HINT}",))
    if program.suffix not in (".jar", ".zip"):
        try:
            language = languages.detect(program)
        except OsvJavaError as exc:
            return CellResult(cell, "failed", reason=exc.message, details=(f"hint: {exc.hint}",))
        if language.runs_scripts:
            problem = _runtime_problem(language.name, False)
    for name in cell.with_runtimes:
        problem = problem or _runtime_problem(name, True)
    return skipped(problem) if problem else None


def shares_full_jre(cell: Cell, examples: Path) -> bool:
    """True when the cell's image links every JDK module, so its JRE is the one other such cells use."""
    from kernel.build import languages

    if cell.kind == "app":
        return False  # run with -cp: jdeps decides its modules
    names = list(cell.with_runtimes)
    program = examples / cell.name / cell.program
    if program.suffix not in (".jar", ".zip"):
        names.append(languages.detect(program).name)
    return any(languages.by_name(n).needs_all_modules for n in names)


def prepare_vm() -> str | None:
    """Fetch the kernel and decide KVM or TCG once, so no cell does it (or says so) on its own."""
    from kernel import linux
    from kernel.vm import qemu

    try:
        kernel = linux.default_kernel(progress=True)
        qemu.choose_accel("auto", kernel.image)
    except OsvJavaError as exc:
        return f"cannot boot VMs here: {exc.message}"
    return None
