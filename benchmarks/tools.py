"""JDK tools through ToolProvider in one JPype JVM vs a process per tool, in the same run.

Prints per-tool medians for both backends and the ratio, the JPype JVM start cost once, and a JSON
summary on the last line. Usage: python benchmarks/tools.py [--jdk 17] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jvmbridge.jdk import select  # noqa: E402
from jvmbridge.tools import _run_jpype, _start, run_subprocess  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jdk", default="17")
    parser.add_argument("--repeat", type=int, default=7)
    opts = parser.parse_args()
    jdk = select(opts.jdk)
    scratch = tempfile.TemporaryDirectory(prefix="osv-java-bench-tools-")
    work = Path(scratch.name)
    (work / "Hello.java").write_text("public class Hello { public static void main(String[] a) {} }\n")
    run_subprocess(jdk, "javac", ["-d", str(work), str(work / "Hello.java")])
    jar = work / "hello.jar"
    run_subprocess(jdk, "jar", ["--create", "--file", str(jar), "-C", str(work), "Hello.class"])
    cases = {
        "jar --version": ("jar", ["--version"]),
        "jar --list": ("jar", ["--list", "--file", str(jar)]),
        "jdeps --list-deps": ("jdeps", ["--list-deps", str(jar)]),
        "jlink --list-plugins": ("jlink", ["--list-plugins"]),
    }
    t0 = time.perf_counter()
    _start(jdk)
    jvm_start = time.perf_counter() - t0
    results = {}
    for label, (tool, args) in cases.items():
        sub, inproc = [], []
        for _ in range(opts.repeat):
            t = time.perf_counter()
            a = run_subprocess(jdk, tool, args)
            sub.append(time.perf_counter() - t)
            t = time.perf_counter()
            b = _run_jpype(jdk, tool, args)
            inproc.append(time.perf_counter() - t)
            assert b is not None and a.returncode == b.returncode, (label, a, b)
        ms, mj = statistics.median(sub), statistics.median(inproc)
        results[label] = {
            "subprocess_ms": round(ms * 1e3, 2),
            "jpype_ms": round(mj * 1e3, 2),
            "speedup": round(ms / mj, 1),
        }
        print(f"{label:<24} subprocess {ms * 1e3:8.1f} ms   jpype {mj * 1e3:8.1f} ms   x{ms / mj:.1f}")
    print(f"JPype JVM start (once per process): {jvm_start * 1e3:.0f} ms")
    scratch.cleanup()
    print(
        json.dumps(
            {
                "jdk": jdk.version,
                "repeat": opts.repeat,
                "jpype_start_ms": round(jvm_start * 1e3, 1),
                "tools": results,
            }
        )
    )


if __name__ == "__main__":
    main()
