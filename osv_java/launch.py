"""What `osv-java run` and `osv-java build` share: resolving the app, the JDK and the kernel, building
the image, and booting it (or supervising the JVM on the host with --target process)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gc_hooks import policies
from gc_hooks.policies import HookSettings
from gc_hooks.seam import Machine
from jvmbridge import jdk as jdks
from jvmbridge.errors import OsvJavaError, UsageError
from kernel.build import app as apps
from kernel.build.app import AppSpec
from kernel.build.layout import JRE_IN_IMAGE
from kernel.progress import say

TYPE_CHECKING = False
if TYPE_CHECKING:  # the VM path's modules: a --target process run starts sooner without importing them
    from kernel import linux
    from kernel.build import image as images
    from kernel.build import startup_archive

GUEST_ENV = {"PATH": f"{JRE_IN_IMAGE}/bin", "HOME": "/root", "LANG": "C.UTF-8", "USER": "root"}


@dataclass
class RunInputs:
    """Everything a run or a build needs, resolved and checked."""

    app: AppSpec
    args: list[str]
    jdk: jdks.Jdk
    modules: tuple[str, ...] = ()
    extra_trees: tuple[tuple[Path, str], ...] = ()
    extra_jvm_options: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    # extra_jvm_options with image folders mapped back to the host's (a training run on this host)
    host_jvm_options: tuple[str, ...] = ()


def _languages() -> Any:
    """The per-language table, imported only when a script or --with needs it."""
    from kernel.build import languages

    return languages


@dataclass
class ResolvedApp:
    """The user's words about the program, turned into what the image and the JVM need."""

    spec: AppSpec
    args: list[str]
    trees: tuple[tuple[Path, str], ...] = ()  # (host folder, image folder) a language runtime reads
    options: tuple[str, ...] = ()  # JVM options a language runtime needs
    host_options: tuple[str, ...] = ()  # the same, naming host folders
    needs_all_modules: bool = False  # jdeps cannot see what a dynamic language needs
    extra_modules: tuple[str, ...] = ()  # JDK modules a runtime needs beyond those


def resolve_app(app_arg: str, args: list[str], classpath: str | None, lang: str | None,
                with_runtimes: tuple[str, ...], jdk_feature: int, on_host: bool) -> ResolvedApp:
    """Resolve a jar, `-cp PATH MAIN` or a script, plus `--with` runtimes.

    `on_host`: the options name host folders (--target process) instead of the image's copies.
    """
    resolved = ResolvedApp(spec=_base_spec(app_arg, classpath, lang), args=list(args))
    runtime: list[Path] = []
    languages: Any = _languages() if (resolved.spec.kind == "script" or with_runtimes) else None
    used: list[Any] = []
    if resolved.spec.kind == "script":
        language = languages.by_name(resolved.spec.language)
        assert resolved.spec.script is not None
        resolved.args = language.script_args(str(resolved.spec.script), list(args))
        used.append(language)
    for name in with_runtimes:
        language = languages.by_name(name)
        runtime += languages.runtime_classpath(language, library_only=True)
        used.append(language)
    for language in used:
        resolved.trees += tuple((Path(h), i) for h, i in language.image_trees)
        options = language.host_jvm_options(jdk_feature) if on_host else language.options_for(jdk_feature)
        resolved.options += tuple(options)
        resolved.host_options += tuple(language.host_jvm_options(jdk_feature))
        resolved.needs_all_modules = resolved.needs_all_modules or language.needs_all_modules
        resolved.extra_modules += tuple(language.extra_modules)
    if runtime:
        spec = resolved.spec
        resolved.spec = AppSpec(kind=spec.kind, main_class=spec.main_class, classpath=spec.classpath, jar=spec.jar,
                                script=spec.script, language=spec.language,
                                runtime=tuple(dict.fromkeys([*spec.runtime, *runtime])))
    return resolved


def _base_spec(app_arg: str, classpath: str | None, lang: str | None) -> AppSpec:
    if classpath is not None:
        return apps.from_classpath(classpath, app_arg)
    path = Path(app_arg)
    if path.suffix in (".jar", ".zip") and lang is None:
        return apps.from_jar(path)
    apps.check_file(path, "program")
    languages = _languages()
    language = languages.detect(path, lang)
    if language.main_class is None:
        return apps.from_jar(path)
    # The language's jars are its runtime, not the app's files: they go with the runtime's part of the
    # image (the boot snapshot), only the script travels with each run.
    runtime = languages.runtime_classpath(language)
    return AppSpec(kind="script", main_class=language.main_class, classpath=(), runtime=tuple(runtime),
                   script=path.resolve(), language=language.name)


