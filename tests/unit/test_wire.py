"""The control channel's message format."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kernel.guest import wire


@given(st.lists(st.text()), st.text(), st.floats(allow_nan=False, allow_infinity=False))
def test_any_strings_and_numbers_round_trip(argv: list[str], cwd: str, t: float) -> None:
    message = wire.decode(wire.encode("run", argv=argv, cwd=cwd, t=t, bootchart=True, missing=None))
    assert message["op"] == ["run"]
    assert message.get("argv", []) == argv
    assert wire.first(message, "cwd") == cwd
    assert wire.number(message, "t") == float(repr(t))
    assert wire.first(message, "bootchart") == "1"
    assert "missing" not in message


def test_one_message_is_one_line() -> None:
    data = wire.encode("x", a="line\nbreak\tand\\slash")
    assert data.count(b"\n") == 1 and data.endswith(b"\n")
