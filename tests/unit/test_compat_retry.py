"""Which failed compat cells are run again: a guest JVM's crash in its own JIT code under emulation."""

from __future__ import annotations

from osv_java.compat.judge import emulated_jit_crash
from osv_java.compat.model import Cell, CellResult

HS_ERR = (
    "exit 134, expected 3",
    "stdout line 1: expected 'Hello, world! (Scala)\\n', got '#\\n'",
    "--- stdout (18 lines, first 12) ---",
    "#",
    "# A fatal error has been detected by the Java Runtime Environment:",
    "#",
    "#  SIGILL (0x4) at pc=0x00007f0d31214d24, pid=100, tid=105",
    "#",
    "# JRE version: OpenJDK Runtime Environment (17.0.15+6) (build 17.0.15+6-Debian-1deb12u1)",
    "# Java VM: OpenJDK 64-Bit Server VM (17.0.15+6-Debian-1deb12u1, mixed mode, sharing, tiered)",
    "# Problematic frame:",
    "# J 1430 c1 scala.reflect.io.ZipArchive$.splitPath(Ljava/lang/String;Z)Ljava/lang/String; (98 bytes)",
)


def _result(target: str, details: tuple[str, ...], status: str = "failed") -> CellResult:
    return CellResult(Cell("lang", "scala", "main.scala", "17", target), status, details=details)


def test_a_vm_jvm_dying_in_jit_code_is_retried() -> None:
    assert emulated_jit_crash(_result("vm", HS_ERR)) == "SIGILL"
    segv = tuple(line.replace("SIGILL (0x4)", "SIGSEGV (0xb)") for line in HS_ERR)
    assert emulated_jit_crash(_result("vm", segv)) == "SIGSEGV"


def test_other_failures_are_not_retried() -> None:
    assert emulated_jit_crash(_result("process", HS_ERR)) is None, "no emulation on the host"
    native = tuple(line.replace("# J 1430 c1 ", "# C  [libfoo.so+0x1234] ") for line in HS_ERR)
    assert emulated_jit_crash(_result("vm", native)) is None, "a crash in native code is the app's"
    assert emulated_jit_crash(_result("vm", HS_ERR[:2])) is None, "a plain wrong answer"
    assert emulated_jit_crash(_result("vm", HS_ERR, status="passed")) is None
