"""Compile the examples that need compiling into runnable jars next to their sources.

    python -m examples.build [--force] [--quiet]

Targets:
  examples/<name>/*.java (a folder holding Main.java)  -> examples/<name>/<name>.jar, Main-Class: Main
  examples/lang/java/src/*.java                        -> examples/lang/java/app.jar
  examples/lang/scala/src/*.scala (scalac)             -> examples/lang/scala/app.jar
  examples/lang/kotlin/src/*.kt (kotlinc)              -> examples/lang/kotlin/app.jar

Java is compiled with --release 17 so the jars run on JDK 17 and later; scalac and kotlinc run on
JDK 17 too (Debian's kotlinc 1.3 does not start on newer JDKs). A jar newer than all its sources is
left alone, so a second run costs only a few stat calls. Jars are written under a temporary name
and renamed into place, with fixed timestamps so the same sources give the same bytes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from jvmbridge import jdk as jdks
from jvmbridge.errors import DependencyError, OsvJavaError

EXAMPLES = Path(__file__).resolve().parent
RELEASE = 17
# Folders under examples/ that are not single-program Java examples.
_NOT_CORE = {"lang", "apps", "__pycache__"}
_FIXED_TIME = (2000, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class JarTarget:
    """One jar to build: its sources, the compiler that builds them, and its Main-Class."""

    jar: Path
    sources: tuple[Path, ...]
    compiler: str  # "javac", "scalac" or "kotlinc"
    main_class: str

    def up_to_date(self) -> bool:
        if not self.jar.exists():
            return False
        built = self.jar.stat().st_mtime
        return all(src.stat().st_mtime <= built for src in self.sources)


@dataclass(frozen=True)
class Result:
    target: JarTarget
    status: str  # "built", "up to date" or "failed"
    detail: str = ""


def _sources(folder: Path, pattern: str) -> tuple[Path, ...]:
    return tuple(sorted(folder.glob(pattern)))


def targets(root: Path = EXAMPLES) -> list[JarTarget]:
    """Everything under `root` that this module knows how to build, in a stable order."""
    found: list[JarTarget] = []
    if root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in _NOT_CORE):
            if (folder / "Main.java").exists():
                jar = folder / f"{folder.name}.jar"
                found.append(JarTarget(jar, _sources(folder, "*.java"), "javac", "Main"))
    lang = root / "lang"
    for name, compiler, pattern, main in (
        ("java", "javac", "*.java", "Main"),
        ("scala", "scalac", "*.scala", "Main"),
        ("kotlin", "kotlinc", "*.kt", "MainKt"),
    ):
        sources = _sources(lang / name / "src", pattern)
        if sources:
            found.append(JarTarget(lang / name / "app.jar", sources, compiler, main))
    return found


def _jdk_home() -> Path:
    """A JDK 17 (the oldest we support), else any JDK that can compile for release 17."""
    try:
        return jdks.select(str(RELEASE)).home
    except OsvJavaError:
        pass
    for candidate in jdks.find_all():
        if candidate.feature >= RELEASE and candidate.tool("javac").exists():
            return candidate.home
    raise DependencyError(
        f"no JDK {RELEASE} or later with javac found",
        hint=f"apt-get install openjdk-{RELEASE}-jdk-headless",
    )


def _compile_command(target: JarTarget, out: Path, java_home: Path) -> list[str]:
    sources = [str(s) for s in target.sources]
    if target.compiler == "javac":
        javac = java_home / "bin" / "javac"
        return [str(javac), "--release", str(RELEASE), "-encoding", "UTF-8", "-d", str(out), *sources]
    tool = shutil.which(target.compiler)
    if tool is None:
        package = {"scalac": "scala", "kotlinc": "kotlin"}[target.compiler]
        raise DependencyError(
            f"{target.compiler} not found (needed for {target.jar.relative_to(EXAMPLES.parent)})",
            hint=f"apt-get install {package}",
        )
    if target.compiler == "scalac":
        return [tool, "-encoding", "UTF-8", "-d", str(out), *sources]
    return [tool, "-jvm-target", "1.8", "-no-reflect", "-d", str(out), *sources]


def _write_jar(classes: Path, jar: Path, main_class: str) -> None:
    """Zip `classes` into `jar` with a Main-Class manifest, atomically and reproducibly."""
    manifest = f"Manifest-Version: 1.0\r\nMain-Class: {main_class}\r\nCreated-By: examples/build.py\r\n\r\n"
    files = sorted(p for p in classes.rglob("*") if p.is_file())
    fd, tmp_name = tempfile.mkstemp(prefix=f".{jar.name}.", suffix=".tmp", dir=jar.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in [("META-INF/MANIFEST.MF", manifest.encode())] + [
                (p.relative_to(classes).as_posix(), p.read_bytes())
                for p in files
                if p.relative_to(classes).as_posix() != "META-INF/MANIFEST.MF"
            ]:
                info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data)
        tmp.chmod(0o644)  # mkstemp makes it private; a jar is for everyone to read
        os.replace(tmp, jar)
    finally:
        tmp.unlink(missing_ok=True)


def build(target: JarTarget, java_home: Path, force: bool = False) -> Result:
    """Compile one target unless it is up to date."""
    if not force and target.up_to_date():
        return Result(target, "up to date")
    env = dict(os.environ, JAVA_HOME=str(java_home))
    with tempfile.TemporaryDirectory(prefix="osv-java-examples-") as tmp:
        classes = Path(tmp) / "classes"
        classes.mkdir()
        try:
            command = _compile_command(target, classes, java_home)
        except OsvJavaError as err:
            return Result(target, "failed", f"{err}" + (f" ({err.hint})" if err.hint else ""))
        proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp)
        if proc.returncode != 0 or not any(classes.rglob("*.class")):
            output = (proc.stdout + proc.stderr).strip()
            return Result(target, "failed", f"{' '.join(command)}: exit {proc.returncode}\n{output}")
        _write_jar(classes, target.jar, target.main_class)
    return Result(target, "built")


def build_all(force: bool = False, root: Path = EXAMPLES) -> list[Result]:
    """Build every target; two at a time, as each compiler is one busy JVM."""
    todo = targets(root)
    if not force and all(t.up_to_date() for t in todo):
        return [Result(t, "up to date") for t in todo]
    java_home = _jdk_home()
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda t: build(t, java_home, force), todo))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.build", description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even when the jars are up to date")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only failures")
    args = parser.parse_args(argv)
    try:
        results = build_all(force=args.force)
    except OsvJavaError as err:
        print(f"examples.build: error: {err}", file=sys.stderr)
        if err.hint:
            print(f"hint: {err.hint}", file=sys.stderr)
        return 1
    failed = False
    for result in results:
        where = result.target.jar.relative_to(EXAMPLES.parent)
        if result.status == "failed":
            failed = True
            print(f"examples.build: failed {where}: {result.detail}", file=sys.stderr)
        elif not args.quiet:
            print(f"{result.status}: {where}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
