"""Start-up archives in VMs: the image carries an archive made for its own jlinked JRE and its jars as
the image shows them, and the guest JVM maps it (JDK 17: dynamic AppCDS, 25: AOT cache)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import startup_archives as archives
from osvtest import JDK17, ROOT, Osv, compile_java, explain, jar_of, text

pytestmark = [pytest.mark.vm]

LOG = "--jvm-opt=-Xlog:class+load=info"
CLOJURE = ROOT / "examples" / "lang" / "clojure"


def run(osv: Osv, feature: str, *args: str) -> tuple[int, str, str]:
    proc = osv("run", "--jdk", feature, "--startup-archive", *args, timeout=600)
    return proc.returncode, text(proc.stdout), text(proc.stderr)


@pytest.mark.parametrize("feature", ["17", "25"])
def test_the_guest_maps_the_archive_and_the_output_is_the_same(osv: Osv, feature: str) -> None:
    archives.jdk_or_skip(feature)
    expected = json.loads((CLOJURE / "expected.json").read_text())
    app = ["-e", "GREETING=Hello", str(CLOJURE / "main.clj"), "world"]
    status, logged, err = run(osv, feature, LOG, *app)
    shown = (status, archives.app_lines(logged), err)
    assert shown == (expected["exit"], expected["stdout"], expected["stderr"]), logged
    assert archives.from_archive(logged, "clojure.main"), archives.sources(logged).get("clojure.main")
    assert not any(w in logged for w in archives.ARCHIVE_WARNINGS), logged[-2000:]
    with_archive = run(osv, feature, *app)
    without = run(osv, feature, "--no-startup-archive", *app)
    assert with_archive == without == (expected["exit"], expected["stdout"], expected["stderr"]), without


def test_a_changed_jar_gets_its_own_archive_and_a_damaged_one_is_made_again(osv: Osv, osv_cache: Path,
                                                                             tmp_path: Path) -> None:
    alpha = archives.greeter_jar(tmp_path, "Alpha", tmp_path / "app" / "app.jar")
    beta = archives.greeter_jar(tmp_path, "Beta", tmp_path / "beta.jar")
    status, out, err = run(osv, JDK17, LOG, str(alpha), "x")
    assert status == 0 and archives.app_lines(out) == "Alpha says hi [x]\n", out + err
    assert archives.from_archive(out, "Alpha"), archives.sources(out).get("Alpha")
    # Another jar at the same path: the image and its archive are made for it, Alpha's is not used.
    shutil.copyfile(beta, alpha)
    status, out, err = run(osv, JDK17, LOG, str(alpha), "y")
    assert status == 0 and archives.app_lines(out) == "Beta says hi [y]\n", out + err
    assert archives.from_archive(out, "Beta") and "Alpha" not in archives.sources(out), archives.sources(out)
    assert not any(w in out + err for w in archives.ARCHIVE_WARNINGS), out + err
    archives.damage(archives.archive_of(osv_cache, str(alpha.resolve())))
    status, out, err = run(osv, JDK17, LOG, str(alpha), "z")
    assert status == 0 and archives.app_lines(out) == "Beta says hi [z]\n", explain_text(out, err)
    assert "warning: the start-up archive" in err and "is damaged" in err, err
    assert archives.from_archive(out, "Beta"), archives.sources(out).get("Beta")


def events(stderr: str) -> list[str]:
    return re.findall(r"^  (\w+) +[\d.]+ +\(", stderr, re.M)


def test_an_app_with_an_archive_restores_a_started_jvm_of_its_own(osv: Osv, tmp_path: Path) -> None:
    """With --startup-archive the zygote starts with the app's class path and archive (sharing forced on
    here: a JVM that could not map the archive would not start), its machine is saved once, and later
    runs restore it; another jar at the same path does not restore that JVM (it checked the old jar
    against its archive) but gets one of its own."""
    jar = archives.greeter_jar(tmp_path, "Gamma", tmp_path / "app" / "app.jar")
    forced = ["--bootchart", "--jvm-opt=-Xshare:on"]
    runs = [run(osv, JDK17, *forced, str(jar), f"r{i}") for i in range(3)]  # (a boot snapshot), the JVM saved
    for i, (status, out, err) in enumerate(runs):
        assert status == 0 and archives.app_lines(out) == f"Gamma says hi [r{i}]\n", explain_text(out, err)
    assert any("ready_saved" in events(err) for _, _, err in runs), [err for _, _, err in runs]
    status, out, err = run(osv, JDK17, *forced, str(jar), "again")
    assert status == 0 and archives.app_lines(out) == "Gamma says hi [again]\n", explain_text(out, err)
    assert events(err)[:3] == ["qemu_start", "snapshot_restored", "app_launched"], explain_text(out, err)
    shutil.copyfile(archives.greeter_jar(tmp_path, "Delta", tmp_path / "delta.jar"), jar)
    status, out, err = run(osv, JDK17, *forced, str(jar), "edited")
    assert status == 0 and archives.app_lines(out) == "Delta says hi [edited]\n", explain_text(out, err)
    assert "jvm_exec" in events(err), explain_text(out, err)  # a JVM of its own, started for the new jar


def test_a_manifest_class_path_through_a_symlink_resolves_in_the_guest_as_on_the_host(osv: Osv,
                                                                                    tmp_path: Path) -> None:
    """Debian's jars name their dependencies through version-less symlinks (JRuby's bcprov.jar ->
    bcprov-1.72.jar): CDS records that the entry exists, so the guest must have it too, or JDK 17
    drops the whole archive with a warning on the app's stdout."""
    lib = tmp_path / "app" / "lib"
    classes = compile_java(tmp_path, "dep", 'public class Dep { public static String hi() { return "dep says hi"; } }')
    jar_of(classes, lib / "dep-1.0.jar")
    (lib / "dep.jar").symlink_to("dep-1.0.jar")
    main = compile_java(tmp_path, "main", "public class Main { public static void main(String[] a) {"
                        " System.out.println(Dep.hi()); } }", classpath=str(classes))
    app = jar_of(main, tmp_path / "app" / "app.jar", "Main-Class: Main\nClass-Path: lib/dep.jar\n")
    status, out, err = run(osv, JDK17, LOG, str(app))
    assert status == 0 and archives.app_lines(out) == "dep says hi\n", explain_text(out, err)
    assert not any(w in out for w in archives.ARCHIVE_WARNINGS), out[-2000:]
    assert archives.from_archive(out, "Main") and archives.from_archive(out, "Dep"), archives.sources(out)


