"""The process target's default start-up archive (made in the background after an app's first run),
against no archive and the language's own launcher, interleaved round by round in one run:

  plain     osv-java run --target process --no-startup-archive
  first     the default with the app's archive removed before it: the first run of a new app, which
            starts without one and leaves the training to run after it (waited for outside the timing)
  repeat    the default with the archive in place: every run after an app's first
  launcher  the language's own launcher on the host (`clojure`, `groovy`, ...)

Ratios: first / plain (what the first run pays for leaving a training behind: about 1), plain / repeat
(what the archive gains by default), launcher / repeat (the process target against the host's launcher).
Last line JSON.

    flock /tmp/osv-bench.lock .venv/bin/python benchmarks/startup_archive_default.py [--runs 11] [--jdk 17]
        [--langs clojure,groovy,jruby,scala,kotlin]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys

import trainings
from startup_archive import ARGS, ENV, HELLOS, LANG_DIR, OSV, ROOT, Hello, checked_run, languages, ratio

from kernel import cache

CONFIGS = ("plain", "first", "repeat", "launcher")


def argv(hello: Hello, config: str, jdk: str) -> list[str]:
    if config == "launcher":
        return [*hello.launcher, *ARGS]
    env_opts = [opt for key, value in ENV.items() for opt in ("-e", f"{key}={value}")]
    archive = ["--no-startup-archive"] if config == "plain" else []
    return [OSV, "run", "--target", "process", "--jdk", jdk, *archive, *env_opts, *hello.osv_app, *ARGS]


def forget_archive(hello: Hello) -> int:
    """Remove every archive the cache holds for `hello`'s app; how many there were."""
    label = str((LANG_DIR / hello.osv_app[-1]).resolve())
    removed = 0
    for meta_path in (cache.root() / "startup").glob("*/meta.json"):
        if json.loads(meta_path.read_text()).get("label") == label:
            shutil.rmtree(meta_path.parent)
            removed += 1
    return removed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--jdk", default="17")
    parser.add_argument("--langs", default="clojure")
    args = parser.parse_args()
    names = languages(args.langs)
    subprocess.run([sys.executable, "-m", "examples.build", "--quiet"], cwd=ROOT, check=True)
    expected = {name: json.loads((LANG_DIR / name / "expected.json").read_text()) for name in names}
    result: dict[str, object] = {"jdk": args.jdk, "runs": args.runs}
    print("warming up: one run of each (the archives made)", file=sys.stderr)
    for name in names:
        for config in CONFIGS:
            checked_run(argv(HELLOS[name], config, args.jdk), f"{name} {config}", expected[name])
    for name in names:
        hello, times = HELLOS[name], {config: [] for config in CONFIGS}
        for round_no in range(1, args.runs + 1):
            for config in CONFIGS:
                if config == "first" and not forget_archive(hello):
                    raise SystemExit(f"{name}: no archive to remove before a first run: the last run made none")
                seconds, _ = checked_run(argv(hello, config, args.jdk), f"{name} {config}", expected[name])
                times[config].append(seconds)  # checked_run waits for the training a first run left
            print(f"round {round_no} {name}: " + "  ".join(f"{c} {times[c][-1]:.3f}s" for c in CONFIGS), flush=True)
        for config in CONFIGS:
            result[f"{name}_{config}_s"] = round(statistics.median(times[config]), 3)
        result[f"{name}_first_vs_plain"] = ratio(times["first"], times["plain"])
        result[f"{name}_archive_speedup"] = ratio(times["plain"], times["repeat"])
        result[f"{name}_repeat_vs_launcher"] = ratio(times["launcher"], times["repeat"])
        print(f"{name}, medians of {args.runs} (JDK {args.jdk}): plain {result[f'{name}_plain_s']} s, first "
              f"{result[f'{name}_first_s']} s ({result[f'{name}_first_vs_plain']}x plain), repeat "
              f"{result[f'{name}_repeat_s']} s ({result[f'{name}_archive_speedup']}x faster than plain, "
              f"{result[f'{name}_repeat_vs_launcher']}x faster than the launcher's {result[f'{name}_launcher_s']} s)",
              flush=True)
    trainings.settle()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
