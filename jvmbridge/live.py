"""A Python prompt on a running JVM's objects: a py4j gateway loaded into it as an attach agent.

The agent jar (our gateway class plus py4j's Java side) is compiled from source with a local JDK at
first use and cached. The gateway listens on loopback only (inside a VM on the guest's address,
which the host reaches through a loopback port forward: kernel.vm.guest_jvm), answers only clients that
present a random token, runs on daemon threads, and is stopped when the shell exits.
"""

from __future__ import annotations

import code
import contextlib
import hashlib
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from jvmbridge import jdk as jdks
from jvmbridge.attach import attach
from jvmbridge.errors import DependencyError, JvmError
from jvmbridge.proc import is_alive, target

AGENT_SOURCE = Path(__file__).parent / "agent" / "OsvJavaGateway.java"
AGENT_CLASS = "osvjava.agent.OsvJavaGateway"


def py4j_jar() -> Path:
    """The Java half of py4j, installed with the Python package under <prefix>/share/py4j."""
    for prefix in dict.fromkeys([sys.prefix, sys.base_prefix, "/usr/local", "/usr"]):
        folder = Path(prefix) / "share" / "py4j"
        jars = sorted(folder.glob("py4j*.jar"))
        if jars:
            return jars[-1]
    raise DependencyError("py4j's jar not found under <prefix>/share/py4j", hint="pip install py4j")


def agent_jar(java_home: jdks.Jdk | None = None) -> Path:
    """Build (once) and return the gateway agent jar, cached under $OSV_JAVA_CACHE/agents/."""
    p4j = py4j_jar()
    digest = hashlib.sha256(AGENT_SOURCE.read_bytes() + p4j.read_bytes()).hexdigest()[:16]
    out = jdks.cache_dir() / "agents" / f"osv-java-gateway-{digest}.jar"
    if out.exists():
        return out
    jdk = java_home or jdks.select(None)
    javac = jdk.tool("javac")
    if not javac.exists():
        raise DependencyError(
            f"{jdk.home} has no javac to build the gateway agent", hint="install a full JDK"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="osv-java-agent-") as tmp:
        classes = Path(tmp) / "classes"
        cmd = [str(javac), "--release", "11", "-cp", str(p4j), "-d", str(classes), str(AGENT_SOURCE)]
        built = subprocess.run(cmd, capture_output=True, text=True)
        if built.returncode != 0:
            raise DependencyError(f"compiling the gateway agent failed: {built.stderr.strip()[:300]}")
        staged = Path(tmp) / "agent.jar"
        manifest = f"Manifest-Version: 1.0\nAgent-Class: {AGENT_CLASS}\nCreated-By: osv-java\n"
        with zipfile.ZipFile(staged, "w", zipfile.ZIP_DEFLATED) as zf, zipfile.ZipFile(p4j) as py4j:
            zf.writestr("META-INF/MANIFEST.MF", manifest)
            for cls in sorted(classes.rglob("*.class")):
                zf.write(cls, cls.relative_to(classes).as_posix())
            for item in py4j.infolist():
                if not item.filename.startswith("META-INF/"):
                    zf.writestr(item, py4j.read(item))
        os.replace(staged, out) if staged.stat().st_dev == out.parent.stat().st_dev else shutil.move(
            staged, out
        )
    return out


class Connection:
    """A py4j client of one gateway agent: `jvm` reaches its classes, `entry` the agent itself.

    Subclasses start the agent and then call `_connect`; `close` stops the gateway (agents cannot be
    unloaded, but the server and its port go away) and then `_release` what the subclass holds.
    """

    where = "the JVM"  # said in the shell's banner
    route = ""  # how the connection reaches it, when not plainly 127.0.0.1:port
    port = 0
    _closed = True

    def _connect(self, port: int, token: str) -> None:
        from py4j.java_gateway import GatewayParameters, JavaGateway

        # No callback server: the shell only calls into the JVM, so nothing listens on our side.
        self.gateway = JavaGateway(
            gateway_parameters=GatewayParameters(address="127.0.0.1", port=port, auth_token=token, auto_convert=True)
        )
        self.jvm: Any = self.gateway.jvm
        self.entry: Any = self.gateway.entry_point
        self.port = port
        self._closed = False

    def _release(self) -> None:
        """What the subclass must undo after the gateway has stopped."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        quiet = logging.getLogger("py4j")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)  # py4j logs a traceback for a server that goes away
        try:
            with contextlib.suppress(Exception):
                self.entry.shutdown()
            with contextlib.suppress(Exception):
                self.gateway.close()
        finally:
            quiet.setLevel(level)
            self._release()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Gateway(Connection):
    """A py4j connection into host JVM `pid` (loaded through attach, on loopback). Close to stop it."""

    def __init__(self, pid: int, timeout: float = 30.0) -> None:
        self.pid = pid
        self.where = f"JVM {pid}"
        tgt = target(pid)
        vm = attach(pid, timeout)
        jar = agent_jar()
        folder = tgt.tmp / f"osv-java-shell-{secrets.token_hex(6)}"
        folder.mkdir(mode=0o700)
        if os.geteuid() == 0 and tgt.uid != 0:
            os.chown(folder, tgt.uid, tgt.gid)
        self._folder = folder
        self.token = secrets.token_urlsafe(24)
        try:
            jvm_jar = jar
            if not Path(f"/proc/{pid}/root").samefile("/"):
                # the JVM sees another filesystem: hand it a copy of the jar in its /tmp
                jvm_jar = folder / jar.name
                shutil.copy(jar, jvm_jar)
                if os.geteuid() == 0 and tgt.uid != 0:
                    os.chown(jvm_jar, tgt.uid, tgt.gid)
                jar_arg = f"/tmp/{folder.name}/{jar.name}"
            else:
                jar_arg = str(jvm_jar)
            portfile = f"/tmp/{folder.name}/port"
            vm.load(jar_arg, f"token={self.token},portfile={portfile}")
            self._connect(self._wait_port(folder / "port", timeout), self.token)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def _wait_port(self, path: Path, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                return int(path.read_text().strip())
            if not is_alive(self.pid):
                raise JvmError(f"JVM {self.pid} exited while starting the gateway")
            time.sleep(0.02)
        raise JvmError(
            f"JVM {self.pid} did not start the py4j gateway within {timeout:g} s",
            hint="see the JVM's stderr for the agent's exception",
        )

    def _release(self) -> None:
        shutil.rmtree(self._folder, ignore_errors=True)


def interact(gw: Connection) -> None:
    """Interactive prompt with `jvm` (the JVM's packages), `gateway` and `inst` (Instrumentation)."""
    banner = (
        f"Python {sys.version.split()[0]} connected to {gw.where} ({gw.route or f'py4j on 127.0.0.1:{gw.port}'}).\n"
        "  jvm.java.lang.System.getProperty('java.version'), inst.getAllLoadedClasses(), gateway\n"
        "Exit with Ctrl-D; the gateway stops with the shell."
    )
    local = {"jvm": gw.jvm, "gateway": gw.gateway, "inst": gw.entry.getInstrumentation()}
    code.interact(banner=banner, local=local, exitmsg=f"gateway in {gw.where} stopped")


def shell(pid: int, timeout: float = 30.0) -> None:
    """`osv-java shell PID`: a prompt on host JVM `pid`; the gateway stops when it exits."""
    with Gateway(pid, timeout) as gw:
        interact(gw)
