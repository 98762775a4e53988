"""Start-up of a Java hello through `osv-java run`, against the kernel's floor and the emulated JVM, in one run.

floor:    the same kernel and machine with an /init that powers off at once (benchmarks/boot.py's floor).
cold:     `osv-java run --cold-boot hello.jar`: kernel, /init, PID 1 and the JVM from scratch.
first:    the first run of a jar never run before (a hello with a new greeting each time, as after an
          edit): its image is built (the runtime's part linked from the cache), the runtime's
          started-JVM snapshot restored (kernel/vm/zygote.py, the default) and handed the app.
repeat:   hello.jar again: image cached, the same started JVM restored and handed the app.
emulated: `qemu-x86_64 -cpu qemu64,+rdrand JDK/bin/java -jar hello.jar` (Debian's qemu-user): the same
          JVM under the same emulation without a VM, the emulation's own floor.
plain:    `first-plain` and `repeat-plain` the same with --no-zygote: the runtime's boot snapshot
          restored (its RAM copied: the machine has the dynamic heap's balloon), the app sent in and
          its JVM started; `mapped` a repeat with --no-zygote --dynamic-heap off, no balloon, so the
          snapshot's RAM file is mapped rather than copied.

restore:  how a boot snapshot's RAM reaches the machine, timed from QEMU's start until the restored
          machine runs (a machine of the image without the run's policies, snapshot made here):
          `stream` the RAM inside QEMU's migration stream, read through `exec:cat` (how snapshots
          were restored before), `copy` the sparse RAM file copied into a memfd QEMU maps plus a
          stream without the RAM (what osv-java does; the copy is counted), `map` the RAM file mapped
          privately, no copy (not used: QEMU 7.2's balloon would punch holes into the file, see
          kernel/vm/snapshot.py).

services: time to the first HTTP answer of examples/httpserver and Jetty, started as usual and
          restored from a ready-point snapshot (benchmarks/first_answer.py, after the above; --no-services
          leaves it out).
languages: the Clojure, Groovy, JRuby, Scala and Kotlin hellos with and without their start-up archive,
          in a VM and on the process target, beside the language's own launcher and plain `java` on the
          host (benchmarks/startup_archive.py, last; --langs names fewer, --langs '' none).

Runs alternate (floor, cold, first, repeat, emulated, ...) so drift on the machine hits all alike;
medians of --runs. The last line is JSON, with every part's figures. Hold the bench lock on a shared
machine:

    flock /tmp/osv-bench.lock .venv/bin/python benchmarks/startup.py [--runs 5] [--jdk 17] [--no-services]
        [--langs clojure,groovy,jruby,scala,kotlin]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import first_answer, startup_archive  # noqa: E402
from benchmarks.boot import floor_boot  # noqa: E402
from kernel import linux  # noqa: E402
from kernel.build import poweroff  # noqa: E402
from kernel.build.image import Image  # noqa: E402
from kernel.vm import qemu, snapshot  # noqa: E402
from kernel.vm.qemu_process import QemuProcess  # noqa: E402
from kernel.vm.runner import RunOptions, VirtualMachine  # noqa: E402

OSV = str(Path(sys.executable).parent / "osv-java")
HELLO = ROOT / "examples/hello/hello.jar"
IGNORE_SHARED = [{"capability": "x-ignore-shared", "state": True}]


def timed_run(jdk: str, jar: Path, *extra: str) -> tuple[float, str]:
    start = time.monotonic()
    proc = subprocess.run([OSV, "run", "--jdk", jdk, *extra, str(jar)], capture_output=True, timeout=600, cwd=ROOT,
                          check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"osv-java run {jar} failed ({proc.returncode}): {proc.stderr.decode()[-800:]}")
    return elapsed, proc.stdout.decode().strip()


def new_jar(java_home: Path, folder: Path, greeting: str) -> Path:
    """A hello jar never seen before (its class prints `greeting`)."""
    src = folder / "src"
    src.mkdir(parents=True)
    (src / "Hi.java").write_text(f'public class Hi {{ public static void main(String[] a) {{ '
                                 f'System.out.println("{greeting}"); }} }}')
    subprocess.run([str(java_home / "bin/javac"), "--release", "17", "-d", str(folder / "classes"),
                    str(src / "Hi.java")], check=True)
    jar = folder / "hi.jar"
    with zipfile.ZipFile(jar, "w") as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nMain-Class: Hi\n")
        zf.write(folder / "classes" / "Hi.class", "Hi.class")
    return jar


def emulated_java(java_home: Path) -> tuple[float, str]:
    start = time.monotonic()
    proc = subprocess.run(["qemu-x86_64", "-cpu", qemu.TCG_CPU, str(java_home / "bin/java"), "-jar", str(HELLO)],
                          capture_output=True, timeout=300, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"emulated java failed ({proc.returncode}): {proc.stderr.decode()[-800:]}")
    return elapsed, proc.stdout.decode().strip()


def _guest_argv(image: Image) -> list[str]:
    command = list(image.manifest["jvm_command"])
    return [command[0], *image.manifest.get("jvm_defaults", []), *command[1:]]


class RestoreBench:
    """The three ways to restore one boot snapshot (a machine without policies, saved here)."""

    def __init__(self, image: Image, workdir: Path) -> None:
        self.image = image
        self.workdir = workdir
        for _ in range(2):  # the first run boots cold and notes the machine, the second saves its snapshot
            with VirtualMachine(image, RunOptions()) as vm:
                vm.run(_guest_argv(image), str(image.manifest["inputs"]["app"]["main_class"]))
        vm = VirtualMachine(image, RunOptions())
        accel = qemu.choose_accel("auto", image.kernel)
        self.config, _ = vm._config(accel, _guest_argv(image), None)
        vm.__exit__(None, None, None)
        runtime_key = image.runtime_key
        assert runtime_key is not None
        self.snapshot = snapshot.path_for(snapshot.key(runtime_key, self.config))
        if not self.snapshot.exists():
            raise SystemExit(f"no boot snapshot at {self.snapshot} after two runs")
        self.full_stream = workdir / "full.vmstate"
        self._write_full_stream()

    def _machine(self, run: str, memory: str | None) -> tuple[qemu.MachineConfig, list[str]]:
        """The restoring machine's config (sockets in its own folder) and its QEMU command line with
        the memory backend `memory` (None: the snapshot's memfd copy, as osv-java runs it)."""
        folder = self.workdir / run
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        config = dataclasses.replace(
            self.config, serial_log=folder / "console.log", qmp_socket=folder / "qmp.sock",
            chardevs=[(name, str(folder / f"{name}.sock")) for name, _ in self.config.chardevs],
            incoming=self.snapshot, snapshot_ram="/dev/null")
        argv = config.argv()
        if memory is not None:
            at = next(i for i, arg in enumerate(argv) if arg.startswith("memory-backend-file,"))
            argv[at] = memory
        return config, argv

    def _restore(self, config: qemu.MachineConfig, argv: list[str], stream: Path, ignore_shared: bool,
                 then: str = "cont") -> float:
        qemu_process = QemuProcess(config.serial_log.parent)
        qemu_process.listen(config.chardevs)
        started = qemu_process.start(argv)
        try:
            assert config.qmp_socket is not None and qemu_process.proc is not None
            with snapshot.connect_monitor(config.qmp_socket, qemu_process.proc, started + 60) as monitor:
                if ignore_shared:
                    monitor.execute("migrate-set-capabilities", capabilities=IGNORE_SHARED)
                monitor.execute("migrate-incoming", uri=f"exec:cat {stream}")
                while (status := monitor.execute("query-migrate").get("status")) != "completed":
                    if status in ("failed", "cancelled"):
                        raise SystemExit(f"restore failed: {qemu_process.log.read_text()[-800:]}")
                    time.sleep(0.002)
                if then == "cont":
                    monitor.execute("cont")
                    return time.monotonic() - started
                # The whole machine, RAM included: as snapshots were before.
                monitor.execute("migrate-set-capabilities", capabilities=[{**IGNORE_SHARED[0], "state": False}])
                monitor.execute("migrate", uri=f"exec:cat > {then}")
                while (status := monitor.execute("query-migrate").get("status")) != "completed":
                    if status in ("failed", "cancelled"):
                        raise SystemExit(f"writing the full stream failed: {status}")
                    time.sleep(0.01)
                return time.monotonic() - started
        finally:
            qemu_process.close()

    def _memfd_backend(self, memfd: int) -> str:
        size = self.config.argv()[self.config.argv().index("-m") + 1]
        return f"memory-backend-file,id=ram,size={size},mem-path=/proc/{os.getpid()}/fd/{memfd},share=on"

    def _write_full_stream(self) -> None:
        memfd = snapshot.ram_copy(self.snapshot)
        try:
            config, argv = self._machine("full", self._memfd_backend(memfd))
            self._restore(config, argv, snapshot.state_for(self.snapshot), ignore_shared=True,
                          then=str(self.full_stream))
        finally:
            os.close(memfd)

    def stream(self) -> float:
        size = self.config.argv()[self.config.argv().index("-m") + 1]
        config, argv = self._machine("stream", f"memory-backend-ram,id=ram,size={size}")
        return self._restore(config, argv, self.full_stream, ignore_shared=False)

    def copy(self) -> float:
        start = time.monotonic()
        memfd = snapshot.ram_copy(self.snapshot)
        try:
            config, argv = self._machine("copy", self._memfd_backend(memfd))
            copied = time.monotonic() - start
            return copied + self._restore(config, argv, snapshot.state_for(self.snapshot), ignore_shared=True)
        finally:
            os.close(memfd)

    def map(self) -> float:
        size = self.config.argv()[self.config.argv().index("-m") + 1]
        ram = snapshot.ram_for(self.snapshot)
        config, argv = self._machine("map", f"memory-backend-file,id=ram,size={size},mem-path={ram},share=off")
        return self._restore(config, argv, snapshot.state_for(self.snapshot), ignore_shared=True)


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jdk", default="17")
    parser.add_argument("--services", action=argparse.BooleanOptionalAction, default=True,
                        help="time services' first HTTP answer, started and from a ready-point snapshot")
    parser.add_argument("--langs", default=",".join(startup_archive.HELLOS),
                        help="the language hellos to time (comma-separated; '' for none)")
    args = parser.parse_args()
    langs = startup_archive.languages(args.langs)
    if shutil.which("qemu-x86_64") is None:
        raise SystemExit("qemu-x86_64 is missing: apt-get install qemu-user (or `make deps`)")

    subprocess.run([sys.executable, "-m", "examples.build", "--quiet"], cwd=ROOT, check=True)
    workdir = Path(tempfile.mkdtemp(prefix="osv-bench-startup-"))
    build = subprocess.run([OSV, "build", "--jdk", args.jdk, str(HELLO), "-o", str(workdir / "image"), "--json"],
                           capture_output=True, cwd=ROOT, check=True)
    image = Image.load(Path(json.loads(build.stdout)["folder"]))
    java_home = Path(image.manifest["inputs"]["jdk"]["home"])
    kernel = linux.default_kernel()
    accel = qemu.choose_accel("auto", kernel.image)
    print(f"accelerator: {accel}; warming up (hello three times: the second saves the runtime's boot snapshot, "
          "the third its started JVM's)", file=sys.stderr)
    for _ in range(3):
        timed_run(args.jdk, HELLO)
    for _ in range(2):
        timed_run(args.jdk, HELLO, "--no-zygote", "--dynamic-heap", "off")
    runs: dict[str, list[float]] = {name: [] for name in ("floor", "cold", "first", "repeat", "emulated", "first-plain",
                                                          "repeat-plain", "mapped", "stream", "copy", "map")}
    try:
        initrd = workdir / "floor.img"
        poweroff.initramfs(str(initrd))
        restore = RestoreBench(image, workdir)
        for i in range(args.runs):
            runs["floor"].append(floor_boot(kernel.image, accel, initrd, workdir / "console.log"))
            runs["cold"].append(timed_run(args.jdk, HELLO, "--cold-boot")[0])
            for way, options in (("", ()), ("-plain", ("--no-zygote",))):
                greeting = f"hello number {i}{way} from a jar never run before ({time.time_ns()})"
                seconds, said = timed_run(args.jdk, new_jar(java_home, workdir / f"jar{i}{way}", greeting), *options)
                if said != greeting:
                    raise SystemExit(f"the new jar printed {said!r}, not {greeting!r}")
                runs[f"first{way}"].append(seconds)
                runs[f"repeat{way}"].append(timed_run(args.jdk, HELLO, *options)[0])
            runs["mapped"].append(timed_run(args.jdk, HELLO, "--no-zygote", "--dynamic-heap", "off")[0])
            runs["emulated"].append(emulated_java(java_home)[0])
            for way in ("stream", "copy", "map"):
                runs[way].append(getattr(restore, way)())
            print(f"run {i + 1}: " + "  ".join(f"{name} {values[-1]:.3f}s" for name, values in runs.items()),
                  file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    services = first_answer.measure(args.jdk, args.runs) if args.services else {}
    hellos = startup_archive.measure(args.jdk, args.runs, langs) if langs else {}
    medians = {name: median(values) for name, values in runs.items()}
    floor, emulated = medians["floor"], medians["emulated"]
    print("medians: " + "  ".join(f"{name} {value:.3f}s" for name, value in medians.items()))
    print(f"first run of a new jar {medians['first'] / floor:.2f}x the floor and {medians['first'] / emulated:.2f}x "
          f"the emulated java; repeat run {medians['repeat'] / floor:.2f}x the floor and "
          f"{medians['repeat'] / emulated:.2f}x the emulated java; first run / repeat run "
          f"{medians['first'] / medians['repeat']:.2f}")
    print(f"with --no-zygote: first run {medians['first-plain'] / floor:.2f}x the floor, repeat run "
          f"{medians['repeat-plain'] / emulated:.2f}x the emulated java ({medians['mapped'] / emulated:.2f}x without "
          f"the balloon); restore: stream {medians['stream']:.3f}s, copy {medians['copy']:.3f}s, "
          f"map {medians['map']:.3f}s")
    ram = snapshot.ram_for(restore.snapshot)
    print(json.dumps({
        "first_run_ratio_to_floor": round(medians["first"] / floor, 3),
        "repeat_run_ratio_to_floor": round(medians["repeat"] / floor, 3),
        "repeat_run_ratio_to_emulated_java": round(medians["repeat"] / emulated, 3),
        "first_run_ratio_to_repeat_run": round(medians["first"] / medians["repeat"], 3),
        "cold_ratio_to_floor": round(medians["cold"] / floor, 3),
        "first_run_without_zygote_ratio_to_floor": round(medians["first-plain"] / floor, 3),
        "repeat_run_without_zygote_ratio_to_emulated_java": round(medians["repeat-plain"] / emulated, 3),
        "repeat_run_without_zygote_or_balloon_ratio_to_emulated_java": round(medians["mapped"] / emulated, 3),
        "restore_copy_vs_stream": round(medians["copy"] / medians["stream"], 3),
        "restore_map_vs_stream": round(medians["map"] / medians["stream"], 3),
        **services,
        **hellos,
        "medians_s": medians,
        "runs_s": {name: [round(v, 3) for v in values] for name, values in runs.items()},
        "snapshot_ram_bytes": ram.stat().st_blocks * 512 if ram.exists() else None,
        "accel": accel,
        "jdk": image.manifest["inputs"]["jdk"]["version"],
        "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
