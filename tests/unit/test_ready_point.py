"""Ready-point snapshots' pure logic: the guest's reading of /proc/net/tcp, the key, the saved output
counts and the option's values (kernel/guest/readiness.py, kernel/vm/ready.py, osv_java/options.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jvmbridge.errors import UsageError
from kernel.guest import readiness
from kernel.vm import ready, snapshot
from osv_java import options

# /proc/net/tcp as Linux 6.1 writes it: a listener on 0.0.0.0:8080, a connection from :8081 (established).
TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0 100 0 0 10 0
   1: 0F02000A:1F91 0202000A:D431 01 00000000:00000000 00:00000000 00000000     0        0 1235 1 0 20 4 30 10 -1
"""
# /proc/net/tcp6: a listener on [::]:9090
TCP6 = """  sl  local_address                         remote_address                        st tx_queue rx_queue
   0: 00000000000000000000000000000000:2382 00000000000000000000000000000000:0000 0A 00000000:00000000
"""
# a connection to the listener on 8080 under way (SYN_RECV), and one over (TIME_WAIT)
BUSY = """  sl  local_address rem_address   st
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000
   1: 0F02000A:1F90 0202000A:D432 03 00000000:00000000
   2: 0F02000A:1F90 0202000A:D433 06 00000000:00000000
"""


def _tables(tmp_path: Path, tcp: str, tcp6: str = TCP6) -> tuple[str, ...]:
    (tmp_path / "tcp").write_text(tcp)
    (tmp_path / "tcp6").write_text(tcp6)
    return str(tmp_path / "tcp"), str(tmp_path / "tcp6"), str(tmp_path / "missing")


def test_a_port_is_ready_once_it_listens_on_either_table(tmp_path: Path) -> None:
    assert readiness.socket_states(TCP, 8080) == ["0A"] and readiness.socket_states(TCP6, 9090) == ["0A"]
    tables = _tables(tmp_path, TCP)
    assert readiness.Watch(8080, None, tables).ready(0.0) and readiness.Watch(9090, None, tables).ready(0.0)
    assert not readiness.Watch(8081, None, tables).ready(0.0)  # a connection's local port, not a listener


def test_a_busy_port_waits_for_its_connections_a_while(tmp_path: Path) -> None:
    tables = _tables(tmp_path, BUSY)
    watch = readiness.Watch(8080, None, tables)
    assert not watch.ready(10.0)  # a connection is being set up: it would be in the snapshot
    assert not watch.ready(10.0 + readiness.IDLE_WAIT / 2)
    assert watch.ready(10.0 + readiness.IDLE_WAIT)  # busy all along: saved all the same
    _tables(tmp_path, BUSY.replace(" 03 ", " 06 "))  # only connections that are over
    assert readiness.Watch(8080, None, tables).ready(0.0)


def test_a_file_ready_point(tmp_path: Path) -> None:
    marker = tmp_path / "ready"
    watch = readiness.Watch(None, str(marker))
    assert not watch.ready(0.0)
    marker.touch()
    assert watch.ready(0.0)


def test_the_key_follows_the_app_its_command_line_environment_folder_and_condition(tmp_path: Path) -> None:
    archive = tmp_path / "app.cpio"
    archive.write_bytes(b"the app's files")
    port = ready.ReadyPoint(port=8080)
    base = ready.key("machine", archive, ["java", "-jar", "a.jar"], ["A=1"], "/w", port)
    assert base == ready.key("machine", archive, ["java", "-jar", "a.jar"], ["A=1"], "/w", port)
    others = {
        ready.key("other-machine", archive, ["java", "-jar", "a.jar"], ["A=1"], "/w", port),
        ready.key("machine", archive, ["java", "-jar", "a.jar", "x"], ["A=1"], "/w", port),
        ready.key("machine", archive, ["java", "-jar", "a.jar"], ["A=2"], "/w", port),
        ready.key("machine", archive, ["java", "-jar", "a.jar"], ["A=1"], "/v", port),
        ready.key("machine", archive, ["java", "-jar", "a.jar"], ["A=1"], "/w", ready.ReadyPoint(port=8081)),
        ready.key("machine", archive, ["java", "-jar", "a.jar"], ["A=1"], "/w", ready.ReadyPoint(path="/tmp/r")),
    }
    archive.write_bytes(b"the app's files, edited")
    others.add(ready.key("machine", archive, ["java", "-jar", "a.jar"], ["A=1"], "/w", port))
    assert base not in others and len(others) == 7


def test_the_output_counts_round_trip_and_a_damaged_file_is_a_snapshot_error(tmp_path: Path) -> None:
    for name, data in ready.output_file((123, 45)).items():
        (tmp_path / name).write_bytes(data)
    assert ready.output_before(tmp_path) == (123, 45)
    (tmp_path / ready.OUTPUT).write_bytes(b"op=output\tstdout_bytes=12")
    with pytest.raises(snapshot.SnapshotError):
        ready.output_before(tmp_path)
    (tmp_path / ready.OUTPUT).unlink()
    with pytest.raises(snapshot.SnapshotError):
        ready.output_before(tmp_path)


def test_a_number_is_a_port_and_a_path_a_file() -> None:
    assert options.ready_point("8080") == ready.ReadyPoint(port=8080)
    assert options.ready_point("/tmp/ready") == ready.ReadyPoint(path="/tmp/ready")
    for bad in ("0", "65536", "ready", "", "/"):
        with pytest.raises(UsageError):
            options.ready_point(bad)
