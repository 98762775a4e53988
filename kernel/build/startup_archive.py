"""Start-up archives: the classes an app loads while it starts, parsed, verified and laid out once by
a training run and mapped by every later JVM. JDK 25+ makes an AOT cache (JEP 483/514/515: classes
loaded and linked, method profiles), JDK 13-24 a dynamic AppCDS archive on top of the JRE's own.

An archive is valid only for the JRE and class path it was made with, and HotSpot's -Xshare:auto
ignores a mismatched one without a word (or prints a warning on the app's stdout), so:
- the cache key hashes the JRE (libjvm, its module image and base archive) and every class path
  file: another jar or another JRE finds no archive and trains its own;
- after training, the JVM itself must accept the archive with sharing forced on (-Xshare:on /
  -XX:AOTMode=on, which fail instead of ignoring), or it is skipped with a line saying why;
- before each use the archive's sha256 is checked against the one recorded when it was made
  (re-hashed only when its inode's stat changed): a damaged archive is made again, with a warning.

Training runs the app on this host, with the same JRE and class path the real run uses: for a VM
the image's jlinked JRE and the jars as the image shows them (guest_view), which CDS cannot tell
from the guest's (the JRE's location is not recorded; jar paths, sizes and mtimes are). It runs in a
sandbox (kernel.build.sandbox): ports of its own, nothing written outside its folder, so a server
trained beside a running copy of itself clashes with nothing and an app's files are written once.
It ends when the app exits, or once its class count has stood still for a while (a server waiting
for requests), at the latest after TRAINING_TIMEOUT_S.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from jvmbridge.errors import JvmError
from kernel import cache
from kernel.progress import say, warn

if TYPE_CHECKING:
    from jvmbridge.hsperf import PerfData

FORMAT = 1
FIRST_FEATURE = 13  # -XX:ArchiveClassesAtExit (JEP 350)
AOT_CACHE_FEATURE = 25  # -XX:AOTCacheOutput (JEP 514)
# Flags that decide how an archive is laid out (compressed oops and class pointers, object alignment
# and headers): a JVM started with other values cannot map it (JDK 17 ignores it without a word, 25
# prints an error on the app's stdout), so a run's own values are part of its training run and key.
LAYOUT_FLAGS = ("UseZGC", "UseCompressedOops", "UseCompressedClassPointers", "ObjectAlignmentInBytes",
                "UseCompactObjectHeaders")
# the user's own archive: made, mapped or listed (then no archive of ours is added)
USER_ARCHIVE_FLAGS = ("SharedArchiveFile", "ArchiveClassesAtExit", "AutoCreateSharedArchive", "SharedClassListFile",
                      "DumpLoadedClassList", "AOTCache", "AOTCacheOutput", "AOTConfiguration", "AOTMode")
OPTION_VARIABLES = ("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS")  # read by the JVM or its launcher
COMPRESSED_OOPS_LIMIT = 32 << 30  # a larger heap turns compressed oops off
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
# then SIGTERM (a server never ends by itself), on which the JVM writes the archive as it exits. The
# archive is for the start-up: 10 s of the app on this host's CPUs covers the start-ups we know of (the
# Clojure hello trains in 1.3 s), and a server's first run waits no longer than that; a run whose
# class count stands still for SETTLED_S has started (a server waits for requests) and ends sooner
TRAINING_TIMEOUT_S = 10.0
SETTLED_S = 1.5
POLL_S = 0.1
DUMP_GRACE_S = 120.0


@dataclass(frozen=True)
class Training:
    """How to make an archive: which JRE, and the app's command line and class path as the JVM sees them."""

    jre: Path  # the JRE the archive is for (bin/java, lib/modules, lib/server)
    feature: int
    options: tuple[str, ...]  # the app's JVM options (a language runtime's)
    launch: tuple[str, ...]  # -jar JAR, or -cp PATH MAIN
    args: tuple[str, ...]  # the training run's arguments
    classpath: tuple[Path, ...]  # every class path file the archive depends on
    guest_view: bool  # see the jars as an image shows them (for a VM's archive)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "."

    def to_fields(self) -> dict:
        """JSON-ready fields (for a training run in another process); from_fields reads them back."""
        return {"jre": str(self.jre), "feature": self.feature, "options": list(self.options),
                "launch": list(self.launch), "args": list(self.args), "classpath": [str(p) for p in self.classpath],
                "guest_view": self.guest_view, "env": dict(self.env), "cwd": self.cwd}

    @classmethod
    def from_fields(cls, fields: dict) -> Training:
        return cls(jre=Path(fields["jre"]), feature=int(fields["feature"]), options=tuple(fields["options"]),
                   launch=tuple(fields["launch"]), args=tuple(fields["args"]),
                   classpath=tuple(Path(p) for p in fields["classpath"]), guest_view=bool(fields["guest_view"]),
                   env=dict(fields["env"]), cwd=str(fields["cwd"]))


