"""An OCI image of the app: the jlinked JRE, the ELF closure, the kernel services' Python, the app.

No shell and no package manager: the entrypoint is the kernel services in their process-target role
(kernel.guest.container), which starts the JVM and runs the policies' supervisors beside it. The
image runs as a non-root user. Two layers: the runtime (JRE, libraries, Python), which apps on one
JDK share, and the app. Reproducible: the same inputs give the same bytes.
"""

from __future__ import annotations

import dataclasses
import json
import stat
from dataclasses import dataclass, field
from pathlib import Path

from jvmbridge.jdk import Jdk
from kernel.build import image as images
from kernel.build.app import AppSpec
from kernel.build.layout import JRE_IN_IMAGE, PYTHON_HOME, guest_python
from kernel.formats import oci
from kernel.formats.cpio import Entry

ENTRY_MODULE = "kernel.guest.container"
RUN_FILE = "/osv/run.json"  # read by kernel.guest.container
USER_ID = 65532  # the "nonroot" id distroless images use: no privileges, no clash with a host user
USER_NAME = "app"
HOME = f"/home/{USER_NAME}"
# The app's files sit at their host paths below this folder: relations between them (a manifest's
# relative Class-Path) hold, and none lands in /tmp, which engines may mount over (an emptyDir,
# `--tmpfs /tmp`) and whose mode the app layer must not change.
APP_ROOT = "/app"
ENTRYPOINT = [f"{PYTHON_HOME}/bin/python3", "-S", "-c", f"from {ENTRY_MODULE} import run; run()"]
BASE_ENV = {
    "PATH": f"{JRE_IN_IMAGE}/bin",
    "HOME": HOME,
    "LANG": "C.UTF-8",
    "USER": USER_NAME,
    "PYTHONHOME": PYTHON_HOME,
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUTF8": "1",
}
ETC_FILES = {
    "etc/passwd": f"root:x:0:0:root:/root:/sbin/nologin\n"
                  f"{USER_NAME}:x:{USER_ID}:{USER_ID}:{USER_NAME}:{HOME}:/sbin/nologin\n".encode(),
    "etc/group": f"root:x:0:\n{USER_NAME}:x:{USER_ID}:\n".encode(),
    "etc/nsswitch.conf": b"passwd: files\ngroup: files\nhosts: files dns\n",
}


@dataclass(frozen=True)
class ContainerRequest:
    app: AppSpec
    jdk: Jdk
    modules: tuple[str, ...]  # JDK modules the JRE must hold
    jvm_options: tuple[str, ...]  # the policies', the runtimes' and the user's, in that order
    supervisors: tuple[dict, ...]  # gc_hooks SupervisorSpec.fields() of each policy
    args: tuple[str, ...] = ()  # the app's arguments: the image's Cmd
    env: dict[str, str] = field(default_factory=dict)
    ports: tuple[int, ...] = ()
    extra_trees: tuple[tuple[Path, str], ...] = ()
    ref: str = "latest"


def in_image(path: Path) -> Path:
    """Where an app file at host `path` is in the image."""
    return Path(APP_ROOT + str(path))


def image_app(app: AppSpec) -> AppSpec:
    """The app as the image holds it."""
    def moved(paths: tuple[Path, ...]) -> tuple[Path, ...]:
        return tuple(in_image(p) for p in paths)

    return dataclasses.replace(
        app, classpath=moved(app.classpath), runtime=moved(app.runtime),
        jar=in_image(app.jar) if app.jar else None, script=in_image(app.script) if app.script else None)


def image_args(request: ContainerRequest) -> list[str]:
    """The app's arguments with its own files (a script) named where the image holds them."""
    moved = {str(p): str(in_image(p)) for p in request.app.all_paths()}
    return [moved.get(arg, arg) for arg in request.args]


def jvm_argv(request: ContainerRequest) -> list[str]:
    return [f"{JRE_IN_IMAGE}/bin/java", *request.jvm_options, *images.launch_arguments(image_app(request.app))]


