"""What `osv-java export` costs, in one run: image sizes per format against a full-JDK image, and
boot-to-exit of hello under libvirt against osv-java's own QEMU command line.

sizes: hello exported as oci, libvirt and kubevirt (bytes of the folder: for oci and kubevirt the
       gzip'd layers, as a registry stores them; libvirt's files are raw), against the baseline: an OCI
       image of the same app on the whole JDK (its home at /opt/java/openjdk plus the libraries it
       needs, as eclipse-temurin images lay it out, without their distribution's base layer), written
       by the same writer.
boot:  `virsh create` of the libvirt export until the domain has powered off (q35, firmware, virtio-pci;
       exit status read from the console log) against `osv-java run --cold-boot` (microvm, no firmware)
       and `osv-java run` (from the boot snapshot); runs alternate so drift hits all alike; TCG here.

    flock /tmp/osv-bench.lock .venv/bin/python benchmarks/export.py [--runs 5] [--jdk 17]

Prints every measurement, the medians and the ratios; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jvmbridge import jdk as jdks  # noqa: E402
from kernel.build import image as images  # noqa: E402
from kernel.formats import oci  # noqa: E402
from kernel.formats.cpio import Entry  # noqa: E402
from tests.export import libvirtd  # noqa: E402

OSV = str(Path(sys.executable).parent / "osv-java")
HELLO = ROOT / "examples" / "hello" / "hello.jar"
FULL_JDK_HOME = "/opt/java/openjdk"


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def export(fmt: str, out: Path, jdk: str, *extra: str) -> Path:
    proc = subprocess.run([OSV, "export", str(HELLO), "--jdk", jdk, "--format", fmt, "-o", str(out), *extra],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"export --format {fmt} failed: {proc.stderr.strip()}")
    return out


def full_jdk_image(jdk_spec: str, out: Path) -> Path:
    """The baseline: the whole JDK, the libraries its programs need, and the app, as one OCI image."""
    jdk = jdks.select(jdk_spec)
    entries: dict[str, Entry] = {}
    images.add_tree(entries, jdk.home, FULL_JDK_HOME)
    images.add_closure(entries, jdk.home, [])  # the JDK's ELF files and their system libraries
    images.add_tree(entries, HELLO, str(HELLO))
    out.mkdir()
    layer = oci.Layer({p: oci.Owned(e) for p, e in entries.items()}, "full JDK and app")
    config = {"Entrypoint": [f"{FULL_JDK_HOME}/bin/java", "-jar", str(HELLO)], "Env": [f"PATH={FULL_JDK_HOME}/bin"]}
    oci.LayoutWriter(out).image([layer], config, "latest")
    return out


def sizes(jdk: str, work: Path) -> dict[str, int]:
    found = {
        "oci": folder_bytes(export("oci", work / "oci", jdk)),
        "libvirt": folder_bytes(export("libvirt", work / "libvirt", jdk, "--accel", "tcg")),
        "kubevirt": folder_bytes(export("kubevirt", work / "kubevirt", jdk)),
        "full_jdk_oci": folder_bytes(full_jdk_image(jdk, work / "full-jdk")),
    }
    for name, size in found.items():
        print(f"size {name:<13} {size / 1e6:8.1f} MB", flush=True)
    return found


def libvirt_boot(domain: Path, name: str) -> float:
    console = domain / "console.log"
    console.unlink(missing_ok=True)
    start = time.monotonic()
    created = libvirtd.virsh("create", str(domain / "domain.xml"))
    if created.returncode != 0:
        raise SystemExit(f"virsh create failed: {created.stderr.strip()}")
    if not libvirtd.wait_gone(name, 300):
        libvirtd.virsh("destroy", name)
        raise SystemExit("the libvirt domain did not power off within 300 s")
    took = time.monotonic() - start
    status = re.findall(r"^osv-java: exit status (\d+)", console.read_text(errors="replace"), re.M)
    if status != ["0"]:
        raise SystemExit(f"hello under libvirt did not exit 0: {status}")
    return took


def osv_run(jdk: str, *extra: str) -> float:
    start = time.monotonic()
    proc = subprocess.run([OSV, "run", "--jdk", jdk, *extra, str(HELLO)], capture_output=True, check=False)
    took = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"osv-java run failed: {proc.stderr.decode(errors='replace').strip()}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jdk", default="17")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="osv-export-bench-"))
    try:
        found = sizes(args.jdk, work)
        name = "osv-hello"
        with libvirtd.daemon(work):
            libvirt_boot(work / "libvirt", name)  # warm-up: libvirt's first start probes QEMU
            osv_run(args.jdk)
            osv_run(args.jdk)  # the boot snapshot is saved by now
            times: dict[str, list[float]] = {"libvirt": [], "osv_cold": [], "osv_snapshot": []}
            for i in range(args.runs):
                times["libvirt"].append(libvirt_boot(work / "libvirt", name))
                times["osv_cold"].append(osv_run(args.jdk, "--cold-boot"))
                times["osv_snapshot"].append(osv_run(args.jdk))
                print(f"run {i + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    medians = {k: statistics.median(v) for k, v in times.items()}
    for key, value in medians.items():
        print(f"median boot-to-exit {key:<13} {value:6.2f} s")
    result = {
        "sizes_bytes": found,
        "size_ratio_oci_vs_full_jdk": round(found["oci"] / found["full_jdk_oci"], 3),
        "size_ratio_kubevirt_vs_full_jdk": round(found["kubevirt"] / found["full_jdk_oci"], 3),
        "boot_median_s": {k: round(v, 3) for k, v in medians.items()},
        "boot_ratio_libvirt_vs_osv_cold": round(medians["libvirt"] / medians["osv_cold"], 3),
        "boot_ratio_libvirt_vs_osv_snapshot": round(medians["libvirt"] / medians["osv_snapshot"], 3),
        "runs": args.runs,
    }
    print(f"size: oci {result['size_ratio_oci_vs_full_jdk']}x the full-JDK image; boot-to-exit: libvirt "
          f"{result['boot_ratio_libvirt_vs_osv_cold']}x osv-java run --cold-boot, "
          f"{result['boot_ratio_libvirt_vs_osv_snapshot']}x osv-java run")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
