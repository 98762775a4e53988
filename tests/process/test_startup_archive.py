"""Start-up archives on --target process, with the host's real JDKs (17: dynamic AppCDS, 25: AOT cache).

The archive must be used (classes come from the shared objects file), change nothing the app prints,
never be used for another jar (even one at the same path), and be made again when damaged.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import startup_archives as archives
from osvtest import ROOT, Osv, compile_java, explain, jar_of, text

FEATURES = ["17", "25"]
LOG = "--jvm-opt=-Xlog:class+load=info"
CLOJURE = ROOT / "examples" / "lang" / "clojure"


def run(osv: Osv, feature: str, *args: str) -> tuple[int, str, str]:
    proc = osv("run", "--target", "process", "--jdk", feature, "--startup-archive", *args)
    return proc.returncode, text(proc.stdout), text(proc.stderr)


@pytest.mark.parametrize("feature", FEATURES)
def test_the_archive_is_used_and_the_output_is_the_same(osv: Osv, feature: str) -> None:
    archives.jdk_or_skip(feature)
    expected = json.loads((CLOJURE / "expected.json").read_text())
    app = ["-e", "GREETING=Hello", str(CLOJURE / "main.clj"), "world"]
    trained = run(osv, feature, *app)  # the first run trains, then runs with the archive
    with_archive = run(osv, feature, *app)
    without = run(osv, feature, "--no-startup-archive", *app)
    assert with_archive == (expected["exit"], expected["stdout"], expected["stderr"]), with_archive
    assert trained == with_archive == without
    status, logged, _ = run(osv, feature, LOG, *app)
    assert status == expected["exit"] and archives.app_lines(logged) == expected["stdout"]
    assert archives.from_archive(logged, "clojure.main"), archives.sources(logged).get("clojure.main")
    assert not any(w in logged for w in archives.ARCHIVE_WARNINGS), logged[-2000:]
    _, plain, _ = run(osv, feature, "--no-startup-archive", LOG, *app)
    assert not archives.from_archive(plain, "clojure.main"), archives.sources(plain).get("clojure.main")


@pytest.mark.parametrize("feature", FEATURES)
def test_an_archive_made_for_one_jar_is_not_used_for_another(osv: Osv, tmp_path: Path, feature: str) -> None:
    archives.jdk_or_skip(feature)
    alpha = archives.greeter_jar(tmp_path, "Alpha", tmp_path / "alpha" / "app.jar")
    beta = archives.greeter_jar(tmp_path, "Beta", tmp_path / "beta" / "app.jar")
    for jar, name in ((alpha, "Alpha"), (beta, "Beta")):
        status, out, err = run(osv, feature, LOG, str(jar), "x")
        assert status == 0 and archives.app_lines(out) == f"{name} says hi [x]\n", out + err
        assert archives.from_archive(out, name), archives.sources(out).get(name)
    # Another jar at the same path: the archive made for Alpha there must not be used.
    shutil.copyfile(beta, alpha)
    status, out, err = run(osv, feature, LOG, str(alpha), "y")
    assert status == 0 and archives.app_lines(out) == "Beta says hi [y]\n", out + err
    assert archives.from_archive(out, "Beta") and "Alpha" not in archives.sources(out), archives.sources(out)
    assert not any(w in out + err for w in archives.ARCHIVE_WARNINGS), out + err


@pytest.mark.parametrize("feature", FEATURES)
def test_a_damaged_archive_is_made_again_with_a_warning(osv: Osv, osv_cache: Path, tmp_path: Path,
                                                        feature: str) -> None:
    archives.jdk_or_skip(feature)
    jar = archives.greeter_jar(tmp_path, "Gamma", tmp_path / "gamma.jar")
    first = osv("run", "--target", "process", "--jdk", feature, "--startup-archive", str(jar))
    assert first.returncode == 0, explain(first)
    archive = archives.archive_of(osv_cache, str(jar.resolve()))
    archives.damage(archive)
    status, out, err = run(osv, feature, LOG, str(jar), "z")
    assert status == 0 and archives.app_lines(out) == "Gamma says hi [z]\n", out + err
    assert "warning: the start-up archive" in err and "is damaged" in err and "making it again" in err, err
    assert archives.from_archive(out, "Gamma"), archives.sources(out).get("Gamma")
    status, out, err = run(osv, feature, str(jar))
    assert (status, out, err) == (0, "Gamma says hi []\n", ""), "the new archive is whole: no warning"


def test_a_class_folder_runs_without_an_archive_and_quietly(osv: Osv, tmp_path: Path) -> None:
    archives.jdk_or_skip("17")
    jar = archives.greeter_jar(tmp_path, "Delta", tmp_path / "delta.jar")
    classes = tmp_path / "classes" / "delta"
    status, out, err = run(osv, "17", LOG, "-cp", str(classes), "Delta")
    assert (status, archives.app_lines(out), err) == (0, "Delta says hi []\n", ""), out + err
    assert not archives.from_archive(out, "Delta") and jar.exists()


@pytest.mark.parametrize("feature", FEATURES)
def test_a_run_without_compressed_oops_gets_an_archive_of_its_own_layout(osv: Osv, tmp_path: Path,
                                                                          feature: str) -> None:
    """ZGC turns compressed oops off: an archive made for G1 cannot be mapped (JDK 17 ignores it, 25
    prints an error on the app's stdout), so a ZGC run trains its own, on the JDK's nocoops base archive."""
    archives.jdk_or_skip(feature)
    jar = archives.greeter_jar(tmp_path, "Zeta", tmp_path / "zeta.jar")
    assert run(osv, feature, str(jar))[0] == 0  # the G1 archive first
    for _ in range(2):  # the first ZGC run trains, the second finds the archive
        status, out, err = run(osv, feature, "--jvm-opt=-XX:+UseZGC", LOG, str(jar))
        assert (status, archives.app_lines(out), err) == (0, "Zeta says hi []\n", ""), out[-2000:] + err
        assert not any(w in out for w in archives.ARCHIVE_WARNINGS), out[-2000:]
        assert archives.from_archive(out, "Zeta"), archives.sources(out).get("Zeta")


def test_a_jar_changed_without_its_size_or_mtime_changing_runs_its_new_code(osv: Osv, tmp_path: Path) -> None:
    """CDS checks a jar's size and mtime only: an archive of the old bytes would run the old code."""
    archives.jdk_or_skip("17")
    jars = []
    for version in ("one", "two"):
        classes = compile_java(tmp_path / version, "same",
                               'public class Same { public static void main(String[] a) {'
                               f' System.out.println("version {version}"); }} }}')
        jars.append(jar_of(classes, tmp_path / version / "same.jar", "Main-Class: Same\n"))
    old, new = jars
    assert old.stat().st_size == new.stat().st_size
    status, out, _ = run(osv, "17", LOG, str(old))
    assert status == 0 and archives.app_lines(out) == "version one\n", out[-2000:]
    assert archives.from_archive(out, "Same"), out[-2000:]
    mtime = old.stat().st_mtime_ns
    old.write_bytes(new.read_bytes())
    os.utime(old, ns=(mtime, mtime))
    status, out, err = run(osv, "17", LOG, str(old))
    assert status == 0 and archives.app_lines(out) == "version two\n", out[-2000:] + err
    assert archives.from_archive(out, "Same"), "an archive of the new bytes was made and used"


def default_run(osv: Osv, feature: str, *args: str) -> tuple[int, str, str]:
    """A run with no archive option: the default (the archive made in the background when missing)."""
    proc = osv("run", "--target", "process", "--jdk", feature, *args)  # returns once the training is done
    return proc.returncode, text(proc.stdout), text(proc.stderr)


def labels(cache: Path) -> list[str]:
    return [json.loads(m.read_text()).get("label", "") for m in (cache / "startup").glob("*/meta.json")]


@pytest.mark.parametrize("feature", FEATURES)
def test_by_default_a_new_jar_starts_at_once_and_the_next_run_from_the_archive_made_meanwhile(
        osv: Osv, osv_cache: Path, tmp_path: Path, feature: str) -> None:
    archives.jdk_or_skip(feature)
    jar = archives.greeter_jar(tmp_path, "Eta", tmp_path / "eta.jar")
    status, out, err = default_run(osv, feature, LOG, str(jar), "1")
    assert (status, archives.app_lines(out), err) == (0, "Eta says hi [1]\n", ""), out[-2000:] + err
    assert not archives.from_archive(out, "Eta"), "the first run waits for no training run"
    archive = archives.archive_of(osv_cache, str(jar.resolve()))
    assert json.loads((archive.parent / "meta.json").read_text())["trained_with"] == ["1"]
    leftovers = [p.name for p in osv_cache.glob(f"startup/{archive.parent.name}.*") if p.suffix != ".lock"]
    assert leftovers == [], "the training's log and its request are removed once the archive is in place"
    status, out, err = default_run(osv, feature, LOG, str(jar), "2")
    assert (status, archives.app_lines(out), err) == (0, "Eta says hi [2]\n", ""), out[-2000:] + err
    assert archives.from_archive(out, "Eta"), archives.sources(out).get("Eta")
    assert not any(w in out for w in archives.ARCHIVE_WARNINGS), out[-2000:]
    status, out, _ = default_run(osv, feature, "--no-startup-archive", LOG, str(jar), "3")
    assert status == 0 and not archives.from_archive(out, "Eta"), archives.sources(out).get("Eta")


def test_no_startup_archive_makes_none(osv: Osv, osv_cache: Path, tmp_path: Path) -> None:
    archives.jdk_or_skip("17")
    jar = archives.greeter_jar(tmp_path, "Theta", tmp_path / "theta.jar")
    for _ in range(2):
        status, out, err = default_run(osv, "17", "--no-startup-archive", str(jar))
        assert (status, out, err) == (0, "Theta says hi []\n", ""), out + err
    assert str(jar.resolve()) not in labels(osv_cache)


def test_an_edited_script_starts_from_its_runtimes_archive_at_the_first_run_after_the_edit(
        osv: Osv, tmp_path: Path) -> None:
    """A script is an argument, not the class path: its archive (the language runtime's classes) does
    not depend on the script's text, so an edit-and-run loop never runs without it after the first run."""
    archives.jdk_or_skip("17")
    script = tmp_path / "loop.clj"
    script.write_text('(println "edit one")\n')
    status, out, err = default_run(osv, "17", LOG, str(script))
    assert (status, archives.app_lines(out), err) == (0, "edit one\n", ""), out[-2000:] + err
    script.write_text('(println (str "edit two, " (+ 40 2)))\n')
    status, out, err = default_run(osv, "17", LOG, str(script))
    assert (status, archives.app_lines(out), err) == (0, "edit two, 42\n", ""), out[-2000:] + err
    assert archives.from_archive(out, "clojure.main"), archives.sources(out).get("clojure.main")
    assert not any(w in out for w in archives.ARCHIVE_WARNINGS), out[-2000:]


def test_a_cache_that_cannot_take_an_archive_never_changes_the_run(osv: Osv, tmp_path: Path) -> None:
    """The default archive is not asked for: a cache where none can be looked up or made (here its
    startup folder is a file) gives a line on a terminal, and the run and its exit status stay the app's."""
    archives.jdk_or_skip("17")
    jar = archives.greeter_jar(tmp_path, "Iota", tmp_path / "iota.jar")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "startup").write_text("not a folder")
    for _ in range(2):
        proc = osv("run", "--target", "process", "--jdk", "17", str(jar), "x",
                   env={"OSV_JAVA_CACHE": str(cache), "OSV_JAVA_PROGRESS": "1"})
        assert proc.returncode == 0 and text(proc.stdout) == "Iota says hi [x]\n", explain(proc)
        assert "osv-java: no start-up archive for" in text(proc.stderr), explain(proc)
    assert (cache / "startup").read_text() == "not a folder"


