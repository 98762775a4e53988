"""Boot time of hello through `osv-java run` against the floor, in one run.

floor: the same kernel and QEMU machine, with an initramfs whose /init powers off at once (a static
       ELF of a few bytes: no loader, no Python, no JVM).
hello: `osv-java run examples/hello/hello.jar` with a warm cache (image built, accelerator probed,
       the machine's boot snapshot saved: two warm-up runs), so the VM starts from that snapshot.
cold:  the same with --cold-boot: the kernel, /init and PID 1 boot afresh (what a first run costs).

Boots alternate (floor, hello, cold, floor, ...) so drift on the machine hits all alike. Prints each
measurement, the medians and the ratios; the last line is JSON ("ratio" is hello's).

--baseline-tree DIR adds another checkout's hello and cold runs to the same rotation (its own
osv_java and kernel, on PYTHONPATH, with this venv and the same jar): an old tree against this one.

    .venv/bin/python benchmarks/boot.py [--runs 5] [--jdk 17] [--baseline-tree DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kernel import linux  # noqa: E402
from kernel.build import poweroff  # noqa: E402
from kernel.build.image import Image  # noqa: E402
from kernel.vm import qemu  # noqa: E402

OSV = str(Path(sys.executable).parent / "osv-java")
HELLO = "examples/hello/hello.jar"


def floor_boot(kernel: Path, accel: str, initrd: Path, log: Path) -> float:
    config = qemu.MachineConfig(
        kernel=kernel,
        initramfs=initrd,
        memory_mb=1024,
        cpus=2,
        accel=accel,
        cmdline=qemu.base_cmdline(accel, verbose=False),
        serial_log=log,
    )
    start = time.monotonic()
    proc = subprocess.run(config.argv(), stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"floor boot failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return elapsed


def hello_boot(jdk: str, cold: bool = False, tree: Path | None = None) -> tuple[float, str]:
    """One `osv-java run` of hello; with `tree`, that checkout's code runs it instead of ours."""
    env = {**os.environ, "PYTHONPATH": str(tree)} if tree is not None else None
    start = time.monotonic()
    proc = subprocess.run([OSV, "run", "--jdk", jdk, *(["--cold-boot"] if cold else []), str(ROOT / HELLO)],
                          capture_output=True, timeout=300, cwd=ROOT, env=env, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0 or not proc.stdout.startswith(b"Hello from osv-java!"):
        raise SystemExit(f"hello failed ({proc.returncode}): {proc.stderr.decode()[-800:]}")
    return elapsed, proc.stdout.decode().strip()


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jdk", default="17")
    parser.add_argument("--baseline-tree", type=Path, help="another checkout to boot hello with, in the same rotation")
    args = parser.parse_args()
    base: Path | None = args.baseline_tree.resolve() if args.baseline_tree else None
    if base is not None and not (base / "osv_java" / "cli.py").is_file():
        parser.error(f"--baseline-tree {base} is not an osv-java checkout (no osv_java/cli.py): give its folder")

    subprocess.run([sys.executable, "-m", "examples.build", "--quiet"], cwd=ROOT, check=True)
    build = subprocess.run([OSV, "build", "--jdk", args.jdk, HELLO, "-o", tempfile.mkdtemp(prefix="osv-bench-"),
                            "--json"], capture_output=True, cwd=ROOT, check=True)
    summary = json.loads(build.stdout)
    image = Image.load(Path(summary["folder"]))
    kernel = linux.default_kernel()
    accel = qemu.choose_accel("auto", kernel.image)
    print(f"accelerator: {accel}; warming up (two hello runs: the second saves the boot snapshot)",
          file=sys.stderr)
    for _ in range(2):
        hello_boot(args.jdk)
        if base is not None:
            hello_boot(args.jdk, tree=base)

    floors: list[float] = []
    hellos: list[float] = []
    colds: list[float] = []
    base_hellos: list[float] = []
    base_colds: list[float] = []
    with tempfile.TemporaryDirectory(prefix="osv-bench-") as tmp:
        initrd = Path(tmp) / "floor.img"
        poweroff.initramfs(str(initrd))
        for i in range(args.runs):
            floors.append(floor_boot(kernel.image, accel, initrd, Path(tmp) / "console.log"))
            seconds, greeting = hello_boot(args.jdk)
            hellos.append(seconds)
            colds.append(hello_boot(args.jdk, cold=True)[0])
            print(f"run {i + 1}: floor {floors[-1]:.3f}s  hello {hellos[-1]:.3f}s  cold {colds[-1]:.3f}s  "
                  f"({greeting})")
            if base is not None:
                base_hellos.append(hello_boot(args.jdk, tree=base)[0])
                base_colds.append(hello_boot(args.jdk, cold=True, tree=base)[0])
                print(f"run {i + 1}: baseline tree hello {base_hellos[-1]:.3f}s  cold {base_colds[-1]:.3f}s")

    jdk_home = Path(image.manifest["inputs"]["jdk"]["home"])
    image_bytes = image.manifest["sizes"]["initramfs"] + image.manifest["sizes"].get("runtime_disk", 0)
    jre_in_image = sum(int(f["size"]) for name, f in image.manifest["files"].items() if name.startswith("/osv/jre/"))
    full_jdk_image_bytes = image_bytes - jre_in_image + tree_bytes(jdk_home)
    floor_s = statistics.median(floors)
    hello_s = statistics.median(hellos)
    cold_s = statistics.median(colds)
    print(f"floor median {floor_s:.3f}s  hello median {hello_s:.3f}s  ratio {hello_s / floor_s:.2f}  "
          f"cold median {cold_s:.3f}s  ratio {cold_s / floor_s:.2f}  ({accel})")
    print(f"image {image_bytes / 1e6:.1f} MB: initramfs + runtime disk (jlinked JRE {jre_in_image / 1e6:.1f} MB); "
          f"with the full JDK it would be {full_jdk_image_bytes / 1e6:.1f} MB")
    compared: dict[str, object] = {}
    if base is not None:
        base_hello_s, base_cold_s = statistics.median(base_hellos), statistics.median(base_colds)
        print(f"baseline tree {base}: hello median {base_hello_s:.3f}s (this tree {hello_s / base_hello_s:.2f}x)  "
              f"cold median {base_cold_s:.3f}s (this tree {cold_s / base_cold_s:.2f}x)")
        compared = {"baseline_tree": str(base), "baseline_hello_s": round(base_hello_s, 3),
                    "baseline_hello_cold_s": round(base_cold_s, 3),
                    "hello_vs_baseline": round(hello_s / base_hello_s, 3),
                    "cold_vs_baseline": round(cold_s / base_cold_s, 3),
                    "baseline_hello_runs": [round(x, 3) for x in base_hellos],
                    "baseline_hello_cold_runs": [round(x, 3) for x in base_colds]}
    print(json.dumps({
        "floor_s": round(floor_s, 3),
        "hello_s": round(hello_s, 3),
        "ratio": round(hello_s / floor_s, 3),
        "accel": accel,
        "image_bytes": image_bytes,
        "full_jdk_image_bytes": full_jdk_image_bytes,
        "hello_cold_s": round(cold_s, 3),
        "ratio_cold": round(cold_s / floor_s, 3),
        "floor_runs": [round(x, 3) for x in floors],
        "hello_runs": [round(x, 3) for x in hellos],
        "hello_cold_runs": [round(x, 3) for x in colds],
        "jdk": image.manifest["inputs"]["jdk"]["version"],
        "cpus": os.cpu_count(),
        **compared,
    }))


if __name__ == "__main__":
    main()
