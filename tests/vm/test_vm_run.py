"""`osv-java run` booting real VMs (QEMU, the Debian kernel, a jlinked JDK 17) under TCG or KVM."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import memcg
import pytest
from osvtest import JDK17, OSV, Osv, explain, kill_if_running, make_jar_with_class_path, terminate_when_ready, text

pytestmark = [pytest.mark.vm]

HELLO = "examples/hello/hello.jar"
EXITCODE = "examples/exitcode/exitcode.jar"
ECHO = "examples/echo/echo.jar"
HTTPSERVER = "examples/httpserver/httpserver.jar"
H2_JAR = "/usr/share/java/h2.jar"  # libh2-java (the Makefile installs it)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_hello_prints_its_greeting_from_inside_the_vm(osv: Osv, examples_built: Path) -> None:
    built = osv("build", "--jdk", JDK17, HELLO, "-o", str(osv.console_log.parent / "image"))
    assert built.returncode == 0, explain(built)
    proc = osv("run", "--jdk", JDK17, "-c", "1", "-m", "512M", HELLO)
    assert proc.returncode == 0, explain(proc)
    greeting = r"Hello from osv-java! Java 17\.\S+, 1 CPUs, max heap \d+ MB\n"
    assert re.fullmatch(greeting, text(proc.stdout)), explain(proc)
    heap_mb = int(re.search(r"max heap (\d+) MB", text(proc.stdout)).group(1))  # type: ignore[union-attr]
    # the dynamic heap lets the maximum grow into 3/4 of the machine; it keeps the committed heap small
    assert 64 <= heap_mb <= 384, "the JVM sized its heap from the VM's 512 MB, not the host's memory"
    assert proc.stderr == b"", "nothing of osv-java's may be mixed into the app's output"
    # The guest really booted our kernel: its console shows the kernel and PID 1's power-off.
    console = osv.console_log.read_text(errors="replace")
    assert "reboot: Power down" in console


def test_a_cold_boot_starts_the_kernel_on_one_vcpu_and_the_jvm_sees_them_all(osv: Osv, examples_built: Path) -> None:
    # Under TCG the kernel patches its code on one vCPU (kernel.vm.qemu.ONE_VCPU_BOOT); /init brings
    # the rest online before the JVM starts, which must count every one of them.
    proc = osv("run", "--jdk", JDK17, "--cold-boot", "--verbose", "-c", "3", HELLO)
    assert proc.returncode == 0, explain(proc)
    assert re.match(r"Hello from osv-java! Java 17\.\S+, 3 CPUs, ", text(proc.stdout)), explain(proc)
    err = text(proc.stderr)
    assert "maxcpus=1" in err and "Brought up 1 node, 1 CPU" in err, explain(proc)
    assert len(re.findall(r"smpboot: Booting Node 0 Processor \d+ APIC", err)) == 2, explain(proc)


def test_the_smallest_memory_boots(osv: Osv, examples_built: Path) -> None:
    """-m 128M, the least accepted: the runtime image and the initrd must still both fit."""
    proc = osv("run", "--jdk", JDK17, "-m", "128M", HELLO)
    assert proc.returncode == 0, explain(proc)
    assert text(proc.stdout).startswith("Hello from osv-java!")


@pytest.mark.parametrize("status", [0, 3, 42])
def test_exit_status_is_the_apps(osv: Osv, examples_built: Path, status: int) -> None:
    proc = osv("run", "--jdk", JDK17, EXITCODE, str(status))
    assert proc.returncode == status, explain(proc)
    assert text(proc.stdout) == f"exiting with {status}\n"


def test_uncaught_exception_exits_1_with_the_stack_trace_on_stderr(osv: Osv, examples_built: Path) -> None:
    proc = osv("run", "--jdk", JDK17, EXITCODE, "throw")
    assert proc.returncode == 1, explain(proc)
    assert proc.stdout == b""
    assert 'Exception in thread "main" java.lang.IllegalStateException: thrown on purpose' in text(proc.stderr)


def test_arguments_with_spaces_and_quotes_arrive_intact(osv: Osv, examples_built: Path) -> None:
    args = ["a b", "it's", 'say "hi"', "", "tab\there", "ünïcødé", "$HOME", "*"]
    proc = osv("run", "--jdk", JDK17, EXITCODE, "args", *args)
    assert proc.returncode == 0, explain(proc)
    assert text(proc.stdout) == "".join(f"[{a}]\n" for a in args)


def test_a_request_too_long_for_the_kernel_command_line_goes_on_the_control_channel(
    osv: Osv, examples_built: Path
) -> None:
    """Short requests ride on the kernel command line (the JVM starts before the ports); a long one
    cannot (2 KB), and must arrive just the same the slower way."""
    long_arg = "x" * 3000 + " end"
    proc = osv("run", "--jdk", JDK17, "--verbose", EXITCODE, "args", long_arg, "short")
    assert proc.returncode == 0, explain(proc)
    assert text(proc.stdout) == f"[{long_arg}]\n[short]\n"
    assert "osvrun=" not in text(proc.stderr)  # --verbose shows the kernel command line: no request on it


def test_stdin_reaches_the_app_byte_for_byte(osv: Osv, examples_built: Path) -> None:
    data = os.urandom(1 << 20) + b"last line without newline"
    proc = osv("run", "--jdk", JDK17, ECHO, input=data)
    assert proc.returncode == 0, explain(proc)
    assert proc.stdout == data
    assert text(proc.stderr) == f"echoed {len(data)} bytes\n"


def test_volume_is_the_host_folder_itself(osv: Osv, test_classes: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    (shared / "sub").mkdir(parents=True)
    (shared / "in.txt").write_text("from the host\n")
    (shared / "gone.txt").write_text("deleted in the guest\n")
    (shared / "sub" / "kept.txt").write_text("untouched\n")
    other = tmp_path / "other"
    other.mkdir()
    proc = osv(
        "run", "--jdk", JDK17, "-v", f"{shared}:/data", "-v", f"{other}:/srv/other", "-cp", str(test_classes),
        "FileTool", "read", "/data/in.txt", "write", "/data/out.txt", "written in the guest",
        "delete", "/data/gone.txt", "write", "/data/sub/new.txt", "nested", "write", "/srv/other/x", "second",
    )
    assert proc.returncode == 0, explain(proc)
    assert text(proc.stdout) == "from the host\n"
    assert (shared / "out.txt").read_text() == "written in the guest"
    assert (shared / "sub" / "new.txt").read_text() == "nested"
    assert (shared / "sub" / "kept.txt").read_text() == "untouched\n"
    assert not (shared / "gone.txt").exists()
    assert (shared / "in.txt").read_text() == "from the host\n"
    assert (other / "x").read_text() == "second"
    # The files the app made belong to the user who ran osv-java.
    for made in (shared / "out.txt", shared / "sub" / "new.txt", other / "x"):
        assert (made.stat().st_uid, made.stat().st_gid) == (os.getuid(), os.getgid()), made


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    """An empty host folder for a test to share with the guest as a volume."""
    folder = tmp_path / "shared"
    folder.mkdir()
    return folder


def _processes_with(*needles: bytes) -> list[int]:
    """The processes whose command line holds every one of `needles`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if all(needle in cmdline for needle in needles):
                found.append(int(entry.name))
    return found


