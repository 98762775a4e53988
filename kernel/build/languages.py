"""What each JVM language needs to run with a plain `java` launcher, as one table.

The guest has no shell, so Debian's launcher scripts (`scala`, `groovy`, `jruby`, ...) cannot run
there. Each entry below is what such a script works out at run time - jars, main class, system
properties, folders - written down as data, so the image builder needs no per-language code.

Paths in `jvm_options` that start with an image folder of `image_trees` name that folder inside the
image; `Language.host_jvm_options` maps them back to the host for runs outside a VM.
"""

from __future__ import annotations

import glob
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from jvmbridge.errors import DependencyError, UsageError
from kernel.formats.zip_entry import ZipEntryError, read_entry

SHARE_JAVA = "/usr/share/java"

# Where runtimes that need folders at run time are placed inside the image.
IMAGE_RUNTIMES = "/opt"

# JRuby opens these JDK internals for native I/O; Debian's launcher passes them (for its module
# name) from bin/.jruby.module_opts. On the class path the target is ALL-UNNAMED.
_JRUBY_OPENS = (
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.nio.channels=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.management/sun.management=ALL-UNNAMED",
)


@dataclass(frozen=True)
class Language:
    """One JVM language: how to start a program written in it without a launcher script."""

    name: str
    extensions: tuple[str, ...]
    debian_package: str
    main_class: str | None
    runtime_jars: tuple[str, ...]
    jvm_options: tuple[str, ...]
    image_trees: tuple[tuple[str, str], ...]
    needs_all_modules: bool
    title: str = ""
    # Options for the runtime's launcher, placed before the script (e.g. Scala's -nc).
    launcher_args: tuple[str, ...] = ()
    # The smaller set a compiled program needs (`--with`); empty means runtime_jars.
    library_jars: tuple[str, ...] = ()
    # (first JDK feature release, options) for options older JDKs refuse to start with.
    jvm_options_since: tuple[tuple[int, tuple[str, ...]], ...] = ()
    # Main-Class of the example jar that examples/build.py compiles, for compiled languages.
    example_main: str | None = None
    # What the guest must offer beyond the image's read-only files.
    notes: str = ""
    # JDK modules the runtime needs that jdeps cannot see (the Scala runner compiles with javac's API).
    extra_modules: tuple[str, ...] = ()

    def script_args(self, script_in_image: str, user_args: list[str]) -> list[str]:
        """The arguments after the main class: launcher options, the script, then the user's."""
        return [*self.launcher_args, script_in_image, *user_args]

    def options_for(self, jdk_feature: int) -> list[str]:
        """jvm_options plus those only JDK `jdk_feature` and later accept."""
        extra = [opt for since, opts in self.jvm_options_since if jdk_feature >= since for opt in opts]
        return [*self.jvm_options, *extra]

    def host_jvm_options(self, jdk_feature: int) -> list[str]:
        """options_for() with image folders replaced by the host folders they are copied from."""
        return [host_path(self, opt) for opt in self.options_for(jdk_feature)]

    @property
    def runs_scripts(self) -> bool:
        return self.main_class is not None


def _jar(name: str) -> str:
    return f"{SHARE_JAVA}/{name}"


def _home(name: str) -> str:
    return f"{IMAGE_RUNTIMES}/{name}"