@dataclass(frozen=True)
class Archive:
    path: Path
    sha256: str
    feature: int

    @property
    def file_name(self) -> str:
        return self.path.name

    def jvm_options(self, where: str | None = None) -> list[str]:
        """The options that make a JVM map this archive (found at `where`, default its own path)."""
        return use_options(self.feature, where or str(self.path))


def _bytes(text: str) -> int | None:
    number, unit = text.rstrip("kKmMgGtT"), text[len(text.rstrip("kKmMgGtT")):].lower()
    return int(number) * _SIZE_UNITS[unit] if number.isdigit() and unit in _SIZE_UNITS else None


def layout_options(jvm_options: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The options among `jvm_options` that change an archive's layout, in order."""
    kept = []
    for option in jvm_options:
        if option.startswith("-XX:") and option[4:].lstrip("+-").split("=")[0] in LAYOUT_FLAGS:
            kept.append(option)
        for prefix in ("-Xmx", "-XX:MaxHeapSize="):
            size = _bytes(option[len(prefix):]) if option.startswith(prefix) else None
            if size is not None and size >= COMPRESSED_OOPS_LIMIT:
                kept.append(option)
    return tuple(kept)


def own_archive_option(jvm_options: list[str] | tuple[str, ...], env: dict[str, str]) -> str | None:
    """The user's own CDS or AOT option among `jvm_options` and the JVM's option variables in `env`,
    else None. The JVM maps one archive and makes one: with another archive of ours beside the user's
    it fails to start ("Only one of AOTCache or AOTCacheOutput can be specified")."""
    words = [*jvm_options, *(w for name in OPTION_VARIABLES for w in env.get(name, "").split())]
    for word in words:
        if word in ("-Xshare:off", "-Xshare:dump"):
            return word
        if word.startswith("-XX:") and word[4:].lstrip("+-").split("=")[0] in USER_ARCHIVE_FLAGS:
            return word
    return None


def supported(feature: int) -> bool:
    return feature >= FIRST_FEATURE


def use_options(feature: int, path: str) -> list[str]:
    if feature >= AOT_CACHE_FEATURE:
        return [f"-XX:AOTCache={path}"]
    return [f"-XX:SharedArchiveFile={path}"]


def _file_name(feature: int) -> str:
    return "app.aot" if feature >= AOT_CACHE_FEATURE else "app.jsa"


def _training_options(feature: int, path: Path) -> list[str]:
    if feature >= AOT_CACHE_FEATURE:
        return [f"-XX:AOTCacheOutput={path}"]
    return [f"-XX:ArchiveClassesAtExit={path}"]


def _forced_options(feature: int, path: Path) -> list[str]:
    """Options under which a JVM that cannot map the archive fails instead of ignoring it."""
    if feature >= AOT_CACHE_FEATURE:
        return ["-XX:AOTMode=on", f"-XX:AOTCache={path}"]
    return ["-Xshare:on", f"-XX:SharedArchiveFile={path}"]


def _stat_text(path: Path) -> str:
    st = path.stat()
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def key(training: Training) -> str:
    """What the archive depends on: the JRE's files, each class path file, the options and the launch."""
    h = hashlib.sha256(f"format={FORMAT}\nfeature={training.feature}\nview={training.guest_view}\n".encode())
    for name in ("lib/server/libjvm.so", "lib/modules", "lib/server/classes.jsa"):
        path = training.jre / name
        h.update((_stat_text(path) if path.exists() else f"{path}:absent").encode() + b"\n")
    # Jars by their bytes: CDS itself checks only a jar's size and mtime (all alike in an image), and an
    # archive of another version's classes would run that version's code.
    for entry in training.classpath:
        identity = cache.remembered_digest(entry) if entry.is_file() else "folder" if entry.is_dir() else "absent"
        h.update(f"cp={entry}:{identity}\n".encode())
    h.update(json.dumps([list(training.options), list(training.launch)]).encode())
    return h.hexdigest()[:24]


def unsupported(training: Training) -> str | None:
    """Why no archive can be made for this class path, known before any training run; else None."""
    for entry in training.classpath:
        if entry.is_dir() and any(entry.iterdir()):
            return f"CDS archives classes from jars only, and the class path has the folder {entry}"
    return None


def folder_of(training: Training) -> Path:
    """Where the cache holds `training`'s archive (or why it has none)."""
    return cache.root() / "startup" / key(training)


def lookup(training: Training, label: str, quiet: bool = False) -> tuple[Archive | None, Path | None]:
    """(the archive, None) when it is made and whole; (None, None) when none can be made (said once
    unless `quiet`); (None, folder) when it is still to be made at `folder`: missing, or damaged
    (removed, with a warning)."""
    why_not = unsupported(training)
    if why_not is not None:
        if not quiet:
            say(f"no start-up archive for {label}: {why_not}")
        return None, None
    folder = folder_of(training)
    meta_path = folder / "meta.json"
    if not meta_path.exists():
        return None, folder
    try:
        meta = json.loads(meta_path.read_text())
    except ValueError:
        meta = {}
    if "skipped" in meta:
        if not quiet:
            say(f"no start-up archive for {label}: {meta['skipped']} (remove {folder} to try again)")
        return None, None
    archive = folder / str(meta.get("file", ""))
    problem = _damage(archive, meta) if meta else "has no readable record"
    if problem is None:
        with contextlib.suppress(OSError):
            os.utime(folder)  # used now: the cache keeps the most recently used (background_training.prune)
        return Archive(archive, meta["sha256"], training.feature), None
    warn(f"the start-up archive {archive} {problem}; making it again")
    import shutil  # here, as in make(): a run that finds its archive whole does not load it

    shutil.rmtree(folder, ignore_errors=True)
    return None, folder


def ensure(training: Training, label: str, before_training: Callable[[], None] | None = None) -> Archive | None:
    """The archive for `training`, made now if missing or damaged; None (said once) when it cannot be made.

    `before_training` runs first when a training run is needed: the checks that refuse a bad app with
    a clear error belong before the app runs at all."""
    archive, to_make = lookup(training, label)
    if to_make is None:
        return archive
    if before_training is not None:
        before_training()
    return make(training, to_make, label)


def _inode(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _damage(archive: Path, meta: dict) -> str | None:
    """None when `archive` is the file recorded in `meta`, else what is wrong with it."""
    if not archive.is_file():
        return "is missing"
    if _inode(archive) == meta.get("inode"):
        return None  # untouched since it was hashed (any write changes its ctime)
    if archive.stat().st_size != meta.get("size"):
        return f"has changed size ({archive.stat().st_size} bytes, {meta.get('size')} when made)"
    if cache.file_digest(archive) != meta.get("sha256"):
        return "is damaged (its sha256 differs from the one recorded when it was made)"
    meta["inode"] = _inode(archive)
    with contextlib.suppress(OSError):
        cache.write_file_atomic(archive.parent / "meta.json", json.dumps(meta).encode())
    return None


def make(training: Training, folder: Path, label: str) -> Archive | None:
    """Train, check and place an archive (or the reason there is none) at `folder`, all or nothing."""
    # here: a run whose archive exists does not pay for the training run's modules
    import shutil
    import tempfile

    from kernel.build import guest_view, sandbox

    say(f"making a start-up archive for {label} (a training run of the app, once)")
    cache.ensure("startup")
    name = _file_name(training.feature)
    with tempfile.TemporaryDirectory(prefix="osv-java-train-") as scratch_name:
        scratch = Path(scratch_name)
        pairs = guest_view.stage(list(training.classpath), scratch) if training.guest_view else []
        preexec = sandbox.isolating(pairs, scratch)
        made = scratch / name
        reason = _train(training, made, scratch / "training.log", preexec)
        if reason is None:
            reason = _check(training, made, preexec)
        with cache.atomic_dir(folder) as tmp:
            if reason is not None:
                (tmp / "meta.json").write_text(json.dumps({"skipped": reason}))
            else:
                shutil.move(made, tmp / name)
                meta = {"file": name, "sha256": cache.file_digest(tmp / name), "size": (tmp / name).stat().st_size,
                        "inode": _inode(tmp / name), "label": label, "trained_with": list(training.args)}
                (tmp / "meta.json").write_text(json.dumps(meta))
    if reason is not None:
        warn(f"no start-up archive for {label}: {reason} (it starts without one)")
        return None
    meta = json.loads((folder / "meta.json").read_text())
    return Archive(folder / meta["file"], meta["sha256"], training.feature)


def _tail(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip()[:200] if lines else "no output"


def _train(training: Training, out: Path, log: Path, preexec: Callable[[], None] | None) -> str | None:
    """Run the app once, writing its archive to `out`; None when it did, else why not."""
    argv = [str(training.jre / "bin" / "java"), *training.options, *_training_options(training.feature, out),
            *training.launch, *training.args]
    with open(log, "wb") as sink:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                env=training.env, cwd=training.cwd, preexec_fn=preexec, start_new_session=True)
        try:
            status = _wait_for_training(proc)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    if status is None:
        return f"the training run did not end within {TRAINING_TIMEOUT_S + DUMP_GRACE_S:.0f} s"
    if not out.is_file() or out.stat().st_size == 0:
        return f"the training run (exit status {status}) wrote no archive: {_tail(log)}"
    return None


def _classes_loaded(pid: int, perf: list[PerfData]) -> int | None:
    """Classes the training JVM has loaded so far (its hsperfdata, on the sandbox's own tmpfs), None
    before it publishes them or when it does not (-XX:-UsePerfData)."""
    from jvmbridge.hsperf import PerfData  # the training run's only: not loaded by a run that has its archive

    try:
        if not perf:
            perf.append(PerfData.open(pid))
        loaded = perf[0].long("java.cls.loadedClasses") + perf[0].long("java.cls.sharedLoadedClasses")
        return loaded or None  # no counters (yet): not a count that stands still
    except (JvmError, OSError, ValueError):
        return None


def _wait_for_training(proc: subprocess.Popen[bytes]) -> int | None:
    """The training run's exit status. A run still going once its class count has not moved for
    SETTLED_S (a server waiting for requests, or work past its start-up), or after TRAINING_TIMEOUT_S,
    gets SIGTERM, on which the JVM writes the archive as it exits; None when even that did not end it.
    A JVM that removed its counters is exiting already, writing the archive (JDK 25 in a child JVM of
    the same process group): it is left to finish."""
    began = time.monotonic()
    perf: list[PerfData] = []
    loaded, since = None, began
    try:
        while True:
            try:
                return proc.wait(POLL_S)
            except subprocess.TimeoutExpired:
                pass
            if perf and not perf[0].path.exists():
                return _wait_or_kill(proc)
            now = time.monotonic()
            count = _classes_loaded(proc.pid, perf)
            if count is not None and count != loaded:
                loaded, since = count, now
            if (loaded is not None and now - since >= SETTLED_S) or now - began >= TRAINING_TIMEOUT_S:
                break
    finally:
        for opened in perf:
            opened.close()
    os.killpg(proc.pid, signal.SIGTERM)
    return _wait_or_kill(proc)


def _wait_or_kill(proc: subprocess.Popen[bytes]) -> int | None:
    """The exit status within DUMP_GRACE_S; else the run is killed and None."""
    try:
        return proc.wait(DUMP_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return None


def _check(training: Training, archive: Path, preexec: Callable[[], None] | None) -> str | None:
    """None when the JVM maps `archive` with sharing forced on, for the same JRE and class path."""
    classpath = training.launch[1]  # -jar JAR and -cp PATH MAIN both name the class path second
    argv = [str(training.jre / "bin" / "java"), *training.options, *_forced_options(training.feature, archive),
            "-cp", classpath, "-version"]
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=training.env,
                          cwd=training.cwd, preexec_fn=preexec, check=False)
    if proc.returncode != 0:
        lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
        return f"the JVM refuses the archive it made: {lines[-1].strip()[:200] if lines else proc.returncode}"
    return None