def _left_after_kill(run: subprocess.Popen[bytes], find: Callable[[], list[int]]) -> list[int]:
    """SIGKILL osv-java (no chance to clean up), then what `find` still finds 10 s later: the helpers
    it started must die with it, however it ends."""
    run.kill()
    run.wait(timeout=30)
    deadline = time.monotonic() + 10
    while find() and time.monotonic() < deadline:
        time.sleep(0.2)
    return find()


def test_fsynced_writes_survive_a_killed_osv_java_and_virtiofsd_dies_with_it(
    osv: Osv, test_classes: Path, shared: Path
) -> None:
    size = 3 << 20
    run = _start_server(osv, "run", "--jdk", JDK17, "-v", f"{shared}:/data", "-cp", str(test_classes),
                        "VolumeTool", "sync", "/data/bytes.bin", str(size))
    needle = f"source={shared}".encode()
    try:
        assert run.stdout is not None
        line = run.stdout.readline()
        assert line == b"synced\n", line + (run.stderr.read() if run.stderr and run.poll() is not None else b"")
        assert _processes_with(needle), "virtiofsd should be serving the folder"
        # SIGKILL: osv-java cannot clean up, nor write anything back
        assert not _left_after_kill(run, lambda: _processes_with(needle)), "virtiofsd outlived the osv-java"
    finally:
        kill_if_running(run)
        for pid in _processes_with(needle):
            os.kill(pid, signal.SIGKILL)
    assert (shared / "bytes.bin").read_bytes() == bytes(i % 251 for i in range(size))


