"""Real JVMs (JDK 17) steered by the dynamic heap's supervisor: a helper program compiled once, each
JVM killed after its test, and memory cgroups (v1) made for a test and removed after it."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import memcg
import pytest
from heaptest import Holder

JDK17 = Path("/usr/lib/jvm/java-17-openjdk-amd64")
JAVA_SOURCES = Path(__file__).parent / "java"


@pytest.fixture(scope="session")
def holder_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (JDK17 / "bin" / "java").exists():
        pytest.skip(f"JDK 17 not installed at {JDK17}")
    out = tmp_path_factory.mktemp("holder")
    subprocess.run([str(JDK17 / "bin" / "javac"), "--release", "17", "-d", str(out),
                    *map(str, JAVA_SOURCES.glob("*.java"))], check=True)
    return out


@pytest.fixture
def start_holder(holder_classes: Path) -> Iterator[object]:
    started: list[Holder] = []

    def start(*options: str, cgroup: Path | None = None) -> Holder:
        argv = [str(JDK17 / "bin" / "java"), *options, "-cp", str(holder_classes), "HeapHolder"]
        if cgroup is not None:  # enter the cgroup before exec: the JVM sees its limit from the start
            argv = ["sh", "-c", f'echo $$ > {cgroup}/cgroup.procs && exec "$@"', "sh", *argv]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        first = proc.stdout.readline().split()
        assert first[:1] == ["ready"], first
        holder = Holder(proc, int(first[1]))
        started.append(holder)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                holder.committed()
                break
            time.sleep(0.05)
        return holder

    yield start
    for holder in started:
        if holder.perf is not None:
            holder.perf.close()
        if holder.proc.poll() is None:
            holder.proc.kill()
        holder.proc.wait(timeout=30)


@pytest.fixture
def memory_cgroup_v1() -> Iterator[Path]:
    own = memcg.own_memory_cgroup(version=1)
    if own is None:
        pytest.skip("no writable cgroup v1 memory controller")
    with memcg.child(own.path, "osv-test") as folder:
        yield folder
