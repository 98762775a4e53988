"""What DHCP costs an exported machine's boot, in one run: hello exported for libvirt (PID 1 takes its
lease from QEMU's user network) against the same export with the static addresses alone (its run
request without net_dhcp, the way exports were before), booted in turn under libvirt (TCG here).

dhcp in guest: the exchange as PID 1 times it (its console line `... (DHCP in X s)`), interface up
               to ACK, on the guest's monotonic clock.
boot-to-exit:  `virsh create` until the domain has powered off (polled every 0.5 s), both variants;
               runs alternate so drift hits both alike.

    flock /tmp/osv-bench.lock .venv/bin/python benchmarks/dhcp.py [--runs 5] [--jdk 17]

Prints every measurement, the medians and the ratio; the last line is JSON.
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

from kernel.guest import wire  # noqa: E402
from kernel.vm import libvirt  # noqa: E402
from tests.export import libvirtd  # noqa: E402

OSV = str(Path(sys.executable).parent / "osv-java")
HELLO = ROOT / "examples" / "hello" / "hello.jar"
NAME = "osv-dhcp-bench"


def export(out: Path, jdk: str) -> Path:
    proc = subprocess.run([OSV, "export", str(HELLO), "--jdk", jdk, "--format", "libvirt", "--accel", "tcg",
                           "--name", NAME, "-o", str(out)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"export --format libvirt failed: {proc.stderr.strip()}")
    return out


def without_dhcp(folder: Path) -> None:
    """Rewrite the run request appended to `folder`'s initramfs (libvirt.write_initramfs) without net_dhcp."""
    initrd = folder / "initramfs.img"
    data = initrd.read_bytes()
    name = data.rfind(libvirt.RUN_FILE.encode() + b"\0")
    header = name - 110  # newc: a 110-byte header, then the name, then the body on a 4-byte boundary
    size, name_size = int(data[header + 54:header + 62], 16), int(data[header + 94:header + 102], 16)
    body = header + 110 + name_size
    body += -body % 4
    request = data[body:body + size]
    archive = libvirt.run_archive(request)
    if not data.endswith(archive):
        raise SystemExit(f"{initrd} does not end with its run request's archive")
    fields = wire.decode(request)
    if fields.pop("net_dhcp", None) != ["1"]:
        raise SystemExit(f"{initrd}'s run request does not ask for DHCP")
    op = fields.pop("op")[0]
    initrd.write_bytes(data[:-len(archive)] + libvirt.run_archive(wire.encode(op, **fields)))


def boot(folder: Path) -> tuple[float, str]:
    """Boot-to-exit of the domain in `folder`, and its console."""
    console = folder / libvirt.CONSOLE_LOG
    console.unlink(missing_ok=True)
    start = time.monotonic()
    created = libvirtd.virsh("create", str(folder / libvirt.DOMAIN_FILE))
    if created.returncode != 0:
        raise SystemExit(f"virsh create failed: {created.stderr.strip()}")
    if not libvirtd.wait_gone(NAME, 300):
        libvirtd.virsh("destroy", NAME)
        raise SystemExit("the domain did not power off within 300 s")
    took = time.monotonic() - start
    text = console.read_text(errors="replace")
    if re.findall(r"^osv-java: exit status (\d+)", text, re.M) != ["0"]:
        raise SystemExit(f"hello under libvirt did not exit 0:\n{text}")
    return took, text


def dhcp_seconds(console: str) -> float:
    found = re.findall(r"^osv-java: network: .* \(DHCP in ([0-9.]+) s\)", console, re.M)
    if len(found) != 1:
        raise SystemExit(f"no DHCP line on the console:\n{console}")
    return float(found[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jdk", default="17")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="osv-dhcp-bench-"))
    work.chmod(0o755)  # a machine's own libvirtd runs QEMU as its own user
    times: dict[str, list[float]] = {"dhcp": [], "static": []}
    in_guest: list[float] = []
    try:
        dhcp_domain = export(work / "dhcp", args.jdk)
        static_domain = export(work / "static", args.jdk)
        without_dhcp(static_domain)
        with libvirtd.daemon(work):
            boot(static_domain)  # warm-up: libvirt's first start probes QEMU
            for i in range(args.runs):
                took, console = boot(dhcp_domain)
                times["dhcp"].append(took)
                in_guest.append(dhcp_seconds(console))
                took, console = boot(static_domain)
                if "(DHCP" in console:
                    raise SystemExit(f"the static variant took a lease:\n{console}")
                times["static"].append(took)
                print(f"run {i + 1}: dhcp {times['dhcp'][-1]:.2f} s (in guest {in_guest[-1]:.3f} s), "
                      f"static {times['static'][-1]:.2f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    medians = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "dhcp_in_guest_median_s": round(statistics.median(in_guest), 3),
        "dhcp_in_guest_s": in_guest,
        "boot_to_exit_median_s": {k: round(v, 3) for k, v in medians.items()},
        "boot_ratio_dhcp_vs_static": round(medians["dhcp"] / medians["static"], 3),
        "runs": args.runs,
    }
    print(f"median boot-to-exit: dhcp {medians['dhcp']:.2f} s, static {medians['static']:.2f} s "
          f"({result['boot_ratio_dhcp_vs_static']}x); DHCP in the guest: median "
          f"{result['dhcp_in_guest_median_s']:.3f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
