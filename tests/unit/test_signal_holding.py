"""Signals for the app while a ready snapshot is saved (kernel.vm.conversation.Conversation): held back
until the save is over, so that no snapshot carries one; and remembered, so that an app asked to stop
gets no ready snapshot at all (kernel.vm.runner)."""

from __future__ import annotations

from typing import Any, cast

from kernel.vm.conversation import Conversation


class Control:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, object]]] = []

    def send(self, op: str, **fields: object) -> None:
        self.sent.append((op, fields))


def _talk() -> tuple[Conversation, Control]:
    control = Control()
    talk = Conversation(cast(Any, None), cast(Any, control), None, cast(Any, None))
    return talk, control


def test_a_signal_during_a_save_reaches_the_app_after_it() -> None:
    talk, control = _talk()
    talk.app_started()
    talk.hold_signals()
    talk.signal_app(15)
    assert control.sent == [] and talk.signalled
    talk.release_signals()
    assert control.sent == [("signal", {"signal": 15})] and talk.signalled


def test_signals_go_at_once_outside_a_save_and_none_is_sent_twice() -> None:
    talk, control = _talk()
    assert not talk.signalled
    talk.signal_app(2)  # before the JVM runs: kept until it does
    talk.app_started()
    talk.signal_app(15)
    talk.hold_signals()
    talk.release_signals()
    assert control.sent == [("signal", {"signal": 2}), ("signal", {"signal": 15})]
