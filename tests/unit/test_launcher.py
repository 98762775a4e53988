"""The JVM launcher /init uses (kernel.build.launcher): a hand-written static program, run here on the host.

It must undo what a shell does to a background command (SIGINT and SIGQUIT ignored), start a new
session, and exec its arguments with the environment it was given; the shell snippet the host sends
must reproduce any argument, environment and working folder exactly.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kernel.build import launcher

BUSYBOX = shutil.which("busybox")
REPORT = (
    "import json, os, sys\n"
    "status = dict(line.split(':\\t', 1) for line in open('/proc/self/status').read().splitlines() if ':\\t' in line)\n"
    "print(json.dumps({'argv': sys.argv[1:], 'env': dict(os.environ), 'cwd': os.getcwd(),\n"
    "                  'ignored': int(status['SigIgn'], 16), 'sid': os.getsid(0), 'pid': os.getpid()}))\n"
)


@pytest.fixture
def launch(tmp_path: Path) -> Path:
    path = tmp_path / "osv-launch"
    path.write_bytes(launcher.elf())
    path.chmod(0o755)
    return path


def _background(command: str) -> dict:
    """Run `command` the way /init does: in the background of busybox's non-interactive shell."""
    assert BUSYBOX is not None
    proc = subprocess.run([BUSYBOX, "sh", "-c", f"({command}) & wait"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.skipif(BUSYBOX is None, reason="busybox is not installed (apt-get install busybox-static)")
def test_the_launched_program_gets_sigint_back_and_its_own_session(launch: Path, tmp_path: Path) -> None:
    script = tmp_path / "report.py"
    script.write_text(REPORT)
    without = _background(f"exec {sys.executable} {script}")
    assert without["ignored"] & 0b110 == 0b110, "the shell no longer ignores SIGINT/SIGQUIT in the background"
    report = _background(f"exec {launch} {sys.executable} {script}")
    assert report["ignored"] & 0b110 == 0, "SIGINT and SIGQUIT must be back to their default"
    assert report["sid"] == report["pid"], "the launched program leads its own session"


@pytest.mark.skipif(BUSYBOX is None, reason="busybox is not installed (apt-get install busybox-static)")
def test_the_shell_command_reproduces_argv_env_and_folder_exactly(launch: Path, tmp_path: Path) -> None:
    argv = [sys.executable, "-c", REPORT, "plain", "with space", "it's", 'say "hi"', "$HOME `id` \\n;|&",
            "line\nbreak", "tab\there", "ünïcode", "", "-", "--", "A=B"]
    env = ["LANG=C.UTF-8", "EMPTY=", "ODD=a b 'c' \"d\" $e", "-DASH=x"]
    cwd = tmp_path / "a folder" / "made 'on' demand"
    snippet = launcher.shell_command(argv, env, str(cwd), launcher_path=str(launch))
    report = _background(snippet)
    assert report["argv"] == argv[3:]
    assert report["env"] == dict(item.split("=", 1) for item in env)
    assert report["cwd"] == str(cwd)
    assert report["ignored"] & 0b110 == 0


@pytest.mark.skipif(BUSYBOX is None, reason="busybox is not installed (apt-get install busybox-static)")
def test_an_unusable_working_folder_falls_back_to_the_root(launch: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    snippet = launcher.shell_command([sys.executable, "-c", REPORT], [], str(blocker / "sub"),
                                     launcher_path=str(launch))
    assert _background(snippet)["cwd"] == "/"


def test_a_program_that_cannot_be_run_exits_127_with_a_message(launch: Path) -> None:
    proc = subprocess.run([str(launch), "/nonexistent/java"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 127
    assert proc.stderr == "osv-java: cannot start the JVM\n"


def test_the_launcher_is_a_minimal_static_executable() -> None:
    image = launcher.elf()
    assert image[:4] == b"\x7fELF" and image[16] == 2  # ET_EXEC: no loader, no libraries
    assert b".interp" not in image and len(image) < 512


def test_a_busybox_without_the_commands_init_uses_is_refused_before_building() -> None:
    from jvmbridge.errors import DependencyError
    from kernel.build import image

    with pytest.raises(DependencyError, match="lacks base64, env, .*the guest's /init needs"):
        image.check_busybox(Path(shutil.which("true") or "/bin/true"))
    if BUSYBOX is not None:
        image.check_busybox(Path(BUSYBOX))  # Debian's busybox-static has them all
