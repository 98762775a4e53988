"""examples/build.py: what it builds, that it is idempotent and reproducible, and that the jars run."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from examples import build
from jvmbridge import jdk as jdks

MAIN = """public class Main {
    public static void main(String[] args) {
        System.out.println("core " + String.join(",", args));
        System.exit(7);
    }
}
"""


def test_targets_of_the_repository(repo_root: Path) -> None:
    found = {t.jar.relative_to(repo_root).as_posix(): t for t in build.targets()}
    for name, main in (("java", "Main"), ("scala", "Main"), ("kotlin", "MainKt")):
        target = found[f"examples/lang/{name}/app.jar"]
        assert target.main_class == main and target.sources


def test_core_examples_are_found(tmp_path: Path) -> None:
    for name in ("hello", "echo"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Main.java").write_text(MAIN)
    (tmp_path / "apps").mkdir()
    (tmp_path / "notes").mkdir()  # no Main.java: not a target
    jars = [t.jar for t in build.targets(tmp_path)]
    assert jars == [tmp_path / "echo" / "echo.jar", tmp_path / "hello" / "hello.jar"]


@pytest.mark.slow
def test_core_example_builds_once_and_runs(tmp_path: Path, jdk17: jdks.Jdk) -> None:
    folder = tmp_path / "hello"
    folder.mkdir()
    (folder / "Main.java").write_text(MAIN)
    first = build.build_all(root=tmp_path)
    assert [r.status for r in first] == ["built"], first[0].detail
    jar = folder / "hello.jar"
    data = jar.read_bytes()
    with zipfile.ZipFile(jar) as zf:
        assert "Main-Class: Main" in zf.read("META-INF/MANIFEST.MF").decode()
        # --release 17: class file major version 61
        assert zf.read("Main.class")[6:8] == (61).to_bytes(2, "big")
    assert [r.status for r in build.build_all(root=tmp_path)] == ["up to date"]
    assert [r.status for r in build.build_all(root=tmp_path, force=True)] == ["built"]
    assert jar.read_bytes() == data, "same sources, same bytes"
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    proc = subprocess.run(
        [str(jdk17.home / "bin" / "java"), "-jar", str(jar), "a", "b"], capture_output=True, text=True
    )
    assert (proc.stdout, proc.returncode) == ("core a,b\n", 7)


@pytest.mark.slow
def test_compile_error_is_reported(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "Main.java").write_text("public class Main { oops }\n")
    (result,) = build.build_all(root=tmp_path)
    assert result.status == "failed" and "Main.java" in result.detail
    assert not (tmp_path / "broken" / "broken.jar").exists()