LANGUAGES: tuple[Language, ...] = (
    Language(
        name="java",
        title="Java",
        extensions=(),
        debian_package="openjdk-17-jdk-headless",
        main_class=None,
        runtime_jars=(),
        jvm_options=(),
        image_trees=(),
        needs_all_modules=False,
        example_main="Main",
    ),
    Language(
        # Debian's `scala` script: every jar of scala-2.11/lib on the class path,
        # -Dscala.usejavacp=true, main class MainGenericRunner. -nc stops the runner from
        # starting or contacting a compile-server daemon (which fails on JDK 17).
        name="scala",
        title="Scala",
        extensions=(".scala", ".sc"),
        debian_package="scala",
        main_class="scala.tools.nsc.MainGenericRunner",
        runtime_jars=(
            _jar("scala-library.jar"),
            _jar("scala-reflect.jar"),
            _jar("scala-compiler.jar"),
            _jar("scala-xml_2.11.jar"),
            _jar("scala-parser-combinators_2.11.jar"),
        ),
        library_jars=(_jar("scala-library.jar"),),
        jvm_options=("-Dscala.usejavacp=true",),
        image_trees=(),
        needs_all_modules=True,
        launcher_args=("-nc",),
        extra_modules=("jdk.compiler",),
        example_main="Main",
        notes="scripts are compiled at start into java.io.tmpdir, which must be writable",
    ),
    Language(
        # /usr/bin/clojure1.11: java -cp clojure-1.11.jar clojure.main. The jar's manifest
        # Class-Path points into /usr/share/maven-repo; spec.alpha and core.specs.alpha are
        # named here so the class path is complete wherever the jars are copied.
        name="clojure",
        title="Clojure",
        extensions=(".clj", ".cljc"),
        debian_package="clojure",
        main_class="clojure.main",
        runtime_jars=(_jar("clojure.jar"), _jar("spec.alpha.jar"), _jar("core.specs.alpha.jar")),
        jvm_options=(),
        image_trees=(),
        needs_all_modules=True,
    ),
    Language(
        # startGroovy goes through GroovyStarter, which reads conf/groovy-starter.conf to load
        # groovy/lib/*.jar. groovy-all.jar holds the same classes, so GroovyMain starts directly.
        name="groovy",
        title="Groovy",
        extensions=(".groovy", ".gvy"),
        debian_package="groovy",
        main_class="groovy.ui.GroovyMain",
        runtime_jars=(_jar("groovy-all.jar"),),
        jvm_options=(),
        image_trees=(),
        needs_all_modules=True,
    ),
    Language(
        # bin/jruby: lib/jruby.jar + lib/*.jar, -Xss2048k, jruby.home/jruby.lib, the add-opens of
        # .jruby.module_opts. The Ruby standard library lives in jruby.home/lib/ruby, outside the
        # jar, so it goes into the image as a tree.
        name="jruby",
        title="JRuby",
        extensions=(".rb",),
        debian_package="jruby",
        main_class="org.jruby.Main",
        runtime_jars=("/usr/share/jruby/lib/*.jar",),
        jvm_options=(
            "-Xss2048k",
            *_JRUBY_OPENS,
            f"-Djruby.home={_home('jruby')}",
            f"-Djruby.lib={_home('jruby')}/lib",
            "-Djruby.script=jruby",
            "-Djruby.openssl.load.jars=false",
        ),
        jvm_options_since=((23, ("--sun-misc-unsafe-memory-access=allow",)),),
        image_trees=(("/usr/share/jruby/lib/ruby", f"{_home('jruby')}/lib/ruby"),),
        needs_all_modules=True,
    ),
    Language(
        # Debian's kotlin 1.3.31 cannot run .kts scripts here: the compiler (about 100 MB) must be
        # present at run time, and its IntelliJ core fails on JDK 25 ("IllegalArgumentException:
        # 25.0.3" parsing the Java version). Programs are compiled with kotlinc into a jar and run
        # with --with kotlin, which adds the standard library.
        name="kotlin",
        title="Kotlin",
        extensions=(),
        debian_package="kotlin",
        main_class=None,
        runtime_jars=(
            _jar("kotlin-stdlib.jar"),
            _jar("kotlin-stdlib-jdk7.jar"),
            _jar("kotlin-stdlib-jdk8.jar"),
        ),
        jvm_options=(),
        image_trees=(),
        needs_all_modules=False,
        example_main="MainKt",
    ),
    Language(
        # /usr/bin/rhino: java -classpath js.jar:jline.jar org.mozilla.javascript.tools.shell.Main
        # (jline only serves the interactive shell).
        name="javascript",
        title="JavaScript",
        extensions=(".js",),
        debian_package="rhino",
        main_class="org.mozilla.javascript.tools.shell.Main",
        runtime_jars=(_jar("rhino.jar"),),
        jvm_options=(),
        image_trees=(),
        needs_all_modules=True,
    ),
    Language(
        # bin/jython: java -jar jython.jar -Dpython.home=/usr/share/jython. The Python library
        # (Lib/) is inside jython.jar, so no python.home is needed; its dependencies come from
        # the jar's manifest Class-Path. The package cache is skipped because the image is
        # read-only.
        name="jython",
        title="Jython",
        extensions=(".py",),
        debian_package="jython",
        main_class="org.python.util.jython",
        runtime_jars=(_jar("jython.jar"),),
        jvm_options=("-Dpython.cachedir.skip=true",),
        image_trees=(),
        needs_all_modules=True,
    ),
)

# Endings we recognise but cannot run as given: why, and what to do instead.
_NOT_RUNNABLE: dict[str, tuple[str, str]] = {
    ".kts": (
        "Kotlin scripts need the Kotlin compiler at run time, and Debian's kotlin 1.3 compiler does "
        "not start on JDK 25",
        "compile it: kotlinc Main.kt -d classes, jar it, then run the jar with --with kotlin",
    ),
    ".kt": (
        "Kotlin sources must be compiled first",
        "compile it: kotlinc Main.kt -d classes, jar it, then run the jar with --with kotlin",
    ),
    ".java": (
        "Java sources must be compiled first",
        "compile it: javac -d classes Main.java, then pass the classes folder or a jar",
    ),
}

_JAVA_ENDINGS = (".jar",)


def by_name(name: str) -> Language:
    """The language called `name` (for --lang and --with)."""
    for lang in LANGUAGES:
        if lang.name == name.strip().lower():
            return lang
    known = ", ".join(lang.name for lang in LANGUAGES)
    raise UsageError(f"unknown language {name!r} (known: {known})", hint=f"use one of: {known}")


