"""Guest memory with the runtime image as persistent memory: the promise to the app, and the initrd's room."""

from __future__ import annotations

import pytest

from kernel.vm import qemu

MB = 1 << 20


@pytest.mark.parametrize("memory_mb", [128, 160, 256, 1024, 8192])
@pytest.mark.parametrize(("pmem", "initrd"), [(48 * MB, 17 * MB), (78 * MB, 30 * MB), (2 * MB, 1 * MB)])
def test_the_app_keeps_its_memory_and_the_initrd_stays_above_the_range(memory_mb: int, pmem: int, initrd: int) -> None:
    ram = qemu.ram_with_pmem(memory_mb, pmem, initrd)
    assert ram - pmem >= memory_mb * MB  # the range comes on top of -m
    # QEMU puts the initrd at the top of low memory: it must not reach down into the range.
    initrd_start = ram - initrd
    assert initrd_start >= qemu.PMEM_BASE + pmem + qemu.INITRD_HEADROOM


def test_a_large_memory_gets_exactly_the_range_on_top() -> None:
    assert qemu.ram_with_pmem(1024, 46 * MB, 17 * MB) == 1024 * MB + 46 * MB
