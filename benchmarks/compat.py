"""Time the compatibility matrix on a cold cache (every image built) and again on the warm one.

    python benchmarks/compat.py [--targets process,vm] [--jdks 17] [--langs all] [-j 2]

The cold run is the baseline; the warm run shows what sharing images through the cache saves. The
cold cache gets the default cache's kernel (hard links), so no download is timed. Prints both times,
the ratio, and the slowest cells.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fresh_cache(where: Path) -> Path:
    """A cache holding only the default cache's kernel, hard-linked."""
    default = Path(os.environ.get("OSV_JAVA_CACHE") or Path.home() / ".cache" / "osv-java")
    record = default / "kernels" / "default.json"
    cache = where / "cache"
    if record.exists():
        folder = Path(json.loads(record.read_text())["folder"])
        target = cache / "kernels" / folder.name
        shutil.copytree(folder, target, copy_function=os.link)
        (cache / "kernels" / "default.json").write_text(json.dumps({"folder": str(target)}))
    return cache


def run(args: argparse.Namespace, cache: Path, report: Path) -> tuple[float, dict]:
    argv = [sys.executable, "-c", "from osv_java.compat.command import compat_command; compat_command()",
            "--langs", args.langs, "--jdks", args.jdks, "--targets", args.targets, "-j", str(args.jobs),
            "--format", "json", "-o", str(report)]
    start = time.monotonic()
    subprocess.run(argv, cwd=ROOT, env={**os.environ, "OSV_JAVA_CACHE": str(cache)}, check=False,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - start, json.loads(report.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--langs", default="all")
    parser.add_argument("--jdks", default="17")
    parser.add_argument("--targets", default="process,vm")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="osv-java-bench-") as tmp:
        cache = fresh_cache(Path(tmp))
        cold, cold_report = run(args, cache, Path(tmp) / "cold.json")
        warm, warm_report = run(args, cache, Path(tmp) / "warm.json")
    print(f"cold cache: {cold:7.1f} s  ({cold_report['summary']})")
    print(f"warm cache: {warm:7.1f} s  ({warm_report['summary']})")
    print(f"warm / cold: {warm / cold:.2f}")
    slowest = sorted(warm_report["cells"], key=lambda c: -c["seconds"])[:5]
    print("slowest cells (warm):")
    for cell in slowest:
        print(f"  {cell['seconds']:6.1f} s  {cell['row']} [{cell['column']}]")


if __name__ == "__main__":
    main()
