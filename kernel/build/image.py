"""Build a bootable image: kernel + initramfs (PID 1, guest Python, jlinked JRE, the app) + manifest.

Images are content-addressed: the key hashes every input, so a second build of the same inputs is a
cache hit, and two builds of the same inputs are byte-identical (sorted entries, fixed mtimes/owners).
Host files keep their real absolute paths inside the image, so a jar's relative or absolute
Class-Path entries resolve in the guest exactly as on the host.
"""

from __future__ import annotations

import functools
import hashlib
import json
import lzma
import os
import shlex
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jvmbridge.errors import BuildError, DependencyError
from jvmbridge.jdk import Jdk
from kernel import cache, linux
from kernel.build import image_cache, runtime_part, zygote
from kernel.build.app import AppSpec, launch_arguments, manifest_links
from kernel.build.layout import (
    BUSYBOX_COMMANDS,
    BUSYBOX_IN_IMAGE,
    GUEST_SOURCES,
    INIT_ENV,
    INIT_TEMPLATE,
    JRE_IN_IMAGE,
    MODULES_IN_IMAGE,
    MODULES_ON_RUNTIME_DISK,
    PROJECT_ROOT,
    PYTHON_HOME,
    RUNTIME_DISK,
    RUNTIME_VOLUME,
    STARTUP_ARCHIVE_IN_IMAGE,
    guest_busybox,
    guest_python,
)
from kernel.build.startup_archive import Archive
from kernel.formats.cpio import Entry
from kernel.guest import wire
from kernel.progress import say

FORMAT_VERSION = 3
BASE_INITRAMFS = "base.img"  # the initramfs without the app: what a runtime's boot snapshot boots
APP_ARCHIVE = "app.cpio"  # the app's files alone, sent to a machine restored from that snapshot
UTF8_LOCALE = Path("/usr/lib/locale/C.utf8")
ETC_FILES = {
    "etc/passwd": b"root:x:0:0:root:/root:/sbin/nologin\n",
    "etc/group": b"root:x:0:\n",
    "etc/nsswitch.conf": b"passwd: files\ngroup: files\nhosts: files dns\n",
    "etc/hostname": b"osv\n",
    "etc/hosts": b"127.0.0.1\tlocalhost osv\n::1\tlocalhost ip6-localhost\n",
}


@dataclass(frozen=True)
class Image:
    """A built image folder: vmlinuz, initramfs.img, runtime.img and image.json; and base.img with
    app.cpio, the same initramfs split in two (the runtime, which boot snapshots are made of, and the
    app, which reaches the guest after a snapshot's restore: kernel/vm/snapshot.py)."""

    folder: Path
    manifest: dict

    @property
    def kernel(self) -> Path:
        return self.folder / "vmlinuz"

    @property
    def initramfs(self) -> Path:
        return self.folder / "initramfs.img"

    @property
    def runtime_disk(self) -> Path:
        return self.folder / RUNTIME_DISK

    @property
    def base_initramfs(self) -> Path:
        return self.folder / BASE_INITRAMFS

    @property
    def app_archive(self) -> Path:
        return self.folder / APP_ARCHIVE

    @property
    def runtime_key(self) -> str | None:
        """What the image's boot snapshots depend on (kernel, base initramfs, runtime disk), not the
        app; None for an image made before the split (it boots cold)."""
        value = self.manifest.get("runtime_key")
        return str(value) if value and self.base_initramfs.exists() and self.app_archive.exists() else None

    @staticmethod
    def load(folder: Path) -> Image:
        manifest = json.loads((folder / "image.json").read_text())
        return Image(folder=folder, manifest=manifest)


def check_busybox(busybox: Path) -> None:
    """BuildError unless `busybox` has every command /init uses (a build without it would not boot)."""
    listed = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=False).stdout.split()
    missing = [command for command in BUSYBOX_COMMANDS if command not in listed]
    if missing:
        raise DependencyError(f"{busybox} lacks {', '.join(missing)}, which the guest's /init needs",
                              hint="apt-get install busybox-static")