@pytest.mark.parametrize("feature", FEATURES)
def test_an_archive_option_of_the_users_own_keeps_ours_out(osv: Osv, osv_cache: Path, tmp_path: Path,
                                                          feature: str) -> None:
    """The JVM takes one archive: beside the user's own (made or mapped) ours would stop it at its start."""
    archives.jdk_or_skip(feature)
    jar = archives.greeter_jar(tmp_path, "Kappa", tmp_path / "kappa.jar")
    own = f"-XX:AOTCacheOutput={tmp_path / 'own.aot'}" if feature == "25" else \
        f"-XX:ArchiveClassesAtExit={tmp_path / 'own.jsa'}"
    for _ in range(2):
        status, out, err = default_run(osv, feature, f"--jvm-opt={own}", str(jar))
        # (JDK 25 says on stdout how it made the user's AOT cache)
        assert status == 0 and out.startswith("Kappa says hi []\n"), out + err
    assert str(jar.resolve()) not in labels(osv_cache)
    assert any(tmp_path.glob("own.*")), "the user's own archive was made"
    proc = osv("run", "--target", "process", "--jdk", feature, "--startup-archive", f"--jvm-opt={own}", str(jar))
    assert proc.returncode == 125 and text(proc.stdout) == "", explain(proc)
    said = f"osv-java: error: --startup-archive: {own} is an archive option of your own"
    assert text(proc.stderr).startswith(said), explain(proc)
