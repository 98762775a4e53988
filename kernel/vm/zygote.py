"""Started-JVM snapshots: a machine saved once its JVM has started and waits for an app.

The JVM's own start is most of a repeat run under software emulation (exec to main ~1 s of a
hello), so a run whose JVM command line is one the snapshot was made with restores a JVM that has
started: osvjava.Zygote (kernel/guest/java, in every image's base initramfs) gets ready and waits on
a FIFO, the host saves the machine as it saves a ready snapshot (kernel.vm.ready), and each run
sends the app's files with "resume", after which PID 1 writes the app's class path, main class and
arguments to the FIFO. The key is the boot snapshot's plus the zygote's command line (the run's JVM
and options), the environment and the working folder: every app of a runtime run with the same
options restores one snapshot.

A JVM that maps a start-up archive (kernel.build.startup_archive: made for the app's class path) is
started with that class path, the zygote's own folder after it (an archive takes a class path that
extends its own), so the archive is mapped and checked as in a plain start; such a snapshot is the
app's own (its key holds the app's image), and the zygote then appends nothing and needs no --add-opens.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from kernel.build import zygote as zygote_build

FORMAT = 2
FIFO = "/run/osv-zygote.fifo"  # PID 1 makes it before starting the zygote
READY_FILE = "/run/osv-zygote.ready"
CLASS_PATH_OPTIONS = ("-cp", "-classpath", "--class-path")
# Manifest attributes of a -jar app that the launcher acts on before main, at the JVM's start
STARTUP_ATTRIBUTES = ("Launcher-Agent-Class", "Add-Opens", "Add-Exports", "Enable-Native-Access", "SplashScreen-Image")
# the options that map an archive made for the app's class path (the zygote then starts with that class
# path), and those that write one when the JVM exits (a started JVM's would be written in every restore)
APP_ARCHIVE_OPTIONS = ("-XX:SharedArchiveFile=", "-XX:AOTCache=")
DUMP_OPTIONS = ("-XX:AOTCacheOutput=", "-XX:ArchiveClassesAtExit=", "-XX:AOTConfiguration=", "-XX:AOTMode=record",
                "-XX:AOTMode=create")


@dataclass(frozen=True)
class Launch:
    """A JVM command line taken apart: the JVM and its options, and what the zygote is handed."""

    jvm: tuple[str, ...]
    class_path: str
    main_class: str
    command: str  # what `sun.java.command` starts with: the main class, or the jar given to -jar
    args: tuple[str, ...]
    # A language runtime's class path and main class (a script's run): the zygote starts with them
    # and initialises that class before it waits (Clojure's loads clojure.core: seconds under
    # emulation, then in no run)
    runtime: str = ""
    # The JVM maps an archive made for `class_path`: the zygote starts with that class path (see above)
    archived: bool = False

    def fields(self) -> list[str]:
        """What PID 1 writes to the zygote's FIFO (each NUL-terminated)."""
        return [self.class_path, self.main_class, self.command, *self.args]

    def zygote_argv(self) -> list[str]:
        if self.archived:
            options, class_path = [], f"{self.class_path}:{zygote_build.ZYGOTE_IN_IMAGE}"
        else:
            options = list(zygote_build.JVM_OPTIONS)
            class_path = ":".join(filter(None, (zygote_build.ZYGOTE_IN_IMAGE, self.runtime)))
        return [*self.jvm, *options, "-cp", class_path, zygote_build.MAIN_CLASS, FIFO, READY_FILE,
                *((self.main_class,) if self.runtime else ())]


# The user's JVM options that act or print at the JVM's start: with a started JVM they would act once,
# in the run that saves it, and their output would be that run's alone
# (and --enable-preview: on JDK 21 to 24 it changes which main methods the launcher takes)
STARTUP_OPTIONS = ("-javaagent:", "-agentlib:", "-agentpath:", "-Xrun", "-Xdebug", "-verbose", "-Xlog", "-XX:+Print",
                   "-showversion", "--show-version", "-XshowSettings", "-Xshare:dump", "-XX:+Verbose",
                   "--enable-preview")
# Read by the JVM (or its launcher) at its start, which says so on stderr
OPTIONS_VARIABLES = ("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS")


def unsuitable(user_options: list[str], env: dict[str, str]) -> str | None:
    """Why the user's JVM options or environment call for a JVM of the run's own; None when they do not."""
    acting = [option for option in user_options if option.startswith(STARTUP_OPTIONS)]
    if acting:
        return f"{acting[0]} acts at the JVM's start"
    named = [name for name in OPTIONS_VARIABLES if name in env]
    return f"{named[0]} is read at the JVM's start" if named else None


def unsupported(manifest: dict[str, str]) -> str | None:
    """Why a -jar app with this manifest cannot start in a started JVM; None when it can."""
    asked = [name for name in STARTUP_ATTRIBUTES if name in manifest]
    return f"its manifest asks for {', '.join(asked)} at the JVM's start" if asked else None


def split(argv: list[str], main_class: str, app_args: int, runtime: str | None = None) -> Launch | None:
    """`argv` as [java, options..., -jar JAR | -cp PATH MAIN, args...] with `app_args` arguments at its
    end; None when it is not that, or when an option writes an archive at the JVM's exit. `runtime`: a
    script's language runtime class path, whose main class is the runtime's (see Launch.runtime)."""
    body, args = argv[: len(argv) - app_args], tuple(argv[len(argv) - app_args:])
    if any(option.startswith(DUMP_OPTIONS) for option in body):
        return None
    archived = any(option.startswith(APP_ARCHIVE_OPTIONS) for option in body)
    if len(body) >= 3 and body[-2] == "-jar":
        return Launch(tuple(body[:-2]), body[-1], main_class, body[-1], args, archived=archived)
    if len(body) >= 4 and body[-3] in CLASS_PATH_OPTIONS and body[-1] == main_class:
        # only a class path that is the runtime's alone keeps its order when the zygote starts with it
        preloaded = runtime if runtime and body[-2] == runtime else ""
        return Launch(tuple(body[:-3]), body[-2], main_class, main_class, args, preloaded, archived)
    return None


def key(machine_key: str, launch: Launch, env: list[str], cwd: str, hooks: list[str], app: str = "") -> str:
    """`hooks`: what the policies set in the guest before the JVM and run beside it (their supervisors),
    which the saved machine holds too. `app`: what identifies the app's files (its image), for a JVM
    that maps the app's archive: that JVM has checked the app's class path against it at its start."""
    parts = [f"zygote-format={FORMAT}", f"machine={machine_key}", *(f"argv={a}" for a in launch.zygote_argv()),
             *(f"env={item}" for item in sorted(env)), f"cwd={cwd}", *(f"hook={h}" for h in hooks),
             *([f"app={app}"] if launch.archived else [])]
    return "zygote-" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]
