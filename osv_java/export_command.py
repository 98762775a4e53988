"""`osv-java export APP --format FORMAT -o DIR`: the same app, for an engine beyond one machine.

Each format takes the run options it can honour and refuses the others (osv_java.export_options);
this module turns the rest into the format's files.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from gc_hooks import policies
from gc_hooks.hugepages.plan import KernelPages
from gc_hooks.policies import HookSettings
from gc_hooks.seam import Machine
from jvmbridge.errors import UsageError
from osv_java import launch, options
from osv_java.cli import AppCommand, common_app_options
from osv_java.export_options import (
    IMAGE_REF,
    K8S_NAME,
    REF_NAME,
    MachineShape,
    check_format,
    check_output,
    check_refused,
    exposed_port,
    libvirt_machine,
    staged,
)


@click.command("export", cls=AppCommand, context_settings={"ignore_unknown_options": True})
@click.argument("app")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@common_app_options
@click.option("--format", "fmt", required=True, metavar="oci|libvirt|kubevirt", help="What to write.")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="A new or empty folder.")
@click.option("-m", "--memory", default=None, help="Memory of the machine (libvirt, kubevirt).")
@click.option("-c", "--cpus", default=None, help="Virtual CPUs (libvirt, kubevirt).")
@click.option("-p", "--publish", multiple=True, metavar="[[ADDR:]HOST:]GUEST",
              help="A TCP port the app serves (the host side only for libvirt; GUEST alone: the same port).")
@click.option("-e", "--env", "env", multiple=True, metavar="KEY=VAL", help="Set an environment variable.")
@click.option("-v", "--volume", "volume", multiple=True, metavar="HOST_DIR:GUEST_DIR[:ro]",
              help="A host folder (no format honours it: each engine mounts its own).")
@click.option("--jvm-opt", "jvm_opts", multiple=True, metavar="OPT", help="A JVM option (repeatable).")
@click.option("--tag", default=None, help="The image's reference name (oci; default latest).")
@click.option("--name", default=None, help="The machine's name (libvirt, kubevirt; default osv-APP).")
@click.option("--image", "image_ref", default=None, metavar="REF",
              help="Where the cluster pulls the containerDisk image from (kubevirt; default osv-APP:latest).")
@click.option("--accel", type=click.Choice(["kvm", "tcg"]), default=None,
              help="The domain's accelerator (libvirt; default kvm): tcg for hosts without KVM.")
@click.option("--gc-log", "gc_log", metavar="FILE", help="Refused by every format: log with -Xlog instead.")
@click.option("--stw-lb", "stw_lb", metavar="haproxy:SOCKET:BACKEND/SERVER",
              help="Collect while this server is drained from HAProxy (its socket must be mounted in).")
@click.option("--stw-group", "stw_group", metavar="NAME", help="JVMs of group NAME never collect at once.")
@click.option("--dynamic-heap", "dynamic_heap", type=click.Choice(["on", "off"]), default="on", show_default=True)
@click.option("--hugepages", type=click.Choice(["auto", "thp", "pool", "off"]), default="auto", show_default=True)
@click.option("--startup-priority", "startup_priority", type=click.Choice(["on", "off"]), default="on",
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a summary as JSON.")
def export_command(app: str, args: tuple[str, ...], classpath: str | None, jdk_spec: str | None, lang: str | None,
                   with_runtimes: tuple[str, ...], kernel_path: Path | None, modules_dir: Path | None, fmt: str,
                   output: Path, memory: str | None, cpus: str | None, publish: tuple[str, ...],
                   env: tuple[str, ...], volume: tuple[str, ...], jvm_opts: tuple[str, ...], tag: str | None,
                   name: str | None, image_ref: str | None, accel: str | None, gc_log: str | None, stw_lb: str | None,
                   stw_group: str | None, dynamic_heap: str, hugepages: str, startup_priority: str,
                   as_json: bool) -> None:
    """Write APP for another engine: an OCI image layout (oci), a libvirt domain (libvirt) or a
    KubeVirt VirtualMachine (kubevirt), into the new folder OUTPUT.

    ARGS are the app's arguments, baked in (an OCI engine's own arguments replace them).
    """
    check_format(fmt)
    check_refused(fmt, {"memory": memory, "cpus": cpus, "volume": volume, "gc_log": gc_log,
                        "kernel_path": kernel_path, "modules_dir": modules_dir, "accel": accel, "name": name,
                        "tag": tag, "stw_lb": stw_lb, "stw_group": stw_group, "image": image_ref})
    output = check_output(output)
    user_env = dict(options.env_pair(e) for e in env)
    settings = HookSettings(dynamic_heap=dynamic_heap == "on", hugepages=hugepages, stw_lb=stw_lb,
                            stw_group=stw_group, startup_priority=startup_priority == "on")
    if fmt == "oci":
        tag = tag or "latest"
        if not REF_NAME.fullmatch(tag):
            raise UsageError(f"--tag {tag!r} is not an image reference name",
                             hint="use letters, digits, '.', '_' and '-', e.g. --tag 1.0")
        ports = tuple(exposed_port(p) for p in publish)
        summary = export_oci(app, list(args), classpath, jdk_spec, lang, with_runtimes, output, settings,
                             list(jvm_opts), user_env, ports, tag)
        next_step = f"skopeo copy oci:{output}:{tag} docker-daemon:IMAGE:{tag}"
    else:
        machine = libvirt_machine(app, name, memory, cpus, accel, publish, user_env)
        if fmt == "kubevirt":
            if not K8S_NAME.fullmatch(machine.name):
                raise UsageError(f"--name {machine.name!r} is not a Kubernetes name",
                                 hint="use lowercase letters, digits and '-', e.g. --name hello")
            image_ref = image_ref or f"{machine.name}:latest"
            if not IMAGE_REF.fullmatch(image_ref):
                raise UsageError(f"--image {image_ref!r} is not an image reference",
                                 hint="e.g. --image registry.example.com/hello:1.0")
        summary = export_machine(fmt, app, list(args), classpath, jdk_spec, lang, with_runtimes, kernel_path,
                                 modules_dir, output, settings, list(jvm_opts), machine, image_ref)
        next_step = (f"virsh create {output}/domain.xml" if fmt == "libvirt" else
                     f"skopeo copy oci:{output}/containerdisk:{summary['tag']} docker://{image_ref}; "
                     f"kubectl apply -f {output}/virtualmachine.json")
    if as_json:
        click.echo(json.dumps(summary, indent=1, sort_keys=True))
    else:
        size = int(str(summary["bytes"])) / 1e6
        click.echo(f"wrote {output} ({fmt}, {size:.1f} MB); next: {next_step}")


def export_oci(app: str, args: list[str], classpath: str | None, jdk_spec: str | None, lang: str | None,
               with_runtimes: tuple[str, ...], output: Path, settings: HookSettings, jvm_opts: list[str],
               env: dict[str, str], ports: tuple[int, ...], tag: str) -> dict[str, object]:
    from kernel.build import container

    resolved = launch.resolve(app, args, classpath, jdk_spec, lang, with_runtimes)
    machine = Machine(target="process", memory_mb=None, cpus=None, jdk_feature=resolved.jdk.feature,
                      user_jvm_options=tuple(jvm_opts))
    # Planned for a usual kernel, not this host's: the image runs on the engine's.
    plan = policies.plan(policies.choose(settings, machine, KernelPages()), machine)
    if plan.monitors:
        name = next(iter(plan.monitors))
        raise UsageError(f"--format oci cannot honour the {name} policy: it needs osv-java on the host",
                         hint=f"drop the option that turns {name} on")
    request = container.ContainerRequest(
        app=resolved.app, jdk=resolved.jdk, modules=resolved.modules,
        jvm_options=(*resolved.extra_jvm_options, *container.jvm_defaults(resolved.jdk), *plan.jvm_options,
                     *jvm_opts),
        supervisors=tuple(spec.fields() for spec in plan.supervisors), args=tuple(resolved.args), env=env,
        ports=ports, extra_trees=resolved.extra_trees, ref=tag,
    )
    with staged(output) as tmp:
        summary = container.write(request, tmp)
    return {**summary, "format": "oci", "folder": str(output)}


def export_machine(fmt: str, app: str, args: list[str], classpath: str | None, jdk_spec: str | None,
                   lang: str | None, with_runtimes: tuple[str, ...], kernel_path: Path | None,
                   modules_dir: Path | None, output: Path, settings: HookSettings, jvm_opts: list[str],
                   shape: MachineShape, image_ref: str | None) -> dict[str, object]:
    """libvirt or kubevirt: the same image and q35 guest, described for one engine or the other."""
    from kernel.vm import kubevirt, libvirt, qemu

    resolved = launch.resolve(app, args, classpath, jdk_spec, lang, with_runtimes)
    hooks = launch.hook_plan(settings, "vm", shape.memory_mb, shape.cpus, resolved.jdk, jvm_opts)
    extra = [a for a in hooks.qemu_args if a != "-device" and not a.startswith("virtio-balloon")]
    needed = [name for name, monitor in hooks.monitors.items() if monitor.essential]
    if needed or extra:
        what = next(iter(needed), None) or " ".join(extra)
        raise UsageError(f"--format {fmt} cannot honour {what}: it needs osv-java's own QEMU",
                         hint="drop the option that asks for it (e.g. --hugepages pool), or use osv-java run")
    kernel = launch.kernel_for(kernel_path, modules_dir, verbose=False)
    image = launch.build_image(resolved, kernel, None, launch.image_hook_modules(resolved.jdk, hooks))
    argv = launch.guest_argv(image, jvm_opts, resolved.args, False, hooks.jvm_options)
    if shape.accel == "tcg":  # as osv-java run does under TCG (kernel.vm.qemu.TCG_JVM_OPTIONS)
        argv = [argv[0], *qemu.tcg_jvm_options(), *argv[1:]]
    machine = libvirt.Machine(name=shape.name, memory_mb=shape.memory_mb, cpus=shape.cpus, accel=shape.accel,
                              argv=argv, env=launch.guest_env(shape.env), main_class=resolved.app.main_class,
                              publish=shape.publish)
    with staged(output) as tmp:
        if fmt == "libvirt":
            summary = libvirt.write(image, machine, hooks, tmp, output)
        else:
            assert image_ref is not None
            summary = kubevirt.write(image, kubevirt.Request(machine, image_ref), hooks, tmp)
    return {**summary, "format": fmt, "folder": str(output)}