def explain_text(out: str, err: str) -> str:
    return f"--- stdout ---\n{out[-3000:]}\n--- stderr ---\n{err[-3000:]}"


def test_build_carries_the_archive_and_can_leave_it_out(osv: Osv, tmp_path: Path) -> None:
    jar = archives.greeter_jar(tmp_path, "Epsilon", tmp_path / "epsilon.jar")
    built = osv("build", "--jdk", JDK17, "--startup-archive", str(jar), "-o", str(tmp_path / "with"), "--json")
    assert built.returncode == 0, explain(built)
    manifest = json.loads((tmp_path / "with" / "image.json").read_text())
    record = manifest["startup_archive"]
    assert record["path"] == "/osv/startup/app.jsa"
    assert record["jvm_options"] == ["-XX:SharedArchiveFile=/osv/startup/app.jsa"]
    assert manifest["files"][record["path"]]["sha256"] == record["sha256"]
    bare = osv("build", "--jdk", JDK17, "--no-startup-archive", str(jar), "-o", str(tmp_path / "without"), "--json")
    assert bare.returncode == 0, explain(bare)
    assert json.loads((tmp_path / "without" / "image.json").read_text())["startup_archive"] is None
    assert json.loads(bare.stdout)["key"] != json.loads(built.stdout)["key"]