def test_a_database_on_a_volume_keeps_every_committed_transaction_when_osv_java_is_killed(
    osv: Osv, test_classes: Path, tmp_path: Path
) -> None:
    """H2 on a volume, one row per transaction, SIGKILL of osv-java mid-run: the host's copy of the
    database has every row whose commit the app had reported, and no gap. WRITE_DELAY=0 is H2's own
    "write at commit" (its default delays that by up to 500 ms, and loses those commits to a kill -9
    of a host JVM too)."""
    shared = tmp_path / "db"
    shared.mkdir()
    classpath = f"{test_classes}:{H2_JAR}"
    run = _start_server(osv, "run", "--jdk", JDK17, "-v", f"{shared}:/data", "-cp", classpath,
                        "Ledger", "write", "jdbc:h2:/data/ledger;WRITE_DELAY=0")
    needle = f"source={shared}".encode()
    last = 0
    try:
        assert run.stdout is not None
        while last < 200:
            line = run.stdout.readline()
            assert line.startswith(b"committed "), line + (run.stderr.read() if run.stderr and run.poll() is not None
                                                            else b"")
            last = int(line.split()[1])
        # The host sees the database while the app writes it.
        assert (shared / "ledger.mv.db").stat().st_size > 0
        run.kill()  # SIGKILL mid-run: QEMU and virtiofsd die with osv-java, nothing is written back
        run.wait(timeout=30)
    finally:
        kill_if_running(run)
        for pid in _processes_with(needle):
            os.kill(pid, signal.SIGKILL)
    # Opened on the host, by the host's JVM: every reported commit is there, in order, no holes.
    count = subprocess.run(["java", "-cp", classpath, "Ledger", "count", f"jdbc:h2:{shared}/ledger"],
                           capture_output=True, timeout=120)
    assert count.returncode == 0, explain(count)
    rows, highest = map(int, text(count.stdout).split())
    assert highest >= last, f"the app reported commit {last}, the host's database ends at {highest}"
    assert rows == highest, f"{rows} rows for ids up to {highest}: a committed transaction is missing"


