"""The pure parts of start-up archives: which options map or make one, and which run options change its layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.build import startup_archive
from kernel.build.startup_archive import Training, layout_options, unsupported, use_options


@pytest.mark.parametrize(("feature", "expected"), [
    (17, ["-XX:SharedArchiveFile=/a"]),
    (24, ["-XX:SharedArchiveFile=/a"]),
    (25, ["-XX:AOTCache=/a"]),
    (26, ["-XX:AOTCache=/a"]),
])
def test_the_archive_kind_follows_the_jdk(feature: int, expected: list[str]) -> None:
    assert use_options(feature, "/a") == expected
    assert startup_archive.supported(feature)


def test_jdks_before_13_have_no_dynamic_archive() -> None:
    assert not startup_archive.supported(11)


def test_only_options_that_change_the_layout_are_kept() -> None:
    options = ["-Xmx512m", "-XX:+UseZGC", "-Xss1m", "-XX:-UseCompressedOops", "-XX:ObjectAlignmentInBytes=16",
               "-Xmx40g", "-XX:MaxHeapSize=64G", "-XX:MaxHeapSize=1g", "-XX:+UseCompactObjectHeaders",
               "-XX:+UseG1GC", "-Dx=-XX:+UseZGC"]
    assert layout_options(options) == ("-XX:+UseZGC", "-XX:-UseCompressedOops", "-XX:ObjectAlignmentInBytes=16",
                                       "-Xmx40g", "-XX:MaxHeapSize=64G", "-XX:+UseCompactObjectHeaders")


def test_a_heap_just_under_32_gb_keeps_compressed_oops() -> None:
    assert layout_options(["-Xmx31g", "-Xmx32767m"]) == ()
    assert layout_options(["-Xmx32g"]) == ("-Xmx32g",)


def training(tmp_path: Path, classpath: tuple[Path, ...], options: tuple[str, ...] = ()) -> Training:
    return Training(jre=tmp_path / "jre", feature=17, options=options, launch=("-cp", "x", "Main"), args=(),
                    classpath=classpath, guest_view=True)


def test_a_class_folder_is_known_unsupported_before_training(tmp_path: Path) -> None:
    folder = tmp_path / "classes"
    folder.mkdir()
    assert unsupported(training(tmp_path, (folder,))) is None  # an empty folder adds nothing
    (folder / "Main.class").write_bytes(b"\xca\xfe\xba\xbe")
    assert "folder" in (unsupported(training(tmp_path, (folder,))) or "")


def test_the_key_follows_the_jar_bytes_and_the_layout_options(tmp_path: Path) -> None:
    jar = tmp_path / "app.jar"
    jar.write_bytes(b"one")
    first = startup_archive.key(training(tmp_path, (jar,)))
    assert startup_archive.key(training(tmp_path, (jar,))) == first
    assert startup_archive.key(training(tmp_path, (jar,), ("-XX:+UseZGC",))) != first
    jar.write_bytes(b"two")  # same size, same path: only the bytes differ
    assert startup_archive.key(training(tmp_path, (jar,))) != first


def test_manifest_entries_through_symlinks_are_listed_for_the_image(tmp_path: Path) -> None:
    from osvtest import jar_of

    from kernel.build.app import manifest_links

    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "dep-1.0.jar").write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip
    (lib / "dep.jar").symlink_to("dep-1.0.jar")
    (tmp_path / "classes").mkdir()
    app = jar_of(tmp_path / "classes", tmp_path / "app.jar", "Class-Path: lib/dep.jar lib/none.jar\n")
    assert manifest_links([app, (lib / "dep-1.0.jar").resolve()]) == {str(lib / "dep.jar"): lib / "dep-1.0.jar"}
    assert manifest_links([app]) == {}, "only entries that resolve to a file the image holds"


@pytest.mark.parametrize(("options", "env", "expected"), [
    ([], {}, None),
    (["-Xmx1g", "-Xshare:auto", "-Xshare:on", "-XX:+UseZGC"], {}, None),
    (["-XX:ArchiveClassesAtExit=/a.jsa"], {}, "-XX:ArchiveClassesAtExit=/a.jsa"),
    (["-Xmx1g", "-XX:SharedArchiveFile=/a.jsa"], {}, "-XX:SharedArchiveFile=/a.jsa"),
    (["-XX:+AutoCreateSharedArchive"], {}, "-XX:+AutoCreateSharedArchive"),
    (["-XX:AOTCacheOutput=/a.aot"], {}, "-XX:AOTCacheOutput=/a.aot"),
    (["-XX:AOTMode=off"], {}, "-XX:AOTMode=off"),
    (["-Xshare:off"], {}, "-Xshare:off"),
    ([], {"JAVA_TOOL_OPTIONS": "-Dx=1 -XX:AOTCache=/b.aot"}, "-XX:AOTCache=/b.aot"),
    ([], {"JDK_JAVA_OPTIONS": "-Xshare:dump"}, "-Xshare:dump"),
    ([], {"OTHER": "-XX:AOTCache=/b.aot"}, None),
])
def test_an_archive_option_of_the_users_own_is_found(options: list[str], env: dict[str, str],
                                                     expected: str | None) -> None:
    assert startup_archive.own_archive_option(options, env) == expected
