"""Boot an image in QEMU and run the app like a local command.

The host listens on one UNIX socket per virtio-serial port and QEMU connects to each at start-up, so
no byte is lost before the guest opens its ports. stdout and stderr travel on their own ports; the
control port carries the run request, the exit status (with the byte counts of stdout/stderr, so we
know when we have all of the app's output) and the boot timeline. Nothing is parsed out of the app's
output. A watchdog turns a hung boot into an error carrying the console tail.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gc_hooks.host import HostSide
from gc_hooks.policies import Plan
from gc_hooks.seam import HookEvent, Machine
from jvmbridge.errors import BootError, UsageError
from kernel.build import launcher
from kernel.build.image import Image
from kernel.build.layout import INIT_ENV
from kernel.guest import wire
from kernel.progress import say, warn
from kernel.vm import qemu, ready, registry, snapshot, vcpus, volumes, zygote
from kernel.vm.conversation import ControlChannel, Conversation, OutputPump, keep_crash_log, seconds, stdin_pump
from kernel.vm.monitor import Monitor, MonitorError, add_forward
from kernel.vm.qemu_process import QemuProcess
from kernel.vm.relay import Relay
from kernel.vm.timeline import Measured, boot_timeline


def _renewal() -> dict[str, object]:
    """The host's clock and fresh entropy, for PID 1 to renew a restored machine's (kernel/guest/renew.py)."""
    return {"epoch_ns": time.time_ns(), "entropy": os.urandom(32).hex()}


PORTS = (wire.CONTROL_PORT, wire.STDIN_PORT, wire.STDOUT_PORT, wire.STDERR_PORT)


@dataclass
class RunOptions:
    """How to boot; the JVM's command line is given to VirtualMachine.run, already complete."""

    env: dict[str, str] = field(default_factory=dict)
    memory_mb: int = 1024
    cpus: int = 2
    accel: str = "auto"
    publish: list[tuple[str, int, int]] = field(default_factory=list)
    volumes: list[volumes.Volume] = field(default_factory=list)
    timeout: float | None = None
    stop_timeout: float = 10.0  # after SIGTERM, how long the app has to end before the VM is stopped
    boot_timeout: float = 120.0
    verbose: bool = False
    bootchart: bool = False
    cwd: str = "/"
    snapshot: bool = True  # start from the machine's boot snapshot, saving one first if need be
    hooks: Plan | None = None  # the run's policies (gc_hooks)
    ready_point: ready.ReadyPoint | None = None  # save the machine there, or restore it (kernel.vm.ready)
    zygote: bool = False  # restore a started JVM and hand it the app (kernel.vm.zygote)
    zygote_runtime: str | None = None  # a script's language runtime class path (kernel.vm.zygote.split)


@dataclass
class RunResult:
    status: int
    timeline: dict[str, float]  # event -> seconds since QEMU start
    console_log: str
    hook_events: list[HookEvent] = field(default_factory=list)


_NO_MACHINE = Machine(target="vm", memory_mb=None, cpus=None, jdk_feature=0)


class _VmSide:
    """What a policy's host monitor may use of this VM (gc_hooks.seam.VmSide)."""

    def __init__(self, vm: VirtualMachine) -> None:
        self.name = vm.workdir.name
        self.qemu_pid = vm.qemu.pid
        self._vm = vm
        self._relay = registry.VmRecord(name=self.name, pid=os.getpid(), socket=str(vm.relay_socket),
                                        main_class="", started=time.time())

    def qmp(self, command: str, **arguments: Any) -> Any:
        assert self._vm.relay is not None  # it listens before the host side starts
        return self._vm.relay.qmp(command, **arguments)

    def request(self, line: str, timeout: float = 30.0) -> bytes:
        return registry.request(self._relay, line, timeout)


