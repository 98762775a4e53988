"""The QEMU command line for a microvm, and the choice between KVM and TCG.

KVM is used only when a short probe boot under KVM powers off in time: on some hosts /dev/kvm exists
but standard kernels hang under it. The probe's answer is cached per (kernel, QEMU, host kernel).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from gc_hooks.seam import RAM_MB
from jvmbridge.errors import DependencyError
from kernel import cache
from kernel.build import poweroff
from kernel.progress import say

PROBE_TIMEOUT_S = 10.0


def die_with_parent() -> None:
    """In a QEMU child before exec: SIGKILL it when osv-java goes away (prctl PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)


def qemu_binary() -> str:
    path = shutil.which("qemu-system-x86_64")
    if path is None:
        raise DependencyError(
            "qemu-system-x86_64 is not installed",
            hint="apt-get install qemu-system-x86 (or run `make deps`)",
        )
    return path


def tsc_khz() -> int:
    """The host TSC rate; under TCG the guest reads the host TSC, and giving its rate skips calibration."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return int(float(line.split(":")[1]) * 1000)
    except (OSError, ValueError):
        pass
    return 2_000_000


def brings_ram(extra_args: list[str]) -> bool:
    """Whether these (a policy's) QEMU arguments give the guest RAM its backend (-machine memory-backend=)."""
    return any(arg.startswith("memory-backend=") for arg in extra_args)


@dataclass
class MachineConfig:
    kernel: Path
    initramfs: Path
    memory_mb: int
    cpus: int
    accel: str  # "kvm" or "tcg"
    cmdline: list[str]
    serial_log: Path
    chardevs: list[tuple[str, str]] = field(default_factory=list)  # (port name, unix socket path) QEMU connects to
    forwards: list[tuple[str, int, int]] = field(default_factory=list)  # (host address, host port, guest port)
    filesystems: list[tuple[str, Path]] = field(default_factory=list)  # (virtiofs tag, virtiofsd's socket)
    memory_image: Path | None = None  # placed in guest memory as persistent memory (see pmem_region)
    qmp_socket: Path | None = None
    incoming: Path | None = None  # a boot snapshot to restore instead of booting (kernel.vm.snapshot)
    # Guest RAM that a boot snapshot is saved from or restored into (kernel.vm.snapshot): "memfd" for a
    # shared memfd of QEMU's own, or a file to map (a restore's copy of the snapshot's RAM, shared; or
    # the snapshot's RAM file itself, privately: what the guest writes stays in this QEMU).
    snapshot_ram: str | None = None
    snapshot_ram_private: bool = False
    extra_args: list[str] = field(default_factory=list)  # devices the run's policies add (gc_hooks)

    def argv(self) -> list[str]:
        memory_mb = self.memory_mb
        cmdline = list(self.cmdline)
        loader: list[str] = []
        if self.memory_image is not None:
            base, size = pmem_region(self.memory_image)
            memory_mb = ram_with_pmem(self.memory_mb, size, self.initramfs.stat().st_size) >> 20
            cmdline.append(f"memmap={size >> 20}M!{base >> 20}M")
            loader = ["-device", f"loader,file={self.memory_image},addr={base:#x},force-raw=on"]
        args = [
            qemu_binary(),
            "-M",
            "microvm,pit=on,rtc=on,pcie=on",
            "-accel",
            tcg_accel() if self.accel == "tcg" else self.accel,
            "-cpu",
            "host" if self.accel == "kvm" else tcg_cpu(),
            "-m",
            f"{memory_mb}M",
            *self._shared_memory(memory_mb),
            "-smp",
            str(self.cpus),
            "-nodefaults",
            "-no-user-config",
            "-nographic",
            "-no-reboot",
            "-name",
            "osv-java,debug-threads=on",  # vCPU threads named "CPU n/TCG": a hung boot's report reads them
            "-kernel",
            str(self.kernel),
            "-initrd",
            str(self.initramfs),
            "-append",
            " ".join(cmdline),
            "-chardev",
            f"file,id=console,path={self.serial_log}",
            "-serial",
            "chardev:console",
        ]
        if self.chardevs:
            args += ["-device", "virtio-serial-device,max_ports=8"]
        for i, (name, path) in enumerate(self.chardevs):
            args += ["-chardev", f"socket,id=port{i},path={path}"]
            args += ["-device", f"virtserialport,chardev=port{i},name={name}"]
        netdev = "user,id=net0"
        for address, host_port, guest_port in self.forwards:
            netdev += f",hostfwd=tcp:{address}:{host_port}-:{guest_port}"
        args += ["-netdev", netdev, "-device", "virtio-net-device,netdev=net0"]
        args += [arg.replace(RAM_MB, str(memory_mb)) for arg in self.extra_args]
        for i, (fs_tag, sock) in enumerate(self.filesystems):
            args += ["-chardev", f"socket,id=fs{i},path={sock}"]
            args += ["-device", f"vhost-user-fs-device,chardev=fs{i},tag={fs_tag}"]
        if self.incoming is not None:
            # Guest memory comes from the snapshot, runtime image included: nothing to load into it.
            # "defer": the snapshot's capabilities are set first, then it is read (kernel.vm.snapshot).
            args += ["-incoming", "defer"]
        else:
            args += loader
        if self.qmp_socket is not None:
            args += ["-qmp", f"unix:{self.qmp_socket},server=on,wait=off"]
        return args

    @property
    def own_ram(self) -> bool:
        """Whether a policy brings the guest RAM's backend (`-machine memory-backend=` in extra_args):
        then neither a boot snapshot's RAM nor virtiofs's shared memory can be had."""
        return brings_ram(self.extra_args)

    def _shared_memory(self, memory_mb: int) -> list[str]:
        """Guest RAM that virtiofsd can map (vhost-user), only when there are file systems to share;
        or that a boot snapshot is saved from or restored into: then QEMU's migration stream leaves
        it out (x-ignore-shared) and the RAM travels as a file. Other runs keep QEMU's plain anonymous
        RAM and legacy virtio-mmio."""
        if self.own_ram:  # a policy's backend (the host's hugetlbfs): QEMU takes one
            return []
        if self.snapshot_ram == "memfd":
            backend = f"memory-backend-memfd,id=ram,size={memory_mb}M,share=on"
            return ["-object", backend, "-machine", "memory-backend=ram"]
        if self.snapshot_ram is not None:
            share = "off" if self.snapshot_ram_private else "on"
            # 2 MB-aligned, so the host can map the RAM with 2 MB pages (huge pages of a shared mapping
            # need the address and the file offset aligned alike; QEMU aligns a file's RAM to 4 KB only)
            backend = (f"memory-backend-file,id=ram,size={memory_mb}M,mem-path={self.snapshot_ram},share={share},"
                       "align=2M")
            return ["-object", backend, "-machine", "memory-backend=ram"]
        if not self.filesystems:
            return []
        # virtio 1.0 (modern) for every virtio-mmio device: virtiofsd's libvhost-user has no legacy mode,
        # which microvm gives by default.
        return ["-object", f"memory-backend-memfd,id=ram,size={memory_mb}M,share=on", "-machine", "memory-backend=ram",
                "-global", "virtio-mmio.force-legacy=false"]

    def shape(self) -> list[str]:
        """The command line without what differs between runs of one machine (its sockets and log
        files, host port forwards, a snapshot to restore, where its files are): what a boot snapshot
        depends on. The files' contents are the snapshot key's (Image.runtime_key)."""
        same = dataclasses.replace(
            self,
            serial_log=Path("console"),
            chardevs=[(name, name) for name, _ in self.chardevs],
            forwards=[],
            filesystems=[(fs_tag, Path(fs_tag)) for fs_tag, _ in self.filesystems],
            qmp_socket=Path("qmp") if self.qmp_socket is not None else None,
            incoming=None,
            snapshot_ram=None,
            snapshot_ram_private=False,
        )
        places = {str(self.kernel): "vmlinuz", str(self.initramfs): "initramfs"}
        if self.memory_image is not None:
            places[str(self.memory_image)] = "memory-image"
        argv = same.argv()
        for where, name in places.items():
            argv = [arg.replace(where, name) for arg in argv]
        return argv


# The CPU that software emulation offers: the x86-64 baseline (SSE2) plus RDRAND, which seeds the
# guest's random numbers at once (random.trust_cpu=on). With "max", glibc and HotSpot pick their
# SSE4.2/AVX2 code paths, which emulate slower than the baseline ones: hello took 0.8 s longer
# (and the power-off floor 0.4 s). Under KVM the guest gets the host's CPU.
TCG_CPU = "qemu64,+rdrand"

# What the guest JVM starts with under TCG, before the user's options (which can override them).
# QEMU 7.2's multi-threaded TCG can run a JIT-compiled instruction that never existed. HotSpot makes a
# compiled method not entrant (C2 has replaced its C1 code, or it was deoptimised) by writing a jump
# over the first instruction of its verified entry, one 8-byte store, while other threads keep calling
# it (NativeJump::patch_verified_entry). A real CPU fetches the old instruction or the new one; QEMU
# drops its translations of the bytes and then stores them, and a vCPU that translates the entry in
# between reads the instruction a field at a time (opcode, ModRM, SIB, displacement). Old opcode and
# ModRM with the jump's bytes after them decode as a store to a wild address, and that translation
# stays: the JVM died with SIGSEGV or SIGILL at a compiled method's verified entry (the hs_err frame's
# pc at +0x20..0x25 of the nmethod). benchmarks/emulation_crashes.py: examples/jitstress without these
# options crashed in 10 of 15 runs on JDK 17 and 11 of 15 on JDK 25; with C1 alone no method is
# replaced by C2 and C1's code has no speculative traps: 0 crashes in 200 runs on each JDK (jitstress,
# examples/compute, the Scala compiler), both vCPUs kept. Experiments (--experiments: jitstress, 6 runs
# each, JDK 17, on a machine loaded by other work): without OSR 6/6 crashes (a C2 method among them),
# one code heap 2/6; TieredStopAtLevel=3, C2 alone, one vCPU, -cpu max and thread=single 0/6, but so
# was the unchanged JVM in that series (10 of 15 in the benchmark): six runs rule out none of them.
# By the mechanism, C2 alone still patches the methods it deoptimises; one vCPU or thread=single
# leave no second vCPU to translate during the store, at the price of the second CPU.
# The price (same benchmark run): hello from its boot snapshot 0.95x the time; a 4 s compute run 1.58x
# the rounds on JDK 17, 0.73x on 25; a 40 s one 0.61x / 0.51x, once C2's code would be in place. The
# safe alternative with C2, -accel tcg,thread=single, did worse still on that 40 s run (0.80x / 0.98x
# of C1 alone's rounds), so C1 alone is the cheapest fix measured.
TCG_JVM_OPTIONS = ("-XX:TieredStopAtLevel=1",)
TCG_JVM_OPTIONS_ENV = "OSV_JAVA_TCG_JVM_OPTIONS"  # "off": without them, for benchmarks/emulation_crashes.py


# For the experiments of benchmarks/emulation_crashes.py only: another guest CPU under TCG
# (OSV_JAVA_TCG_CPU=max) and TCG's own options (OSV_JAVA_TCG_ACCEL=thread=single). Both are part of
# the machine's shape, so a boot snapshot made without them is never restored with them.
TCG_CPU_ENV = "OSV_JAVA_TCG_CPU"
TCG_ACCEL_ENV = "OSV_JAVA_TCG_ACCEL"


def tcg_cpu() -> str:
    return os.environ.get(TCG_CPU_ENV) or TCG_CPU


def tcg_accel() -> str:
    extra = os.environ.get(TCG_ACCEL_ENV)
    return f"tcg,{extra}" if extra else "tcg"


def tcg_jvm_options() -> list[str]:
    """TCG_JVM_OPTIONS, unless switched off (to measure what they prevent and what they cost)."""
    return [] if os.environ.get(TCG_JVM_OPTIONS_ENV) == "off" else list(TCG_JVM_OPTIONS)


# Where the runtime image goes in guest memory. The guest kernel takes the range as legacy persistent
# memory (memmap=SIZE!BASE: e820 type 12, driven by nd_e820 and nd_pmem), and the JVM maps the
# image's files straight from it (EROFS with DAX): no copy at boot, no block I/O, no page cache.
# Above where the kernel decompresses itself (nokaslr: from 16 MiB), below where QEMU puts the initrd
# (the top of low memory), on a 2 MiB boundary as memory hotplug wants.
PMEM_BASE = 128 << 20
PMEM_ALIGN = 2 << 20
INITRD_HEADROOM = 16 << 20  # between the range and the initrd, for QEMU's own placement rounding


def pmem_region(image: Path) -> tuple[int, int]:
    """(base, size) in guest physical memory for `image`."""
    size = image.stat().st_size
    return PMEM_BASE, -(-size // PMEM_ALIGN) * PMEM_ALIGN


def ram_with_pmem(memory_mb: int, pmem_size: int, initrd_size: int) -> int:
    """Bytes of RAM to give QEMU: what the guest was promised plus the persistent-memory range.

    QEMU loads the initrd at the top of low memory, which must stay above the range: with a small
    -m that takes a few more MiB than asked (the kernel frees the initrd's memory after unpacking).
    """
    initrd = -(-initrd_size // PMEM_ALIGN) * PMEM_ALIGN
    return max(memory_mb << 20, PMEM_BASE + initrd + INITRD_HEADROOM) + pmem_size


# Under TCG the kernel starts on one vCPU and /init (kernel/guest/init.sh) brings the others online.
# The kernel patches its own code as it starts (static keys: int3 on the first byte, the new tail, the
# new first byte, each followed by a sync IPI). QEMU 7.2's multi-threaded TCG can translate a patched
# page on another vCPU between dropping the page's translations and storing the new byte, and keeps
# that translation: int3 with the new tail. That vCPU then traps there for ever: the kernel's int3
# handler finds no patch in progress and the byte in memory no int3 any more, so it re-runs the
# instruction, which QEMU runs from the same stale translation. Both vCPUs spinning with interrupts
# off, one at asm_exc_int3 and the other at the patched site, with memory holding the new jump, is
# what such hangs show. Booting on one vCPU leaves no other vCPU to translate mid-patch; onlining the
# second costs about 0.15 s of guest time, only on cold boots (snapshots are saved after it).
# noreplace-smp keeps the SMP code: a one-CPU boot would otherwise patch the lock prefixes out and
# back in when the second vCPU comes online (0.25 s).
ONE_VCPU_BOOT = ("maxcpus=1", "noreplace-smp")

# The x86 kernel keeps 2048 bytes of command line (COMMAND_LINE_SIZE), NUL included; stay well under.
MAX_CMDLINE = 2000


def base_cmdline(accel: str, verbose: bool) -> list[str]:
    # tsc=reliable: every vCPU reads the same host TSC under TCG, so the sync check that would demote
    # the clocksource to jiffies is wrong here; cryptomgr.notests skips self-tests nobody here needs.
    args = ["console=ttyS0", "panic=-1", "reboot=t", "random.trust_cpu=on", "nokaslr", "tsc=reliable",
            "cryptomgr.notests", "no_timer_check"]
    args.append("loglevel=7" if verbose else "quiet")
    if accel == "tcg":
        args.append(f"tsc_early_khz={tsc_khz()}")
        args += ONE_VCPU_BOOT
    return args


def _probe_key(kernel: Path) -> str:
    """By the kernel's content (each image holds its own link or copy of it), QEMU and the host kernel."""
    qemu = Path(qemu_binary())
    digest = cache.remembered_digest(kernel)
    stamp = f"{digest}|{qemu.stat().st_size}|{qemu.stat().st_mtime_ns}|{platform.release()}"
    return hashlib.sha256(stamp.encode()).hexdigest()[:16]


def kvm_usable(kernel: Path, verbose: bool = False) -> bool:
    """True when a probe boot under KVM powers off within PROBE_TIMEOUT_S (answer cached)."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    record = cache.root() / "accel.json"
    key = _probe_key(kernel)
    try:
        known = json.loads(record.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        return bool(known[key])
    with tempfile.TemporaryDirectory(prefix="osv-java-probe-") as tmp:
        initrd = Path(tmp) / "probe.img"
        poweroff.initramfs(str(initrd))
        config = MachineConfig(
            kernel=kernel,
            initramfs=initrd,
            memory_mb=256,
            cpus=1,
            accel="kvm",
            cmdline=base_cmdline("kvm", False),
            serial_log=Path(tmp) / "console.log",
        )
        argv = [a for a in config.argv()]
        cut = argv.index("-netdev")
        argv = argv[:cut]  # the probe needs no devices
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                preexec_fn=die_with_parent)
        try:
            ok = proc.wait(timeout=PROBE_TIMEOUT_S) == 0
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            ok = False
        if verbose:
            say(f"KVM probe {'succeeded' if ok else 'failed'} in {time.monotonic() - start:.1f}s")
    known[key] = ok
    cache.write_file_atomic(record, json.dumps(known, indent=1).encode())
    return ok


def choose_accel(requested: str, kernel: Path, verbose: bool = False) -> str:
    """'kvm' or 'tcg' for --accel auto|kvm|tcg; says once on stderr when auto falls back to TCG."""
    if requested == "tcg":
        return "tcg"
    if requested == "kvm":
        if not os.access("/dev/kvm", os.R_OK | os.W_OK):
            raise DependencyError("--accel kvm: /dev/kvm is missing or not accessible",
                                  hint="use --accel tcg, or load the kvm module and check permissions")
        return "kvm"
    if kvm_usable(kernel, verbose):
        return "kvm"
    marker = cache.root() / ".tcg-notice"
    if not marker.exists():
        reason = "no usable /dev/kvm" if not os.path.exists("/dev/kvm") else "a probe boot under KVM did not finish"
        if say(f"using TCG software emulation ({reason}); boots are 10-30x slower than with KVM"):
            with contextlib.suppress(OSError):
                marker.touch()
    return "tcg"
