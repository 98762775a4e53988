"""Kernel services: PID 1 of the guest.

/init (init.sh) has mounted the pseudo file systems and the JRE, and may have started the JVM
already; it then execs this. It loads the virtio modules, reads the run request from the host (on
the kernel command line, else on the control port), starts the JVM unless /init did, relays its
stdin/stdout/stderr to their own virtio ports (counting bytes, so the host knows when it has all
of the app's output), reaps, reports the exit status and the boot timeline on the control port,
and powers off.

Standard library only: this file is zipped into the image with exactly the modules it imports.
Everything not needed before the JVM starts is imported after (see LATE_IMPORTS). Python's start-up
is a visible part of the boot under software emulation, so the imports are the cheapest that do the
job: builtin _signal rather than signal (which pulls in enum), our own wire format rather than json
(re, enum), no contextlib.
"""

from __future__ import annotations

import _signal
import binascii
import os
import select
import sys
import time

from kernel.guest import disks, libc, network, wire
from kernel.guest.control import Control, now, write_all
from kernel.guest.spawn import spawn

TYPE_CHECKING = False  # typing's own costs an import at boot
if TYPE_CHECKING:
    from gc_hooks.runner import SupervisorRunner
    from kernel.guest.readiness import Watch

# Imported after the JVM has started; listed so the image builder zips them too.
LATE_IMPORTS = ("kernel.guest.volumes", "jvmbridge.attach", "kernel.guest.services", "kernel.guest.renew",
                "kernel.guest.hooks", "kernel.guest.standalone", "kernel.guest.unpack", "kernel.guest.readiness")


MS_RDONLY, MS_NOSUID, MS_NODEV = 1, 2, 4
LINUX_REBOOT_CMD_POWER_OFF = 0x4321FEDC
BOOT_FILE = "/osv/boot.txt"  # modules to load, in the wire format
PMEM_DEVICE = "/dev/pmem0"  # the runtime image

CONTROL: Control | None = None  # set once the control port is open, to report a failure


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    os.makedirs(target, exist_ok=True)
    if libc.mount(source.encode(), target.encode(), fstype.encode() or None, flags, data.encode() or None) != 0:
        err = libc.errno()
        if err != 16:  # EBUSY: already mounted (devtmpfs may be automounted)
            raise OSError(err, f"mount {fstype} on {target}: {os.strerror(err)}")


LOADED: set[str] = set()