@contextlib.contextmanager
def _awaiting(osv: Osv, test_classes: Path, shared: Path, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """A run of VolumeTool that waits in the guest for `name` to appear in the volume `shared` (at
    /data), once it says it is ready; killed after the block if it is still running."""
    run = _start_server(osv, "run", "--jdk", JDK17, "-v", f"{shared}:/data", "-cp", str(test_classes),
                        "VolumeTool", "await", f"/data/{name}")
    try:
        assert run.stdout is not None
        assert run.stdout.readline() == b"ready\n"
        yield run
    finally:
        kill_if_running(run)


def test_a_file_the_host_writes_during_the_run_is_seen_by_the_app(
    osv: Osv, test_classes: Path, shared: Path
) -> None:
    with _awaiting(osv, test_classes, shared, "note.txt") as run:
        (shared / ".note.tmp").write_text("written on the host while the app ran\n")
        (shared / ".note.tmp").rename(shared / "note.txt")
        out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err.decode()
    assert out == b"written on the host while the app ran\n"


def test_a_virtiofsd_that_dies_during_the_run_is_an_error_not_a_hang(
    osv: Osv, test_classes: Path, shared: Path
) -> None:
    with _awaiting(osv, test_classes, shared, "never.txt") as run:
        for pid in _processes_with(f"source={shared}".encode()):
            os.kill(pid, signal.SIGKILL)
        out, err = run.communicate(timeout=120)
    assert run.returncode == 125, err.decode()
    assert f"osv-java: error: virtiofsd serving {shared} exited while the app ran" in err.decode(), err.decode()


def test_a_big_volume_is_not_copied(osv: Osv, test_classes: Path, tmp_path: Path, shared: Path) -> None:
    """A 2 GB folder (sparse) on a 512 MB VM: nothing is copied into the run's work folder (TMPDIR),
    and the app sees the file's full size."""
    with open(shared / "big.bin", "wb") as f:
        f.truncate(2 << 30)
    work = tmp_path / "tmp"
    work.mkdir()
    run = subprocess.Popen([OSV, "run", "--jdk", JDK17, "-m", "512M", "-v", f"{shared}:/data", "-cp",
                            str(test_classes), "VolumeTool", "size", "/data/big.bin"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env={**osv.env, "TMPDIR": str(work)}, cwd=Path(__file__).resolve().parents[2])
    try:
        assert run.stdout is not None and run.stdin is not None
        assert run.stdout.readline() == str(2 << 30).encode() + b"\n"
        assert run.stdout.readline() == b"ready\n"
        used = sum(p.stat().st_blocks * 512 for p in work.rglob("*") if p.is_file() and not p.is_symlink())
        assert used < 16 << 20, f"the run's work folder holds {used} bytes: the volume was copied"
        assert not list(work.rglob("*.tar")), "no tar of the volume"
        run.stdin.close()
        assert run.wait(timeout=120) == 0
    finally:
        kill_if_running(run)


def test_read_only_volume_refuses_writes_and_leaves_the_host_alone(
    osv: Osv, test_classes: Path, shared: Path
) -> None:
    (shared / "in.txt").write_text("read me\n")
    proc = osv("run", "--jdk", JDK17, "-v", f"{shared}:/data:ro", "-cp", str(test_classes), "FileTool",
               "read", "/data/in.txt", "write", "/data/out.txt", "nope")
    assert proc.returncode == 1, explain(proc)
    assert text(proc.stdout) == "read me\n"
    assert "ReadOnlyFileSystemException" in text(proc.stderr) or "Read-only file system" in text(proc.stderr)
    assert sorted(p.name for p in shared.iterdir()) == ["in.txt"]


def _start_server(osv: Osv, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([OSV, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=osv.env,
                            cwd=Path(__file__).resolve().parents[2])


def _wait_listening(server: subprocess.Popen[bytes], timeout: float = 240) -> None:
    assert server.stdout is not None
    deadline = time.monotonic() + timeout
    line = server.stdout.readline()
    assert line.startswith(b"listening on"), f"server printed {line!r}: " + (server.stderr.read().decode()
                                                                             if server.poll() is not None else "")
    assert time.monotonic() < deadline


def test_published_port_answers_http_from_the_host(osv: Osv, examples_built: Path) -> None:
    port = free_port()
    server = _start_server(osv, "run", "--jdk", JDK17, "-p", f"{port}:8080", HTTPSERVER)
    try:
        _wait_listening(server)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello", timeout=30) as reply:
            assert reply.status == 200
            assert reply.read() == b"Hello over HTTP from osv-java, you asked for /hello\n"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/quit", timeout=30) as reply:
            assert reply.status == 200
        assert server.wait(timeout=120) == 0
    finally:
        kill_if_running(server)


@pytest.mark.parametrize("publish", [True, False], ids=["started-by-pid1", "started-by-init"])
def test_ctrl_c_stops_the_vm_cleanly_with_130(osv: Osv, examples_built: Path, publish: bool) -> None:
    """Without -p, /init starts the JVM (kernel.build.launcher): SIGINT must reach it there too."""
    port = free_port()
    server = _start_server(osv, "run", "--jdk", JDK17, *(["-p", f"{port}:8080"] if publish else []), HTTPSERVER)
    try:
        _wait_listening(server)
        server.send_signal(signal.SIGINT)
        # One Ctrl-C only: the JVM's own handler must end it (a JVM that ignored SIGINT would run on).
        assert server.wait(timeout=120) == 130
    finally:
        kill_if_running(server)
    # QEMU is gone: the published port is free again.
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


@pytest.mark.parametrize("publish", [True, False], ids=["started-by-pid1", "started-by-init"])
def test_sigterm_runs_the_apps_shutdown_hooks_and_exits_143(osv: Osv, test_classes: Path, publish: bool) -> None:
    """As `docker stop`: SIGTERM to osv-java reaches the guest JVM, whose shutdown hooks run."""
    proc = terminate_when_ready(osv, "run", "--jdk", JDK17, *(["-p", f"{free_port()}:8080"] if publish else []),
                                "-cp", str(test_classes), "Stoppable")
    assert proc.returncode == 143, explain(proc)
    assert text(proc.stdout) == "ready\nhook ran\n", explain(proc)


def test_what_a_shutdown_hook_writes_to_a_volume_on_sigterm_is_on_the_host(
    osv: Osv, test_classes: Path, shared: Path
) -> None:
    proc = terminate_when_ready(osv, "run", "--jdk", JDK17, "-v", f"{shared}:/data", "-cp", str(test_classes),
                                "Stoppable", "/data/bye.txt")
    assert proc.returncode == 143, explain(proc)
    assert text(proc.stdout) == "ready\nhook ran\n", explain(proc)
    assert (shared / "bye.txt").read_text() == "written by the hook"


def test_an_app_that_outlives_stop_timeout_is_stopped_with_137(osv: Osv, test_classes: Path) -> None:
    proc = terminate_when_ready(osv, "run", "--jdk", JDK17, "--stop-timeout", "3", "-cp", str(test_classes),
                                "Stoppable", "stubborn")
    assert proc.returncode == 137, explain(proc)
    assert text(proc.stdout) == "ready\nhook ran\n", explain(proc)
    assert "did not stop within --stop-timeout 3s of SIGTERM" in text(proc.stderr), explain(proc)


def test_bootchart_prints_a_measured_timeline(osv: Osv, examples_built: Path) -> None:
    proc = osv("run", "--jdk", JDK17, "--cold-boot", "--bootchart", HELLO)  # restored runs: test_snapshot.py
    assert proc.returncode == 0, explain(proc)
    assert text(proc.stdout).startswith("Hello from osv-java!")
    stamps = dict(re.findall(r"^\s+(\w+)\s+([\d.]+)\s+\(", text(proc.stderr), re.M))
    order = ["qemu_start", "kernel_start", "pid1_start", "jvm_exec", "main_entered", "app_exit", "vm_gone"]
    assert list(stamps) == order, explain(proc)
    values = [float(stamps[k]) for k in order]
    assert values == sorted(values), f"timeline not in order: {stamps}"
    assert values[-1] > values[1] > 0
    # every default policy's supervisor loads and runs in the guest (a failing one is reported, not fatal)
    assert not re.search(r"^\s+[\d:]+\s+[\w-]+: failed ", text(proc.stderr), re.M), explain(proc)


def test_watchdog_turns_a_hung_boot_into_an_error_with_the_console(osv: Osv, examples_built: Path) -> None:
    # A watchdog shorter than the kernel's boot: the guest cannot report in time. A cold boot: the
    # runtime's boot snapshot (other apps of this JRE may have saved it) would skip the boot.
    proc = osv("run", "--jdk", JDK17, "--cold-boot", HELLO, env={"OSV_JAVA_BOOT_TIMEOUT": "0.5"})
    assert proc.returncode == 125, explain(proc)
    err = text(proc.stderr)
    assert err.startswith("osv-java: error: timed out after"), err
    assert "--- console (last lines) ---" in err and "--- end of console ---" in err
    # where the guest's vCPUs were, read from QEMU's monitor before it was stopped
    assert re.search(r"^--- the guest's vCPUs when it was given up on ---\nQEMU run state: running\nvCPU 0: ", err,
                     re.M), err
    # and how much host CPU each vCPU thread burnt meanwhile: spinning, or blocked inside QEMU
    assert re.search(r"^host threads \(state, CPU used\): CPU 0/TCG [A-Z] \d+%", err, re.M), err
    assert "Traceback" not in err


def test_app_timeout_stops_the_vm(osv: Osv, examples_built: Path) -> None:
    proc = osv("run", "--jdk", JDK17, "--timeout", "20", HTTPSERVER, str(free_port()))
    assert proc.returncode == 125, explain(proc)
    assert "the app did not finish within --timeout 20s; it was stopped" in text(proc.stderr)
    assert text(proc.stdout).startswith("listening on")


def test_jar_manifest_class_path_resolves_in_the_guest(osv: Osv, tmp_path: Path) -> None:
    app = make_jar_with_class_path(tmp_path)
    proc = osv("run", "--jdk", JDK17, str(app), "x")
    assert proc.returncode == 0, explain(proc)
    assert text(proc.stdout) == "relative says hi\nabsolute says hi\nargs: [x]\n"


def test_own_kernel_with_its_modules_boots(osv: Osv, osv_cache: Path, examples_built: Path) -> None:
    import json

    folder = Path(json.loads((osv_cache / "kernels" / "default.json").read_text())["folder"])
    proc = osv("run", "--jdk", JDK17, "--kernel", str(folder / "vmlinuz"), "--modules", str(folder / "modules"),
               EXITCODE, "7")
    assert proc.returncode == 7, explain(proc)
    assert text(proc.stdout) == "exiting with 7\n"


def test_own_kernel_without_virtiofs_runs_apps_and_refuses_only_volumes(
    osv: Osv, osv_cache: Path, examples_built: Path, tmp_path: Path
) -> None:
    """fuse and virtiofs are needed by -v alone: a kernel without them runs every other app, and a run
    with -v gets one line saying what the kernel lacks, before anything is built."""
    import json
    import shutil

    folder = Path(json.loads((osv_cache / "kernels" / "default.json").read_text())["folder"])
    own = tmp_path / "kernel"
    own.mkdir()
    shutil.copy(folder / "vmlinuz", own / "vmlinuz")  # without the config beside it
    modules = own / "modules"
    shutil.copytree(folder / "modules", modules, ignore=lambda d, _: ["fuse"] if d.endswith("/kernel/fs") else [])
    shared = tmp_path / "shared"
    shared.mkdir()
    kernel = ["--kernel", str(own / "vmlinuz"), "--modules", str(modules)]
    proc = osv("run", "--jdk", JDK17, *kernel, EXITCODE, "7")
    assert proc.returncode == 7, explain(proc)
    assert text(proc.stdout) == "exiting with 7\n"
    proc = osv("run", "--jdk", JDK17, *kernel, "-v", f"{shared}:/data", EXITCODE, "7")
    assert proc.returncode == 125, explain(proc)
    assert (f"osv-java: error: -v needs virtiofs, which kernel {own / 'vmlinuz'} lacks (no fuse or virtiofs module"
            f" under {modules})\nhint: ") in text(proc.stderr), explain(proc)
    # With a config that says so, that config is what the error names.
    (modules / "config").write_text(re.sub(r"^CONFIG_(FUSE_FS|VIRTIO_FS)=.*$", r"# CONFIG_\1 is not set",
                                           (folder / "config").read_text(), flags=re.M))
    proc = osv("run", "--jdk", JDK17, *kernel, "-v", f"{shared}:/data", EXITCODE, "7")
    assert proc.returncode == 125, explain(proc)
    assert text(proc.stderr).startswith(f"osv-java: error: kernel config {modules / 'config'} lacks: "
                                        "CONFIG_FUSE_FS (-v/--volume folders"), explain(proc)
    assert list(shared.iterdir()) == []


def test_not_a_bzimage_is_refused_before_boot(osv: Osv, examples_built: Path, tmp_path: Path) -> None:
    fake = tmp_path / "vmlinuz"
    fake.write_bytes(b"\x7fELF" + b"\0" * 1000)
    proc = osv("run", "--jdk", JDK17, "--kernel", str(fake), EXITCODE, "0")
    assert proc.returncode == 125, explain(proc)
    assert text(proc.stderr).startswith(f"osv-java: error: kernel {fake} is not an x86 bzImage"), explain(proc)



def test_jvm_killed_by_a_signal_exits_128_plus_signal(osv: Osv, tmp_path: Path) -> None:
    from osvtest import compile_java

    # The JVM crashes (a write to address 0): its crash handler ends in abort(), SIGABRT.
    killer = compile_java(
        tmp_path, "kill",
        "public class Kill { public static void main(String[] a) throws Exception {"
        " java.lang.reflect.Field f = sun.misc.Unsafe.class.getDeclaredField(\"theUnsafe\");"
        " f.setAccessible(true); ((sun.misc.Unsafe) f.get(null)).putAddress(0, 0); } }",
    )
    work = tmp_path / "work"
    work.mkdir()
    proc = osv("run", "--jdk", JDK17, "-cp", str(killer), "Kill", cwd=work)
    assert proc.returncode == 128 + 6, explain(proc)  # the JVM's crash handler ends in abort()
    # As with `java`, the fatal error log is in the working folder, at the path the JVM printed.
    reports = list(work.glob("hs_err_pid*.log"))
    assert len(reports) == 1, explain(proc)
    assert str(reports[0]) in text(proc.stdout + proc.stderr)
    assert "A fatal error has been detected by the Java Runtime Environment" in reports[0].read_text()


def test_qemu_dies_with_a_killed_osv_java(osv: Osv, examples_built: Path) -> None:
    # QEMU is found as osv-java's child while both run (a restored machine's -p forwards are added
    # through the monitor, so its command line need not name the port), then by its pid
    port = free_port()
    server = _start_server(osv, "run", "--jdk", JDK17, "-p", f"{port}:8080", HTTPSERVER)
    qemus: list[int] = []

    def alive() -> list[int]:
        return [pid for pid in _processes_with(b"qemu-system") if pid in qemus]

    try:
        _wait_listening(server)
        qemu = memcg.qemu_of(server.pid)
        assert qemu is not None, "QEMU should be running"
        qemus.append(qemu)
        assert not _left_after_kill(server, alive), "QEMU outlived the osv-java"
    finally:
        for pid in alive():
            os.kill(pid, signal.SIGKILL)


def test_host_sees_the_guest_jvm_counters(osv: Osv, examples_built: Path) -> None:
    import json

    port = free_port()
    name = f"stats-{port}"
    server = _start_server(osv, "run", "--jdk", JDK17, "--name", name, "-p", f"{port}:8080", HTTPSERVER)
    try:
        _wait_listening(server)
        listing = osv("jvm", "list")
        assert name in text(listing.stdout), explain(listing)
        proc = osv("jvm", "stats", "--vm", name, "--json")
        assert proc.returncode == 0, explain(proc)
        stats = json.loads(proc.stdout)
        assert stats["vm"] == name
        # The guest's JVM, not a host one: sized from the VM's 1 GB, and Serial GC (1 GB, 2 CPUs).
        assert 0 < stats["heap_max"] <= 1024 << 20
        assert stats["heap_capacity"] > 0 and stats["uptime"] > 0
        assert any("Serial" in c["name"] for c in stats["collectors"]), stats["collectors"]
        version = osv("jvm", "cmd", "--vm", name, "VM.version")
        assert version.returncode == 0, explain(version)
        assert "OpenJDK" in text(version.stdout) and "JDK 17." in text(version.stdout), explain(version)
        urllib.request.urlopen(f"http://127.0.0.1:{port}/quit", timeout=30).read()
        assert server.wait(timeout=120) == 0
        gone = osv("jvm", "stats", "--vm", name)
        assert gone.returncode == 125 and f"no running VM named '{name}'" in text(gone.stderr), explain(gone)
    finally:
        kill_if_running(server)


def test_outbound_network_without_publish(osv: Osv, tmp_path: Path) -> None:
    from osvtest import compile_java

    client = compile_java(
        tmp_path, "net",
        "public class Net { public static void main(String[] a) throws Exception {"
        " try (java.net.Socket s = new java.net.Socket()) {"
        " s.connect(new java.net.InetSocketAddress(\"10.0.2.2\", Integer.parseInt(a[0])), 20000);"
        " System.out.println(new String(s.getInputStream().readAllBytes())); } } }",
    )
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]

        def answer() -> None:
            conn, _ = server.accept()
            with conn:
                conn.sendall(b"hello from the host")

        import threading

        threading.Thread(target=answer, daemon=True).start()
        # QEMU's user-mode network maps 10.0.2.2 to the host's loopback.
        proc = osv("run", "--jdk", JDK17, "-cp", str(client), "Net", str(port))
    assert proc.returncode == 0, explain(proc)
    assert text(proc.stdout) == "hello from the host\n"


AS_ANOTHER_USER = """
import os, sys
from kernel.vm import volumes
uid = int(sys.argv[1])
real_argv, real_start = volumes.virtiofsd_argv, volumes.FileServers.start
volumes.os.geteuid = lambda: uid  # osv-java as that user: it starts virtiofsd as it would then ...
volumes.virtiofsd_argv = lambda *a: ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *real_argv(*a)]

def start(self):  # ... in a work folder that user may use (its own, when it runs osv-java)
    os.chmod(self.workdir, 0o777)
    real_start(self)

volumes.FileServers.start = start
from osv_java.cli import main
sys.argv = ["osv-java", *sys.argv[2:]]
main()
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="switches to another user")
def test_files_the_app_makes_belong_to_a_non_root_user_who_ran_osv_java(
    osv: Osv, test_classes: Path, tmp_path: Path
) -> None:
    """Run by another user, virtiofsd runs in a user namespace that maps the guest's root to that
    user (QEMU stays ours here: only virtiofsd's side changes with the user)."""
    import shutil
    import sys
    import tempfile

    uid = 65534  # nobody
    shared = Path(tempfile.mkdtemp(prefix="osv-test-theirs-"))  # where that user can reach it
    try:
        os.chown(shared, uid, uid)
        proc = subprocess.run([sys.executable, "-c", AS_ANOTHER_USER, str(uid), "run", "--jdk", JDK17, "-v",
                               f"{shared}:/data", "-cp", str(test_classes), "FileTool", "write", "/data/made.txt",
                               "mine"], capture_output=True, env=osv.env, cwd=Path(__file__).resolve().parents[2],
                              timeout=300)
        assert proc.returncode == 0, explain(proc)
        made = shared / "made.txt"
        assert made.read_text() == "mine"
        assert (made.stat().st_uid, made.stat().st_gid) == (uid, uid)
    finally:
        shutil.rmtree(shared, ignore_errors=True)