def init_script(disk_modules: list[str]) -> bytes:
    """/init with this image's module paths, JRE mount point and Python filled in."""
    text = INIT_TEMPLATE.read_text()
    for name, value in (("@DISK_MODULES@", " ".join(shlex.quote(m) for m in disk_modules)),
                        ("@RUNTIME_MOUNT@", shlex.quote(JRE_IN_IMAGE)),
                        ("@PYTHON@", shlex.quote(f"{PYTHON_HOME}/bin/python3"))):
        text = text.replace(name, value)
    return text.encode()


def _digest_tree(paths: list[Path]) -> str:
    """A digest of files and folders by content (names relative to each root, and bytes)."""
    h = hashlib.sha256()
    for root in paths:
        h.update(str(root).encode() + b"\0")
        if root.is_file():
            h.update(cache.file_digest(root).encode())
            continue
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            h.update(str(path.relative_to(root)).encode() + b"\0" + cache.file_digest(path).encode())
    return h.hexdigest()


@functools.cache
def _guest_sources_digest() -> str:
    # Sources only: the guest Python writes __pycache__ there when it collects PID 1's modules.
    sources = sorted(p for p in GUEST_SOURCES.rglob("*") if p.suffix in (".py", ".sh", ".java"))
    # PID 1 also imports the attach client and the policies' supervisors
    sources += sorted((PROJECT_ROOT / "jvmbridge").glob("*.py")) + sorted((PROJECT_ROOT / "gc_hooks").rglob("*.py"))
    writers = [PROJECT_ROOT / "kernel" / name for name in
               ("formats/cpio.py", "formats/erofs.py", "build/launcher.py", "formats/tinyelf.py")]
    return _digest_tree([*sources, Path(__file__), Path(__file__).with_name("layout.py"), *writers])


