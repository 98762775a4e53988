"""Third-party programs from Debian's packages that osv-java runs unmodified, as one table.

Each entry says how to start the program with a plain `java` launcher (Debian's own commands are
shell scripts), what it reads, and what a correct run looks like, so the compatibility matrix can
run it in a VM and judge the result without per-program code.

Arguments name files by their path relative to the repository root ("examples/apps/..."). The
program runs with that root as its working directory: on the host the repository itself, in the
image the folder where the builder copies `files`, keeping their relative paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from jvmbridge.errors import UsageError
from kernel.build.languages import SHARE_JAVA, resolve_jars


@dataclass(frozen=True)
class HttpCheck:
    """A server program: publish `port`, then GET `path` must answer `status` with `body` in it."""

    port: int
    path: str
    status: int
    body: str


@dataclass(frozen=True)
class ThirdParty:
    """One unmodified program: class path, main class, arguments and its expected result."""

    name: str
    debian_package: str
    classpath: tuple[str, ...]  # host jar paths or globs; manifest dependencies are added
    main_class: str
    args: tuple[str, ...]
    files: tuple[str, ...]  # repository paths (files or folders) the program reads
    stdout: str  # exact text, or a regular expression when stdout_is_regex
    exit: int | None  # None for a server that runs until stopped
    needs_all_modules: bool
    stdout_is_regex: bool = False
    stderr_regex: str | None = None  # when set, stderr must match it (re.fullmatch)
    jvm_options: tuple[str, ...] = ()
    http: HttpCheck | None = None
    why: str = ""

    def stdout_ok(self, text: str) -> bool:
        if self.stdout_is_regex:
            return re.fullmatch(self.stdout, text) is not None
        return text == self.stdout

    def stderr_ok(self, text: str) -> bool:
        return self.stderr_regex is None or re.fullmatch(self.stderr_regex, text) is not None


def _jars(*names: str) -> tuple[str, ...]:
    return tuple(f"{SHARE_JAVA}/{name}.jar" for name in names)


APPS = "examples/apps"

PROGRAMS: tuple[ThirdParty, ...] = (
    ThirdParty(
        name="h2",
        debian_package="libh2-java",
        classpath=_jars("h2"),
        main_class="org.h2.tools.Shell",
        args=("-url", "jdbc:h2:mem:x", "-sql", "SELECT 6*7 AS ANSWER, UPPER('osv-java') AS NAME"),
        files=(),
        stdout=r"ANSWER \| NAME\n42 +\| OSV-JAVA\n\(1 row, \d+ ms\)\n",
        stdout_is_regex=True,
        exit=0,
        needs_all_modules=False,
        why="an in-memory SQL database: JDBC, the SQL parser and the MVStore engine",
    ),
    ThirdParty(
        # Debian's `ant` script starts org.apache.tools.ant.launch.Launcher with ant.home and
        # -Djava.security.manager=allow; that option stops JDK 24+ from starting ("Enabling a
        # Security Manager is not supported"), and without ant.home the Launcher loads every jar
        # beside ant-launcher.jar (all of /usr/share/java). Ant's own Main needs neither.
        name="ant",
        debian_package="ant",
        classpath=_jars("ant", "ant-launcher"),
        main_class="org.apache.tools.ant.Main",
        args=("-quiet", "-noinput", "-buildfile", f"{APPS}/ant/build.xml"),
        files=(f"{APPS}/ant/build.xml",),
        stdout=(
            r"     \[echo\] osv-java-ant: built by Ant \(12 characters\)\n"
            r"     \[echo\] java 17 or later: yes\n\nBUILD SUCCESSFUL\nTotal time: \d+ seconds?\n"
        ),
        stdout_is_regex=True,
        exit=0,
        needs_all_modules=True,  # tasks are loaded by name and may reach any JDK module
        why="a build tool: XML parsing, reflection-loaded tasks, properties and conditions",
    ),
    ThirdParty(
        # /usr/bin/checkstyle (java-wrappers) puts these jars on the class path.
        name="checkstyle",
        debian_package="checkstyle",
        classpath=_jars(
            "checkstyle",
            "antlr4-runtime",
            "commons-lang3",
            "commons-beanutils",
            "commons-collections3",
            "guava",
            "commons-cli",
            "commons-logging",
            "picocli",
            "Saxon-HE",
            "reflections",
        ),
        main_class="com.puppycrawl.tools.checkstyle.Main",
        args=("-c", f"{APPS}/checkstyle/checks.xml", f"{APPS}/checkstyle/Sample.java"),
        files=(f"{APPS}/checkstyle/checks.xml", f"{APPS}/checkstyle/Sample.java"),
        stdout=(
            r"Starting audit\.\.\.\n"
            r"\[ERROR\] \S*Sample\.java:3:30: Name 'limit' must match pattern "
            r"'\^\[A-Z\]\[A-Z0-9\]\*\(_\[A-Z0-9\]\+\)\*\$'\. \[ConstantName\]\n"
            r"\[ERROR\] \S*Sample\.java:5:16: Name 'Twice' must match pattern "
            r"'\^\[a-z\]\[a-zA-Z0-9\]\*\$'\. \[MethodName\]\n"
            r"Audit done\.\n"
        ),
        stdout_is_regex=True,
        stderr_regex=r"Checkstyle ends with 2 errors\.\n",
        exit=2,  # Checkstyle exits with the number of errors it found
        needs_all_modules=False,
        why="a Java source checker: an ANTLR parser and reflection-configured checks",
    ),
    ThirdParty(
        name="saxon",
        debian_package="libsaxonhe-java",
        classpath=_jars("Saxon-HE"),
        main_class="net.sf.saxon.Transform",
        args=(f"-s:{APPS}/saxon/languages.xml", f"-xsl:{APPS}/saxon/report.xsl"),
        files=(f"{APPS}/saxon/languages.xml", f"{APPS}/saxon/report.xsl"),
        stdout="dynamic: Clojure, Groovy\nstatic: Java, Kotlin, Scala\noldest: Java (1995)\n",
        exit=0,
        needs_all_modules=False,
        why="an XSLT 3.0 processor: grouping, sorting and string functions",
    ),
    ThirdParty(
        # No start.jar (it forks and reads jetty.home): Jetty's XmlConfiguration builds and starts
        # the server from examples/apps/jetty/jetty.xml.
        name="jetty",
        debian_package="jetty9",
        classpath=(
            *_jars("jetty9-server", "jetty9-util", "jetty9-http", "jetty9-io", "jetty9-xml"),
            f"{SHARE_JAVA}/servlet-api.jar",
        ),
        main_class="org.eclipse.jetty.xml.XmlConfiguration",
        args=(f"{APPS}/jetty/jetty.xml",),
        files=(f"{APPS}/jetty/jetty.xml", f"{APPS}/jetty/www"),
        stdout="",
        exit=None,
        needs_all_modules=False,
        http=HttpCheck(
            port=8080, path="/", status=200, body="Served by Jetty 9 from a single-application VM."
        ),
        why="an HTTP server: NIO selectors, thread pools, static files",
    ),
)


def by_name(name: str) -> ThirdParty:
    for program in PROGRAMS:
        if program.name == name:
            return program
    known = ", ".join(p.name for p in PROGRAMS)
    raise UsageError(f"unknown third-party program {name!r} (known: {known})", hint=f"use one of: {known}")


def classpath(program: ThirdParty) -> list[Path]:
    """The program's jars on this machine (resolved, sorted); DependencyError when not installed."""
    return resolve_jars(
        program.classpath, f"{program.name} ({program.debian_package})", program.debian_package
    )


def java_command(program: ThirdParty, java: Path | str) -> list[str]:
    """The host command line that runs `program`, from the repository root as working directory."""
    cp = ":".join(str(p) for p in classpath(program))
    return [str(java), *program.jvm_options, "-cp", cp, program.main_class, *program.args]
