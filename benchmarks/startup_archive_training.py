"""Where a VM image's start-up archive is trained: on this host (what osv-java does) or in the guest.

host:  the training osv-java runs: the image's jlinked JRE, natively, with the jars as the image shows
       them (private mount namespace), then the JVM's check of the new archive (-Xshare:on / AOTMode=on).
guest: the same training inside the VM: `osv-java run --no-startup-archive --jvm-opt=<dump option>`,
       the archive written to the guest's /tmp (and still to be brought out of the guest, not counted).
plain: the same VM run without the dump, for what the dump itself adds in the guest.

Per language hello (examples/lang), medians of N, interleaved; last line JSON with the ratios
guest / host (how much longer training in the guest would take).

    flock /tmp/osv-bench.lock .venv/bin/python benchmarks/startup_archive_training.py [--runs 3] [--jdk 17]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jvmbridge import jdk as jdks  # noqa: E402
from kernel.build import image, jre, startup_archive  # noqa: E402
from osv_java import launch  # noqa: E402

OSV = str(Path(sys.executable).parent / "osv-java")
LANG_DIR = ROOT / "examples" / "lang"
HELLOS = {
    "clojure": ("clojure/main.clj",),
    "groovy": ("groovy/main.groovy",),
    "jruby": ("jruby/main.rb",),
    "scala": ("--with", "scala", "scala/app.jar"),
    "kotlin": ("--with", "kotlin", "kotlin/app.jar"),
}


def host_training(app: tuple[str, ...], jdk: str) -> float:
    """Seconds of one training on this host, into a scratch folder (the cache is left alone)."""
    with_runtimes = tuple(app[i + 1] for i, word in enumerate(app) if word == "--with")
    target = launch.resolve(str(LANG_DIR / app[-1]), ["world"], None, jdk, None, with_runtimes)
    launch.startup_archive_for_image(target, {}, [])  # links the JRE (not timed) and fills the cache
    jre_dir = jre.linked(target.jdk, list(target.modules))
    assert jre_dir is not None
    training = startup_archive.Training(
        jre=jre_dir, feature=target.jdk.feature, options=target.host_jvm_options,
        launch=tuple(image.launch_arguments(target.app)), args=tuple(target.args),
        classpath=(*target.app.classpath, *target.app.runtime), guest_view=True,
        env={"PATH": f"{jre_dir}/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}, cwd=str(LANG_DIR))
    with tempfile.TemporaryDirectory(prefix="osv-bench-train-") as scratch:
        start = time.monotonic()
        made = startup_archive.make(training, Path(scratch) / "entry", app[-1])
        elapsed = time.monotonic() - start
    if made is None:
        raise SystemExit(f"{app[-1]}: host training made no archive")
    return elapsed


def guest_run(app: tuple[str, ...], jdk: str, dump: bool) -> float:
    feature = jdks.select(jdk).feature
    option = "-XX:AOTCacheOutput=/tmp/app.aot" if feature >= 25 else "-XX:ArchiveClassesAtExit=/tmp/app.jsa"
    extra = [f"--jvm-opt={option}"] if dump else []
    start = time.monotonic()
    proc = subprocess.run([OSV, "run", "--jdk", jdk, "--no-startup-archive", *extra, *app, "world"],
                          capture_output=True, timeout=900, cwd=LANG_DIR, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 3:
        raise SystemExit(f"{app[-1]} in the guest: exit {proc.returncode}\n{proc.stderr.decode()[-1500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jdk", default="17")
    parser.add_argument("--langs", default=",".join(HELLOS))
    args = parser.parse_args()
    langs = [name for name in args.langs.split(",") if name in HELLOS]
    subprocess.run([sys.executable, "-m", "examples.build", "--quiet"], cwd=ROOT, check=True)
    result: dict[str, object] = {"jdk": args.jdk, "runs": args.runs}
    for name in langs:
        app = HELLOS[name]
        for _ in range(2):  # warm-up: image built, boot snapshot saved
            guest_run(app, args.jdk, dump=False)
        hosts, guests, plains = [], [], []
        for round_no in range(1, args.runs + 1):
            hosts.append(host_training(app, args.jdk))
            guests.append(guest_run(app, args.jdk, dump=True))
            plains.append(guest_run(app, args.jdk, dump=False))
            print(f"round {round_no} {name}: host training {hosts[-1]:.2f}s  guest run with dump "
                  f"{guests[-1]:.2f}s  guest run without {plains[-1]:.2f}s", flush=True)
        host, guest, plain = (statistics.median(x) for x in (hosts, guests, plains))
        print(f"  {name}: host {host:.2f}s, guest {guest:.2f}s ({guest / host:.1f}x), "
              f"the dump adds {guest - plain:.2f}s in the guest")
        result.update({f"{name}_host_training_s": round(host, 3), f"{name}_guest_training_s": round(guest, 3),
                       f"{name}_guest_plain_run_s": round(plain, 3),
                       f"{name}_guest_vs_host_training": round(guest / host, 3)})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
