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
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from jvmbridge.errors import BootError, OsvJavaError
from kernel import cache, launcher, qemu, snapshot, telemetry, volumes
from kernel.guest import wire
from kernel.image import INIT_ENV, Image
from kernel.monitor import Monitor, MonitorError
from kernel.progress import say

PORTS = ("osv.ctl", "osv.stdin", "osv.stdout", "osv.stderr")
PANIC_MARKER = "Kernel panic"


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
    boot_timeout: float = 120.0
    verbose: bool = False
    bootchart: bool = False
    cwd: str = "/"
    snapshot: bool = True  # start from the machine's boot snapshot, saving one first if need be


@dataclass
class RunResult:
    status: int
    timeline: dict[str, float]  # event -> seconds since QEMU start
    console_log: str


class _Pump(threading.Thread):
    """Copy one socket to one output file, counting bytes."""

    def __init__(self, sock: socket.socket, out: BinaryIO) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.out = out
        self.count = 0
        self.closed = False
        self.changed = threading.Condition()

    def run(self) -> None:
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            if chunk:
                with contextlib.suppress(BrokenPipeError, ValueError):  # our own stdout went away
                    self.out.write(chunk)
                    self.out.flush()
            with self.changed:
                self.count += len(chunk)
                self.closed = not chunk
                self.changed.notify_all()
            if not chunk:
                return

    def wait_for(self, total: int, timeout: float) -> bool:
        """True once `total` bytes have arrived; False on timeout or when the socket closed short."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while self.count < total and not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.changed.wait(left)
            return self.count >= total


def _stdin_pump(sock: socket.socket, control: _Control) -> None:
    """Copy our stdin to the guest, then tell it how many bytes there were on the control port.

    The socket stays open: QEMU drops unread data when its peer hangs up, so end of file travels as
    a count instead, and the guest closes the app's stdin once it has received that many bytes.
    """
    total = 0
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):
        fd = -1
    try:
        while fd >= 0:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            sock.sendall(chunk)
            total += len(chunk)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        control.send("stdin-eof", bytes=total)


class _Control:
    """The host end of the control port (messages in kernel.guest.wire's format)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.lock = threading.Lock()

    def send(self, op: str, **fields: object) -> None:
        with self.lock:
            self.sock.sendall(wire.encode(op, **fields))

    def receive(self, timeout: float) -> tuple[wire.Message, float] | None:
        """One message and the host time it arrived, or None on timeout; raises EOFError when closed."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(min(left, 0.2))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                raise EOFError
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return wire.decode(line), time.monotonic()


def _seconds(message: wire.Message, key: str) -> float:
    """A number the guest must have sent; a clear error when it did not."""
    value = wire.number(message, key)
    if value is None:
        raise BootError(f"the guest's {wire.first(message, 'op')} message lacks {key}",
                        hint="the image was built by another osv-java version: rebuild it")
    return value


def _keep_crash_log(exited: wire.Message) -> None:
    """Write the guest JVM's hs_err file where the JVM said it is: the guest's working folder is the
    host's, so the path in its message on stderr is right on the host too (an existing file stays)."""
    path, data = wire.first(exited, "crash_log"), wire.first(exited, "crash_log_data")
    if not path or data is None:
        return
    target = Path(path)
    if not target.parent.is_dir() or target.exists():
        target = Path(tempfile.gettempdir()) / target.name
    try:
        cache.write_file_atomic(target, base64.b64decode(data))
    except OSError as exc:
        print(f"osv-java: warning: cannot keep the JVM's error report at {target}: {exc}", file=sys.stderr)
        return
    if str(target) != path:
        print(f"osv-java: the JVM's error report is at {target}", file=sys.stderr)


class VirtualMachine:
    """One boot of an image. Use as a context manager: leaving it always stops QEMU."""

    def __init__(self, image: Image, options: RunOptions) -> None:
        self.image = image
        self.options = options
        self.workdir = Path(tempfile.mkdtemp(prefix="osv-java-run-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.listeners: dict[str, socket.socket] = {}
        self.qemu_log = self.workdir / "qemu.log"
        self.console = self.workdir / "console.log"
        self.interrupts = 0
        self.telemetry_socket = self.workdir / "telemetry.sock"
        self.telemetry: telemetry.Telemetry | None = None
        self.qmp_socket = self.workdir / "qmp.sock"  # for port forwards added at run time

    def __enter__(self) -> VirtualMachine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self.telemetry is not None:
            self.telemetry.close()
        for sock in self.listeners.values():
            sock.close()
        keep = os.environ.get("OSV_JAVA_CONSOLE_LOG")
        if keep and self.console.exists():
            # Tests and CI ask for the guest console of every boot, to show it when something fails.
            shutil.copyfile(self.console, keep)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def console_tail(self, lines: int = 30) -> str:
        try:
            text = self.console.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 3.0) -> None:
        """Ask QEMU to quit (SIGTERM), then kill it if it does not."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

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
            "volume": [f"{i}:{'ro' if v.readonly else 'rw'}:{v.guest}" for i, v in enumerate(options.volumes)],
        }

    def _cmdline(self, accel: str, argv: list[str], request: dict[str, object] | None) -> tuple[list[str], bool]:
        """The kernel command line; and whether the run request went on it.

        On the command line, PID 1 starts the JVM before it sets up the ports (see pid1.main);
        a request too long for it, or None (a boot snapshot's machine), goes on the control channel.
        """
        options = self.options
        cmdline = qemu.base_cmdline(accel, options.verbose)
        cmdline += [f"{k}={v}" for k, v in INIT_ENV.items()]
        param = ""
        if request is not None:
            encoded = base64.b64encode(wire.encode("run", **request)).decode()
            param = f"{wire.CMDLINE_REQUEST}={encoded}"
        on_cmdline = bool(param) and len(" ".join([*cmdline, param])) <= qemu.MAX_CMDLINE
        if on_cmdline:
            cmdline.append(param)
            if not options.publish and not options.volumes:
                # /init can start the JVM itself, before PID 1's Python is up (kernel.launcher); with
                # -p or -v, PID 1 sets up the network or the volumes first.
                env = [f"{k}={v}" for k, v in options.env.items()]
                command = launcher.shell_command(argv, env, options.cwd)
                early = f"{launcher.CMDLINE_PARAM}={base64.b64encode(command.encode()).decode()}"
                if len(" ".join([*cmdline, early])) <= qemu.MAX_CMDLINE:
                    cmdline.append(early)
        return cmdline, on_cmdline

    def _config(self, accel: str, argv: list[str], request: dict[str, object] | None
                ) -> tuple[qemu.MachineConfig, bool]:
        """The machine, its ports listening; and whether the run request went on the kernel command line."""
        options = self.options
        cmdline, on_cmdline = self._cmdline(accel, argv, request)
        chardevs = []
        for name in PORTS:
            path = self.workdir / f"{name}.sock"
            path.unlink(missing_ok=True)  # from a boot that failed to restore
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(str(path))
            listener.listen(1)
            self.listeners[name] = listener
            chardevs.append((name, str(path)))
        outputs = []
        if any(not v.readonly for v in options.volumes):
            outputs.append(("osv.volout", self.workdir / "volout.tar"))
        disks = []
        if options.volumes:
            disk = self.workdir / "volumes.tar"
            volumes.pack(options.volumes, disk)
            disks.append(disk)
        config = qemu.MachineConfig(
            kernel=self.image.kernel,
            initramfs=self.image.initramfs,
            memory_mb=options.memory_mb,
            cpus=options.cpus,
            accel=accel,
            cmdline=cmdline,
            serial_log=self.console,
            chardevs=chardevs,
            output_files=outputs,
            forwards=options.publish,
            disks=disks,
            qmp_socket=self.qmp_socket,
            memory_image=self.image.runtime_disk,
        )
        return config, on_cmdline

    def _accept_all(self, timeout: float) -> dict[str, socket.socket]:
        conns = {}
        deadline = time.monotonic() + timeout
        for name, listener in self.listeners.items():
            while True:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise self._launch_failure()
                listener.settimeout(0.1)
                try:
                    conn, _ = listener.accept()
                    conn.settimeout(None)
                    conns[name] = conn
                    break
                except TimeoutError:
                    if time.monotonic() > deadline:
                        raise BootError("QEMU did not connect its ports", console_tail=self.console_tail()) from None
        return conns

    def _launch_failure(self) -> OsvJavaError:
        log = self.qemu_log.read_text(errors="replace").strip() if self.qemu_log.exists() else ""
        last = log.splitlines()[-1] if log else "no output"
        hint = "check the QEMU command line with --verbose"
        if "hostfwd" in log or "Could not set up host forwarding" in log:
            hint = "the published host port is in use or not allowed: choose another with -p HOST:GUEST"
        return BootError(f"QEMU failed to start: {last}", hint=hint, console_tail=self.console_tail())

    def _hang(self, what: str) -> BootError:
        tail = self.console_tail() or "(empty: the kernel printed nothing yet; --verbose shows all its messages)"
        return BootError(
            what,
            hint="see the console log below; rerun with --verbose for the kernel's messages",
            console_tail=tail,
        )

    def run(self, argv: list[str], main_class: str) -> RunResult:
        """Boot (or restore the boot snapshot of) the machine and run the JVM `argv` in it."""
        options = self.options
        accel = qemu.choose_accel(options.accel, self.image.kernel, options.verbose)
        if accel == "tcg":
            argv = [argv[0], *qemu.tcg_jvm_options(), *argv[1:]]
        request = self._run_request(argv, main_class)
        if not options.snapshot or options.volumes:  # a volume's disk is part of the machine
            return self._boot_cold(accel, argv, request)
        cmdline, _ = self._cmdline(accel, argv, None)
        machine = snapshot.key(str(self.image.manifest["key"]), cmdline, options.memory_mb, options.cpus, accel, PORTS)
        path = snapshot.path_for(machine)
        if path.exists():
            config, _ = self._config(accel, argv, None)
            try:
                return self._boot(dataclasses.replace(config, incoming=path), request, restore=path)
            except snapshot.SnapshotError as exc:  # the app has not started: boot afresh instead
                path.unlink(missing_ok=True)
                print(f"osv-java: warning: {exc}; booting afresh", file=sys.stderr)
                self._reset()
            except BootError:  # the app may have started: no second try, but the next run boots afresh
                path.unlink(missing_ok=True)
                raise
        elif not snapshot.seen_before(path):  # a first run: boot cold, the fastest way without a snapshot
            return self._boot_cold(accel, argv, request)
        config, _ = self._config(accel, argv, None)
        return self._boot(config, request, save=path)

    def _boot_cold(self, accel: str, argv: list[str], request: dict[str, object]) -> RunResult:
        """Boot without a snapshot, the run request on the kernel command line when it fits."""
        config, request_sent = self._config(accel, argv, request)
        return self._boot(config, None if request_sent else request)

    def _reset(self) -> None:
        """Forget a QEMU that failed to restore a snapshot, so that the machine can boot afresh."""
        self.stop(grace=1.0)
        for sock in self.listeners.values():
            sock.close()
        self.listeners.clear()
        if self.telemetry is not None:
            self.telemetry.close()
            self.telemetry = None
        for stale in (self.qmp_socket, self.telemetry_socket):
            stale.unlink(missing_ok=True)

    def _boot(self, config: qemu.MachineConfig, request: dict[str, object] | None,
              restore: Path | None = None, save: Path | None = None) -> RunResult:
        """Start QEMU with `config` and see the run through; `request` is sent unless it was on the
        command line. With `restore`, QEMU reads that boot snapshot; with `save`, one is written
        there once PID 1 is ready, before the request is sent."""
        options = self.options
        command = config.argv()
        if options.verbose:
            print("osv-java: " + " ".join(command), file=sys.stderr)
        t_qemu = time.monotonic()
        with open(self.qemu_log, "wb") as log:
            # Its own session (Ctrl-C is ours to forward), but it dies with us even if we are SIGKILLed.
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True, preexec_fn=qemu.die_with_parent)
        try:
            conns = self._accept_all(timeout=30.0)
        except BootError as exc:
            if restore is not None:  # QEMU would not take the snapshot: a cold boot may still work
                raise snapshot.SnapshotError(str(exc)) from exc
            raise
        control = _Control(conns["osv.ctl"])
        out_pump = _Pump(conns["osv.stdout"], sys.stdout.buffer)
        err_pump = _Pump(conns["osv.stderr"], sys.stderr.buffer)
        out_pump.start()
        err_pump.start()
        self.stdin_sock = conns["osv.stdin"]

        restored_at = None
        if restore is not None:
            snapshot.wait_restored(self.qmp_socket, self.proc)
            restored_at = time.monotonic() - t_qemu
            snapshot.touch(restore)
        self._serve_telemetry(control)
        previous = signal.signal(signal.SIGINT, lambda *_: self._interrupt(control))
        try:
            return self._converse(control, out_pump, err_pump, request, t_qemu, restored_at, save)
        finally:
            signal.signal(signal.SIGINT, previous)

    def _save_snapshot(self, control: _Control, target: Path) -> None:
        """Have PID 1 make ready what every run needs, then save the machine as it is (kernel.snapshot).

        A failure costs only the snapshot: this run goes on, and the next one tries again.
        """
        control.send("snapshot")
        self._wait_message(control, "ready", self.options.boot_timeout, "the guest to get ready for a snapshot")
        assert self.proc is not None
        try:
            with Monitor(self.qmp_socket) as monitor:
                size = snapshot.save(monitor, self.proc, target)
        except (snapshot.SnapshotError, MonitorError) as exc:
            print(f"osv-java: warning: {exc}", file=sys.stderr)
            return
        say(f"saved this machine's boot snapshot ({size >> 20} MB): its next runs start from there")

    def _serve_telemetry(self, control: _Control) -> None:
        """Answer `osv-java jvm ... --vm NAME` and `osv-java shell --vm NAME` (see kernel.telemetry)."""
        self.telemetry = telemetry.Telemetry(self.telemetry_socket, control, self.qmp_socket)
        self.listeners["telemetry"] = self.telemetry.listen()

    def _interrupt(self, control: _Control) -> None:
        """Ctrl-C: the first goes to the app as SIGINT (it can clean up); the second stops the VM."""
        self.interrupts += 1
        if self.interrupts == 1:
            try:
                control.send("signal", signal=int(signal.SIGINT))
                return
            except OSError:
                pass
        self.stop(grace=1.0)

    def _wait_message(
        self, control: _Control, op: str, timeout: float | None, what: str
    ) -> tuple[wire.Message, float]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.interrupts > 1 or (self.interrupts and self.proc.poll() is not None):
                raise KeyboardInterrupt
            try:
                got = control.receive(timeout=0.25)
            except EOFError:
                got = None
                if self.proc.poll() is None:
                    time.sleep(0.05)
            if got is not None:
                message, at = got
                if wire.first(message, "op") == "error":
                    raise BootError(f"kernel services failed: {wire.first(message, 'message')}",
                                    console_tail=self.console_tail())
                if "id" in message:  # the guest answering a telemetry request
                    if self.telemetry is not None:
                        self.telemetry.deliver(message)
                    continue
                if wire.first(message, "op") == op:
                    return message, at
                continue
            if self.proc.poll() is not None:
                raise self._hang(f"the VM stopped while waiting for {what} (QEMU exit status {self.proc.returncode})")
            tail = self.console_tail(5)
            if PANIC_MARKER in tail:
                raise self._hang(f"the kernel panicked while waiting for {what}")
            if deadline is not None and time.monotonic() > deadline:
                raise self._hang(f"timed out after {timeout:g}s waiting for {what}")

    def _converse(
        self, control: _Control, out_pump: _Pump, err_pump: _Pump, request: dict[str, object] | None,
        t_qemu: float, restored_at: float | None, save: Path | None,
    ) -> RunResult:
        """Talk to PID 1 from its hello (none when restored: it said it before the snapshot) to the VM's end."""
        options = self.options
        timeline = {"qemu_start": 0.0}
        boot_offsets: list[float] = []  # host time minus guest time, for the kernel and PID 1's start
        hello = None
        if restored_at is None:
            hello, at = self._wait_message(control, "hello", options.boot_timeout,
                                           "the guest's kernel services to start")
            boot_offsets.append(at - _seconds(hello, "t"))
        else:
            timeline["snapshot_restored"] = restored_at
        if save is not None:
            self._save_snapshot(control, save)
            timeline["snapshot_saved"] = time.monotonic() - t_qemu
        if request is not None:
            # The clock and fresh entropy: a restored machine would replay the snapshot's (kernel.snapshot).
            control.send("run", **request, epoch_ns=time.time_ns(), entropy=os.urandom(32).hex())
        # The guest clock stops while a snapshot is saved: offsets for the run come from its own messages.
        offsets: list[float] = []
        started, at = self._wait_message(control, "started", options.boot_timeout, "the JVM to start")
        # Only now: QEMU drops what arrives on a port the guest has not opened yet.
        threading.Thread(target=_stdin_pump, args=(self.stdin_sock, control), daemon=True).start()
        offsets.append(at - _seconds(started, "t"))
        run_timeout = options.timeout
        exited, at = self._wait_message(control, "exit", run_timeout, "the app to finish")
        offsets.append(at - _seconds(exited, "t"))
        complete = out_pump.wait_for(int(_seconds(exited, "stdout_bytes")), 30.0) and err_pump.wait_for(
            int(_seconds(exited, "stderr_bytes")), 30.0
        )
        control.send("ack")
        _keep_crash_log(exited)
        if not complete:
            print("osv-java: warning: some of the app's output was lost on the way out", file=sys.stderr)
        writable = [(i, v) for i, v in enumerate(options.volumes) if not v.readonly]
        if writable:
            saved, _ = self._wait_message(control, "volumes", 300.0, "the volumes to be written back")
            volumes.apply(writable, self.workdir / "volout.tar", int(_seconds(saved, "bytes")))
            control.send("ack")
        assert self.proc is not None
        try:
            self.proc.wait(timeout=30.0)
        except subprocess.TimeoutExpired:
            self.stop()
        t_gone = time.monotonic()
        if save is None:
            boot_offsets += offsets  # one clock throughout: take the best-measured offset
        if hello is not None:
            boot_offset = min(boot_offsets) - t_qemu  # guest clock zero (kernel start) after QEMU start
            timeline["kernel_start"] = boot_offset
            timeline["pid1_start"] = boot_offset + _seconds(hello, "t_pid1")
        offset = min(boot_offsets if save is None else offsets) - t_qemu
        for key, name in (("t_exec", "jvm_exec"), ("t_main", "main_entered"), ("t_exit", "app_exit")):
            for message in (started, exited):
                value = wire.number(message, key)
                if value is not None:
                    timeline[name] = offset + value
        timeline["vm_gone"] = t_gone - t_qemu
        return RunResult(status=int(_seconds(exited, "status")), timeline=timeline,
                         console_log=self.console_tail(200))
