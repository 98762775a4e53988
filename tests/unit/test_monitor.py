"""QEMU's monitor (QMP): message handling, and port forwards added and removed on a real QEMU.

The QEMU here runs no guest at all (`-M none`): user-mode networking and the monitor are all that
port forwards need, so the test takes a fraction of a second.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kernel.vm import monitor
from kernel.vm.monitor import Monitor, MonitorError, answer, parse


def test_answer_matches_its_command_and_skips_events() -> None:
    event = parse(b'{"event": "NIC_RX_FILTER_CHANGED", "timestamp": {"seconds": 1}, "data": {}}')
    assert answer(event, "osv-java-1") == (False, None)
    assert answer(parse(b'{"return": {}, "id": "osv-java-0"}'), "osv-java-1") == (False, None)
    assert answer(parse(b'{"return": "text\\r\\n", "id": "osv-java-1"}\r'), "osv-java-1") == (True, "text\r\n")


def test_an_error_answer_raises_with_qemus_words() -> None:
    message = parse(b'{"id": "x", "error": {"class": "CommandNotFound",'
                    b' "desc": "The command bogus has not been found"}}')
    with pytest.raises(MonitorError, match="The command bogus has not been found"):
        answer(message, "x")


@pytest.mark.parametrize("line", [b"not json", b"[1, 2]"])
def test_garbage_is_a_clear_error(line: bytes) -> None:
    with pytest.raises(MonitorError, match="QEMU's monitor sent"):
        parse(line)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_forward_added_and_removed_at_run_time(qemu_monitor: Path) -> None:
    with Monitor(qemu_monitor) as qmp:
        port = monitor.forward_any(qmp, 5000)
        assert _listening(port), "QEMU should listen on the forwarded loopback port"
        assert f"127.0.0.1 {port:>5}" in qmp.human("info usernet")
        with pytest.raises(MonitorError, match="cannot forward"):  # the port is taken now: QEMU says so
            monitor.add_forward(qmp, port, 5001)
        monitor.remove_forward(qmp, port)
        assert not _listening(port)
        with pytest.raises(MonitorError, match="did not remove"):
            monitor.remove_forward(qmp, port)
        with pytest.raises(MonitorError, match="has not been found"):
            qmp.execute("bogus")


def test_no_monitor_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MonitorError, match="cannot reach QEMU's monitor"):
        Monitor(tmp_path / "absent.sock")
