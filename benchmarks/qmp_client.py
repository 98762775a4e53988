"""Our QMP client (kernel/vm/monitor.py) against QEMU's own `qemu.qmp` library, in the same run.

What a run pays on its path: a fresh interpreter importing the client, then connect + capabilities +
one command against a real QEMU (`-M none`, monitor on a UNIX socket). Each case runs in its own
process, interleaved, `--repeat` times; prints medians and ratios, last line JSON.
Needs `pip install qemu.qmp` for the comparison (said and skipped otherwise).
Usage: python benchmarks/qmp_client.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

OURS = """
import sys, time
t = time.perf_counter()
from kernel.vm.monitor import Monitor
t_import = time.perf_counter() - t
with Monitor(sys.argv[1]) as m:
    m.execute("query-status")
print(t_import, time.perf_counter() - t)
"""
THEIRS = """
import sys, time
t = time.perf_counter()
from qemu.qmp.legacy import QEMUMonitorProtocol
t_import = time.perf_counter() - t
m = QEMUMonitorProtocol(sys.argv[1])
m.connect()
m.cmd("query-status")
m.close()
print(t_import, time.perf_counter() - t)
"""


def has_qemu_qmp() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import qemu.qmp"], capture_output=True, check=False)
    return probe.returncode == 0


def one(code: str, socket: Path) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", code, str(socket)], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=60)
    imported, total = out.stdout.split()
    return float(imported), float(total)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    opts = parser.parse_args()
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        raise SystemExit("qemu-system-x86_64 is not installed")
    cases = {"ours": OURS}
    if has_qemu_qmp():
        cases["qemu.qmp"] = THEIRS
    else:
        print("qemu.qmp is not installed (pip install qemu.qmp): measuring ours only", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="osv-java-bench-qmp-") as tmp:
        socket = Path(tmp) / "qmp.sock"
        proc = subprocess.Popen([qemu, "-M", "none", "-nodefaults", "-nographic", "-qmp",
                                 f"unix:{socket},server=on,wait=off"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not socket.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
            for code in cases.values():
                one(code, socket)  # warm the page cache
            for _ in range(opts.repeat):
                for name, code in cases.items():  # interleaved: drift hits both alike
                    results[name].append(one(code, socket))
        finally:
            proc.terminate()
            proc.wait()
    summary: dict[str, object] = {"repeat": opts.repeat}
    for name, samples in results.items():
        imported = statistics.median(s[0] for s in samples)
        total = statistics.median(s[1] for s in samples)
        print(f"{name:<9} import {imported * 1e3:7.1f} ms   import+connect+command {total * 1e3:7.1f} ms")
        key = name.replace(".", "_")
        summary[f"{key}_import_ms"] = round(imported * 1e3, 2)
        summary[f"{key}_total_ms"] = round(total * 1e3, 2)
    if "qemu.qmp" in results:
        ratio = float(summary["qemu_qmp_total_ms"]) / float(summary["ours_total_ms"])  # type: ignore[arg-type]
        summary["qemu_qmp_vs_ours_total_ratio"] = round(ratio, 2)
        print(f"qemu.qmp costs {ratio:.2f}x ours on the run path")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
