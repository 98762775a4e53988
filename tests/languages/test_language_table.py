"""detect(), by_name() and the table itself: pure logic, no JVM started."""

from __future__ import annotations

import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from jvmbridge.errors import DependencyError, UsageError
from kernel.build import languages
from kernel.build.languages import LANGUAGES, by_name, detect, host_path, runtime_classpath

ENDINGS = {
    "hello.scala": "scala",
    "hello.sc": "scala",
    "hello.clj": "clojure",
    "hello.cljc": "clojure",
    "hello.groovy": "groovy",
    "hello.gvy": "groovy",
    "hello.rb": "jruby",
    "hello.js": "javascript",
    "hello.py": "jython",
    "app.jar": "java",
    "APP.JAR": "java",
}


@pytest.mark.parametrize(("filename", "expected"), sorted(ENDINGS.items()))
def test_detect_by_ending(tmp_path: Path, filename: str, expected: str) -> None:
    path = tmp_path / filename
    path.write_text("")
    assert detect(path).name == expected


def test_every_ending_is_covered() -> None:
    covered = {Path(name).suffix for name in ENDINGS}
    declared = {ext for lang in LANGUAGES for ext in lang.extensions}
    assert declared <= covered


def test_class_folder_is_java(tmp_path: Path) -> None:
    (tmp_path / "Main.class").write_bytes(b"")
    assert detect(tmp_path).name == "java"


def test_unknown_ending_names_file_and_known_endings(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    with pytest.raises(UsageError) as info:
        detect(path)
    message = str(info.value)
    assert str(path) in message and "'.txt'" in message
    for ending in (".jar", ".scala", ".clj", ".groovy", ".rb", ".js", ".py"):
        assert ending in message
    assert info.value.hint is not None and "--lang" in info.value.hint


def test_no_ending(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no file ending"):
        detect(tmp_path / "program")


def test_lang_override_wins(tmp_path: Path) -> None:
    path = tmp_path / "script.txt"
    path.write_text("")
    assert detect(path, lang="groovy").name == "groovy"
    assert detect(tmp_path / "x.py", lang="JRuby").name == "jruby"


def test_unknown_lang_lists_names() -> None:
    with pytest.raises(UsageError) as info:
        detect(Path("x.clj"), lang="cobol")
    assert "cobol" in str(info.value)
    assert all(lang.name in str(info.value) for lang in LANGUAGES)


@pytest.mark.parametrize("ending", [".kts", ".kt", ".java"])
def test_sources_that_need_compiling_say_how(tmp_path: Path, ending: str) -> None:
    with pytest.raises(UsageError) as info:
        detect(tmp_path / f"Main{ending}")
    assert info.value.hint and "compile" in info.value.hint


def test_by_name_covers_the_matrix() -> None:
    names = {"java", "scala", "clojure", "groovy", "jruby", "kotlin", "javascript", "jython"}
    assert {lang.name for lang in LANGUAGES} == names
    for name in names:
        assert by_name(name).name == name


def test_table_is_consistent() -> None:
    seen: set[str] = set()
    for lang in LANGUAGES:
        assert not seen & set(lang.extensions), "an ending belongs to one language"
        seen |= set(lang.extensions)
        assert bool(lang.extensions) == (lang.main_class is not None)
        assert all(ext.startswith(".") and ext == ext.lower() for ext in lang.extensions)
        for _host, image in lang.image_trees:
            assert image.startswith(languages.IMAGE_RUNTIMES + "/")


def test_script_args() -> None:
    assert by_name("clojure").script_args("/app/main.clj", ["a", "b"]) == ["/app/main.clj", "a", "b"]
    assert by_name("scala").script_args("/app/m.scala", ["x"]) == ["-nc", "/app/m.scala", "x"]


def test_options_by_jdk() -> None:
    jruby = by_name("jruby")
    assert "--sun-misc-unsafe-memory-access=allow" not in jruby.options_for(17)
    assert "--sun-misc-unsafe-memory-access=allow" in jruby.options_for(25)
    assert jruby.options_for(17) == list(jruby.jvm_options)


def test_host_path_maps_home_and_trees() -> None:
    jruby = by_name("jruby")
    assert host_path(jruby, "-Djruby.home=/opt/jruby") == "-Djruby.home=/usr/share/jruby"
    assert host_path(jruby, "/opt/jruby/lib/ruby/stdlib") == "/usr/share/jruby/lib/ruby/stdlib"
    assert host_path(jruby, "-Xss2048k") == "-Xss2048k"


def test_missing_runtime_message() -> None:
    fake = replace(by_name("scala"), runtime_jars=("/nonexistent/scala-library.jar",))
    with pytest.raises(DependencyError) as info:
        runtime_classpath(fake)
    assert str(info.value) == "the scala runtime is not installed (no /nonexistent/scala-library.jar)"
    assert info.value.hint == "apt-get install scala"


def test_missing_tree_is_reported() -> None:
    fake = replace(by_name("jruby"), image_trees=(("/nonexistent/ruby", "/opt/jruby/lib/ruby"),))
    with pytest.raises(DependencyError, match="/nonexistent/ruby"):
        runtime_classpath(fake)


def _jar(path: Path, class_path: str | None) -> Path:
    manifest = "Manifest-Version: 1.0\r\n"
    if class_path is not None:
        manifest += f"Class-Path: {class_path}\r\n"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("META-INF/MANIFEST.MF", manifest + "\r\n")
    return path


def test_manifest_class_path_is_followed(tmp_path: Path) -> None:
    long_name = "dependency-with-a-rather-long-name-so-the-manifest-line-wraps-at-72-bytes.jar"
    _jar(tmp_path / long_name, "missing.jar")
    _jar(tmp_path / "b.jar", f"{tmp_path / long_name}")
    _jar(tmp_path / "a.jar", "b.jar a.jar")
    (tmp_path / "link.jar").symlink_to(tmp_path / "a.jar")
    fake = replace(by_name("groovy"), runtime_jars=(str(tmp_path / "link.jar"),))
    assert runtime_classpath(fake) == sorted([tmp_path / "a.jar", tmp_path / "b.jar", tmp_path / long_name])


@pytest.mark.parametrize("lang", LANGUAGES, ids=lambda lang: lang.name)
def test_runtime_classpath_resolves_here(lang: languages.Language) -> None:
    jars = runtime_classpath(lang)
    assert jars == sorted(jars)
    assert all(jar.is_absolute() and jar.is_file() and not jar.is_symlink() for jar in jars)
    assert bool(jars) == (lang.name != "java")
    library = runtime_classpath(lang, library_only=True)
    assert set(library) <= set(jars)
    for host, _image in lang.image_trees:
        assert Path(host).is_dir()