class VirtualMachine:
    """One boot of an image. Use as a context manager: leaving it always stops QEMU.

    Its parts: the QEMU process and its sockets (kernel.vm.qemu_process), the conversation with PID 1
    (kernel.vm.conversation), the boot snapshot's decision (`run`) and the timeline (kernel.vm.timeline).
    """

    def __init__(self, image: Image, options: RunOptions) -> None:
        self.image = image
        self.options = options
        self.workdir = Path(tempfile.mkdtemp(prefix="osv-java-run-"))
        self.qemu = QemuProcess(self.workdir)
        self.relay_socket = self.workdir / "relay.sock"
        self.relay: Relay | None = None
        self.launched: float | None = None  # host time a started JVM was handed the app (kernel.vm.zygote)
        self.qmp_socket = self.workdir / "qmp.sock"  # for port forwards added at run time
        self.hooks = options.hooks or Plan(machine=_NO_MACHINE)
        self.host = HostSide(self.hooks, options.verbose)
        self.file_servers = volumes.FileServers(options.volumes, self.workdir)  # virtiofsd, one per -v

    def __enter__(self) -> VirtualMachine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.qemu.close()
        self.file_servers.stop()
        self.host.stop()
        if self.relay is not None:
            self.relay.close()
        keep = os.environ.get("OSV_JAVA_CONSOLE_LOG")
        if keep and self.qemu.console.exists():
            # Tests and CI ask for the guest console of every boot, to show it when something fails.
            shutil.copyfile(self.qemu.console, keep)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def console_tail(self, lines: int = 30) -> str:
        return self.qemu.console_tail(lines)

    def _run_request(self, argv: list[str], main_class: str) -> dict[str, object]:
        """The fields of the guest's "run" message."""
        options = self.options
        return {
            "argv": argv,
            "env": [f"{k}={v}" for k, v in options.env.items()],
            "cwd": options.cwd,
            "main_class": main_class,
            "bootchart": options.bootchart,
            "network": bool(options.publish),
            "volume": [f"{volumes.tag(i)}:{'ro' if v.readonly else 'rw'}:{v.guest}"
                       for i, v in enumerate(options.volumes)],
            # the policies' guest settings, written before the JVM starts (their supervisors follow once it runs)
            "setting": self.hooks.setting_fields(),
        }

    def _cmdline(self, accel: str, argv: list[str], request: dict[str, object] | None) -> tuple[list[str], bool]:
        """The kernel command line; and whether the run request went on it.

        On the command line, PID 1 starts the JVM before it sets up the ports (see pid1.main);
        a request too long for it, or None (a boot snapshot's machine), goes on the control channel.
        """
        options = self.options
        cmdline = qemu.base_cmdline(accel, options.verbose)
        cmdline += [f"{k}={v}" for k, v in INIT_ENV.items()]
        cmdline += self.hooks.kernel_cmdline
        param = ""
        if request is not None:
            encoded = base64.b64encode(wire.encode("run", **request)).decode()
            param = f"{wire.CMDLINE_REQUEST}={encoded}"
        on_cmdline = bool(param) and len(" ".join([*cmdline, param])) <= qemu.MAX_CMDLINE
        if on_cmdline:
            cmdline.append(param)
            if not options.publish and not options.volumes:
                # /init can start the JVM itself, before PID 1's Python is up (kernel.build.launcher); with
                # -p or -v, PID 1 sets up the network or the volumes first.
                env = [f"{k}={v}" for k, v in options.env.items()]
                command = launcher.shell_command(argv, env, options.cwd, self.hooks.guest_settings)
                early = f"{launcher.CMDLINE_PARAM}={base64.b64encode(command.encode()).decode()}"
                if len(" ".join([*cmdline, early])) <= qemu.MAX_CMDLINE:
                    cmdline.append(early)
        return cmdline, on_cmdline

    def _config(self, accel: str, argv: list[str], request: dict[str, object] | None
                ) -> tuple[qemu.MachineConfig, bool]:
        """The machine; and whether the run request went on the kernel command line.

        Without a request (a machine for a boot snapshot) it boots the base initramfs, without the
        app: the app's files follow the run request (kernel.vm.snapshot)."""
        options = self.options
        cmdline, on_cmdline = self._cmdline(accel, argv, request)
        chardevs = [(name, str(self.workdir / f"{name}.sock")) for name in PORTS]
        config = qemu.MachineConfig(
            kernel=self.image.kernel,
            initramfs=self.image.initramfs if request is not None else self.image.base_initramfs,
            memory_mb=options.memory_mb,
            cpus=options.cpus,
            accel=accel,
            cmdline=cmdline,
            serial_log=self.qemu.console,
            chardevs=chardevs,
            forwards=options.publish,
            filesystems=self.file_servers.sockets(),
            qmp_socket=self.qmp_socket,
            memory_image=self.image.runtime_disk,
            extra_args=list(self.hooks.qemu_args),
        )
        return config, on_cmdline

    def run(self, argv: list[str], main_class: str, app_args: int | None = None) -> RunResult:
        """Boot (or restore the boot snapshot of) the machine and run the JVM `argv` in it; `app_args`:
        how many of argv's last words are the app's arguments (for a started JVM's snapshot)."""
        options = self.options
        accel = qemu.choose_accel(options.accel, self.image.kernel, options.verbose)
        if accel == "tcg":
            argv = [argv[0], *qemu.tcg_jvm_options(), *argv[1:]]
        request = self._run_request(argv, main_class)
        runtime_key = self.image.runtime_key
        # QEMU cannot migrate a vhost-user file system (-v); an image made before snapshots were per
        # runtime has no base initramfs; a policy's own RAM backend (a pool's hugetlbfs) is not a
        # snapshot's RAM file.
        own_ram = qemu.brings_ram(self.hooks.qemu_args)
        if own_ram and options.volumes:
            raise UsageError("-v cannot share guest RAM that is on the host's hugetlbfs (--hugepages pool)",
                             hint="drop -v, or use --hugepages thp")
        if options.ready_point is not None:
            why_not = None if options.snapshot and not options.volumes else "it goes with neither --cold-boot nor -v"
            if runtime_key is None:
                why_not = "this image was built before boot snapshots: rebuild it (delete it from the cache)"
            elif own_ram:
                why_not = "the guest's RAM is on the host's hugetlbfs (--hugepages pool): use --hugepages thp"
            if why_not is None:
                assert runtime_key is not None
                return self._run_ready(accel, argv, request, runtime_key, options.ready_point)
            warn(f"no ready-point snapshot: {why_not}")
        if not options.snapshot or options.volumes or runtime_key is None or own_ram:
            self.file_servers.start()
            return self._boot_cold(accel, argv, request)
        launch = zygote.split(argv, main_class, app_args, options.zygote_runtime) \
            if options.zygote and app_args is not None else None
        if launch is not None:
            started = self._run_zygote(accel, launch, request, runtime_key)
            if started is not None:
                return started
        config, _ = self._config(accel, argv, None)
        path = snapshot.path_for(snapshot.key(runtime_key, config))
        if path.exists():
            restored = self._restored(path, lambda: self._from_snapshot(config, path, request), "booting afresh")
            if restored is not None:
                return restored
        elif not snapshot.seen_before(path):  # a first run: boot cold, the fastest way without a snapshot
            return self._boot_cold(accel, argv, request)
        return self._boot(dataclasses.replace(config, snapshot_ram="memfd"), request, save=path)

    def _run_ready(self, accel: str, argv: list[str], request: dict[str, object], runtime_key: str,
                   point: ready.ReadyPoint) -> RunResult:
        """A run with --snapshot-when-ready: restore the app's ready snapshot; or run the app (from the
        boot snapshot when there is one) and save that snapshot once the app is ready (kernel.vm.ready).
        The machine boots without the app either way, as for a boot snapshot, so that both restore alike."""
        config, _ = self._config(accel, argv, None)
        boot_path = snapshot.path_for(snapshot.key(runtime_key, config))
        env = [f"{k}={v}" for k, v in self.options.env.items()]
        path = snapshot.path_for(ready.key(boot_path.stem, self.image.app_archive, argv, env, self.options.cwd, point,
                                           self._hook_fields()))
        if path.exists():
            restored = self._restored(path, lambda: self._from_snapshot(
                config, path, None, resumed=ready.output_before(path)), "starting the app afresh")
            if restored is not None:
                return restored
        request = {**request, **point.request_fields()}
        if boot_path.exists():
            # a copy of the RAM, not a mapping of the file: the ready snapshot is saved from it
            restored = self._restored(boot_path, lambda: self._from_snapshot(
                config, boot_path, request, ready_save=path, copy=True), "booting afresh")
            if restored is not None:
                return restored
        save = boot_path if snapshot.seen_before(boot_path) else None
        return self._boot(dataclasses.replace(config, snapshot_ram="memfd"), request, save=save, ready_save=path)

    def _run_zygote(self, accel: str, launch: zygote.Launch, request: dict[str, object],
                    runtime_key: str) -> RunResult | None:
        """Restore the started JVM's snapshot and hand it the app; or, from the boot snapshot, start
        the zygote, save the machine once it waits, and hand it the app (kernel.vm.zygote). None when
        there is no boot snapshot yet: the run goes the usual way."""
        config, _ = self._config(accel, list(launch.jvm), None)
        boot_path = snapshot.path_for(snapshot.key(runtime_key, config))
        env = [f"{k}={v}" for k, v in self.options.env.items()]
        path = snapshot.path_for(zygote.key(boot_path.stem, launch, env, self.options.cwd, self._hook_fields(),
                                            self.image.folder.name))
        if path.exists():
            restored = self._restored(path, lambda: self._from_snapshot(
                config, path, None, resumed=ready.output_before(path), launch=launch), "starting the JVM afresh")
            if restored is not None:
                return restored
        if not boot_path.exists():
            return None
        request = {**request, "argv": launch.zygote_argv(), "ready_file": zygote.READY_FILE,
                   "zygote_fifo": zygote.FIFO}
        return self._restored(boot_path, lambda: self._from_snapshot(
            config, boot_path, request, ready_save=path, copy=True, launch=launch), "booting afresh")

    def _hook_fields(self) -> list[str]:
        """What the policies set in the guest before the JVM and run beside it: a saved machine holds both."""
        return [*self.hooks.setting_fields(), *self.hooks.supervisor_fields()]

    def _restored(self, path: Path, restore: Callable[[], RunResult], afresh: str) -> RunResult | None:
        """`restore()`, a run from the snapshot at `path`; None when QEMU would not take the snapshot
        (SnapshotError: nothing of the app has run), which is then deleted and the run goes on `afresh`.
        A BootError after the restore (the app may have run) deletes it too and is raised: no second
        try, and the next run starts afresh."""
        try:
            return restore()
        except snapshot.SnapshotError as exc:
            snapshot.remove(path)
            warn(f"{exc}; {afresh}")
            self._reset()
            return None
        except BootError:
            snapshot.remove(path)
            raise

    def _from_snapshot(self, config: qemu.MachineConfig, path: Path, request: dict[str, object] | None,
                       ready_save: Path | None = None, resumed: tuple[int, int] | None = None,
                       copy: bool = False, launch: zygote.Launch | None = None) -> RunResult:
        """Restore the snapshot at `path` and see the run through (see _boot). Its RAM file is mapped
        when the machine allows (snapshot.can_map) and `copy` is not asked, else copied into a memfd."""
        config = dataclasses.replace(config, forwards=[])  # -p is published once it runs (_publish_late)
        if snapshot.can_map(config) and not copy:
            restoring = dataclasses.replace(config, incoming=path, snapshot_ram=str(snapshot.ram_file(path)),
                                            snapshot_ram_private=True)
            return self._boot(restoring, request, restore=path, ready_save=ready_save, resumed=resumed,
                              launch=launch)
        ram = snapshot.RamCopy(path)  # filled while QEMU starts
        try:
            restoring = dataclasses.replace(config, incoming=path, snapshot_ram=f"/proc/{os.getpid()}/fd/{ram.fd}")
            return self._boot(restoring, request, restore=path, ready_save=ready_save, resumed=resumed, ram=ram,
                              launch=launch)
        finally:
            ram.close()  # QEMU maps it (or has ended): its memory lives as long as the machine

    def _boot_cold(self, accel: str, argv: list[str], request: dict[str, object]) -> RunResult:
        """Boot without a snapshot, the run request on the kernel command line when it fits."""
        config, request_sent = self._config(accel, argv, request)
        return self._boot(config, None if request_sent else request)

    def _reset(self) -> None:
        """Forget a QEMU that failed to restore a snapshot, so that the machine can boot afresh."""
        self.qemu.close()
        if self.relay is not None:
            self.relay.close()
            self.relay = None
        for stale in (self.qmp_socket, self.relay_socket):
            stale.unlink(missing_ok=True)

    def _boot(self, config: qemu.MachineConfig, request: dict[str, object] | None,
              restore: Path | None = None, save: Path | None = None, ready_save: Path | None = None,
              resumed: tuple[int, int] | None = None, ram: snapshot.RamCopy | None = None,
              launch: zygote.Launch | None = None) -> RunResult:
        """Start QEMU with `config` and see the run through; `request` is sent unless it was on the
        command line. With `restore`, QEMU reads that boot snapshot (its RAM from `ram` when that is
        a copy still being made); with `save`, one is written
        there once PID 1 is ready, before the request is sent. Both machines boot without the app,
        whose files go with the request. With `ready_save`, a ready snapshot is saved there once the
        app is ready; with `resumed` (the output bytes the app wrote before), `restore` is a ready
        snapshot and the app runs already (kernel.vm.ready)."""
        command = config.argv()
        self.qemu.listen(config.chardevs)
        if self.options.verbose:
            print("osv-java: " + " ".join(command), file=sys.stderr)
        t_qemu = self.qemu.start(command)
        try:
            conns = self.qemu.accept_all(timeout=30.0)
        except BootError as exc:
            if restore is not None:  # QEMU would not take the snapshot: a cold boot may still work
                raise snapshot.SnapshotError(str(exc)) from exc
            raise
        control = ControlChannel(conns[wire.CONTROL_PORT])
        pumps = (OutputPump(conns[wire.STDOUT_PORT], sys.stdout.buffer),
                 OutputPump(conns[wire.STDERR_PORT], sys.stderr.buffer))
        for pump in pumps:
            pump.start()
        restored_at = None
        if restore is not None:
            assert self.qemu.proc is not None
            snapshot.wait_restored(self.qmp_socket, self.qemu.proc, restore, ram=ram)
            restored_at = time.monotonic() - t_qemu
            snapshot.touch(restore)
            self._publish_late()
        # Answer `osv-java jvm ... --vm NAME` and `osv-java shell --vm NAME` (see kernel.vm.relay).
        self.relay = Relay(self.relay_socket, control, self.qmp_socket)
        self.relay.listen()
        if self.hooks.monitors:
            self.host.start(_VmSide(self))
        talk = Conversation(self.qemu, control, self.relay, self.host)
        talk.stop_timeout = self.options.stop_timeout
        talk.helpers_failed = self.file_servers.failure
        previous = signal.signal(signal.SIGINT, lambda *_: talk.interrupt())
        previous_term = signal.signal(signal.SIGTERM, lambda *_: talk.terminate())
        try:
            measured, exited = self._converse(talk, pumps, conns[wire.STDIN_PORT], request, t_qemu,
                                              restore is not None, save, ready_save, resumed, launch)
        except BootError as exc:
            exc.vcpus = self._vcpu_picture()
            raise
        finally:
            signal.signal(signal.SIGINT, previous)
            signal.signal(signal.SIGTERM, previous_term)
        self.host.stop()
        timeline = boot_timeline(dataclasses.replace(measured, restored_at=restored_at))
        return RunResult(status=int(seconds(exited, "status")), timeline=timeline,
                         console_log=self.qemu.console_tail(200), hook_events=list(self.host.events))

    def _vcpu_picture(self) -> str:
        """Where a guest that is given up on has its vCPUs (kernel.vm.vcpus); "" once QEMU is gone."""
        if not self.qemu.running() or self.relay is None:
            return ""
        try:
            pid = self.qemu.pid
            return self.relay.with_monitor(lambda monitor: vcpus.picture(monitor, pid))
        except MonitorError as exc:
            return f"(QEMU's monitor did not say: {exc})"

    def _publish_late(self) -> None:
        """A restored machine's -p forwards, added once it runs: a connection QEMU took while the
        machine was still being restored reached a stopped guest, and waited for user-mode
        networking to send its SYN again (seconds), where one refused is retried at once."""
        if not self.options.publish:
            return
        try:
            with Monitor(self.qmp_socket) as monitor:
                for address, host_port, guest_port in self.options.publish:
                    add_forward(monitor, host_port, guest_port, address)
        except MonitorError as exc:
            # not a BootError: the snapshot is sound and stays for the next run
            raise UsageError(str(exc), hint="publish on another host port with -p") from exc

    def _save_snapshot(self, talk: Conversation, target: Path) -> None:
        """Have PID 1 make ready what every run needs, then save the machine as it is (kernel.vm.snapshot).

        A failure costs only the snapshot: this run goes on, and the next one tries again.
        """
        talk.control.send("snapshot")
        talk.wait_for("ready", self.options.boot_timeout, "the guest to get ready for a snapshot")
        assert self.qemu.proc is not None and self.relay is not None
        proc = self.qemu.proc
        try:  # on the relay's connection: a policy's host side may hold QEMU's one monitor client
            size = self.relay.with_monitor(lambda monitor: snapshot.save(monitor, proc, target))
        except (snapshot.SnapshotError, MonitorError) as exc:
            warn(str(exc))
            return
        say(f"saved this machine's boot snapshot ({size >> 20} MB): its next runs start from there")

    def _save_ready(self, talk: Conversation, pumps: tuple[OutputPump, OutputPump], target: Path,
                    message: wire.Message, launch: zygote.Launch | None = None) -> None:
        """The app (or, with `launch`, the zygote) is ready and PID 1 holds its output: once all output
        before reached us, save the machine (kernel.vm.ready), then let PID 1 go on (handing the zygote
        its app). A failure costs only the snapshot."""
        assert self.qemu.proc is not None and self.relay is not None
        assert self.options.ready_point is not None or launch is not None
        proc = self.qemu.proc
        before = (int(seconds(message, "stdout_bytes")), int(seconds(message, "stderr_bytes")))
        talk.hold_signals()  # a Ctrl-C or SIGTERM now reaches the app after the save, not in the snapshot
        try:
            if talk.signalled:  # a JVM on its way out can still listen: every restore would end as it did
                raise snapshot.SnapshotError("the app was sent a signal before it got ready, so no ready "
                                             "snapshot is saved")
            if not all(pump.wait_for(count, 30.0) for pump, count in zip(pumps, before, strict=True)):
                raise snapshot.SnapshotError("the app's output before its ready point did not all arrive")
            size = self.relay.with_monitor(lambda monitor: snapshot.save(
                monitor, proc, target, extra=ready.output_file(before), what="the ready snapshot"))
        except (snapshot.SnapshotError, MonitorError) as exc:
            warn(f"{exc}; the app goes on without it")
        else:
            if launch is not None:
                say(f"saved the started JVM's snapshot ({size >> 20} MB): the next runs with the same JVM "
                    "options start there, whatever the app")
            elif self.options.ready_point is not None:
                say(f"saved the ready snapshot ({size >> 20} MB) once the app {self.options.ready_point.describe()}: "
                    "the next runs with the same app, arguments and options start there")
        finally:
            with contextlib.suppress(OSError):  # a QEMU gone meanwhile is seen by the wait for the exit
                talk.control.send("resume", launch=launch.fields() if launch else None,
                                  launch_fifo=zygote.FIFO if launch else None, **_renewal())
                if launch is not None:
                    self.launched = time.monotonic()
            talk.release_signals()

    def _converse(self, talk: Conversation, pumps: tuple[OutputPump, OutputPump], stdin: socket.socket,
                  request: dict[str, object] | None, t_qemu: float, restored: bool, save: Path | None,
                  ready_save: Path | None = None, resumed: tuple[int, int] | None = None,
                  launch: zygote.Launch | None = None) -> tuple[Measured, wire.Message]:
        """From PID 1's hello (none when restored: it said it before the snapshot) to the VM's end."""
        options = self.options
        ready_times: list[float] = []  # the app was ready, its snapshot saved (seconds after QEMU's start)
        if ready_save is not None:
            def on_ready(message: wire.Message, at: float) -> None:
                ready_times.append(at - t_qemu)
                self._save_ready(talk, pumps, ready_save, message, launch)
                ready_times.append(time.monotonic() - t_qemu)

            talk.on_app_ready = on_ready
        hello = None
        if not restored:
            hello = talk.wait_for("hello", options.boot_timeout, "the guest's kernel services to start")
        saved_at = None
        if save is not None:
            self._save_snapshot(talk, save)
            saved_at = time.monotonic() - t_qemu
        if request is not None:
            # The clock and fresh entropy: a restored machine would replay the snapshot's (kernel.vm.snapshot).
            fields = {**request, **_renewal()}
            if restored or save is not None or ready_save is not None:  # booted without the app: its files follow
                talk.control.send_with_payload("run", self.image.app_archive.read_bytes(), **fields)
            else:
                talk.control.send("run", **fields)
        started = None
        if resumed is not None and launch is not None and launch.archived:
            # the app's own started JVM: its files are in the snapshot already (its key holds the app's image)
            talk.control.send("resume", restored=True, launch=launch.fields(), launch_fifo=zygote.FIFO, **_renewal())
            self.launched = time.monotonic()
        elif resumed is not None and launch is not None:  # a started JVM: the app's files and launch follow
            talk.control.send_with_payload("resume", self.image.app_archive.read_bytes(), restored=True,
                                           launch=launch.fields(), launch_fifo=zygote.FIFO, **_renewal())
            self.launched = time.monotonic()
        elif resumed is not None:  # a ready snapshot's app runs already; PID 1 holds its output for us
            talk.control.send("resume", restored=True, **_renewal())
        else:
            started = talk.wait_for("started", options.boot_timeout, "the JVM to start")
            if self.hooks.supervisors:  # not in the run request: it must stay short enough for the command line
                talk.control.send("hooks", hook=self.hooks.supervisor_fields())
        talk.app_started()  # a signal that came during the boot goes to the app now
        # Only now: QEMU drops what arrives on a port the guest has not opened yet.
        threading.Thread(target=stdin_pump, args=(stdin, talk.control), daemon=True).start()
        exited = talk.wait_for("exit", options.timeout, "the app to finish", app_timeout=True)
        out_pump, err_pump = pumps
        out_before, err_before = resumed or (0, 0)  # a ready snapshot's app wrote these before, to another host
        complete = out_pump.wait_for(int(seconds(exited[0], "stdout_bytes")) - out_before, 30.0) and err_pump.wait_for(
            int(seconds(exited[0], "stderr_bytes")) - err_before, 30.0
        )
        talk.control.send("ack")
        keep_crash_log(exited[0])
        if not complete:
            warn("some of the app's output was lost on the way out")
        if not self.qemu.wait(30.0):
            self.qemu.stop()
        measured = Measured(t_qemu=t_qemu, t_gone=time.monotonic(), hello=hello, started=started, exited=exited,
                            saved_at=saved_at, ready_at=ready_times[0] if ready_times else None,
                            ready_saved_at=ready_times[1] if len(ready_times) > 1 else None,
                            resumed=resumed is not None,
                            launched_at=None if self.launched is None else self.launched - t_qemu)
        return measured, exited[0]