def resolve(app_arg: str, args: list[str], classpath: str | None, jdk_spec: str | None, lang: str | None = None,
            with_runtimes: tuple[str, ...] = (), link_modules: bool = True) -> RunInputs:
    """Resolve the app for a VM image (link_modules) or for --target process (not link_modules)."""
    jdk = jdks.select(jdk_spec)
    resolved = resolve_app(app_arg, args, classpath, lang, with_runtimes, jdk.feature, on_host=not link_modules)
    spec = resolved.spec
    target = RunInputs(app=spec, args=resolved.args, jdk=jdk, extra_trees=resolved.trees,
                       extra_jvm_options=resolved.options, host_jvm_options=resolved.host_options)
    if link_modules:
        from kernel.build import jre

        found = None if resolved.needs_all_modules else jre.app_modules(jdk, [*spec.classpath, *spec.runtime])
        if found is None:
            target.modules = jre.FALLBACK_MODULES
            target.notes.append(
                "the app's JDK modules could not be decided from its classes; linking the Java SE set instead"
            )
        else:
            target.modules = tuple(found)
        target.modules = tuple(dict.fromkeys([*target.modules, *resolved.extra_modules, *jre.SERVICE_MODULES]))
    return target


def kernel_for(kernel_path: Path | None, modules_dir: Path | None, verbose: bool,
               volumes: bool = False) -> linux.Kernel:
    from kernel import linux

    if kernel_path is None:
        if modules_dir is not None:
            raise UsageError("--modules goes with --kernel", hint="give --kernel PATH too, or drop --modules")
        kernel = linux.default_kernel(progress=True)
    else:
        kernel = linux.user_kernel(kernel_path, modules_dir)
    if kernel.config is not None:
        missing, recommended = linux.missing_config(linux.read_config(kernel.config), volumes)
        if missing:
            raise UsageError(
                f"kernel config {kernel.config} lacks: {', '.join(missing)}",
                hint="rebuild the kernel with these options (y or m), or use the default kernel",
            )
        if recommended and verbose:
            print(f"osv-java: kernel config lacks (recommended): {', '.join(recommended)}", file=sys.stderr)
    elif kernel_path is not None:
        print(f"osv-java: no config found for {kernel_path}; cannot check it has what the guest needs",
              file=sys.stderr)
    if volumes:
        linux.check_volume_support(kernel)
    return kernel


def build_image(target: RunInputs, kernel: linux.Kernel, output: Path | None,
                hook_modules: tuple[str, ...], archive: startup_archive.Archive | None = None) -> images.Image:
    from kernel.build import image as images

    request = images.BuildRequest(app=target.app, jdk=target.jdk, kernel=kernel, modules=target.modules,
                                  extra_trees=target.extra_trees, extra_jvm_options=target.extra_jvm_options,
                                  hook_modules=hook_modules, startup_archive=archive)
    return images.build(request, output=output, notes=target.notes)


def _app_label(app: AppSpec) -> str:
    return str(app.script or app.jar or app.main_class)


def startup_archive_for_image(target: RunInputs, user_env: dict[str, str],
                              jvm_options: list[str]) -> startup_archive.Archive | None:
    """The start-up archive a VM image of `target` carries, for the JRE linked for it and the image's
    view of its class path (trained on this host, in a private mount namespace)."""
    from kernel.build import jre, startup_archive

    if not startup_archive.supported(target.jdk.feature):
        say(f"no start-up archive: {target.jdk.describe()} has none before JDK {startup_archive.FIRST_FEATURE}")
        return None
    own = startup_archive.own_archive_option(jvm_options, user_env)
    if own is not None:
        raise UsageError(f"--startup-archive: {own} is an archive option of your own, and the JVM takes one",
                         hint="drop --startup-archive or that option")
    jre_dir = jre.linked(target.jdk, list(target.modules))
    if jre_dir is None:  # the first build of this JRE: a bad app is refused before anything is written
        _check_app(target)
        jre_dir = jre.link(target.jdk, list(target.modules))
    env = {"PATH": f"{jre_dir}/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8",
           **user_env}
    training = startup_archive.Training(
        jre=jre_dir, feature=target.jdk.feature,
        options=(*target.host_jvm_options, *startup_archive.layout_options(jvm_options)),
        launch=tuple(apps.launch_arguments(target.app)), args=tuple(target.args),
        classpath=(*target.app.classpath, *target.app.runtime), guest_view=True, env=env, cwd=os.getcwd())
    return startup_archive.ensure(training, _app_label(target.app), before_training=lambda: _check_app(target))


def _check_app(target: RunInputs) -> None:
    """The image build's checks of the app (a clear error for a bad one), before a training run runs it."""
    from kernel.validate import checks

    checks.check_before_build(target.app, target.jdk, target.modules)


