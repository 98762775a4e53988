"""kernel.build.classdeps against jdeps itself: the JDK modules a class path needs, read without a JVM."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from jvmbridge.jdk import Jdk, probe
from kernel.build import classdeps, jre

JDK17_HOME = Path("/usr/lib/jvm/java-17-openjdk-amd64")
SOURCE = """
import java.sql.Connection;
import java.util.List;
import java.util.logging.Logger;
public class Uses {
    static List<java.net.http.HttpClient> clients;  // only in a generic signature
    public static void main(String[] a) throws Exception {
        Logger.getLogger("x").info("hi");
        Connection[] none = new Connection[0];
        System.out.println(none.length + " " + java.lang.management.ManagementFactory.getRuntimeMXBean().getName());
    }
}
"""


@pytest.fixture
def jdk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Jdk:
    if not (JDK17_HOME / "jmods").is_dir():
        pytest.skip(f"{JDK17_HOME} with jmods is not installed")
    monkeypatch.setenv("OSV_JAVA_CACHE", str(tmp_path / "cache"))
    return probe(JDK17_HOME)


def _jar(tmp_path: Path, jdk: Jdk, source: str) -> Path:
    (tmp_path / "src").mkdir(parents=True)
    (tmp_path / "src" / "Uses.java").write_text(source)
    subprocess.run([str(jdk.tool("javac")), "-d", str(tmp_path / "classes"), str(tmp_path / "src" / "Uses.java")],
                   check=True)
    jar = tmp_path / "uses.jar"
    with zipfile.ZipFile(jar, "w") as zf:
        for path in sorted((tmp_path / "classes").rglob("*.class")):
            zf.write(path, str(path.relative_to(tmp_path / "classes")))
    return jar


def test_the_modules_are_those_jdeps_prints(tmp_path: Path, jdk: Jdk) -> None:
    jar = _jar(tmp_path, jdk, SOURCE)
    found = classdeps.modules(jdk, [jar])
    # java.logging is left out as jdeps leaves it out: java.sql requires it transitively.
    assert found == ["java.base", "java.management", "java.net.http", "java.sql"]
    assert found == jre._run_jdeps(jdk, [jar])


@pytest.mark.parametrize("jar", ["/usr/share/java/clojure.jar", "/usr/share/java/groovy.jar"])
def test_a_language_runtime_gets_what_jdeps_gives_it(jdk: Jdk, jar: str) -> None:
    if not Path(jar).exists():
        pytest.skip(f"{jar} is not installed")
    assert classdeps.modules(jdk, [Path(jar)]) == jre._run_jdeps(jdk, [Path(jar)])


def test_requires_transitive_is_read_from_module_info(jdk: Jdk) -> None:
    known = classdeps.jdk_modules(jdk)
    assert known is not None
    packages, transitive = known
    assert packages["java/sql"] == "java.sql" and packages["java/lang"] == "java.base"
    assert set(transitive["java.sql"]) == {"java.logging", "java.transaction.xa", "java.xml"}
    assert transitive["java.base"] == []


def test_a_class_file_it_cannot_read_leaves_the_answer_to_jdeps(tmp_path: Path, jdk: Jdk) -> None:
    jar = tmp_path / "bad.jar"
    with zipfile.ZipFile(jar, "w") as zf:
        zf.writestr("Bad.class", b"\xca\xfe\xba\xbe\x00\x00\x00\x3d\x00\x09\x01\x00")  # cut short in its pool
    assert classdeps.modules(jdk, [jar]) is None
    with pytest.raises(classdeps.NotAClassFile):
        classdeps.referenced_packages(b"not a class")


def test_an_edited_jar_is_read_again(tmp_path: Path, jdk: Jdk) -> None:
    jar = _jar(tmp_path / "a", jdk, "public class Uses { public static void main(String[] a) {} }")
    assert classdeps.modules(jdk, [jar]) == ["java.base"]
    edited = _jar(tmp_path / "b", jdk, SOURCE)
    jar.write_bytes(edited.read_bytes())  # another size, another mtime: the cached answer does not apply
    assert "java.sql" in (classdeps.modules(jdk, [jar]) or [])


def test_a_jdk_without_jmods_is_read_from_its_run_time_image(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    home = Path("/usr/lib/jvm/temurin-25-jdk-amd64")
    if not (home / "lib" / "modules").is_file() or (home / "jmods").is_dir():
        pytest.skip(f"no JDK without jmods at {home} (Temurin 25 is optional)")
    monkeypatch.setenv("OSV_JAVA_CACHE", str(tmp_path / "cache"))
    jdk = probe(home)
    known = classdeps.jdk_modules(jdk)
    assert known is not None and known[0]["java/sql"] == "java.sql"
    assert set(known[1]["java.sql"]) == {"java.logging", "java.transaction.xa", "java.xml"}
    jar = _jar(tmp_path, jdk, SOURCE)
    assert classdeps.modules(jdk, [jar]) == jre._run_jdeps(jdk, [jar])
