"""-v volumes over virtiofs against the host's own file system, in one run.

io:    benchmarks/java/VolumeBench.java, timed inside the JVM (the boot is not counted): a sequential
       write of 256 MiB (1 MiB writes, then fsync), a sequential read of a 256 MiB file the host
       wrote before the run (so it is in the host's page cache, not the guest's), and the creation
       and stat of 10,000 small files. `vm`: in a VM on `-v DIR:/data`; `host`: the same program
       with --target process on DIR itself (the host's own file system).
start: wall time of `osv-java run --cold-boot` of hello (volume runs always boot cold): without a
       volume; with an empty volume; with a 1 GiB volume (a 1 GiB file of real bytes); and without a
       volume but with the shared-memory backend and modern virtio that volume runs get (`memfd`),
       which prices that part alone. The host's start: --target process with the 1 GiB volume. And
       hello without a volume restored from its boot snapshot (`restored`, what a run without -v
       does by default): volume runs cannot use a snapshot, so this is what -v costs a start.

Ratios: each io figure in the VM against the host's (time per operation, so > 1 is slower), and each
start against the start without a volume (cold, and restored). Starts are also given in CPU seconds
(osv-java, QEMU and virtiofsd together, from the children's resource usage), which a loaded machine
disturbs far less than wall time. Runs alternate so drift on
the machine hits all alike; medians. The last line is JSON.

    .venv/bin/python benchmarks/volumes.py [--runs 3] [--jdk 17] [--only io|start]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OSV = str(Path(sys.executable).parent / "osv-java")
HELLO = "examples/hello/hello.jar"
MIB = 1 << 20
WRITE_MB = 256
SMALL_FILES = 10_000

# osv-java with every VM given what volume runs get (shared memfd RAM, modern virtio), volumes or not.
MEMFD_DRIVER = """
import sys
from kernel.vm import qemu
plain = qemu.MachineConfig._shared_memory
def shared(self, memory_mb):
    return plain(self, memory_mb) or [
        "-object", f"memory-backend-memfd,id=ram,size={memory_mb}M,share=on", "-machine", "memory-backend=ram",
        "-global", "virtio-mmio.force-legacy=false"]
qemu.MachineConfig._shared_memory = shared
from osv_java.cli import main
sys.argv = ["osv-java", *sys.argv[1:]]
main()
"""


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # every descendant waited for, QEMU included
    return usage.ru_utime + usage.ru_stime


def osv(*args: str, memfd: bool = False) -> tuple[float, str, float]:
    """Wall seconds, stdout and CPU seconds of one osv-java command."""
    command = [sys.executable, "-c", MEMFD_DRIVER, *args] if memfd else [OSV, *args]
    start, cpu = time.monotonic(), cpu_seconds()
    proc = subprocess.run(command, capture_output=True, timeout=600, cwd=ROOT, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"osv-java {' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode()[-800:]}")
    return elapsed, proc.stdout.decode(), cpu_seconds() - cpu


def fresh(folder: Path, given: Path) -> None:
    """The folder as each io run starts: only the file to read, in the host's page cache."""
    for child in folder.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        elif child.name != given.name:
            child.unlink()
    given.read_bytes()


