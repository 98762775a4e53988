"""Start-up archives: JVM language hellos with and without the app's archive, in a VM and on the
process target, beside the language's own launcher on this host, in one run.

Each hello is the language's example of the compatibility matrix (examples/lang: Clojure, Groovy and
JRuby scripts, Scala and Kotlin jars run --with their runtime), run with `world` and GREETING=Hello;
every run's output is checked against its expected.json, so a faster run that prints something else
fails the benchmark. Configurations, interleaved round by round so the machine's drift hits all alike
(one language after the other, so that its snapshots fit the snapshot cache's bound):

  vm          osv-java run --startup-archive: the image carries the start-up archive, and the run restores
              a JVM started with it and the app's class path (kernel/vm/zygote.py), the app's own
  vm-fresh    osv-java run --startup-archive --no-zygote: the JVM starts in the run and maps the archive
  vm-plain    osv-java run --no-startup-archive --no-zygote (the JVM starts without either)
  vm-default  osv-java run: the default, a restored started JVM with the runtime loaded (kernel/vm/zygote.py)
  proc        osv-java run --target process: the default, an archive for the host JDK (made in the
              background after the warm-up run, which the benchmark waits for)
  proc-plain  osv-java run --target process --no-startup-archive
  launcher    the language's own command as Debian installs it (clojure, groovy, jruby, scala, kotlin)
  java        plain `java` of the same JDK with the runtime's class path, main class and options (what
              the launcher script runs, and what --target process runs without osv-java around it)

Warm-up runs come first and are not counted: they train the archives, build the images and save the
machines' boot snapshots (a machine's second run saves it). Per configuration the medians of N runs of
the whole run (wall time of the command) and, for osv-java, JVM start: exec to main (from a second
run with `--bootchart`: from the JVM's exec to its main class's initialisation, or in a run handed to a
restored started JVM from handing it the app (`app_launched`) to that; the whole run is timed without
it, as its class-initialisation log slows the JVM). A launcher script's own exec-to-main is not
measurable from outside, so it has the whole run only. Last line JSON: per language
`LANG_vm_speedup_archive` and `LANG_process_speedup_archive` (JVM start, without / with: vm-plain / vm,
proc-plain / proc), `LANG_vm_fresh_speedup_archive` (exec to main, vm-plain / vm-fresh: the archive alone),
`LANG_vm_run_speedup_archive` and `LANG_process_run_speedup_archive` (whole run),
`LANG_vm_run_speedup_default` (vm-plain's whole run / vm-default's), and
`LANG_process_vs_host_launcher` (the launcher's whole run / the process target's with the archive) and
`LANG_process_vs_java` (plain java's whole run / the same).

    flock /tmp/osv-bench.lock .venv/bin/python benchmarks/startup_archive.py [--runs 5] [--jdk 17]
        [--langs clojure,groovy,jruby,scala,kotlin]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import trainings

ROOT = Path(__file__).resolve().parent.parent
OSV = str(Path(sys.executable).parent / "osv-java")
LANG_DIR = ROOT / "examples" / "lang"
ARGS = ["world"]
ENV = {"GREETING": "Hello"}
BOOTCHART_LINE = re.compile(r"^\s+(\w+)\s+([\d.]+)\s+\(\+", re.M)


@dataclass(frozen=True)
class Hello:
    lang: str
    osv_app: tuple[str, ...]  # what follows `osv-java run [options]`
    launcher: tuple[str, ...]  # the host's own command


HELLOS = {
    "clojure": Hello("clojure", ("clojure/main.clj",), ("clojure", "clojure/main.clj")),
    "groovy": Hello("groovy", ("groovy/main.groovy",), ("groovy", "groovy/main.groovy")),
    "jruby": Hello("jruby", ("jruby/main.rb",), ("jruby", "jruby/main.rb")),
    "scala": Hello("scala", ("--with", "scala", "scala/app.jar"), ("scala", "-nc", "-cp", "scala/app.jar", "Main")),
    "kotlin": Hello("kotlin", ("--with", "kotlin", "kotlin/app.jar"), ("kotlin", "-cp", "kotlin/app.jar", "MainKt")),
}
CONFIGS = {
    "vm": ("--startup-archive",),
    "vm-fresh": ("--startup-archive", "--no-zygote"),
    "vm-plain": ("--no-startup-archive", "--no-zygote"),
    "vm-default": (),
    "proc": ("--target", "process"),
    "proc-plain": ("--target", "process", "--no-startup-archive"),
}
WARMUPS = {"vm": 3, "vm-fresh": 2, "vm-plain": 2, "vm-default": 3, "proc": 1, "proc-plain": 1, "launcher": 1, "java": 1}
NO_JVM_START = ("launcher", "java")
# --bootchart adds a JVM option, so a started JVM's snapshot of its own: saved by a warm-up run too
STARTED_JVM = ("vm", "vm-default")


@dataclass
class Samples:
    runs: list[float] = field(default_factory=list)
    jvm_start: list[float] = field(default_factory=list)


def plain_java(hello: Hello, jdk: str) -> list[str]:
    """`java` with what osv-java's process target would run, minus osv-java and its policies' options."""
    sys.path.insert(0, str(ROOT))
    from kernel.build.image import launch_arguments
    from osv_java import launch

    with_runtimes = tuple(hello.osv_app[i + 1] for i, word in enumerate(hello.osv_app) if word == "--with")
    target = launch.resolve(str(LANG_DIR / hello.osv_app[-1]), ARGS, None, jdk, None, with_runtimes,
                            link_modules=False)
    return [str(target.jdk.tool("java")), *target.extra_jvm_options, *launch_arguments(target.app), *target.args]


def command(hello: Hello, config: str, jdk: str, bootchart: bool = False) -> list[str]:
    if config == "launcher":
        return [*hello.launcher, *ARGS]
    if config == "java":
        return plain_java(hello, jdk)
    env_opts = [opt for key, value in ENV.items() for opt in ("-e", f"{key}={value}")]
    chart = ["--bootchart"] if bootchart else []
    return [OSV, "run", "--jdk", jdk, *chart, *CONFIGS[config], *env_opts, *hello.osv_app, *ARGS]


def checked_run(argv: list[str], what: str, expected: dict) -> tuple[float, str]:
    """Wall seconds and stderr of one run of a hello's `argv`, which must print what `expected` says."""
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, timeout=900, cwd=LANG_DIR,
                          env={**os.environ, **ENV}, check=False)
    elapsed = time.monotonic() - start
    trainings.settle()
    stdout, stderr = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    # stderr may also hold the build's warnings about the runtime's jars (warm-up runs build the images)
    if proc.returncode != expected["exit"] or stdout != expected["stdout"] or expected["stderr"] not in stderr:
        raise SystemExit(f"{what}: unexpected result (exit {proc.returncode})\n"
                         f"--- stdout ---\n{stdout[-1500:]}\n--- stderr ---\n{stderr[-1500:]}")
    return elapsed, stderr


