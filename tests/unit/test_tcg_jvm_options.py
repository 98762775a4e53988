"""The guest JVM's options under TCG: C1 alone (see kernel.qemu.TCG_JVM_OPTIONS), unless switched off."""

from __future__ import annotations

import pytest

from kernel.vm import qemu


def test_c1_alone_under_tcg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(qemu.TCG_JVM_OPTIONS_ENV, raising=False)
    assert qemu.tcg_jvm_options() == ["-XX:TieredStopAtLevel=1"]


def test_the_benchmark_can_switch_them_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(qemu.TCG_JVM_OPTIONS_ENV, "off")
    assert qemu.tcg_jvm_options() == []
    monkeypatch.setenv(qemu.TCG_JVM_OPTIONS_ENV, "")
    assert qemu.tcg_jvm_options() == ["-XX:TieredStopAtLevel=1"], "only 'off' switches them off"