def startup_archive_for_host(target: RunInputs, user_env: dict[str, str], jvm_options: list[str],
                             wait: bool) -> tuple[startup_archive.Archive | None, Callable[[], None] | None]:
    """The start-up archive of a --target process run, for the host JDK and the host's class path files.

    With `wait` (--startup-archive) a missing one is made now, before the run. Without (the default) the
    run starts without it and the second value, called once the run has ended, makes it in the
    background for the runs after it (None when there is nothing to make)."""
    from kernel.build import startup_archive

    if not startup_archive.supported(target.jdk.feature):
        if wait:
            say(f"no start-up archive: {target.jdk.describe()} has none before JDK {startup_archive.FIRST_FEATURE}")
        return None, None
    label = _app_label(target.app)
    env = host_env(user_env)
    own = startup_archive.own_archive_option(jvm_options, env)
    if own is not None:
        if wait:
            raise UsageError(f"--startup-archive: {own} is an archive option of your own, and the JVM takes one",
                             hint="drop --startup-archive or that option")
        say(f"no start-up archive for {label}: the run has an archive option of its own ({own})")
        return None, None
    training = startup_archive.Training(
        jre=target.jdk.home, feature=target.jdk.feature,
        options=(*target.extra_jvm_options, *startup_archive.layout_options(jvm_options)),
        launch=tuple(apps.launch_arguments(target.app)), args=tuple(target.args),
        classpath=(*target.app.classpath, *target.app.runtime), guest_view=False, env=env, cwd=os.getcwd())
    if wait:
        return startup_archive.ensure(training, label), None
    try:
        archive, to_make = startup_archive.lookup(training, label, quiet=True)
    except (OSError, OsvJavaError) as exc:  # not asked for: an unreadable cache must not stop the run
        say(f"no start-up archive for {label}: {exc}")
        return None, None
    if to_make is None:
        return archive, None
    folder = to_make

    def train_later() -> None:
        from kernel.build import background_training

        if background_training.start(training.to_fields(), folder, label):
            say(f"making a start-up archive for {label} in the background (a training run of the app, once); "
                "later runs start from it (--no-startup-archive: never)")

    return None, train_later


def guest_argv(image: images.Image, jvm_options: list[str], args: list[str], bootchart: bool,
               hook_options: list[str]) -> list[str]:
    """The guest JVM's command line: the image's defaults and start-up archive, the policies' options,
    then the user's."""
    from kernel.guest.wire import CLASS_INIT_LOG

    command = list(image.manifest["jvm_command"])
    archive = image.manifest.get("startup_archive") or {}
    extra = [*image.manifest.get("jvm_defaults", []), *archive.get("jvm_options", []), *hook_options, *jvm_options]
    if bootchart:
        extra.insert(0, f"-Xlog:class+init=info:file={CLASS_INIT_LOG}:timenanos")
    return [command[0], *extra, *command[1:], *args]


def host_argv(target: RunInputs, jvm_options: list[str], memory_mb: int | None, cpus: int | None,
              hook_options: list[str], archive: startup_archive.Archive | None = None) -> list[str]:
    """The java command line for --target process: the host JDK's own java, same layout as the image's.

    The policies' options come before the user's, so the user's win where both set one flag."""
    app = target.app
    argv = [str(target.jdk.tool("java")), *target.extra_jvm_options]
    if archive is not None:
        argv += archive.jvm_options()
    if memory_mb is not None:
        argv.append(f"-XX:MaxRAM={memory_mb}m")
    if cpus is not None:
        argv.append(f"-XX:ActiveProcessorCount={cpus}")
    argv += [*hook_options, *jvm_options]
    return [*argv, *apps.launch_arguments(app), *target.args]


def image_hook_modules(jdk: jdks.Jdk, hooks: policies.Plan | None = None) -> tuple[str, ...]:
    """The kernel modules an image holds for the policies: the default policies' (so `osv-java build` and a
    run without hook options share one image) plus any the run's own policies add."""
    default = hook_plan(HookSettings(), "vm", None, None, jdk, []).guest_modules
    return tuple(dict.fromkeys([*default, *(hooks.guest_modules if hooks is not None else ())]))


def hook_plan(settings: HookSettings, target: str, memory_mb: int | None, cpus: int | None, jdk: jdks.Jdk,
              jvm_options: list[str]) -> policies.Plan:
    """The policies a run gets (gc_hooks), and what they ask for at each place."""
    machine = Machine(target=target, memory_mb=memory_mb, cpus=cpus, jdk_feature=jdk.feature,
                      user_jvm_options=tuple(jvm_options))
    return policies.plan(policies.choose(settings, machine), machine)


def guest_env(user_env: dict[str, str]) -> dict[str, str]:
    return {**GUEST_ENV, **user_env}


def host_env(user_env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **user_env}


def guest_cwd() -> str:
    """The app's working folder in the guest: the host's, as app files keep their host paths there."""
    return os.getcwd()


def boot_timeout() -> float:
    """Seconds the watchdog gives the guest to report in (OSV_JAVA_BOOT_TIMEOUT, default 120)."""
    value = os.environ.get("OSV_JAVA_BOOT_TIMEOUT", "120")
    try:
        seconds = float(value)
    except ValueError:
        raise UsageError(f"OSV_JAVA_BOOT_TIMEOUT={value!r} is not a number of seconds",
                         hint="e.g. OSV_JAVA_BOOT_TIMEOUT=120") from None
    if seconds <= 0:
        raise UsageError(f"OSV_JAVA_BOOT_TIMEOUT={value!r} must be positive", hint="e.g. OSV_JAVA_BOOT_TIMEOUT=120")
    return seconds