def io_run(jdk: str, classes: Path, folder: Path, target: str) -> dict[str, float]:
    if target == "vm":
        args = ["run", "--jdk", jdk, "-v", f"{folder}:/data", "-cp", str(classes), "VolumeBench", "/data"]
    else:
        args = ["run", "--target", "process", "--jdk", jdk, "-cp", str(classes), "VolumeBench", str(folder)]
    _, out, _ = osv(*args, str(WRITE_MB), str(SMALL_FILES))
    write_s, read_s, files_s, read_bytes = out.split()
    if int(read_bytes) != WRITE_MB * MIB:
        raise SystemExit(f"read {read_bytes} bytes, not {WRITE_MB * MIB}")
    return {"write_s": float(write_s), "read_s": float(read_s), "files_s": float(files_s)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jdk", default="17")
    parser.add_argument("--only", choices=("io", "start"), help="measure only this part")
    args = parser.parse_args()

    subprocess.run([sys.executable, "-m", "examples.build", "--quiet"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory(prefix="osv-bench-vol-") as tmp_name:
        tmp = Path(tmp_name)
        classes = tmp / "classes"
        subprocess.run(["javac", "--release", "17", "-d", str(classes), str(ROOT / "benchmarks/java/VolumeBench.java")],
                       check=True)
        io_dir, empty, big = tmp / "io", tmp / "empty", tmp / "big"
        for folder in (io_dir, empty, big):
            folder.mkdir()
        given = io_dir / "given.bin"
        given.write_bytes(os.urandom(MIB) * WRITE_MB)
        block = os.urandom(MIB)
        with open(big / "one-gib.bin", "wb") as f:
            for _ in range(1024):
                f.write(block)
        print("warming up (images built, accelerator probed)", file=sys.stderr)
        io_run(args.jdk, classes, io_dir, "process")
        fresh(io_dir, given)
        osv("run", "--jdk", args.jdk, "--cold-boot", "-v", f"{empty}:/data", HELLO)
        for _ in range(2):  # the first run of a machine notes it, the second saves its boot snapshot
            osv("run", "--jdk", args.jdk, HELLO)

        io: dict[str, list[dict[str, float]]] = {"vm": [], "host": []}
        cold = ["--cold-boot"]
        starts = {"vm_no_volume": (cold, False), "vm_memfd_only": (cold, True),
                  "vm_empty_volume": ([*cold, "-v", f"{empty}:/data"], False),
                  "vm_1gib_volume": ([*cold, "-v", f"{big}:/data"], False),
                  "vm_no_volume_restored": ([], False)}
        start: dict[str, list[float]] = {k: [] for k in [*starts, "host_1gib_volume"]}
        start_cpu: dict[str, list[float]] = {k: [] for k in start}
        for i in range(args.runs):
            if args.only != "start":
                for target in ("vm", "host"):
                    fresh(io_dir, given)
                    io[target].append(io_run(args.jdk, classes, io_dir, "vm" if target == "vm" else "process"))
                print(f"run {i + 1}: io vm {io['vm'][-1]}  host {io['host'][-1]}", file=sys.stderr)
            if args.only == "io":
                continue
            for key, (options, memfd) in starts.items():
                wall, _, cpu = osv("run", "--jdk", args.jdk, *options, HELLO, memfd=memfd)
                start[key].append(wall)
                start_cpu[key].append(cpu)
            wall, _, cpu = osv("run", "--target", "process", "--jdk", args.jdk, "-v", f"{big}:/data", HELLO)
            start["host_1gib_volume"].append(wall)
            start_cpu["host_1gib_volume"].append(cpu)
            print(f"run {i + 1}: start " + "  ".join(f"{k} {v[-1]:.3f}s ({start_cpu[k][-1]:.3f} cpu)"
                                                     for k, v in start.items()), file=sys.stderr)

    m: dict[str, float] = {}  # the medians
    lists: dict[str, list[float]] = {}
    if args.only != "start":
        for target, runs in io.items():
            for key in ("write_s", "read_s", "files_s"):
                m[f"{target}_{key}"] = round(statistics.median(r[key] for r in runs), 3)
            m[f"{target}_write_mib_s"] = round(WRITE_MB / m[f"{target}_write_s"], 1)
            m[f"{target}_read_mib_s"] = round(WRITE_MB / m[f"{target}_read_s"], 1)
        for key in ("write_s", "read_s", "files_s"):
            m[f"ratio_vm_to_host_{key}"] = round(m[f"vm_{key}"] / m[f"host_{key}"], 2)
        print(f"virtiofs: write {m['vm_write_mib_s']} MiB/s, read {m['vm_read_mib_s']} MiB/s, "
              f"{SMALL_FILES} files {m['vm_files_s']}s; host: write {m['host_write_mib_s']} MiB/s, "
              f"read {m['host_read_mib_s']} MiB/s, {SMALL_FILES} files {m['host_files_s']}s; "
              f"vm/host time: write {m['ratio_vm_to_host_write_s']}x, read {m['ratio_vm_to_host_read_s']}x, "
              f"files {m['ratio_vm_to_host_files_s']}x")
    if args.only != "io":
        for key, values in start.items():
            m[f"start_{key}_s"] = round(statistics.median(values), 3)
            m[f"start_{key}_cpu_s"] = round(statistics.median(start_cpu[key]), 3)
            lists[f"start_{key}_runs"] = [round(v, 3) for v in values]
            lists[f"start_{key}_cpu_runs"] = [round(v, 3) for v in start_cpu[key]]
        for unit in ("s", "cpu_s"):
            m[f"memfd_cost_{unit}"] = round(m[f"start_vm_memfd_only_{unit}"] - m[f"start_vm_no_volume_{unit}"], 3)
        for key in ("vm_empty_volume", "vm_1gib_volume", "vm_memfd_only"):
            m[f"ratio_{key}_to_no_volume"] = round(m[f"start_{key}_s"] / m["start_vm_no_volume_s"], 2)
        m["ratio_1gib_to_empty_volume"] = round(m["start_vm_1gib_volume_s"] / m["start_vm_empty_volume_s"], 2)
        m["ratio_1gib_volume_to_restored"] = round(m["start_vm_1gib_volume_s"] / m["start_vm_no_volume_restored_s"],
                                                   2)
        print("start (hello): " + ", ".join(
            f"{k} {m[f'start_{k}_s']}s ({m[f'start_{k}_cpu_s']} cpu s)" for k in start))
        print(f"start ratios: 1 GiB volume / empty volume {m['ratio_1gib_to_empty_volume']}x, "
              f"empty volume / no volume (cold) {m['ratio_vm_empty_volume_to_no_volume']}x, "
              f"memfd only / no volume (cold) {m['ratio_vm_memfd_only_to_no_volume']}x, "
              f"1 GiB volume / no volume restored from the snapshot {m['ratio_1gib_volume_to_restored']}x")
    result = {"runs": args.runs, "write_mib": WRITE_MB, "small_files": SMALL_FILES, **m, **lists,
              "cpus": os.cpu_count()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
