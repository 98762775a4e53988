"""--target process (the same kernel services supervising a host JVM) and the forms of APP."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest
from osvtest import JDK17, OSV, Osv, compile_java, explain, make_jar_with_class_path, terminate_when_ready, text

EXITCODE = "examples/exitcode/exitcode.jar"


@pytest.mark.parametrize("status", [0, 3, 42])
def test_process_exit_status(osv: Osv, examples_built: Path, status: int) -> None:
    proc = osv("run", "--target", "process", "--jdk", JDK17, EXITCODE, str(status))
    assert proc.returncode == status, explain(proc)
    assert text(proc.stdout) == f"exiting with {status}\n"


def test_process_uncaught_exception(osv: Osv, examples_built: Path) -> None:
    proc = osv("run", "--target", "process", "--jdk", JDK17, EXITCODE, "throw")
    assert proc.returncode == 1, explain(proc)
    assert "java.lang.IllegalStateException: thrown on purpose" in text(proc.stderr)


def test_process_killed_by_a_signal_is_128_plus_signal(osv: Osv, examples_built: Path, tmp_path: Path) -> None:
    killer = compile_java(
        tmp_path, "kill",
        "public class Kill { public static void main(String[] a) throws Exception {"
        " java.lang.reflect.Field f = sun.misc.Unsafe.class.getDeclaredField(\"theUnsafe\");"
        " f.setAccessible(true); ((sun.misc.Unsafe) f.get(null)).putAddress(0, 0); } }",
    )
    proc = osv("run", "--target", "process", "--jdk", JDK17, "--jvm-opt=-XX:ErrorFile=/tmp/osv-test-hs_err_%p.log",
               "-cp", str(killer), "Kill")
    assert proc.returncode == 128 + 6, explain(proc)  # the JVM's crash handler ends in abort()


def test_process_arguments_and_stdin(osv: Osv, examples_built: Path) -> None:
    args = ["a b", "it's", 'say "hi"', ""]
    proc = osv("run", "--target", "process", "--jdk", JDK17, EXITCODE, "args", *args)
    assert text(proc.stdout) == "".join(f"[{a}]\n" for a in args), explain(proc)
    data = os.urandom(100_000)
    proc = osv("run", "--target", "process", "--jdk", JDK17, "examples/echo/echo.jar", input=data)
    assert proc.returncode == 0 and proc.stdout == data, explain(proc)


def test_process_env_memory_and_cpus(osv: Osv, examples_built: Path) -> None:
    proc = osv("run", "--target", "process", "--jdk", JDK17, "-c", "1", "-m", "512M", "examples/hello/hello.jar")
    assert proc.returncode == 0, explain(proc)
    m = re.fullmatch(r"Hello from osv-java! Java 17\.\S+, 1 CPUs, max heap (\d+) MB\n", text(proc.stdout))
    # sized from -m, not the host: the dynamic heap lets it grow into 3/4 of the machine's 512 MB
    assert m and int(m.group(1)) <= 384, explain(proc)


def test_process_publish_forwards_a_host_port(osv: Osv, examples_built: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        host_port = s.getsockname()[1]
    server = subprocess.Popen(
        [OSV, "run", "--target", "process", "--jdk", JDK17, "-p", f"{host_port}:18089",
         "examples/httpserver/httpserver.jar", "18089"],
        stdout=subprocess.PIPE, env=osv.env, cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline() == b"listening on 18089\n"
        with urllib.request.urlopen(f"http://127.0.0.1:{host_port}/x", timeout=30) as reply:
            assert reply.read() == b"Hello over HTTP from osv-java, you asked for /x\n"
        urllib.request.urlopen(f"http://127.0.0.1:{host_port}/quit", timeout=30).read()
        assert server.wait(timeout=60) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="-v with --target process bind-mounts, which needs root")
def test_process_volume(osv: Osv, test_classes: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in.txt").write_text("host data\n")
    proc = osv("run", "--target", "process", "--jdk", JDK17, "-v", f"{shared}:/osv-test-data", "-cp",
               str(test_classes), "FileTool", "read", "/osv-test-data/in.txt", "write", "/osv-test-data/o.txt", "w")
    assert proc.returncode == 0, explain(proc)
    assert text(proc.stdout) == "host data\n"
    assert (shared / "o.txt").read_text() == "w"
    assert not Path("/osv-test-data/in.txt").exists(), "the bind mount must stay private to the app"


def test_process_bootchart(osv: Osv, examples_built: Path) -> None:
    proc = osv("run", "--target", "process", "--jdk", JDK17, "--bootchart", "examples/hello/hello.jar")
    assert proc.returncode == 0, explain(proc)
    assert re.search(r"main_entered\s+[\d.]+", text(proc.stderr)), explain(proc)


def test_jar_manifest_class_path_relative_and_absolute(osv: Osv, tmp_path: Path) -> None:
    app = make_jar_with_class_path(tmp_path)
    proc = osv("run", "--target", "process", "--jdk", JDK17, str(app), "x")
    assert proc.returncode == 0, explain(proc)
    assert text(proc.stdout) == "relative says hi\nabsolute says hi\nargs: [x]\n"


def test_classpath_form_with_a_class_folder(osv: Osv, test_classes: Path, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("via -cp\n")
    proc = osv("run", "--target", "process", "--jdk", JDK17, "-cp", str(test_classes), "FileTool", "read",
               str(tmp_path / "f.txt"))
    assert proc.returncode == 0 and text(proc.stdout) == "via -cp\n", explain(proc)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jar"], "jar missing.jar does not exist"),
        (["-m", "12", "examples/hello/hello.jar"], "memory size '12' is below 128M"),
        (["-c", "0", "examples/hello/hello.jar"], "CPU count '0' is not a whole number"),
        (["-p", "80", "examples/hello/hello.jar"], "-p '80' is not HOST:GUEST"),
        (["-e", "NOEQUALS", "examples/hello/hello.jar"], "-e 'NOEQUALS' is not KEY=VALUE"),
        (["--jdk", "/nonexistent", "examples/hello/hello.jar"], "JDK path /nonexistent is not a folder"),
        (["-v", "/tmp", "examples/hello/hello.jar"], "volume '/tmp' is not HOST_DIR:GUEST_DIR[:ro]"),
        (["-v", "/nonexistent:/data", "examples/hello/hello.jar"], "volume folder /nonexistent does not exist"),
        (["-v", "examples/hello/hello.jar:/data", "examples/hello/hello.jar"],
         "volume examples/hello/hello.jar is not a folder"),
        (["-v", "/tmp:data", "examples/hello/hello.jar"], "volume guest path 'data' must be an absolute folder"),
        (["-Xmx1g", "examples/hello/hello.jar"], "-Xmx1g is a JVM option, not one of osv-java run's"),
        (["-m", "1G", "-Dgreeting=hi", "examples/hello/hello.jar"], "-Dgreeting=hi is a JVM option"),
    ],
)
def test_bad_input_is_one_line_and_125(osv: Osv, examples_built: Path, args: list[str], message: str) -> None:
    proc = osv("run", *args)
    assert proc.returncode == 125, explain(proc)
    lines = text(proc.stderr).splitlines()
    assert lines[0].startswith("osv-java: error: ") and message in lines[0], explain(proc)
    assert all(line.startswith("hint: ") for line in lines[1:]), explain(proc)


def test_jvm_like_arguments_after_the_app_are_the_apps(osv: Osv, tmp_path: Path) -> None:
    app = make_jar_with_class_path(tmp_path)
    proc = osv("run", "--target", "process", "--jdk", JDK17, "-m", "1G", str(app), "-Xmx1g", "-Dx=1")
    assert proc.returncode == 0, explain(proc)
    assert text(proc.stdout).endswith("args: [-Xmx1g, -Dx=1]\n"), explain(proc)


def test_process_app_timeout_is_the_same_error_as_in_a_vm(osv: Osv, examples_built: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = osv("run", "--target", "process", "--jdk", JDK17, "--timeout", "5", "examples/httpserver/httpserver.jar",
               str(port))
    assert proc.returncode == 125, explain(proc)
    assert "osv-java: error: the app did not finish within --timeout 5s; it was stopped" in text(proc.stderr)
    assert text(proc.stdout).startswith("listening on")


def test_process_sigterm_runs_the_apps_shutdown_hooks_and_exits_143(osv: Osv, test_classes: Path) -> None:
    proc = terminate_when_ready(osv, "run", "--target", "process", "--jdk", JDK17, "-cp", str(test_classes),
                                "Stoppable")
    assert proc.returncode == 143, explain(proc)
    assert text(proc.stdout) == "ready\nhook ran\n", explain(proc)


def test_process_an_app_that_outlives_stop_timeout_is_killed_with_137(osv: Osv, test_classes: Path) -> None:
    proc = terminate_when_ready(osv, "run", "--target", "process", "--jdk", JDK17, "--stop-timeout", "2",
                                "-cp", str(test_classes), "Stoppable", "stubborn")
    assert proc.returncode == 137, explain(proc)
    assert text(proc.stdout) == "ready\nhook ran\n", explain(proc)
    assert "did not stop within --stop-timeout 2s of SIGTERM" in text(proc.stderr), explain(proc)