def run_once(hello: Hello, config: str, jdk: str, expected: dict, bootchart: bool = False,
             warm_up: bool = False) -> tuple[float, float | None]:
    """Whole-run seconds and, with `bootchart`, JVM start seconds of one checked run. The whole run is
    timed without the bootchart: its class-initialisation log slows a JVM that initialises thousands of
    classes (Clojure's runtime), as a user's run is not."""
    elapsed, stderr = checked_run(command(hello, config, jdk, bootchart), f"{hello.lang} {config}", expected)
    if not bootchart:
        return elapsed, None
    marks = {name: float(at) for name, at in BOOTCHART_LINE.findall(stderr.partition(expected["stderr"])[2])}
    if not warm_up and ((config in STARTED_JVM and "app_launched" not in marks) or "ready_saved" in marks):
        raise SystemExit(f"{hello.lang} {config}: the started JVM's snapshot was not restored:\n{stderr[-1500:]}")
    started = marks.get("jvm_exec", marks.get("app_launched"))  # the JVM's exec, or the app handed to one
    if started is None or "main_entered" not in marks:
        raise SystemExit(f"{hello.lang} {config}: no JVM start in the bootchart:\n{stderr[-1500:]}")
    return elapsed, marks["main_entered"] - started


def ratio(slow: list[float], fast: list[float]) -> float:
    return round(statistics.median(slow) / statistics.median(fast), 3)