def jvm_defaults(jdk: Jdk) -> list[str]:
    """JDK 21+ warns on stderr about each agent loaded at run time (JEP 451) unless a serviceability
    tool is declared: the supervisors attach to the JVM."""
    return ["-XX:+EnableDynamicAgentLoading"] if jdk.feature >= 21 else []


def _runtime_layer(request: ContainerRequest, jre_dir: Path) -> oci.Layer:
    entries: dict[str, Entry] = {}
    for name in ("dev", "proc", "sys", "run", "osv", APP_ROOT.strip("/")):
        entries[name] = Entry.folder(name)
    entries["tmp"] = Entry.folder("tmp", 0o1777)
    for path, data in ETC_FILES.items():
        entries[path] = Entry.file(path, data)
    if images.UTF8_LOCALE.is_dir():
        images.add_tree(entries, images.UTF8_LOCALE, str(images.UTF8_LOCALE))
    python = guest_python()
    extensions = images.add_python(entries, python, (ENTRY_MODULE,))
    images.add_tree(entries, jre_dir, JRE_IN_IMAGE)
    images.add_closure(entries, jre_dir, [python, *extensions])
    layer = oci.Layer({p: oci.Owned(e) for p, e in entries.items()}, "runtime: JRE, libraries, kernel services")
    layer.entries[HOME.strip("/")] = oci.Owned(Entry.folder(HOME.strip("/")), USER_ID, USER_ID)
    return layer


def _app_layer(request: ContainerRequest) -> oci.Layer:
    entries: dict[str, Entry] = {}
    for app_path in request.app.all_paths():
        images.add_tree(entries, app_path, str(in_image(app_path)))
    for host, image_dir in request.extra_trees:
        images.add_tree(entries, host, image_dir)
    run = {"argv": jvm_argv(request), "supervisors": list(request.supervisors),
           "main_class": request.app.main_class}
    entries[RUN_FILE.strip("/")] = Entry.file(RUN_FILE, json.dumps(run, indent=1, sort_keys=True).encode() + b"\n")
    # Read-only for the app's user: what it runs cannot be changed from inside.
    return oci.Layer({p: oci.Owned(_read_only(e)) for p, e in entries.items()}, "app")


def _read_only(entry: Entry) -> Entry:
    if stat.S_ISREG(entry.mode):
        return Entry(entry.path, entry.mode & ~0o222, entry.data, entry.source, entry.rdev)
    return entry


def image_config(request: ContainerRequest) -> dict[str, object]:
    env = {**BASE_ENV, **request.env}
    config: dict[str, object] = {
        "User": f"{USER_ID}:{USER_ID}",
        "Env": [f"{k}={v}" for k, v in env.items()],
        "Entrypoint": list(ENTRYPOINT),
        "Cmd": image_args(request),
        "WorkingDir": HOME,
        "StopSignal": "SIGTERM",
        "Labels": {"org.opencontainers.image.title": request.app.main_class,
                   "org.opencontainers.image.description": f"osv-java export of {request.app.main_class} "
                                                           f"on {request.jdk.describe()}"},
    }
    if request.ports:
        config["ExposedPorts"] = {f"{port}/tcp": {} for port in sorted(set(request.ports))}
    return config


def write(request: ContainerRequest, folder: Path, progress: bool = True) -> dict[str, object]:
    """Write the OCI image layout into `folder` (new and empty); returns a summary."""
    from kernel.build import jre
    from kernel.validate import checks

    checks.check_before_build(request.app, request.jdk, request.modules)
    jre_dir = jre.link(request.jdk, list(request.modules), progress=progress)
    writer = oci.LayoutWriter(folder)
    layers = [_runtime_layer(request, jre_dir), _app_layer(request)]
    manifest = writer.image(layers, image_config(request), request.ref)
    blobs = folder / "blobs" / "sha256"
    return {"manifest": manifest.digest, "ref": request.ref,
            "bytes": sum(p.stat().st_size for p in blobs.iterdir())}
