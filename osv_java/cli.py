"""The `osv-java` command line.

Exit statuses follow `docker run`: the app's own status passes through; 125 when osv-java itself
fails, with one line `osv-java: error: WHAT` and, where known, `hint: HOW TO FIX`; 130 on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from gc_hooks.policies import HookSettings
from gc_hooks.seam import HookEvent
from jvmbridge.errors import OsvJavaError, StopTimeout, UsageError
from osv_java import launch, options

if TYPE_CHECKING:
    from kernel.vm.volumes import Volume

F = TypeVar("F", bound=Callable[..., Any])
EXIT_OSV_FAILURE = 125
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
EXIT_KILLED = 137  # 128 + SIGKILL: the app outlived --stop-timeout after a SIGTERM, as with `docker stop`


def fail(message: str, hint: str | None = None) -> None:
    click.echo(f"osv-java: error: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)


# Commands in their own modules, imported only when used: `osv-java run` starts faster without them.
LAZY_COMMANDS = {
    "attach": ("osv_java.attach_command", "attach_command"),
    "compat": ("osv_java.compat.command", "compat_command"),
    "export": ("osv_java.export_command", "export_command"),
    "gc-experiment": ("osv_java.gc_experiment_command", "gc_experiment_command"),
    "jvm": ("osv_java.jvm_commands", "jvm_group"),
    "shell": ("osv_java.jvm_commands", "shell_command"),
    "update": ("osv_java.update_command", "update_command"),
    "validate": ("osv_java.validate_command", "validate_command"),
}


class ToolGroup(click.Group):
    """Every command's OsvJavaError becomes one error line (plus hint) and exit status 125.

    Usage errors stay click's (exit 2); Ctrl-C gives 130 and SIGTERM 143, after the context managers
    on the way out have removed temporary files and stopped QEMU. While an app runs, SIGTERM goes to
    the app (the run then ends with the app's status), and an app that outlives --stop-timeout is
    killed: 137. Tracebacks only with --debug.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            module_name, attribute = LAZY_COMMANDS[cmd_name]
            module = importlib.import_module(module_name)
            self.add_command(getattr(module, attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug", False))
        try:
            return super().invoke(ctx)
        except OsvJavaError as exc:
            if debug:
                _print_traceback()
            fail(exc.message, exc.hint)
            tail = getattr(exc, "console_tail", "")
            if tail:
                click.echo("--- console (last lines) ---\n" + tail + "\n--- end of console ---", err=True)
            vcpus = getattr(exc, "vcpus", "")
            if vcpus:
                click.echo("--- the guest's vCPUs when it was given up on ---\n" + vcpus, err=True)
            sys.exit(EXIT_OSV_FAILURE)
        except StopTimeout as exc:
            click.echo(f"osv-java: {exc}", err=True)
            sys.exit(EXIT_KILLED)
        except Terminated:
            click.echo("osv-java: terminated", err=True)
            sys.exit(EXIT_TERMINATED)
        except KeyboardInterrupt:
            click.echo("osv-java: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - an unexpected failure is still ours: 125, no traceback
            if debug:
                _print_traceback()
            fail(f"unexpected {type(exc).__name__}: {exc}", "rerun with --debug and report the traceback")
            sys.exit(EXIT_OSV_FAILURE)


def _print_traceback() -> None:
    import traceback  # here: only --debug shows one

    traceback.print_exc()


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every temporary file and QEMU are cleaned up on the way out."""


@click.group(cls=ToolGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="osv-java")
def cli(debug: bool) -> None:
    """Run unmodified JVM programs as single-application virtual machines."""


NO_STARTUP_ARCHIVE = click.option(
    "--startup-archive/--no-startup-archive", "startup_archive", default=None,
    help="A start-up archive for the app (an AOT cache or AppCDS archive), made by a training run of the app "
         "on this host in a sandbox (its own ports, nothing written), stopped once it has started. "
         "--target process: on by default; a run that finds none starts without it and leaves a "
         "low-priority process making it for the runs after it (--startup-archive: make it first and wait). "
         "In a VM, where a started JVM (--zygote) covers start-up, only with --startup-archive: the VM then "
         "restores a JVM started with it (saved once per app).")


def common_app_options(func: F) -> F:
    decorators = [
        click.option("-cp", "--class-path", "--classpath", "classpath", metavar="PATH",
                     help="Jars and class folders joined by ':'; APP is then the main class."),
        click.option("--jdk", "jdk_spec", metavar="PATH|VERSION", help="JDK to link from (default: JAVA_HOME, "
                     "else the newest found)."),
        click.option("--lang", metavar="NAME", help="Language of a script when its file ending does not say."),
        click.option("--with", "with_runtimes", multiple=True, metavar="LANG",
                     help="Add a language runtime (scala, kotlin, clojure, ...) to the class path."),
        click.option("--kernel", "kernel_path", type=click.Path(path_type=Path), help="Your own bzImage."),
        click.option("--modules", "modules_dir", type=click.Path(path_type=Path),
                     help="Modules folder for --kernel (lib/modules/RELEASE)."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


class AppCommand(click.Command):
    """A command whose APP comes after its own options: a JVM option put where `java` takes it
    (`osv-java run -Xmx1g app.jar`) is refused with the way to pass it, where click would read
    `-Xmx1g` as a cluster of one-letter options and complain about one of them.

    Its one-letter options (-e, -p, -m ...) reach click spelt long: click tries each as a long one
    first, and that failure builds a did-you-mean list (about a millisecond each, at every run)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        options = [param for param in self.params if isinstance(param, click.Option)]
        takes_value = {name for param in options if not param.is_flag for name in (*param.opts, *param.secondary_opts)}
        long_name = {name: longs[0] for param in options
                     if (longs := [o for o in param.opts if o.startswith("--")])
                     for name in param.opts if len(name) == 2}
        args = list(args)
        expecting_value = False
        for index, arg in enumerate(args):
            if expecting_value:
                expecting_value = False
            elif arg.startswith(("-X", "-D")) and len(arg) > 2:
                raise UsageError(f"{arg} is a JVM option, not one of osv-java {ctx.info_name}'s",
                                 hint=f"pass it as --jvm-opt={arg} (what follows APP goes to the app)")
            elif arg in takes_value:
                expecting_value = True
                args[index] = long_name.get(arg, arg)
            elif arg == "--" or not arg.startswith("-"):
                break  # APP: what follows is the app's
        return super().parse_args(ctx, args)


@cli.command(cls=AppCommand, context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("app")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@common_app_options
@click.option("-m", "--memory", default="1G", show_default=True, help="Memory of the VM.")
@click.option("-c", "--cpus", default="2", show_default=True, help="Virtual CPUs.")
@click.option("-p", "--publish", multiple=True, metavar="[ADDR:]HOST:GUEST", help="Publish a guest TCP port.")
@click.option("-e", "--env", "env", multiple=True, metavar="KEY=VAL", help="Set an environment variable.")
@click.option("-v", "--volume", "volume", multiple=True, metavar="HOST_DIR:GUEST_DIR[:ro]",
              help="Share a host folder, live: the app reads and (unless :ro) writes the host's files.")
@click.option("--jvm-opt", "jvm_opts", multiple=True, metavar="OPT", help="A JVM option (repeatable).")
@click.option("--target", type=click.Choice(["vm", "process"]), default="vm", show_default=True)
@click.option("--accel", type=click.Choice(["auto", "kvm", "tcg"]), default="auto", show_default=True)
@click.option("--timeout", type=float, default=None, metavar="SECONDS", help="Stop the app after this long.")
@click.option("--stop-timeout", type=float, default=10.0, show_default=True, metavar="SECONDS",
              help="After SIGTERM to osv-java (which the app gets), how long the app has before it is killed.")
@click.option("--verbose", is_flag=True, help="Show the QEMU command line and the kernel's messages.")
@click.option("--bootchart", is_flag=True, help="Print the measured boot timeline on stderr after the run.")
@click.option("--cold-boot", is_flag=True,
              help="Boot the kernel afresh, not from the machine's saved boot snapshot (nor save one).")
@click.option("--name", metavar="NAME", help="Name the VM, for `jvm ...|shell --vm NAME` (default: APP-PID).")
@click.option("--gc-log", "gc_log", metavar="FILE",
              help="Write the JVM's GC and safepoint log lines to FILE on this host (any target).")
@click.option("--stw-lb", "stw_lb", metavar="haproxy:SOCKET:BACKEND/SERVER",
              help="Collect while this server is drained from HAProxy (admin socket), one server at a time.")
@click.option("--stw-group", "stw_group", metavar="NAME",
              help="JVMs of group NAME on this machine never run the collections they cause at once.")
@click.option("--dynamic-heap", "dynamic_heap", type=click.Choice(["on", "off"]), default="on", show_default=True,
              help="Steer the committed heap to the live set and the memory the machine has, and give the rest back.")
@click.option("--hugepages", type=click.Choice(["auto", "thp", "pool", "off"]), default="auto", show_default=True,
              help="The heap on 2 MB pages: transparent huge pages, a reserved pool, or none (auto chooses).")
@click.option("--startup-priority", "startup_priority", type=click.Choice(["on", "off"]), default="on",
              show_default=True, help="While the JVM starts and C1 is busy, its optimising compiler (C2) runs on CPU "
                                      "time the app leaves idle (SCHED_IDLE), unless the app's threads want every CPU.")
@click.option("--snapshot-when-ready", "snapshot_when_ready", metavar="PORT|URL|FILE",
              help="Save the VM once the app listens on guest TCP PORT (a number), answers a GET of URL "
                   "(http://localhost:PORT/PATH, asked by the guest until it answers 200-399: the request path is then "
                   "warm in the snapshot) or has created FILE (an absolute guest path); later runs of the same "
                   "app, arguments and options restore it there, the service already running. See the README for "
                   "what restores share.")
@click.option("--zygote/--no-zygote", default=None,
              help="Restore a JVM that has already started and hand it the app (a snapshot per runtime and JVM "
                   "options, saved at the first such run; with --startup-archive, one per app). On by default where "
                   "the run allows it (not with -v, --cold-boot, --snapshot-when-ready, --gc-log, --stw-*, agents or "
                   "-Xlog). "
                   "See the README for what the app sees differently.")
@NO_STARTUP_ARCHIVE
def run(app: str, args: tuple[str, ...], classpath: str | None, jdk_spec: str | None, lang: str | None,
        with_runtimes: tuple[str, ...], kernel_path: Path | None, modules_dir: Path | None, memory: str,
        cpus: str, publish: tuple[str, ...], env: tuple[str, ...], volume: tuple[str, ...],
        jvm_opts: tuple[str, ...], target: str, accel: str, timeout: float | None, stop_timeout: float,
        verbose: bool, bootchart: bool, cold_boot: bool, name: str | None, gc_log: str | None,
        stw_lb: str | None, stw_group: str | None, dynamic_heap: str, hugepages: str, startup_priority: str,
        startup_archive: bool | None, snapshot_when_ready: str | None, zygote: bool | None) -> None:
    """Build (cached) and boot APP; the exit status is the app's.

    APP is a jar (Main-Class from its manifest), a script of a JVM language, or with -cp a main class.
    """
    if verbose:
        os.environ["OSV_JAVA_PROGRESS"] = "1"
    memory_mb = options.memory_mb(memory)
    cpu_count = options.cpus(cpus)
    published = [options.publish(p) for p in publish]
    for address, host_port, _ in published:
        options.check_port_free(address, host_port)
    user_env = dict(options.env_pair(e) for e in env)
    vols = _volumes(volume)
    point = None
    if snapshot_when_ready is not None:
        point = options.ready_point(snapshot_when_ready)
        options.check_ready_point(cold_boot, bool(vols), target)
    if zygote:  # asked for: say why it cannot be; by default it is used where it can be
        options.check_zygote(target, cold_boot, bool(vols), point is not None)
    # ... and not with the policies that stream what the JVM logs from its start, or coordinate its
    # collections with other machines (services, which start once)
    use_zygote = zygote is not False and target == "vm" and not (cold_boot or vols or point) \
        and (zygote or not (gc_log or stw_lb or stw_group))
    if timeout is not None and timeout <= 0:
        raise click.BadParameter("must be positive", param_hint="--timeout")
    if stop_timeout < 0:
        raise click.BadParameter("must not be negative", param_hint="--stop-timeout")
    vm_name = f"{Path(app).stem[:40] or 'app'}-{os.getpid()}"
    if name or stw_group is not None:
        from kernel.vm.registry import check_name  # the VM path's module: a process run starts sooner without it

        vm_name = check_name(name) if name else vm_name
        if stw_group is not None:
            check_name(stw_group)
    settings = HookSettings(dynamic_heap=dynamic_heap == "on", hugepages=hugepages, gc_log=gc_log, stw_lb=stw_lb,
                            stw_group=stw_group, startup_priority=startup_priority == "on")

    if target == "process":
        from kernel import process

        resolved = launch.resolve(app, list(args), classpath, jdk_spec, lang, with_runtimes, link_modules=False)
        hooks = launch.hook_plan(settings, "process", memory_mb, cpu_count, resolved.jdk, list(jvm_opts))
        archive, train_later = None, None
        if startup_archive is not False:  # on by default here: made in the background when missing
            archive, train_later = launch.startup_archive_for_host(resolved, user_env, list(jvm_opts),
                                                                   wait=bool(startup_archive))
        argv = launch.host_argv(resolved, list(jvm_opts), memory_mb, cpu_count, hooks.jvm_options, archive)
        proc_result = process.run(argv, launch.host_env(user_env), resolved.app.main_class, published, vols,
                                  bootchart, timeout, hooks, verbose, stop_timeout)
        if train_later is not None:
            train_later()
        if bootchart:
            print_timeline(proc_result.timeline, proc_result.hook_events)
        _exit_at_once(proc_result.status)

    from kernel.vm import registry
    from kernel.vm.runner import RunOptions, VirtualMachine

    if vols:
        from kernel.vm.volumes import virtiofsd_binary

        virtiofsd_binary()  # before the build: one clear error when it is missing

    resolved = launch.resolve(app, list(args), classpath, jdk_spec, lang, with_runtimes)
    hooks = launch.hook_plan(settings, "vm", memory_mb, cpu_count, resolved.jdk, list(jvm_opts))
    kernel = launch.kernel_for(kernel_path, modules_dir, verbose, volumes=bool(vols))
    archive = launch.startup_archive_for_image(resolved, user_env, list(jvm_opts)) if startup_archive else None
    image = launch.build_image(resolved, kernel, None, launch.image_hook_modules(resolved.jdk, hooks), archive)
    run_options = RunOptions(
        env=launch.guest_env(user_env), memory_mb=memory_mb, cpus=cpu_count, accel=accel, publish=published,
        volumes=vols, timeout=timeout, stop_timeout=stop_timeout, verbose=verbose, bootchart=bootchart,
        cwd=launch.guest_cwd(), boot_timeout=launch.boot_timeout(), snapshot=not cold_boot, hooks=hooks,
        ready_point=point, zygote=use_zygote,
        zygote_runtime=":".join(map(str, resolved.app.runtime)) if resolved.app.kind == "script" else None,
    )
    argv = launch.guest_argv(image, list(jvm_opts), resolved.args, bootchart, hooks.jvm_options)
    if use_zygote:
        from kernel.build.app import read_manifest
        from kernel.vm.zygote import unsuitable, unsupported

        why = None if image.manifest.get("zygote") else "its image has no zygote (its JDK has no javac)"
        why = why or unsuitable(list(jvm_opts), user_env)
        if why is None and resolved.app.kind == "jar" and resolved.app.jar is not None and not resolved.app.runtime:
            why = unsupported(read_manifest(resolved.app.jar))
        if why:
            if zygote:
                click.echo(f"osv-java: --zygote: {app}: {why}: its JVM starts as usual", err=True)
            run_options.zygote = False
    with VirtualMachine(image, run_options) as vm, \
            registry.registered(vm_name, vm.relay_socket, resolved.app.main_class):
        result = vm.run(argv, resolved.app.main_class, app_args=len(resolved.args))
    if verbose:
        click.echo("--- console ---\n" + result.console_log + "\n---", err=True)
    if bootchart:
        print_timeline(result.timeline, result.hook_events)
    sys.exit(result.status)


def _exit_at_once(status: int) -> NoReturn:
    """End a process run that has stopped and removed all it made: without the interpreter's teardown,
    a tenth of osv-java's own time in a short run."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)


def _volumes(specs: tuple[str, ...]) -> list[Volume]:
    if not specs:
        return []  # most runs: the module of volumes is not loaded for them
    from kernel.vm.volumes import parse

    return [parse(spec) for spec in specs]


TIMELINE_ORDER = ("qemu_start", "snapshot_restored", "kernel_start", "pid1_start", "snapshot_saved", "jvm_exec",
                  "app_ready", "ready_saved", "app_launched", "main_entered", "app_exit", "vm_gone")
OPTIONAL_EVENTS = ("qemu_start", "snapshot_restored", "kernel_start", "pid1_start", "snapshot_saved", "app_ready",
                   "ready_saved", "app_launched", "vm_gone")


def print_timeline(timeline: dict[str, float], hook_events: list[HookEvent]) -> None:
    click.echo("osv-java bootchart (seconds since start, measured):", err=True)
    previous = 0.0
    for name in sorted((n for n in TIMELINE_ORDER if n in timeline), key=lambda n: timeline[n]):
        at = timeline[name]
        click.echo(f"  {name:<17} {at:8.3f}  (+{at - previous:.3f})", err=True)
        previous = at
    resumed = "snapshot_restored" in timeline and "jvm_exec" not in timeline
    launched = "app_launched" in timeline
    if resumed and launched:
        click.echo("  (the JVM had started and waited for an app when its snapshot was saved: restored there "
                   "and handed this app)", err=True)
    elif resumed:
        click.echo("  (the app started and got ready before its ready snapshot was saved: restored there)", err=True)
    elif "snapshot_restored" in timeline:
        click.echo("  (kernel and PID 1 started when the boot snapshot was saved; --cold-boot times them)", err=True)
    missing = [n for n in TIMELINE_ORDER if n not in timeline and n not in OPTIONAL_EVENTS
               and not (resumed and n == "jvm_exec") and not (resumed and not launched and n == "main_entered")]
    if missing:
        click.echo(f"  not measured: {', '.join(missing)}", err=True)
    if hook_events:
        click.echo("policy decisions (gc_hooks):", err=True)
        for event in hook_events:
            click.echo(f"  {time.strftime('%H:%M:%S', time.localtime(event.time))}  {event.line()}", err=True)


@cli.command()
@click.argument("app")
@common_app_options
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Folder to write the image to.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest summary as JSON.")
@NO_STARTUP_ARCHIVE
def build(app: str, classpath: str | None, jdk_spec: str | None, lang: str | None, with_runtimes: tuple[str, ...],
          kernel_path: Path | None, modules_dir: Path | None, output: Path, as_json: bool,
          startup_archive: bool | None) -> None:
    """Build an image of APP into OUTPUT without running it (its start-up archive is trained without arguments)."""
    from kernel.build import image as images

    images.check_output(output)
    resolved = launch.resolve(app, [], classpath, jdk_spec, lang, with_runtimes)
    kernel = launch.kernel_for(kernel_path, modules_dir, verbose=False)
    archive = launch.startup_archive_for_image(resolved, {}, []) if startup_archive else None
    image = launch.build_image(resolved, kernel, output, launch.image_hook_modules(resolved.jdk), archive)
    summary = {
        "folder": str(image.folder),
        "key": image.manifest["key"],
        "initramfs_bytes": image.manifest["sizes"]["initramfs"],
        "runtime_disk_bytes": image.manifest["sizes"].get("runtime_disk", 0),
        "kernel_bytes": image.manifest["sizes"]["kernel"],
        "jvm_command": image.manifest["jvm_command"],
    }
    if as_json:
        click.echo(json.dumps(summary, indent=1))
    else:
        click.echo(f"built {image.folder} ({summary['initramfs_bytes'] / 1e6:.1f} MB initramfs, "
                   f"{summary['runtime_disk_bytes'] / 1e6:.1f} MB runtime disk)")


@cli.group()
def kernel() -> None:
    """Kernel provisioning."""


@kernel.command("fetch")
def kernel_fetch() -> None:
    """Download Debian's cloud kernel into the cache (done on first run otherwise)."""
    from kernel import linux

    k = linux.fetch_debian_kernel(progress=True)
    click.echo(f"{k.image} ({k.release})")


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    cli(prog_name="osv-java")