def languages(text: str) -> list[str]:
    """--langs: names of HELLOS, comma-separated (empty: none); SystemExit naming an unknown one or a
    missing launcher."""
    langs = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in langs if name not in HELLOS]
    if unknown:
        raise SystemExit(f"unknown --langs {', '.join(unknown)} (known: {', '.join(HELLOS)})")
    missing = [HELLOS[name].launcher[0] for name in langs if shutil.which(HELLOS[name].launcher[0]) is None]
    if missing:
        raise SystemExit(f"the host launchers {', '.join(missing)} are missing: apt-get install them (make test does)")
    return langs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jdk", default="17", help="the JDK osv-java runs (the launchers use Debian's default)")
    parser.add_argument("--langs", default=",".join(HELLOS))
    args = parser.parse_args()
    print(json.dumps(measure(args.jdk, args.runs, languages(args.langs))))


def measure(jdk: str, runs: int, langs: list[str]) -> dict[str, object]:
    """Warm-ups, then `runs` rounds per language; prints the medians and ratios, returns them (JSON-safe)."""
    subprocess.run([sys.executable, "-m", "examples.build", "--quiet"], cwd=ROOT, check=True)
    configs = [*CONFIGS, "launcher", "java"]
    expected = {name: json.loads((LANG_DIR / name / "expected.json").read_text()) for name in langs}
    samples = {(name, config): Samples() for name in langs for config in configs}
    # One language after the other: a language's snapshots (a boot snapshot, four started JVMs) fit the
    # snapshot cache's bound (kernel.vm.snapshot.KEEP), two languages' do not, and a run that saves its
    # snapshot again is no restore
    for name in langs:
        print(f"{name}: warming up: archives trained, images built, snapshots saved", file=sys.stderr)
        for config in configs:
            for _ in range(WARMUPS[config]):
                run_once(HELLOS[name], config, jdk, expected[name])
            if config in STARTED_JVM:  # saves the started JVM that --bootchart's option makes
                run_once(HELLOS[name], config, jdk, expected[name], bootchart=True, warm_up=True)
        for round_no in range(1, runs + 1):
            line = []
            for config in configs:
                whole, _ = run_once(HELLOS[name], config, jdk, expected[name])
                samples[name, config].runs.append(whole)
                to_main = None
                if config not in NO_JVM_START:  # osv-java's: one more run, with the bootchart, for JVM start
                    _, to_main = run_once(HELLOS[name], config, jdk, expected[name], bootchart=True)
                    assert to_main is not None
                    samples[name, config].jvm_start.append(to_main)
                line.append(f"{config} {whole:.2f}s" + (f" ({to_main:.2f}s to main)" if to_main is not None else ""))
            print(f"round {round_no} {name}: " + "  ".join(line), flush=True)

    result: dict[str, object] = {"jdk": jdk, "runs": runs, "cpus": os.cpu_count()}
    print(f"\nmedians of {runs} (whole run / JVM start, seconds), JDK {jdk}:")
    for name in langs:
        s = {config: samples[name, config] for config in configs}
        cells = []
        for config in configs:
            whole = statistics.median(s[config].runs)
            to_main = f" / {statistics.median(s[config].jvm_start):.2f}" if s[config].jvm_start else ""
            cells.append(f"{config} {whole:.2f}{to_main}")
            result[f"{name}_{config.replace('-', '_')}_s"] = round(whole, 3)
            if s[config].jvm_start:
                result[f"{name}_{config.replace('-', '_')}_jvm_start_s"] = round(
                    statistics.median(s[config].jvm_start), 3)
        ratios = {
            f"{name}_vm_speedup_archive": ratio(s["vm-plain"].jvm_start, s["vm"].jvm_start),
            f"{name}_vm_fresh_speedup_archive": ratio(s["vm-plain"].jvm_start, s["vm-fresh"].jvm_start),
            f"{name}_vm_run_speedup_archive_vs_default": ratio(s["vm-default"].runs, s["vm"].runs),
            f"{name}_vm_run_speedup_archive": ratio(s["vm-plain"].runs, s["vm"].runs),
            f"{name}_vm_run_speedup_default": ratio(s["vm-plain"].runs, s["vm-default"].runs),
            f"{name}_process_speedup_archive": ratio(s["proc-plain"].jvm_start, s["proc"].jvm_start),
            f"{name}_process_run_speedup_archive": ratio(s["proc-plain"].runs, s["proc"].runs),
            f"{name}_process_vs_host_launcher": ratio(s["launcher"].runs, s["proc"].runs),
            f"{name}_process_plain_vs_host_launcher": ratio(s["launcher"].runs, s["proc-plain"].runs),
            f"{name}_process_vs_java": ratio(s["java"].runs, s["proc"].runs),
        }
        result.update(ratios)
        print(f"  {name:<8} " + "  ".join(cells))
        print(f"  {'':<8} JVM start with the archive: {ratios[f'{name}_vm_speedup_archive']}x shorter in the VM "
              f"(a JVM started with it, restored; exec to main of a JVM that starts in the run: "
              f"{ratios[f'{name}_vm_fresh_speedup_archive']}x), {ratios[f'{name}_process_speedup_archive']}x on the "
              f"process target; whole run {ratios[f'{name}_vm_run_speedup_archive']}x "
              f"({ratios[f'{name}_vm_run_speedup_archive_vs_default']}x the default's) and "
              f"{ratios[f'{name}_process_run_speedup_archive']}x; "
              f"the default VM run (a restored started JVM) {ratios[f'{name}_vm_run_speedup_default']}x; "
              f"process target vs `{HELLOS[name].launcher[0]}`: {ratios[f'{name}_process_vs_host_launcher']}x faster, "
              f"vs plain java: {ratios[f'{name}_process_vs_java']}x")
    return result


if __name__ == "__main__":
    main()
