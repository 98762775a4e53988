"""The kernel command line per accelerator (kernel.vm.qemu.base_cmdline)."""

from __future__ import annotations

from kernel.vm import qemu


def test_software_emulation_boots_the_kernel_on_one_vcpu() -> None:
    args = qemu.base_cmdline("tcg", verbose=False)
    assert "maxcpus=1" in args and "noreplace-smp" in args  # /init brings the others online
    assert any(arg.startswith("tsc_early_khz=") for arg in args)


def test_hardware_virtualisation_boots_on_every_vcpu() -> None:
    args = qemu.base_cmdline("kvm", verbose=True)
    assert not set(qemu.ONE_VCPU_BOOT) & set(args)
    assert "loglevel=7" in args
