"""osvjava.Zygote runs an app as `java -cp` / `java -jar` would: same output, stderr and status.

Real JVMs (every JDK 17+ installed): a probe app is run plainly and through the zygote (started
first, then handed the launch on its FIFO), and the two runs must agree byte for byte: the class
path and command properties, the app's manifest as the first system resource, its code source,
its manifest Class-Path dependency, the system and context class loaders, an uncaught exception's
stack trace with its cause, an error in a static initialiser, System.exit, stdin, and a thread
that outlives main.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from jvmbridge import jdk as jdks

ROOT = Path(__file__).resolve().parents[2]
ZYGOTE_SOURCE = ROOT / "kernel/guest/java/osvjava/Zygote.java"
PROBE = ROOT / "tests/java/zygote_probe"
JDKS = [j for j in jdks.find_all() if j.feature >= 17]
CASES = [(["props", "a b", "ü"], b""), (["throw"], b""), (["exit", "7"], b""), (["init"], b""),
         (["stdin"], b"hello there\n"), (["thread"], b"")]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not JDKS:
        pytest.skip("no JDK 17 or later installed")
    javac = min(JDKS, key=lambda j: j.feature).tool("javac")
    work = tmp_path_factory.mktemp("zygote")
    subprocess.run([str(javac), "--release", "17", "-d", str(work / "zygote"), str(ZYGOTE_SOURCE)], check=True)
    classes = work / "classes"
    sources = [str(p) for p in PROBE.rglob("*.java")]
    subprocess.run([str(javac), "--release", "17", "-d", str(classes), *sources], check=True)
    jar = min(JDKS, key=lambda j: j.feature).tool("jar")
    (work / "lib").mkdir()
    subprocess.run([str(jar), "--create", "--file", str(work / "lib/dep.jar"), "-C", str(classes), "dep"], check=True)
    manifest = work / "manifest.txt"
    manifest.write_text("Main-Class: app.Probe\nClass-Path: lib/dep.jar\n\nName: app/\nImplementation-Title: probe\n")
    subprocess.run([str(jar), "--create", "--file", str(work / "app.jar"), "--manifest", str(manifest),
                    "-C", str(classes), "app"], check=True)
    return work


def plain(java: Path, work: Path, form: str, args: list[str], stdin: bytes, options: tuple[str, ...] = ()
          ) -> tuple[int, str, str]:
    launch = ["-jar", "app.jar"] if form == "jar" else ["-cp", "app.jar", "app.Probe"]
    proc = subprocess.run([str(java), *options, *launch, *args], input=stdin, capture_output=True, cwd=work,
                          timeout=60)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def through_zygote(java: Path, work: Path, form: str, args: list[str], stdin: bytes) -> tuple[int, str, str]:
    command = "app.jar" if form == "jar" else "app.Probe"
    return launched(java, work, ["app.jar", "app.Probe", command, *args], stdin)


def launched(java: Path, work: Path, fields: list[str], stdin: bytes = b"", preload: tuple[str, str] | None = None,
             options: tuple[str, ...] = (), archived: bool = False) -> tuple[int, str, str]:
    """Start the zygote in `work`, hand it `fields` (class path, main class, command, args) on its FIFO.
    `preload`: a runtime's class path the zygote starts with, and the class it initialises. `archived`:
    it starts with the app's class path, its own folder after it, and no --add-opens (kernel.vm.zygote)."""
    fifo, ready = work / f"launch-{os.getpid()}", work / f"ready-{os.getpid()}"
    os.mkfifo(fifo)
    try:
        if archived:
            class_path, opens = f"{fields[0]}:{work / 'zygote'}", ()
        else:
            class_path = str(work / "zygote") + (f":{preload[0]}" if preload else "")
            opens = ("--add-opens", "java.base/jdk.internal.loader=ALL-UNNAMED")
        proc = subprocess.Popen([str(java), *options, *opens, "-cp", class_path, "osvjava.Zygote", str(fifo),
                                 str(ready), *((preload[1],) if preload else ())],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=work)
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the zygote did not get ready"
            time.sleep(0.01)
        with open(fifo, "wb") as f:
            f.write(b"".join(field.encode() + b"\0" for field in fields))
        out, err = proc.communicate(stdin, timeout=60)
        return proc.returncode, out.decode(), err.decode()
    finally:
        fifo.unlink()
        ready.unlink(missing_ok=True)


@pytest.mark.parametrize("feature", sorted({j.feature for j in JDKS}))
@pytest.mark.parametrize("form", ["cp", "jar"])
def test_the_zygote_runs_an_app_as_the_launcher_does(built: Path, feature: int, form: str) -> None:
    java = next(j for j in JDKS if j.feature == feature).tool("java")
    for args, stdin in CASES:
        expected = plain(java, built, form, args, stdin)
        assert through_zygote(java, built, form, args, stdin) == expected, args
    status, out, _ = plain(java, built, form, ["props"], b"")
    assert status == 0 and "manifest jar:file:" in out and "dep dep.Dep" in out  # the probe probes