def python_bundle(python: Path, extra_modules: tuple[str, ...] = ()) -> tuple[Path, dict]:
    """The zip of modules PID 1 imports, plus `extra_modules` (and the list of extension modules),
    cached per interpreter."""
    stamp = f"{python}|{python.stat().st_size}|{python.stat().st_mtime_ns}|{_guest_sources_digest()}"
    key = hashlib.sha256((stamp + "|" + ",".join(extra_modules)).encode() if extra_modules else stamp.encode()
                         ).hexdigest()[:20]
    final = cache.ensure("pybundle") / key
    if not (final / "info.json").exists():
        with cache.atomic_dir(final) as tmp:
            env = {"PYTHONPATH": str(PROJECT_ROOT), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            proc = subprocess.run(
                [str(python), "-S", str(GUEST_SOURCES / "collect.py"), str(tmp / "lib.zip"), str(tmp / "info.json"),
                 *extra_modules],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            if proc.returncode != 0:
                raise BuildError(
                    f"collecting the guest's Python modules with {python} failed: {proc.stderr.strip()[-300:]}",
                    hint="set OSV_JAVA_GUEST_PYTHON to a Python 3.11+ interpreter",
                )
    return final / "lib.zip", json.loads((final / "info.json").read_text())


def add_tree(entries: dict[str, Entry], host_root: Path, image_root: str) -> None:
    """Add a host folder (or file) at `image_root`; symlinks inside are kept only when they stay inside."""
    if host_root.is_file():
        entries[image_root.strip("/")] = Entry.from_host(image_root, host_root)
        return
    for path in sorted(host_root.rglob("*")):
        rel = path.relative_to(host_root)
        target = f"{image_root.rstrip('/')}/{rel}"
        if path.is_symlink():
            resolved = path.resolve()
            if resolved.is_file() and (resolved == host_root or host_root in resolved.parents):
                entries[target.strip("/")] = Entry.from_host(target, resolved)
            continue
        if path.is_dir():
            entries[target.strip("/")] = Entry.folder(target)
        elif path.is_file():
            entries[target.strip("/")] = Entry.from_host(target, path)


@dataclass(frozen=True)
class BuildRequest:
    app: AppSpec
    jdk: Jdk
    kernel: linux.Kernel
    modules: tuple[str, ...]  # JDK modules the JRE must hold
    extra_trees: tuple[tuple[Path, str], ...] = ()  # (host folder, image folder) a runtime reads
    extra_jvm_options: tuple[str, ...] = ()  # baked-in options a language runtime needs
    hook_modules: tuple[str, ...] = ()  # kernel modules the run's policies need (gc_hooks Policy.guest_modules)
    startup_archive: Archive | None = None  # made for this app and the JRE linked for it


def _runtime_inputs(request: BuildRequest, python: Path, busybox: Path) -> list[str]:
    """What an image's runtime part (kernel.build.runtime_part) is made of, apart from its files."""
    kernel = request.kernel
    return [
        f"format={FORMAT_VERSION}",
        f"guest={_guest_sources_digest()}",
        f"python={python}:{python.stat().st_size}:{python.stat().st_mtime_ns}",
        f"busybox={busybox}:{busybox.stat().st_size}:{busybox.stat().st_mtime_ns}",
        f"jdk={request.jdk.home}:{request.jdk.version}",
        f"kernel={kernel.image}:{kernel.image.stat().st_size}:{kernel.image.stat().st_mtime_ns}",
        f"kmods={kernel.modules}",
        f"loads={[linux.DISK_MODULES, linux.BOOT_MODULES, linux.NET_MODULES, linux.VOLUME_MODULES, linux.PCI_MODULES]}",
        f"hook_modules={list(request.hook_modules)}",
        f"modules={','.join(sorted(request.modules))}",
        f"trees={[(str(h), i) for h, i in request.extra_trees]}",
    ]


def image_key(request: BuildRequest, python: Path, busybox: Path) -> str:
    parts = [
        *_runtime_inputs(request, python, busybox),
        f"app={request.app.kind}:{request.app.main_class}:{request.app.jar}:{request.app.language}",
        f"files={_digest_tree(list(request.app.all_paths()))}",
        f"links={sorted((k, str(v)) for k, v in manifest_links(request.app.all_paths()).items())}",
        f"opts={list(request.extra_jvm_options)}",
        f"startup_archive={request.startup_archive.sha256 if request.startup_archive else 'none'}",
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def _runtime_part_key(request: BuildRequest, python: Path, busybox: Path, links: dict[str, Path]) -> str:
    own = app_paths(request.app)
    runtime = [p for p in request.app.all_paths() if p not in own]
    parts = [f"part={runtime_part.FORMAT}", *_runtime_inputs(request, python, busybox),
             f"runtime={_digest_tree(runtime)}", f"links={sorted((k, str(v)) for k, v in links.items())}"]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def guest_jvm_defaults(jdk: Jdk) -> list[str]:
    """Options every guest JVM starts with, before the user's (which can override them).

    ArchiveRelocationMode=0 maps the CDS archive where it was dumped, not at a random address:
    relocating it rewrites every pointer in it, a fifth of a second of the JVM's start under
    software emulation. That gives up address randomisation of the archive (JDK 17.0.x and later
    randomise it by default) inside a VM that runs one app; --jvm-opt=-XX:ArchiveRelocationMode=1
    restores it.
    """
    defaults = []
    if jdk.feature >= 14:
        defaults += ["-XX:+UnlockDiagnosticVMOptions", "-XX:ArchiveRelocationMode=0"]
    if jdk.feature >= 21:
        # JDK 21+ warns on the app's stderr about each agent loaded at run time (JEP 451) unless told
        # a serviceability tool is in use: the kernel services are one (`osv-java shell --vm`).
        defaults.append("-XX:+EnableDynamicAgentLoading")
    return defaults


def java_command(request: BuildRequest) -> list[str]:
    """The JVM command line baked into the image (run-time options and arguments are added at boot)."""
    return [f"{JRE_IN_IMAGE}/bin/java", *request.extra_jvm_options, *launch_arguments(request.app)]


def app_paths(app: AppSpec) -> list[Path]:
    """The app's own files (class path and script), which change between edits; its language
    runtimes stay with the JRE in the base initramfs, which boot snapshots are made of."""
    runtime = set(app.runtime)
    return [p for p in app.all_paths() if p not in runtime]


def _split_links(request: BuildRequest) -> tuple[dict[str, Path], dict[str, Path]]:
    """Class-Path entries that reach the app's files through a symlink, as on the host (CDS records
    them): those that reach the runtime's files (they go in the base) and those that reach the app's."""
    own = app_paths(request.app)
    base: dict[str, Path] = {}
    mine: dict[str, Path] = {}
    for link, target in manifest_links(request.app.all_paths()).items():
        (mine if any(target == p or p in target.parents for p in own) else base)[link] = target
    return base, mine


def _base_entries(request: BuildRequest, jre_dir: Path, python: Path, busybox: Path, links: dict[str, Path]
                  ) -> tuple[dict[str, Entry], dict, dict[str, Path | bytes]]:
    """The base initramfs's entries, boot.txt's fields, and the files that go on the runtime disk
    beside the JRE (path relative to JRE_IN_IMAGE -> host file or bytes)."""
    entries: dict[str, Entry] = {}
    _add_system(entries, busybox)
    extensions = add_python(entries, python)
    add_closure(entries, jre_dir, [python, *extensions, busybox])
    # The language runtimes and data folders, at their host paths; the app's own files apart.
    own = app_paths(request.app)
    for runtime_path in request.app.all_paths():
        if runtime_path not in own:
            add_tree(entries, runtime_path, str(runtime_path))
    for host, image_dir in request.extra_trees:
        add_tree(entries, host, image_dir)
    for link, target in links.items():
        entries.setdefault(link.strip("/"), Entry.symlink(link, str(target)))
    _add_zygote(entries, request.jdk)
    boot, on_runtime_disk = _add_modules(entries, request)
    entries["init"] = Entry.file("init", init_script(boot["disk_modules"]), 0o755)
    entries["osv/boot.txt"] = Entry.file("osv/boot.txt", wire.encode("boot", **boot, runtime_mount=JRE_IN_IMAGE))
    return entries, boot, on_runtime_disk


def _app_entries(request: BuildRequest, links: dict[str, Path]) -> dict[str, Entry]:
    """The app's own files (class path, script, start-up archive) and the symlinks that reach them."""
    app_entries: dict[str, Entry] = {}
    for app_path in app_paths(request.app):
        add_tree(app_entries, app_path, str(app_path))
    for link, target in links.items():
        app_entries.setdefault(link.strip("/"), Entry.symlink(link, str(target)))
    if request.startup_archive is not None:
        # the archive is the app's (made for its class path): it travels with the app's files, so that
        # every app of a runtime restores the same boot snapshot
        where = _startup_archive_in_image(request.startup_archive)
        add_tree(app_entries, request.startup_archive.path, where)
    return app_entries


def _startup_archive_in_image(archive: Archive) -> str:
    return f"{STARTUP_ARCHIVE_IN_IMAGE}/{archive.file_name}"


def startup_archive_record(request: BuildRequest) -> dict | None:
    """image.json's record of the start-up archive: where it is and the options that map it."""
    archive = request.startup_archive
    if archive is None:
        return None
    where = _startup_archive_in_image(archive)
    return {"path": where, "sha256": archive.sha256, "jvm_options": archive.jvm_options(where)}


def _add_zygote(entries: dict[str, Entry], jdk: Jdk) -> None:
    """osvjava.Zygote's classes (kernel.build.zygote), with the runtime: every app of it shares them."""
    found = zygote.classes(jdk)
    if found is None:
        return
    root = zygote.ZYGOTE_IN_IMAGE.strip("/")
    for relative, data in found.items():
        folder = root
        for part in Path(relative).parent.parts:
            folder = f"{folder}/{part}"
            entries.setdefault(folder, Entry.folder(folder))
        entries.setdefault(root, Entry.folder(root))
        entries[f"{root}/{relative}"] = Entry.file(f"{root}/{relative}", data)


def _add_system(entries: dict[str, Entry], busybox: Path) -> None:
    """The root folders, device nodes, /etc, busybox with its commands, the JVM's launcher, the JRE's mount."""
    from kernel.build import launcher

    for name in ("bin", "dev", "proc", "sys", "tmp", "run", "root", "osv"):
        entries[name] = Entry.folder(name, 0o1777 if name == "tmp" else 0o755)
    entries["dev/console"] = Entry.char_device("dev/console", 5, 1)
    entries["dev/null"] = Entry.char_device("dev/null", 1, 3, 0o666)
    for path, data in ETC_FILES.items():
        entries[path] = Entry.file(path, data)
    entries[BUSYBOX_IN_IMAGE.strip("/")] = Entry.from_host(BUSYBOX_IN_IMAGE, busybox)
    for command in BUSYBOX_COMMANDS:
        entries[f"bin/{command}"] = Entry.symlink(f"bin/{command}", "busybox")
    entries[launcher.LAUNCHER_IN_IMAGE.strip("/")] = Entry.file(launcher.LAUNCHER_IN_IMAGE, launcher.elf(), 0o755)

    # The JRE is on the runtime disk (mounted here); the C.UTF-8 locale the JVM needs for UTF-8 file
    # names and arguments (LANG=C.UTF-8) is small and stays in the initramfs.
    entries[JRE_IN_IMAGE.strip("/")] = Entry.folder(JRE_IN_IMAGE)
    if UTF8_LOCALE.is_dir():
        add_tree(entries, UTF8_LOCALE, str(UTF8_LOCALE))


def add_python(entries: dict[str, Entry], python: Path, extra_modules: tuple[str, ...] = ()) -> list[Path]:
    """Guest Python: interpreter, zipped modules, extension modules (returned: they are ELF roots too)."""
    zip_path, info = python_bundle(python, extra_modules)
    version = info["version"]
    entries["osv/python/bin/python3"] = Entry.from_host(f"{PYTHON_HOME}/bin/python3", python)
    compact = version.replace(".", "")
    entries[f"osv/python/lib/python{compact}.zip"] = Entry.from_host(
        f"{PYTHON_HOME}/lib/python{compact}.zip", zip_path
    )
    dynload = f"{PYTHON_HOME}/lib/python{version}/lib-dynload"
    extensions = [Path(p) for p in info["extensions"]]
    for ext in extensions:
        entries[f"{dynload}/{ext.name}".strip("/")] = Entry.from_host(f"{dynload}/{ext.name}", ext)
    # os.py is the landmark getpath looks for; an empty one keeps it quiet (the real os is frozen).
    entries[f"osv/python/lib/python{version}/os.py"] = Entry.file(f"{PYTHON_HOME}/lib/python{version}/os.py", b"")
    return extensions


def _stamp(path: Path) -> str:
    info = path.stat()
    return f"{path}:{info.st_size}:{info.st_mtime_ns}"


def _system_libraries(jre_dir: Path, programs: list[Path]) -> tuple[dict[str, Path], dict[Path, Path]]:
    """The ELF closure's system libraries (soname -> real path) and loader aliases (path -> real
    path) of the JRE and `programs`; cached per JRE (a cached JRE folder never changes) and programs,
    and recomputed when a library it names changed (reading every ELF file of the JRE costs a third
    of a second, at every build of an edited app)."""
    from kernel.build import elfclosure

    stamp = f"{FORMAT_VERSION}|{jre_dir}|" + "|".join(_stamp(p) for p in programs)
    record = cache.ensure("closure") / (hashlib.sha256(stamp.encode()).hexdigest()[:24] + ".json")
    try:
        known = json.loads(record.read_text())
        if all(_stamp(Path(p)) == s for p, s in known["stamps"].items()):
            return ({name: Path(p) for name, p in known["sonames"].items()},
                    {Path(a): Path(p) for a, p in known["aliases"].items()})
    except (OSError, ValueError, KeyError):
        pass
    roots = [p for p in jre_dir.rglob("*") if p.is_file() and not p.is_symlink() and elfclosure.is_elf(p)]
    roots += programs
    closure = elfclosure.resolve(roots, extra_dirs=[str(jre_dir / "lib"), str(jre_dir / "lib" / "server")])
    if closure.missing:
        name, needers = next(iter(closure.missing.items()))
        raise BuildError(
            f"{needers[0]} needs {name}, which is not on this machine",
            hint="install the package that provides it, or use another JDK with --jdk",
        )
    sonames = {name: real for name, real in closure.sonames.items() if jre_dir not in real.parents}
    aliases = {alias: real for alias, real in closure.aliases.items() if alias.name.startswith("ld-linux")}
    used = {*sonames.values(), *aliases.values()}
    cache.write_file_atomic(record, json.dumps({
        "sonames": {name: str(p) for name, p in sonames.items()},
        "aliases": {str(a): str(p) for a, p in aliases.items()},
        "stamps": {str(p): _stamp(p) for p in sorted(used)},
    }).encode())
    return sonames, aliases


def add_closure(entries: dict[str, Entry], jre_dir: Path, programs: list[Path]) -> None:
    """ELF closure of everything executable: JRE binaries and libraries, and `programs` (Python, ...).

    The JRE's own libraries stay where $ORIGIN finds them; system libraries go where the loader
    looks for them, under the name it asks for."""
    sonames, aliases = _system_libraries(jre_dir, programs)
    for soname, real in sonames.items():
        entries[f"lib/x86_64-linux-gnu/{soname}"] = Entry.from_host(f"/lib/x86_64-linux-gnu/{soname}", real)
    for alias, real in aliases.items():
        entries[str(alias).strip("/")] = Entry.from_host(str(alias), real)
        entries[f"lib/x86_64-linux-gnu/{alias.name}"] = Entry.from_host(f"/lib/x86_64-linux-gnu/{alias.name}", real)


def _add_modules(entries: dict[str, Entry], request: BuildRequest
                 ) -> tuple[dict[str, list[str]], dict[str, Path | bytes]]:
    """Kernel modules PID 1 loads, each once, in load order; returns their image paths by group, and
    those that go on the runtime disk (only -v runs load them)."""
    kernel = request.kernel
    boot: dict[str, list[str]] = {
        "disk_modules": [], "modules": [], "net_modules": [], "fs_modules": [], "hook_modules": [], "pci_modules": []
    }
    groups = {  # fs_modules last: a module another group needs too goes in the initramfs
        "disk_modules": linux.DISK_MODULES,
        "modules": linux.BOOT_MODULES,
        "net_modules": linux.NET_MODULES,
        "hook_modules": request.hook_modules,
        "pci_modules": linux.PCI_MODULES,  # for exported machines (q35); a few hundred KB
        "fs_modules": linux.VOLUME_MODULES,
    }
    on_runtime_disk: dict[str, Path | bytes] = {}
    loaded: set[str] = set()
    for group, wanted in groups.items():
        # A kernel without virtiofs still runs apps without -v (osv_java.launch refuses -v with it).
        order = (linux.volume_modules(kernel) or []) if group == "fs_modules" else linux.load_order(kernel, wanted)
        for name, module in order:
            if name in loaded:
                continue
            loaded.add(name)
            # The kernel may lack in-kernel decompression: a compressed module is stored plain.
            content: Path | bytes = lzma.decompress(module.read_bytes()) if module.suffix == ".xz" else module
            if group == "fs_modules":  # only -v runs load them, after the runtime disk is mounted
                image_path = f"{MODULES_ON_RUNTIME_DISK}/{name}.ko"
                on_runtime_disk[image_path[len(JRE_IN_IMAGE) + 1:]] = content
            else:
                image_path = f"{MODULES_IN_IMAGE}/{name}.ko"
                entries[image_path.strip("/")] = (Entry.file(image_path, content) if isinstance(content, bytes)
                                                  else Entry.from_host(image_path, content))
            boot[group].append(image_path)
    return boot, on_runtime_disk


def build(request: BuildRequest, output: Path | None = None, progress: bool = True,
          notes: list[str] | None = None) -> Image:
    """Build (or find in the cache) the image for `request`; with `output`, also place it there.

    `notes` are said once, on stderr, when the image is built (not on cache hits).
    """
    python = guest_python()
    busybox = guest_busybox()
    key = image_key(request, python, busybox)
    final = cache.root() / "images" / key
    if (final / "image.json").exists():
        image_cache.touch(final)
    else:
        _build_into_cache(request, key, final, python, busybox, progress, notes or [])
        image_cache.prune(final.parent)
    try:
        image = Image.load(final)
    except FileNotFoundError:  # pruned by another run between our look and now (unused for an hour)
        _build_into_cache(request, key, final, python, busybox, progress, notes or [])
        image = Image.load(final)
    if output is not None:
        export(image, output)
        return Image.load(output)
    return image


def _build_into_cache(request: BuildRequest, key: str, final: Path, python: Path, busybox: Path,
                      progress: bool, notes: list[str]) -> None:
    """Check the app, link the JRE and write the image's files to `final`, all or nothing: the
    runtime's part linked from the cache (kernel.build.runtime_part), the app's written beside it."""
    # Only a build needs these (a cache hit is the common case, and start-up time counts).
    from kernel.build import jre
    from kernel.formats import cpio
    from kernel.validate import checks

    # Errors stop the build before anything is written to the cache.
    checks.check_before_build(request.app, request.jdk, request.modules)
    check_busybox(busybox)
    cache.sweep_stale_temps(cache.ensure("images"))
    for note in notes:
        say(note)
    jre_dir = jre.link(request.jdk, list(request.modules), progress=progress)
    base_links, app_links = _split_links(request)
    part = _runtime_part(request, jre_dir, python, busybox, base_links)
    app_entries = _app_entries(request, app_links)
    with cache.atomic_dir(final) as tmp:
        part.place(BASE_INITRAMFS, tmp / BASE_INITRAMFS)
        part.place(RUNTIME_DISK, tmp / RUNTIME_DISK)
        with open(tmp / APP_ARCHIVE, "wb") as out:
            cpio.write(app_entries.values(), out)
        # The whole initramfs (for a boot without a snapshot): the base's entries, then the app's.
        with open(tmp / "initramfs.img", "wb") as out, open(part.folder / BASE_INITRAMFS, "rb") as base:
            shutil.copyfileobj(base, out)
            out.seek(-len(cpio.TRAILER_BYTES), os.SEEK_END)
            out.truncate()
            cpio.write(app_entries.values(), out, first_ino=part.meta["entries"] + 1,
                       existing=frozenset(part.meta["folders"]))
        _place_kernel(request.kernel.image, tmp / "vmlinuz")
        files = {**part.meta["files"], **_entry_records(app_entries)}
        manifest = _manifest(request, key, tmp, python, part.meta["boot"], files)
        manifest["runtime_key"] = part.meta["runtime_key"]
        (tmp / "image.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def _runtime_part(request: BuildRequest, jre_dir: Path, python: Path, busybox: Path,
                  links: dict[str, Path]) -> runtime_part.RuntimePart:
    """The base initramfs and the runtime disk of `request`'s runtime, with their files' records."""
    from kernel.formats import cpio, erofs

    def build(folder: Path) -> dict:
        entries, boot, on_runtime_disk = _base_entries(request, jre_dir, python, busybox, links)
        with open(folder / BASE_INITRAMFS, "wb") as out:
            cpio.write(entries.values(), out)
        with open(folder / RUNTIME_DISK, "wb") as out:
            erofs.write(jre_dir, out, RUNTIME_VOLUME, extra=on_runtime_disk)
        written = cpio.collect(entries.values())
        return {
            "boot": boot,
            "files": {**_entry_records(entries), **_disk_records(jre_dir, on_runtime_disk)},
            "entries": len(written),  # the app's entries are numbered on from here
            "folders": sorted(path for path, entry in written.items() if stat.S_ISDIR(entry.mode)),
            "runtime_key": runtime_key(request.kernel.image, folder),
        }

    return runtime_part.get(_runtime_part_key(request, python, busybox, links), build)


def _entry_records(entries: dict[str, Entry]) -> dict[str, dict[str, int | str]]:
    """sha256 and size of every regular file of an initramfs."""
    files: dict[str, dict[str, int | str]] = {}
    for path, entry in sorted(entries.items()):
        if entry.source is not None:
            files["/" + path] = {"sha256": cache.file_digest(entry.source), "size": entry.source.stat().st_size}
        elif stat.S_ISREG(entry.mode):
            files["/" + path] = {"sha256": hashlib.sha256(entry.data).hexdigest(), "size": len(entry.data)}
    return files


def _disk_records(jre_dir: Path, on_runtime_disk: dict[str, Path | bytes]) -> dict[str, dict[str, int | str]]:
    """sha256 and size of every file of the runtime disk (marked so)."""
    files: dict[str, dict[str, int | str]] = {}
    for host_file in sorted(p for p in jre_dir.rglob("*") if p.is_file() and not p.is_symlink()):
        guest = f"{JRE_IN_IMAGE}/{host_file.relative_to(jre_dir).as_posix()}"
        files[guest] = {"sha256": cache.file_digest(host_file), "size": host_file.stat().st_size,
                        "disk": RUNTIME_DISK}
    for relative, content in on_runtime_disk.items():
        data = content if isinstance(content, bytes) else content.read_bytes()
        files[f"{JRE_IN_IMAGE}/{relative}"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                                               "disk": RUNTIME_DISK}
    return files


def _manifest(request: BuildRequest, key: str, tmp: Path, python: Path, boot: dict,
              files: dict[str, dict[str, int | str]]) -> dict:
    """image.json: the inputs, the JVM command, the boot plan, the sizes and every file's digest."""
    return {
        "format": FORMAT_VERSION,
        "key": key,
        "inputs": {
            "app": {
                "kind": request.app.kind,
                "main_class": request.app.main_class,
                "jar": str(request.app.jar) if request.app.jar else None,
                "script": str(request.app.script) if request.app.script else None,
                "language": request.app.language,
                "classpath": [str(p) for p in request.app.classpath],
                "runtime": [str(p) for p in request.app.runtime],
            },
            "jdk": {
                "home": str(request.jdk.home),
                "version": request.jdk.version,
                "vendor": request.jdk.vendor,
            },
            "kernel": {
                "image": str(request.kernel.image),
                "release": request.kernel.release,
                "config": str(request.kernel.config) if request.kernel.config else None,
                "sha256": cache.remembered_digest(request.kernel.image),
            },
            "guest_python": str(python),
            "jre_modules": sorted(request.modules),
        },
        "jvm_command": java_command(request),
        "jvm_defaults": guest_jvm_defaults(request.jdk),
        "zygote": zygote.available(request.jdk),  # osvjava.Zygote at /osv/zygote (kernel.build.zygote)
        "startup_archive": startup_archive_record(request),
        "boot": boot,
        "init_env": INIT_ENV,
        "sizes": {
            "initramfs": (tmp / "initramfs.img").stat().st_size,
            "runtime_disk": (tmp / RUNTIME_DISK).stat().st_size,
            "kernel": (tmp / "vmlinuz").stat().st_size,
            "files": sum(int(f["size"]) for f in files.values()),
        },
        "files": files,
    }


def runtime_key(kernel: Path, folder: Path) -> str:
    """The contents a boot snapshot of an image holds (kernel, base initramfs, runtime disk, the last
    two in `folder`): two images of one runtime share it, whatever their apps."""
    parts = [f"vmlinuz={cache.remembered_digest(kernel)}",
             *(f"{name}={cache.file_digest(folder / name)}" for name in (BASE_INITRAMFS, RUNTIME_DISK))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def _place_kernel(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def check_output(output: Path) -> None:
    """BuildError unless `output` can take an image: new, empty, or an image folder (which is replaced)."""
    output = output.resolve()
    if output.exists() and not output.is_dir():
        raise BuildError(f"-o {output} is a file, not a folder", hint="give -o a new or empty folder")
    if output.exists() and not (output / "image.json").exists() and any(output.iterdir()):
        raise BuildError(
            f"{output} exists and is not an osv-java image folder",
            hint="give -o a new or empty folder (an existing image folder is replaced)",
        )


def export(image: Image, output: Path) -> None:
    """Copy an image folder to `output` atomically (an existing image there is replaced)."""
    output = output.resolve()
    check_output(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}-", dir=output.parent))
    try:
        for name in ("vmlinuz", "initramfs.img", BASE_INITRAMFS, APP_ARCHIVE, RUNTIME_DISK, "image.json"):
            _place_kernel(image.folder / name, tmp / name)
        if output.exists():
            shutil.rmtree(output)
        os.rename(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
