"""A start-up archive's training run has no side effects: the app runs on this host, but its ports
are its own, its writes fail outside its scratch, and the archive still comes out.

Real namespaces (these tests run as root, as CI does) and real JVMs."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import startup_archives as archives
from osvtest import Osv, compile_java, jar_of, text

from kernel.build import sandbox

APP = """
import java.io.FileWriter;
import java.net.ServerSocket;

public class Trained {
    public static void main(String[] a) throws Exception {
        try (ServerSocket server = new ServerSocket(Integer.parseInt(a[0]))) {
            System.out.println("bound " + a[0]);
        }
        try (FileWriter out = new FileWriter(a[1], true)) {
            out.write("a run wrote this\\n");
        } catch (java.io.IOException e) {
            System.out.println("could not write: " + e.getMessage());
        }
        System.out.println("done");
    }
}
"""


def test_the_sandbox_gives_its_own_ports_and_perf_folder_and_keeps_the_rest_read_only(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    outside = tmp_path / "outside.txt"
    with socket.socket() as held:  # the host's copy of a server holds the port
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        probe = (
            "import socket, pathlib, sys\n"
            f"s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); print('bound')\n"
            "c = socket.create_connection(('127.0.0.1', %d)); print('loopback works')\n" % port
            + f"pathlib.Path('{sandbox.perf_folder()}/osv-sandbox-probe').write_text('x'); print('perf writable')\n"
            f"pathlib.Path('{scratch}/archive').write_text('x'); print('scratch writable')\n"
            f"try:\n    pathlib.Path('{outside}').write_text('x')\nexcept OSError as e:\n    print(e.strerror)\n"
        )
        proc = subprocess.run([sys.executable, "-c", probe], preexec_fn=sandbox.isolating([], scratch),
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["bound", "loopback works", "perf writable", "scratch writable",
                                        "Read-only file system"], proc.stdout + proc.stderr
    assert (scratch / "archive").read_text() == "x", "the scratch folder is the host's own"
    assert not outside.exists() and not (sandbox.perf_folder() / "osv-sandbox-probe").exists(), "nothing else"


def test_mountinfo_paths_are_unescaped_and_mount_flags_kept() -> None:
    line = r"36 25 0:32 / /mnt/with\040space rw,relatime shared:1 - tmpfs tmpfs rw"
    assert sandbox.mount_points(line + "\n") == [("/mnt/with space", "tmpfs", 1 << 21)]
    line = "22 1 0:21 / /dev/shm rw,nosuid,nodev shared:2 - tmpfs tmpfs rw"
    assert sandbox.mount_points(line) == [("/dev/shm", "tmpfs", 2 | 4)], "nosuid and nodev are kept"


@pytest.mark.parametrize("feature", ["17", "25"])
def test_a_training_run_writes_nothing_the_app_would_and_its_archive_is_used(osv: Osv, tmp_path: Path,
                                                                             feature: str) -> None:
    archives.jdk_or_skip(feature)
    jar = jar_of(compile_java(tmp_path, "trained", APP), tmp_path / "trained.jar", "Main-Class: Trained\n")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    written = tmp_path / "written.txt"
    proc = osv("run", "--target", "process", "--jdk", feature, "--startup-archive", "--jvm-opt=-Xlog:class+load=info",
               str(jar), str(port), str(written))
    out, err = text(proc.stdout), text(proc.stderr)
    assert proc.returncode == 0, out + err
    assert "warning" not in err, err
    assert archives.app_lines(out) == f"bound {port}\ndone\n", out
    assert written.read_text() == "a run wrote this\n", "only the real run wrote, not its training run"
    assert archives.from_archive(out, "Trained"), archives.sources(out).get("Trained")