@pytest.mark.parametrize("feature", sorted({j.feature for j in JDKS}))
def test_a_zygote_started_with_the_apps_class_path_runs_it_from_the_apps_archive(built: Path, feature: int) -> None:
    """With a start-up archive (JDK 25's AOT cache, a dynamic CDS archive before) made by a plain run of
    the jar, the zygote starts with the app's class path and its own folder after it: the JVM takes the
    archive (sharing forced on: it fails rather than run without), the app's classes and its manifest
    Class-Path dependency come from it, and the app runs as it does in a plain start with that archive."""
    jdk = next(j for j in JDKS if j.feature == feature)
    java = jdk.tool("java")
    archive = built / f"app-{feature}.archive"
    archive.unlink(missing_ok=True)
    dump = f"-XX:AOTCacheOutput={archive}" if feature >= 25 else f"-XX:ArchiveClassesAtExit={archive}"
    subprocess.run([str(java), dump, "-jar", "app.jar", "props"], cwd=built, check=True, capture_output=True,
                   timeout=120)
    forced = ("-XX:AOTMode=on", f"-XX:AOTCache={archive}") if feature >= 25 else \
        ("-Xshare:on", f"-XX:SharedArchiveFile={archive}")
    for args, stdin in CASES:
        loaded = built / f"loaded-{feature}-{args[0]}.log"  # the props case loads the dependency too
        expected = plain(java, built, "jar", args, stdin, forced)
        assert launched(java, built, ["app.jar", "app.Probe", "app.jar", *args], stdin, archived=True,
                        options=(*forced, f"-Xlog:class+load=info:file={loaded}")) == expected, args
    classes = (built / f"loaded-{feature}-props.log").read_text()
    assert "app.Probe source: shared objects file" in classes and "dep.Dep source: shared objects file" in classes


MAINS = ROOT / "tests/java/zygote_mains"
MAINS_17 = ["NotStatic", "ReturnsInt", "NoMain", "PackageMain", "Child", "Missing", "BadInit"]
MAINS_25 = ["Instance", "Derived", "Abstract", "PrivateConstructor", "PrivateMain", "ArgsWin", "FromInterface",
            "Outer$Inner", "Throws"]


@pytest.mark.parametrize("feature", sorted({j.feature for j in JDKS}))
def test_the_zygote_finds_main_as_the_launcher_does(built: Path, feature: int) -> None:
    """The main methods each JDK's launcher takes (JEP 512's from 25 on) and its refusals, word for word."""
    jdk = next(j for j in JDKS if j.feature == feature)
    classes = built / f"mains-{feature}"
    names = list(MAINS_17)
    subprocess.run([str(jdk.tool("javac")), "--release", "17", "-d", str(classes),
                    *map(str, (MAINS / "release17").glob("*.java"))], check=True)
    if feature >= 25:
        subprocess.run([str(jdk.tool("javac")), "--release", "25", "-d", str(classes),
                        *map(str, (MAINS / "release25").glob("*.java"))], check=True)
        names += MAINS_25
    outcomes = set()
    for name in names:
        proc = subprocess.run([str(jdk.tool("java")), "-cp", str(classes), name, "an arg"], capture_output=True,
                              cwd=built, timeout=60)
        expected = (proc.returncode, proc.stdout.decode(), proc.stderr.decode())
        assert launched(jdk.tool("java"), built, [str(classes), name, name, "an arg"]) == expected, name
        outcomes.add(expected[0])
    assert outcomes == {0, 1}  # some ran, some were refused


@pytest.mark.parametrize("feature", sorted({j.feature for j in JDKS}))
def test_a_runtime_class_initialised_before_the_launch_runs_as_at_it(built: Path, feature: int) -> None:
    """A script's runtime main class is initialised before the zygote waits: the app sees the same,
    and an initialiser that fails fails the launch as it fails the launcher's."""
    jdk = next(j for j in JDKS if j.feature == feature)
    classes = built / f"mains-{feature}"
    subprocess.run([str(jdk.tool("javac")), "--release", "17", "-d", str(classes),
                    *map(str, (MAINS / "release17").glob("*.java"))], check=True)
    for name in ("Child", "BadInit"):
        proc = subprocess.run([str(jdk.tool("java")), "-cp", str(classes), name], capture_output=True, cwd=built,
                              timeout=60)
        expected = (proc.returncode, proc.stdout.decode(), proc.stderr.decode())
        assert launched(jdk.tool("java"), built, [str(classes), name, name], preload=(str(classes), name)) \
            == expected, name
    from osv_java import launch  # the Clojure hello of the examples, when Debian's Clojure is installed

    script = ROOT / "examples/lang/clojure/main.clj"
    try:
        resolved = launch.resolve(str(script), ["world"], None, str(jdk.home), None, (), link_modules=False)
    except Exception as exc:  # noqa: BLE001 - no Clojure here
        pytest.skip(f"no Clojure runtime: {exc}")
    runtime = ":".join(map(str, resolved.app.runtime))
    options = resolved.host_jvm_options
    env = {**os.environ, "GREETING": "Hello"}
    proc = subprocess.run([str(jdk.tool("java")), *options, "-cp", runtime, "clojure.main", *resolved.args],
                          capture_output=True, cwd=built, timeout=120, env=env)
    assert proc.returncode == 3 and "Hello, world!" in proc.stdout.decode(), proc
    os.environ["GREETING"] = "Hello"
    try:
        started = launched(jdk.tool("java"), built, [runtime, "clojure.main", "clojure.main", *resolved.args],
                           preload=(runtime, "clojure.main"), options=tuple(options))
    finally:
        del os.environ["GREETING"]
    assert started == (proc.returncode, proc.stdout.decode(), proc.stderr.decode())
