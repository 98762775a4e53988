"""The pure-Python attach client against real JVMs (JDK 17: protocol 1, JDK 25: protocol 2)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from jvmbridge.attach import AttachDisabledError, NotAJvmError, attach, parse_properties
from jvmbridge.errors import JvmError
from jvmbridge.jdk import Jdk


def test_jvm_cmd_equals_jcmd(jdk: Jdk, start_jvm, cli, jcmd) -> None:
    jvm = start_jvm(jdk)
    ours = cli("cmd", str(jvm.pid), "VM.version")
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == jcmd(jdk, jvm.pid, "VM.version")
    assert f"JDK {jdk.version}" in ours.stdout


def test_protocol_version(jdk: Jdk, start_jvm) -> None:
    vm = attach(start_jvm(jdk).pid)
    if jdk.feature >= 24:
        assert vm.version == 2 and "streaming" in vm.options
    else:
        assert vm.version == 1
    # a command with more than three arguments only fits protocol 2
    if vm.version == 2:
        assert "SoftMaxHeapSize" in vm.jcmd("VM.flags -all")


def test_operations(jdk: Jdk, start_jvm) -> None:
    vm = attach(start_jvm(jdk).pid)
    vm.setflag("MinHeapFreeRatio", 17)
    assert vm.printflag("MinHeapFreeRatio") == "-XX:MinHeapFreeRatio=17"
    assert vm.jcmd("VM.flags").count("MinHeapFreeRatio=17") == 1
    props = vm.properties()
    assert Path(props["java.home"]).resolve() == jdk.home
    assert props["line.separator"] == "\n"
    dump = vm.threaddump()
    assert "Full thread dump" in dump and '"main"' in dump


def test_load_agent(jdk: Jdk, start_jvm, classes: Path, tmp_path: Path) -> None:
    jar = tmp_path / "agent.jar"
    manifest = "Manifest-Version: 1.0\nAgent-Class: TestAgent\n"
    with zipfile.ZipFile(jar, "w") as zf:
        zf.writestr("META-INF/MANIFEST.MF", manifest)
        zf.write(classes / "TestAgent.class", "TestAgent.class")
    vm = attach(start_jvm(jdk).pid)
    assert vm.load(jar, "hello=1") == 0
    assert vm.properties()["osvjava.test.agent"] == "hello=1"
    with pytest.raises(JvmError, match="could not start agent"):
        vm.load(tmp_path / "missing.jar")


def test_command_errors(jdk17: Jdk, start_jvm) -> None:
    vm = attach(start_jvm(jdk17).pid)
    with pytest.raises(JvmError, match="Unknown diagnostic command") as info:
        vm.jcmd("No.such.command")
    assert info.value.hint and "help" in info.value.hint
    with pytest.raises(JvmError, match="cannot be changed") as info:
        vm.setflag("MaxHeapSize", 1 << 30)
    assert info.value.hint and "manageable" in info.value.hint


def test_disabled_attach_is_refused_without_signalling(jdk17: Jdk, start_jvm) -> None:
    jvm = start_jvm(jdk17, "-XX:+DisableAttachMechanism")
    started = time.monotonic()
    with pytest.raises(AttachDisabledError, match="does not accept attach") as info:
        attach(jvm.pid, timeout=5)
    assert time.monotonic() - started < 5  # refused up front, not after the timeout
    assert info.value.hint and "DisableAttachMechanism" in info.value.hint
    jvm.proc.stdin.close()  # a SIGQUIT would have printed a thread dump before this exit
    out = jvm.proc.stdout.read()
    assert jvm.proc.wait(timeout=30) == 0
    assert "Full thread dump" not in out


def test_reduced_signals_jvm_is_not_killed(jdk17: Jdk, start_jvm) -> None:
    # -Xrs: the JVM does not catch SIGQUIT (it would die of it) but opens its socket at startup
    jvm = start_jvm(jdk17, "-Xrs")
    assert "JDK 17" in attach(jvm.pid, timeout=5).jcmd("VM.version")
    assert jvm.proc.poll() is None


def test_dead_pid() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    with pytest.raises(JvmError, match=f"no process {proc.pid}") as info:
        attach(proc.pid)
    assert info.value.hint


def test_not_a_jvm() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        with pytest.raises(NotAJvmError, match="is not a JVM"):
            attach(proc.pid, timeout=2)
        assert proc.poll() is None  # and it was not sent SIGQUIT
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a JVM as another user")
def test_root_attaches_to_another_users_jvm(jdk17: Jdk, start_jvm, classes: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    for parent in [tmp_path, *tmp_path.parents]:
        if parent == Path("/tmp"):
            break
        parent.chmod(parent.stat().st_mode | 0o711)  # let the other user reach the classes
    shutil.copy(classes / "Idle.class", shared)
    setpriv = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    jvm = start_jvm(jdk17, prefix=setpriv, cwd=shared, classpath=shared)
    status = Path(f"/proc/{jvm.pid}/status").read_text()
    assert "\t65534\t" in status.split("Uid:")[1].splitlines()[0]
    # A dead root JVM's socket with this pid (pids come round again): the listener of a JVM of
    # another user cannot rename its own over it in the sticky /tmp, so attach removes it first.
    stale = Path(f"/proc/{jvm.pid}/root/tmp/.java_pid{jvm.pid}")
    stale.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(stale))
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    assert "JDK 17" in attach(jvm.pid).jcmd("VM.version")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create namespaces")
def test_jvm_in_other_mount_and_pid_namespace(jdk17: Jdk, classes: Path, tmp_path: Path) -> None:
    # the JVM gets its own pid namespace (it is pid 1 there) and its own empty /tmp
    script = (
        f"mount --bind {classes} /mnt && mount -t tmpfs tmpfs /tmp && "
        f"exec {jdk17.tool('java')} -Xmx64m -cp /mnt Idle"
    )
    proc = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount", "--mount-proc", "sh", "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("ready "):
            pytest.skip(f"cannot create namespaces here: {line.strip()}")
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        host_pid = int(children[0])
        assert line.split()[1] == "1"  # pid 1 inside
        assert not Path("/tmp/.java_pid1").exists() or Path("/proc/1/root").exists()
        vm = attach(host_pid)
        assert "JDK 17" in vm.jcmd("VM.version")
        from jvmbridge.hsperf import PerfData

        with PerfData.open(host_pid) as pd:
            assert pd.string("sun.rt.javaCommand") == "Idle"
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


def test_parse_properties() -> None:
    text = (
        "#Thu Nov 26 23:11:26 UTC 2026\n"
        "java.home=/usr/lib/jvm/x\n"
        "line.separator=\\n\n"
        "path.separator=\\:\n"
        "weird\\ key=a\\=b\n"
        "unicode=caf\\u00e9\n"
        "long=one\\\n    two\n"
        "! comment\n"
        "empty=\n"
    )
    assert parse_properties(text) == {
        "java.home": "/usr/lib/jvm/x",
        "line.separator": "\n",
        "path.separator": ":",
        "weird key": "a=b",
        "unicode": "café",
        "long": "onetwo",
        "empty": "",
    }
