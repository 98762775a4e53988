"""validate_app and validate_jar_natives on jars built by the tests, and the build hook."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from jvmbridge import jdk as jdks
from jvmbridge.errors import BuildError
from kernel.build import app as apps
from kernel.validate.checks import check_before_build, validate_app, validate_jar_natives
from tests.validate import helpers


@pytest.fixture(scope="module")
def jdk() -> jdks.Jdk:
    return jdks.select(None)


def codes(findings: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(f.severity, f.code) for f in findings]


def test_hello_is_clean(jdk: jdks.Jdk) -> None:
    spec = apps.from_jar(helpers.HELLO_JAR)
    assert validate_app(spec, jdk, ["java.base"]) == []


def test_missing_main_class(tmp_path: Path, jdk: jdks.Jdk) -> None:
    jar = helpers.make_jar(tmp_path / "app.jar", {}, main_class="com.example.Nope")
    findings = validate_app(apps.from_jar(jar), jdk, None)
    assert ("error", "main-class-missing") in codes(findings)
    assert "com/example/Nope.class" in findings[0].message


def test_corrupt_entry(tmp_path: Path, jdk: jdks.Jdk) -> None:
    jar = helpers.corrupt_entry(tmp_path / "app.jar")
    assert codes(validate_app(apps.from_jar(jar), jdk, None)) == [("error", "jar-corrupt")]


def test_missing_class_path_jar_is_a_warning(tmp_path: Path, jdk: jdks.Jdk) -> None:
    jar = helpers.make_jar(tmp_path / "app.jar", {}, extra_manifest="Class-Path: lib/gone.jar\r\n")
    findings = validate_app(apps.from_jar(jar), jdk, ["java.base"])
    assert codes(findings) == [("warning", "classpath-missing")] and "lib/gone.jar" in findings[0].message


def test_class_folder_symlink_out(tmp_path: Path, jdk: jdks.Jdk) -> None:
    classes = tmp_path / "classes"
    classes.mkdir()
    (classes / "Main.class").write_bytes(helpers.hello_class())
    (classes / "secret").symlink_to("/etc/hostname")
    spec = apps.from_classpath(str(classes), "Main")
    assert ("warning", "classpath-symlink") in codes(validate_app(spec, jdk, ["java.base"]))


def test_modules_the_jre_lacks(tmp_path: Path, jdk: jdks.Jdk) -> None:
    src = tmp_path / "src" / "Main.java"
    src.parent.mkdir()
    src.write_text(
        "public class Main { public static void main(String[] a) throws Exception {"
        " System.out.println(java.sql.DriverManager.getDrivers()); } }"
    )
    out = tmp_path / "out"
    subprocess.run([str(jdk.tool("javac")), "-d", str(out), str(src)], check=True, capture_output=True)
    jar = tmp_path / "sql.jar"
    helpers.make_jar(jar, {"Main.class": (out / "Main.class").read_bytes()}, with_class=False)
    findings = validate_app(apps.from_jar(jar), jdk, ["java.base"])
    assert codes(findings) == [("error", "module-missing")]
    assert "java.sql" in findings[0].message
    assert validate_app(apps.from_jar(jar), jdk, ["java.base", "java.sql"]) == []


def test_jni_only_other_platforms(tmp_path: Path) -> None:
    jar = helpers.make_jar(
        tmp_path / "n.jar",
        {
            "native/darwin-aarch64/libfoo.dylib": b"\xcf\xfa\xed\xfe" + bytes(100),
            "native/win32-x86-64/foo.dll": b"MZ" + bytes(100),
            "native/linux-aarch64/libfoo.so": helpers.foreign_machine(helpers.libz()),
        },
    )
    findings = validate_jar_natives(jar)
    assert codes(findings) == [("warning", "jni-platform")]
    assert "darwin-aarch64" in findings[0].message


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"this is not an ELF file", "elf-corrupt"),
        (b"\x7fELF\x02\x01\x01", "elf-corrupt"),
        ("truncated", "elf-corrupt"),
        ("aarch64", "elf-arch"),
        ("missing", "elf-needed"),
        ("version", "elf-version"),
    ],
)
def test_jni_library_problems(tmp_path: Path, data: bytes | str, code: str) -> None:
    made = {
        "truncated": lambda: helpers.truncated(helpers.libz(), 2000),
        "aarch64": lambda: helpers.foreign_machine(helpers.libz()),
        "missing": helpers.elf_needing_missing_lib,
        "version": helpers.elf_needing_future_glibc,
    }
    payload = made[data]() if isinstance(data, str) else data
    jar = helpers.make_jar(tmp_path / "n.jar", {"native/linux-x86_64/libfoo.so": payload})
    findings = validate_jar_natives(jar)
    assert ("error", code) in codes(findings), findings
    assert findings[0].path.endswith("n.jar!/native/linux-x86_64/libfoo.so")


def test_jni_sibling_and_spawn(tmp_path: Path, jdk: jdks.Jdk) -> None:
    jar = helpers.make_jar(
        tmp_path / "n.jar",
        {
            "META-INF/native/libz.so.1": helpers.libz(),
            "META-INF/native/libspawn.so": helpers.elf_calling_fork(),
        },
    )
    assert codes(validate_jar_natives(jar, jdk)) == [("info", "elf-spawn")]


def test_check_before_build(tmp_path: Path, jdk: jdks.Jdk, capsys: pytest.CaptureFixture[str]) -> None:
    jar = helpers.make_jar(tmp_path / "w.jar", {}, extra_manifest="Class-Path: gone.jar\r\n")
    spec = apps.from_jar(jar)
    check_before_build(spec, jdk, ["java.base"])
    check_before_build(spec, jdk, ["java.base"])
    assert capsys.readouterr().err.count("osv-java: warning:") == 1
    bad = helpers.make_jar(tmp_path / "b.jar", {}, main_class="Nope")
    with pytest.raises(BuildError, match="main class Nope"):
        check_before_build(apps.from_jar(bad), jdk, ["java.base"])


def test_validate_command_clean_app(cache: Path) -> None:
    result = helpers.osv(["validate", str(helpers.HELLO_JAR)], cache)
    assert (result.status, result.stdout, result.stderr) == (0, "clean: no findings\n", "")


def test_validate_command_reports_findings(tmp_path: Path, cache: Path) -> None:
    jar = helpers.make_jar(
        tmp_path / "n.jar", {"native/linux-x86_64/libfoo.so": helpers.foreign_machine(helpers.libz())}
    )
    result = helpers.osv(["validate", str(jar)], cache)
    assert result.status == 1, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"error: {jar}!/native/linux-x86_64/libfoo.so: is a 64-bit little-endian AARCH64 ELF file, but the kernel "
        "runs 64-bit little-endian X86_64",
        "  hint: replace it with a build for x86-64 Linux (for a jar, the linux-x86-64 variant)",
        "1 errors, 0 warnings, 0 info",
    ]
    assert result.stderr == ""
    as_json = helpers.osv(["validate", "--json", str(jar)], cache)
    assert as_json.status == 1
    assert [(f["severity"], f["code"]) for f in json.loads(as_json.stdout)] == [("error", "elf-arch")]


def test_validate_command_warnings_fail_info_does_not(tmp_path: Path, cache: Path) -> None:
    warned = helpers.make_jar(tmp_path / "w.jar", {}, extra_manifest="Class-Path: gone.jar\r\n")
    assert helpers.osv(["validate", str(warned)], cache).status == 1
    spawning = helpers.make_jar(tmp_path / "s.jar", {"native/linux-x86_64/libspawn.so": helpers.elf_calling_fork()})
    result = helpers.osv(["validate", str(spawning)], cache)
    assert result.status == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "0 errors, 0 warnings, 1 info"