def known_endings() -> list[str]:
    """Every file ending detect() accepts, for messages."""
    return [*_JAVA_ENDINGS, *(ext for lang in LANGUAGES for ext in lang.extensions)]


def detect(path: Path, lang: str | None = None) -> Language:
    """The language of the program at `path`: --lang wins, else a folder or jar is Java, else the ending."""
    if lang:
        return by_name(lang)
    path = Path(path)
    if path.is_dir():
        return by_name("java")
    suffix = path.suffix.lower()
    if suffix in _JAVA_ENDINGS:
        return by_name("java")
    for candidate in LANGUAGES:
        if suffix in candidate.extensions:
            return candidate
    if suffix in _NOT_RUNNABLE:
        why, hint = _NOT_RUNNABLE[suffix]
        raise UsageError(f"cannot run {path}: {why}", hint=hint)
    ending = f"ending {suffix!r}" if suffix else "no file ending"
    names = ", ".join(lang.name for lang in LANGUAGES)
    raise UsageError(
        f"cannot tell the language of {path}: {ending} (known: a class folder, {', '.join(known_endings())})",
        hint=f"pass --lang NAME (one of: {names})",
    )


def _manifest_class_path(jar: Path) -> list[Path]:
    """The jars a jar's manifest Class-Path names, relative to the jar's folder; [] when none."""
    try:
        data = read_entry(jar, "META-INF/MANIFEST.MF")
    except ZipEntryError:  # one the quick reader leaves to zipfile
        data = _manifest_by_zipfile(jar)
    except OSError:
        return []
    if data is None:
        return []
    raw = data.decode("utf-8", errors="replace")
    # Manifest lines are wrapped at 72 bytes; a continuation line starts with one space.
    text = raw.replace("\r\n", "\n").replace("\r", "\n").replace("\n ", "")
    for line in text.split("\n"):
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == "class-path":
            return [jar.parent / PurePosixPath(entry.removeprefix("file:")) for entry in value.split()]
    return []


def _manifest_by_zipfile(jar: Path) -> bytes | None:
    import zipfile  # here: the quick reader reads all but odd jars

    try:
        with zipfile.ZipFile(jar) as zf:
            return zf.read("META-INF/MANIFEST.MF")
    except (KeyError, OSError, zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError):
        return None


def _with_manifest_closure(jars: list[Path]) -> list[Path]:
    """`jars` plus the existing jars their manifests name, transitively.

    Debian's jars find their dependencies through absolute Class-Path entries; once copied into an
    image those paths may not exist, so the class path is made complete by naming them all.
    """
    seen: set[Path] = set()
    todo = list(jars)
    out: list[Path] = []
    while todo:
        jar = todo.pop(0)
        real = jar.resolve()
        if real in seen or not real.is_file():
            continue
        seen.add(real)
        out.append(real)
        todo.extend(_manifest_class_path(jar))
    return out


def resolve_jars(patterns: tuple[str, ...], what: str, package: str) -> list[Path]:
    """Expand jar paths/globs, add their manifest dependencies, resolve symlinks, sort.

    `what` names the runtime in the error when a pattern matches nothing ("the scala runtime").
    """
    found: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern))
        if not matches:
            raise DependencyError(
                f"{what} is not installed (no {pattern})", hint=f"apt-get install {package}"
            )
        found.extend(Path(m) for m in matches)
    return sorted(set(_with_manifest_closure(found)))


def runtime_classpath(lang: Language, *, library_only: bool = False) -> list[Path]:
    """The runtime's jars on this machine, symlinks resolved, sorted, manifest dependencies included.

    library_only gives the smaller set a compiled program needs (Scala: scala-library alone).
    Raises DependencyError naming the missing jar and the package to install.
    """
    patterns = lang.library_jars if library_only and lang.library_jars else lang.runtime_jars
    jars = resolve_jars(patterns, f"the {lang.name} runtime", lang.debian_package)
    for host, _image in lang.image_trees:
        if not Path(host).is_dir():
            raise DependencyError(
                f"the {lang.name} runtime is not installed (no {host})",
                hint=f"apt-get install {lang.debian_package}",
            )
    return jars


def host_path(lang: Language, text: str) -> str:
    """Replace an image folder of `lang` in `text` with the host folder it comes from.

    Trees share their trailing parts (host /usr/share/jruby/lib/ruby, image /opt/jruby/lib/ruby),
    so the shared tail is dropped and the remaining prefixes are swapped: that also maps the
    runtime's home (/opt/jruby -> /usr/share/jruby), which options name.
    """
    for host, image in lang.image_trees:
        host_parts, image_parts = list(PurePosixPath(host).parts), list(PurePosixPath(image).parts)
        while len(host_parts) > 1 and len(image_parts) > 1 and host_parts[-1] == image_parts[-1]:
            host_parts.pop()
            image_parts.pop()
        image_prefix, host_prefix = str(PurePosixPath(*image_parts)), str(PurePosixPath(*host_parts))
        if image_prefix in text:
            return text.replace(image_prefix, host_prefix)
    return text