def load_module(path: str, params: str = "") -> None:
    if path in LOADED:
        return
    LOADED.add(path)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.syscall(313, fd, params.encode(), 0) != 0:  # finit_module
            err = libc.errno()
            if err != 17:  # EEXIST: already loaded
                raise OSError(err, f"loading {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def find_ports(names: set[str], timeout: float = 10.0) -> dict[str, str]:
    """Map virtio-serial port names to their /dev nodes (no udev here, so read sysfs)."""
    found: dict[str, str] = {}
    deadline = now() + timeout
    while True:
        base = "/sys/class/virtio-ports"
        if os.path.isdir(base):
            for vport in os.listdir(base):
                try:
                    with open(f"{base}/{vport}/name") as f:
                        name = f.read().strip()
                except OSError:
                    continue
                if name in names and os.path.exists(f"/dev/{vport}"):
                    found[name] = f"/dev/{vport}"
        if set(found) >= names or now() > deadline:
            return found
        time.sleep(0.002)


def apply_settings(request: wire.Message) -> None:
    """The policies' guest settings (PATH=VALUE, e.g. a sysfs knob), before the JVM starts. A file
    that cannot be written is said on the console; the JVM starts all the same."""
    for item in request.get("setting", []):
        path, _, value = item.partition("=")
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError as exc:
            print(f"osv-java pid1: cannot set {path} to {value}: {exc.strerror}", file=sys.stderr, flush=True)


def start_jvm(request: wire.Message) -> tuple[int, int, int, int]:
    """Fork and exec the JVM; returns (pid, stdin pipe to write, stdout pipe, stderr pipe).

    All three are pipes, not the ports themselves: the JDK asks FIONREAD of stdin, which a virtio
    port does not answer ("Illegal seek").
    """
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    env = dict(item.split("=", 1) for item in request.get("env", []))
    pid = spawn(request["argv"], env, wire.first(request, "cwd") or "/", lambda: (in_r, out_w, err_w))
    for fd in (in_r, out_w, err_w):
        os.close(fd)
    os.set_blocking(in_w, False)
    return pid, in_w, out_r, err_r


def crash_log(cwd: str, pid: int) -> dict[str, str]:
    """The JVM's fatal error log (hs_err_pidN.log), if it wrote one, for the host to keep.

    HotSpot writes it to the working folder, else /tmp; both vanish with the VM, yet the JVM's own
    message on stderr names the path, which is also the host's working folder.
    """
    for folder in (cwd, "/tmp"):
        path = f"{folder.rstrip('/')}/hs_err_pid{pid}.log"
        try:
            with open(path, "rb") as f:
                data = f.read(4 << 20)
        except OSError:
            continue
        return {"crash_log": path, "crash_log_data": binascii.b2a_base64(data, newline=False).decode()}
    return {}


def exit_status(wait_status: int) -> int:
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


ZYGOTE_MAIN_CALLED = "osvjava.Zygote$MainCalled"  # kernel/guest/java/osvjava/Zygote.java


def main_entered(main_class: str, log_path: str = wire.CLASS_INIT_LOG) -> float | None:
    """When the JVM initialised the main class (right before main runs), from -Xlog:class+init."""
    needle = f"Initializing '{main_class.replace('.', '/')}'".encode()
    try:
        with open(log_path, "rb") as f:
            for line in f:
                if needle in line and line.startswith(b"["):
                    return int(line[1 : line.index(b"ns]")]) / 1e9
    except (OSError, ValueError):
        return None
    return None


class AppRelay:
    """Copies stdin port -> JVM and JVM pipes -> ports until the JVM exits and its output is drained.

    `stdin` is (port fd, pipe fd); `outputs` maps pipe fd -> port fd. Host requests on the control
    port (signals, and the services of kernel.guest.services) are served meanwhile; a service may
    add fds to `watched`, each with what to call when it is readable. SIGCHLD wakes the loop through
    a pipe, so the exit is seen at once.

    With `ready` (a port, a file: kernel/guest/readiness.py) it also watches for the app's ready point;
    once there it tells the host ("app-ready", with the output relayed so far) and holds the app's
    output in its pipes until the host says "resume": the host saves the machine meanwhile, and a
    machine restored from that snapshot hears "resume" from its own host, whose terminal then gets
    the output that follows, not what came before.
    """

    def __init__(self, pid: int, stdin: tuple[int, int], outputs: dict[int, int], control: Control,
                 ready: tuple[int | None, str | None, str | None] | None = None, zygote: bool = False) -> None:
        self.pid = pid
        # A zygote's stdin is its app's: nothing of it reaches the JVM (or ends it) before the launch,
        # or the saved machine would hold the saving run's stdin
        self.stdin_held = zygote
        self.launched_main: str | None = None  # the main class a zygote was handed (for --bootchart)
        self.ready_watch: Watch | None = None  # None once the ready point is reached (or never asked for)
        if ready is not None:
            from kernel.guest.readiness import Watch

            self.ready_watch = Watch(*ready)
        self.holding = False  # output waits in the pipes while the host saves the machine
        self.ready_next = 0.0  # when to look again (a busy app's output must not make us look more often)
        self.control = control
        self.watched: dict = {}  # fd -> callable, see kernel.guest.services
        self.port_in, self.pipe_in = stdin
        self.pending = b""  # read from the stdin port, not yet taken by the JVM
        self.stdin_read = 0
        self.stdin_total: int | None = None  # told by the host on the control port when its stdin ends
        self.outputs = outputs
        self.counts = {port: 0 for port in outputs.values()}
        self.open_pipes = dict(outputs)
        self.status: int | None = None
        self.drain_deadline = 0.0
        self.supervisors: SupervisorRunner | None = None  # the policies', once the host names them

    def run(self) -> tuple[int, dict[int, int]]:
        """The JVM's wait status and the bytes relayed per output port."""
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        _signal.set_wakeup_fd(wake_w)
        _signal.signal(_signal.SIGCHLD, lambda *_: None)
        while self.open_pipes or self.status is None:
            if self.status is None:
                done, wait_status = os.waitpid(self.pid, os.WNOHANG)
                if done == self.pid:
                    self._exited(wait_status)
            if self.status is not None and now() >= self.drain_deadline and not self.holding:
                break
            reads = [*([] if self.holding else self.open_pipes), self.control.fd, wake_r, *self.watched]
            writes = []
            if self.pipe_in >= 0 and not self.stdin_held:
                if self.pending:
                    writes.append(self.pipe_in)
                elif self.port_in >= 0:
                    reads.append(self.port_in)
            readable, writable, _ = select.select(reads, writes, [], self._timeout())
            for fd in readable:
                if fd == wake_r:
                    os.read(wake_r, 512)
                else:
                    self._readable(fd)
            if writable:
                self._feed_stdin()
            self._close_stdin_when_done()
            self._reap()
            self._watch_ready()
        _signal.set_wakeup_fd(-1)
        assert self.status is not None
        return self.status, self.counts

    def _timeout(self) -> float | None:
        if self.holding:
            return None  # only the host's "resume" ends the hold
        if self.status is None:
            if self.ready_watch is not None:
                return max(0.0, self.ready_next - now())
            return None
        return max(0.0, self.drain_deadline - now())

    def _watch_ready(self) -> None:
        if self.ready_watch is None or self.status is not None or now() < self.ready_next:
            return
        from kernel.guest.readiness import READY_POLL

        self.ready_next = now() + READY_POLL
        if not self.ready_watch.ready(now()):
            return
        self.ready_watch = None
        self._drain_outputs()  # what the app wrote before it was ready is the saving run's, not a restore's
        self.holding = True
        stdout_bytes, stderr_bytes = self.counts.values()  # in the order of `outputs`: stdout, stderr
        self.control.send("app-ready", t=now(), stdout_bytes=stdout_bytes, stderr_bytes=stderr_bytes)

    def _drain_outputs(self) -> None:
        """Relay the output waiting in the app's pipes now, without waiting for more (and at most a
        few reads each: an app that never stops writing must not keep us here)."""
        for _ in range(16):
            if not self.open_pipes:
                return
            readable = select.select(list(self.open_pipes), [], [], 0)[0]
            if not readable:
                return
            for fd in readable:
                self._readable(fd)

    def _resume(self, message: wire.Message) -> None:
        """The host has saved the machine (or this is a restore of it): renew the clock and the
        kernel's random state, as for any run from a snapshot, and relay the output again."""
        from kernel.guest import renew

        renew.apply(wire.first(message, "epoch_ns"), wire.first(message, "entropy"))
        if wire.first(message, "restored") == "1":
            self.stdin_read, self.stdin_total = 0, None  # a new host, whose stdin starts afresh
        if "launch" in message:
            self._launch(message)
        self.holding = False
        if self.status is not None:  # the app ended during the hold: its output is still to drain
            self.drain_deadline = max(self.drain_deadline, now() + 0.5)

    def _launch(self, message: wire.Message) -> None:
        """Hand the waiting zygote its app (kernel/vm/zygote.py): the app's files first, when they came
        with the message (a restore), then class path, main class, command and arguments on its FIFO."""
        size = wire.number(message, wire.PAYLOAD)
        if size:
            from kernel.guest import unpack

            unpack.unpack(self.control.read_payload(int(size)))
            for later in self.control.behind_payload():
                self._host_says(later)
        data = b"".join(field.encode("utf-8", "surrogateescape") + b"\0" for field in message["launch"])
        fd = self._zygote_fifo(wire.first(message, "launch_fifo") or "")
        os.set_blocking(fd, True)
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        self.stdin_held = False
        self.launched_main = message["launch"][1]

    def _zygote_fifo(self, path: str) -> int:
        """The FIFO's write end, once the zygote has opened its read end: it creates its ready file just
        before, so a machine saved at the ready point may resume a moment before that open. A
        non-blocking open fails (ENXIO) until then, and never hangs on a zygote that is gone."""
        deadline = now() + 10.0
        while True:
            try:
                return os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as exc:
                if exc.errno != 6 or now() > deadline:  # ENXIO: no reader yet
                    raise
            time.sleep(0.002)

    def _exited(self, wait_status: int) -> None:
        self.status = wait_status
        # Children the app left behind may hold the pipes open: give them a moment, no more.
        self.drain_deadline = now() + 0.5

    def _readable(self, fd: int) -> None:
        if fd == self.control.fd:
            for message in self.control.poll():
                self._host_says(message)
        elif fd in self.watched:
            self.watched[fd]()
        elif fd == self.port_in:
            self.pending = os.read(self.port_in, 65536)
            self.stdin_read += len(self.pending)
        elif fd in self.open_pipes:
            chunk = os.read(fd, 65536)
            if not chunk:
                os.close(fd)
                del self.open_pipes[fd]
                return
            write_all(self.outputs[fd], chunk)
            self.counts[self.outputs[fd]] += len(chunk)

    def _host_says(self, message: wire.Message) -> None:
        op = wire.first(message, "op")
        if op == "signal" and self.status is None:
            try:
                os.killpg(self.pid, int(wire.first(message, "signal") or 15))
            except ProcessLookupError:
                pass
        elif op == "resume" and self.holding:
            self._resume(message)
        elif op == "stdin-eof":
            self.stdin_total = int(wire.first(message, "bytes") or 0)
        elif op == "hooks" and self.supervisors is None and self.status is None:
            from kernel.guest import hooks  # the policies' supervisors: sent once the JVM has started

            self.supervisors = hooks.start(self.control, message, self.pid)
        elif "id" in message:  # a request of `osv-java jvm|shell --vm`
            from kernel.guest import services

            services.handle(self.control, self.pid, message, self.watched)

    def _feed_stdin(self) -> None:
        try:
            self.pending = self.pending[os.write(self.pipe_in, self.pending) :]
        except BrokenPipeError:  # the app closed its stdin
            os.close(self.pipe_in)
            self.pipe_in, self.pending = -1, b""
        except BlockingIOError:
            pass

    def _close_stdin_when_done(self) -> None:
        if (self.pipe_in >= 0 and not self.pending and not self.stdin_held and self.stdin_total is not None
                and self.stdin_read >= self.stdin_total):
            os.close(self.pipe_in)  # all the host's stdin has reached the app: its end of file
            self.pipe_in = -1

    def _reap(self) -> None:
        try:
            while True:  # orphans re-parented to us; the JVM itself may be reaped here too
                reaped, wait_status = os.waitpid(-1, os.WNOHANG)
                if reaped <= 0:
                    break
                if reaped == self.pid and self.status is None:
                    self._exited(wait_status)
        except ChildProcessError:
            pass


def power_off() -> None:
    os.sync()
    libc.reboot(LINUX_REBOOT_CMD_POWER_OFF)
    time.sleep(10)
    os._exit(1)


def run_request_from_cmdline() -> wire.Message | None:
    """The run request, when the host could put it on the kernel command line (it is then in our env)."""
    encoded = os.environ.pop(wire.CMDLINE_REQUEST, None)
    if not encoded:
        return None
    return wire.decode(binascii.a2b_base64(encoded))


def mount_runtime(boot: wire.Message) -> None:
    """Mount the JRE's EROFS image, which the host put in guest memory as persistent memory.

    With DAX the JVM maps libjvm.so and the CDS archive straight from that memory. /init has done
    this already unless it failed: doing it again here makes the failure known to the host.
    """
    if os.environ.pop("OSV_RUNTIME_MOUNTED", None):
        return
    for module in boot.get("disk_modules", []):
        load_module(module)
    device = disks.wait_for(PMEM_DEVICE)
    target = wire.first(boot, "runtime_mount") or "/osv/jre"
    try:
        mount(device, target, "erofs", MS_RDONLY, "dax=always")
    except OSError:  # a kernel without DAX for EROFS: the page cache then
        mount(device, target, "erofs", MS_RDONLY)


NETWORK_UP = False


def network_up(boot: wire.Message) -> None:
    """Networking through QEMU's user mode: once per boot (a restored snapshot has it already)."""
    global NETWORK_UP
    if not NETWORK_UP:
        network.configure(boot.get("net_modules", []), load_module)
        NETWORK_UP = True


def await_run(control: Control, boot: wire.Message) -> wire.Message:
    """The run request from the control channel; first, when the host asks, ready the machine for a
    boot snapshot (kernel/vm/snapshot.py), which the host takes while this waits for the request."""
    request = control.receive(timeout=30.0)
    if wire.first(request, "op") == "snapshot":
        network_up(boot)  # what every run needs, done before the snapshot rather than at every run
        control.send("ready", t=now())
        request = control.receive(timeout=30.0)
    if wire.first(request, "op") != "run":
        control.send(op="error", message=f"no run request from the host (got {wire.first(request, 'op')})")
        power_off()
    app_bytes = wire.number(request, wire.PAYLOAD)
    if app_bytes:  # a machine booted without the app (a runtime's boot snapshot): its files follow
        from kernel.guest import unpack

        unpack.unpack(control.read_payload(int(app_bytes)))
    from kernel.guest import renew

    renew.apply(wire.first(request, "epoch_ns"), wire.first(request, "entropy"))
    return request


def adopt_early_jvm() -> tuple[tuple[int, int, int, int], float] | None:
    """The JVM /init started before exec'ing us, if it did: (pid, stdin, stdout, stderr), exec time.

    Its stdio are FIFOs that /init left open read-write on fds 3 to 5. Our ends are opened by name
    and those closed: a FIFO still held read-write by us would never show the JVM's end of file.
    """
    pid = os.environ.pop("OSV_JVM_PID", None)
    if not pid:
        return None
    stdin = os.open("/run/osv-stdin", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    stdout = os.open("/run/osv-stdout", os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    stderr = os.open("/run/osv-stderr", os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    for fd in (3, 4, 5):
        os.close(fd)
    os.set_blocking(stdout, True)
    os.set_blocking(stderr, True)
    return (int(pid), stdin, stdout, stderr), float(os.environ.pop("OSV_T_EXEC"))


def prepare_and_start(request: wire.Message, boot: wire.Message) -> tuple[tuple[int, int, int, int], float]:
    """Everything the JVM needs before it runs (runtime disk, -p networking, volumes), then start it."""
    volumes = []  # "TAG:ro|rw:GUEST_PATH"
    for spec in request.get("volume", []):
        tag, mode, guest = spec.split(":", 2)
        volumes.append({"tag": tag, "guest": guest, "readonly": mode == "ro"})
    mount_runtime(boot)
    network.loopback_up()
    if wire.first(request, "network") == "1" or volumes:
        for module in boot.get("modules", []):  # the virtio transport, before any virtio device
            load_module(module)
    if wire.first(request, "network") == "1":
        network_up(boot)
    if volumes:
        from kernel.guest import volumes as volume_io

        for module in boot.get("fs_modules", []):  # fuse and virtiofs
            load_module(module)
        volume_io.mount_all(volumes, mount)
    apply_settings(request)
    fifo = wire.first(request, "zygote_fifo")
    if fifo:  # the JVM is osvjava.Zygote: its app comes on this FIFO once the machine is saved
        if os.path.exists(fifo):
            os.unlink(fifo)
        os.mkfifo(fifo, 0o600)
    t_exec = now()
    return start_jvm(request), t_exec


def load_hook_modules(boot: wire.Message) -> None:
    """The kernel modules the run's policies asked for (the balloon, ...), once the JVM runs."""
    modules = boot.get("hook_modules", [])
    if modules:
        for module in boot.get("modules", []):  # the virtio transport, before any virtio device
            load_module(module)
    for module in modules:
        try:
            load_module(module)
        except OSError as exc:
            print(f"osv-java pid1: cannot load {module}: {exc}", file=sys.stderr, flush=True)


def main() -> None:
    t_pid1 = float(os.environ.pop("OSV_T_INIT", "") or now())  # when /init started (to 10 ms)
    # /tmp stays part of the root file system (already in memory): app files may live there.
    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    with open(BOOT_FILE, "rb") as f:
        boot = wire.decode(f.read())
    # With the request on the command line the JVM starts first, and the ports and the control
    # channel come up while it does (its output waits in pipes): that is most of PID 1's work off
    # the boot's critical path.
    request = run_request_from_cmdline()
    early, early_error = start_early(request, boot)
    for module in boot.get("modules", []):
        load_module(module)
    t_modules = now()
    global CONTROL
    ports = find_ports({wire.CONTROL_PORT, wire.STDIN_PORT, wire.STDOUT_PORT, wire.STDERR_PORT})
    control = CONTROL = Control(ports[wire.CONTROL_PORT])
    control.send(op="hello", t=now(), t_pid1=t_pid1, t_modules=t_modules)
    if early_error is not None:
        raise early_error
    if request is None:
        request = await_run(control, boot)
    stdin_port = os.open(ports[wire.STDIN_PORT], os.O_RDONLY | os.O_CLOEXEC)
    stdout_fd = os.open(ports[wire.STDOUT_PORT], os.O_WRONLY | os.O_CLOEXEC)
    stderr_fd = os.open(ports[wire.STDERR_PORT], os.O_WRONLY | os.O_CLOEXEC)

    (pid, in_pipe, out_pipe, err_pipe), t_exec = early or prepare_and_start(request, boot)
    control.send(op="started", t=now(), t_exec=t_exec, pid=pid)
    if wire.first(request, "network") != "1":
        # Outbound networking for every app, set up while the JVM starts (it takes far longer than
        # this), so it costs the boot nothing; -p asks for it before the JVM instead.
        try:
            network_up(boot)
        except OSError as exc:
            print(f"osv-java pid1: networking not available: {exc}", file=sys.stderr, flush=True)
    load_hook_modules(boot)
    relay = AppRelay(pid, (stdin_port, in_pipe), {out_pipe: stdout_fd, err_pipe: stderr_fd}, control,
                     ready_condition(request), zygote=bool(wire.first(request, "zygote_fifo")))
    status, counts = relay.run()
    t_exit = now()
    if relay.supervisors is not None:
        relay.supervisors.stop(exited=True)  # their last words go out before the exit status
    report_exit(control, request, pid, status, t_exit, counts[stdout_fd], counts[stderr_fd], relay.launched_main)
    power_off()


def ready_condition(request: wire.Message) -> tuple[int | None, str | None, str | None] | None:
    """The app's ready point, when the host wants a snapshot there (kernel/vm/ready.py)."""
    port, path = wire.first(request, "ready_port"), wire.first(request, "ready_file")
    if not port and not path:
        return None
    return (int(port) if port else None), path or None, wire.first(request, "ready_http") or None


def start_early(request: wire.Message | None, boot: wire.Message
                ) -> tuple[tuple[tuple[int, int, int, int], float] | None, OSError | None]:
    """The JVM /init started, adopted; or started now when the request came on the command line.
    A failure to start is returned, to be reported once the control channel is up."""
    adopted = adopt_early_jvm()
    if adopted is not None:
        jvm, t_exec = adopted
        return (jvm, t_exec), None
    if request is not None:
        try:
            return prepare_and_start(request, boot), None
        except OSError as exc:
            return None, exc
    return None, None


def report_exit(control: Control, request: wire.Message, pid: int, status: int, t_exit: float,
                stdout_bytes: int, stderr_bytes: int, launched_main: str | None = None) -> None:
    """The exit status, output byte counts, timeline and any crash log; then wait until the host has
    all of stdout and stderr. `launched_main`: the app's main class when a zygote was handed one (the
    request is the saving run's)."""
    main_class = launched_main or wire.first(request, "main_class")
    t_main = None
    if wire.first(request, "bootchart") == "1" and main_class:
        # a started JVM marks its call of main (the main class of a preloaded runtime was initialised before)
        t_main = (launched_main and main_entered(ZYGOTE_MAIN_CALLED)) or main_entered(main_class)
    control.send(
        op="exit",
        t=now(),
        status=exit_status(status),
        t_exit=t_exit,
        t_main=t_main,
        stdout_bytes=stdout_bytes,
        stderr_bytes=stderr_bytes,
        **crash_log(wire.first(request, "cwd") or "/", pid),
    )
    control.receive_op("ack", timeout=10.0)


def run() -> None:
    """Entry point of /init: PID 1 must never return or raise, that would panic the kernel."""
    try:
        main()
    except BaseException as exc:  # noqa: BLE001
        print(f"osv-java pid1: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        if CONTROL is not None:
            try:
                CONTROL.send(op="error", message=f"{type(exc).__name__}: {exc}")
            except Exception:  # noqa: BLE001 - the port may be what failed
                pass
        power_off()

