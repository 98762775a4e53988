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
    assert readiness.Watch(8080, None, tables=tables).ready(0.0)
    assert readiness.Watch(9090, None, tables=tables).ready(0.0)
    assert not readiness.Watch(8081, None, tables=tables).ready(0.0)  # a connection's local port, not a listener


def test_a_busy_port_waits_for_its_connections_a_while(tmp_path: Path) -> None:
    tables = _tables(tmp_path, BUSY)
    watch = readiness.Watch(8080, None, tables=tables)
    assert not watch.ready(10.0)  # a connection is being set up: it would be in the snapshot
    assert not watch.ready(10.0 + readiness.IDLE_WAIT / 2)
    assert watch.ready(10.0 + readiness.IDLE_WAIT)  # busy all along: saved all the same
    _tables(tmp_path, BUSY.replace(" 03 ", " 06 "))  # only connections that are over
    assert readiness.Watch(8080, None, tables=tables).ready(0.0)


def test_a_file_ready_point(tmp_path: Path) -> None:
    marker = tmp_path / "ready"
    watch = readiness.Watch(None, str(marker))
    assert not watch.ready(0.0)
    marker.touch()
    assert watch.ready(0.0)


def test_the_key_follows_the_app_its_command_line_environment_folder_condition_and_hooks(tmp_path: Path) -> None:
    archive = tmp_path / "app.cpio"
    archive.write_bytes(b"the app's files")
    port = ready.ReadyPoint(port=8080)
    hooks = ["/sys/kernel/mm/transparent_hugepage/enabled=madvise", '{"module": "gc_hooks.startup_priority"}']

    def key(machine: str = "machine", argv: tuple[str, ...] = ("java", "-jar", "a.jar"), env: str = "A=1",
            cwd: str = "/w", point: ready.ReadyPoint = port, hook_fields: list[str] = hooks) -> str:
        return ready.key(machine, archive, list(argv), [env], cwd, point, hook_fields)

    base = key()
    assert base == key()
    others = {
        key(machine="other-machine"),
        key(argv=("java", "-jar", "a.jar", "x")),
        key(env="A=2"),
        key(cwd="/v"),
        key(point=ready.ReadyPoint(port=8081)),
        key(point=ready.ReadyPoint(path="/tmp/r")),
        key(point=ready.ReadyPoint(port=8080, http_target="/")),
        key(point=ready.ReadyPoint(port=8080, http_target="/health")),
        # a supervisor the saving run started goes on in every restore: a run without it saves its own
        key(hook_fields=hooks[:1]),
        key(hook_fields=[hooks[0].replace("madvise", "never"), hooks[1]]),
    }
    archive.write_bytes(b"the app's files, edited")
    others.add(key())
    assert base not in others and len(others) == 11


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


def test_an_http_url_is_a_request_to_the_guests_own_port() -> None:
    assert options.ready_point("http://localhost:8080/health") == ready.ReadyPoint(port=8080, http_target="/health")
    assert options.ready_point("http://127.0.0.1:9000") == ready.ReadyPoint(port=9000, http_target="/")
    assert options.ready_point("HTTP://:8080/a?b=1#frag") == ready.ReadyPoint(port=8080, http_target="/a?b=1")
    assert options.ready_point("http://localhost/") == ready.ReadyPoint(port=80, http_target="/")
    for bad, said in (("https://localhost:8443/", "only http://"), ("http://example.com:8080/", "example.com"),
                      ("http://localhost:0/", "not a port"), ("http://localhost:70000/", "not a valid URL"),
                      ("http://localhost:8080/a b", "printable ASCII"), ("http://localhost:8080/\r\nX: y", "ASCII")):
        with pytest.raises(UsageError, match=said):
            options.ready_point(bad)


class _Service:
    """An HTTP server on loopback that answers GET with the statuses it is given, one per request
    (the last one for ever after), and counts the requests."""

    def __init__(self, statuses: list[int]) -> None:
        import http.server
        import threading

        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the standard library's name
                service.paths.append(self.path)
                status = statuses[min(len(service.paths), len(statuses)) - 1]
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.paths: list[str] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _until(check: object, now: list[float], seconds: float = 10.0) -> bool:
    """Call check(now) as PID 1 does, every 10 ms of real time with `now` moving by 0.1 s a call."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check(now[0]):  # type: ignore[operator]
            return True
        now[0] += 0.1
        time.sleep(0.01)
    return False


def test_the_http_probe_counts_200_to_399_and_asks_again_after_a_failure() -> None:
    service = _Service([503, 302])
    try:
        probe = readiness.HttpProbe(service.port, "/health?deep=1")
        now = [100.0]
        assert _until(probe.answered, now)
        assert service.paths == ["/health?deep=1", "/health?deep=1"]  # the 503, then the 302 that counts
        assert probe.last_status == 302
    finally:
        service.close()
    assert readiness.status_of(b"HTTP/1.1 204 No Content\r\n\r\n") == 204
    assert readiness.status_of(b"HTTP/1.0 200") == 200
    assert readiness.status_of(b"") is None and readiness.status_of(b"SSH-2.0-x\r\n") is None


def test_the_http_probe_tries_again_while_the_port_refuses() -> None:
    import socket

    with socket.socket() as placeholder:  # a port nobody listens on
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    probe = readiness.HttpProbe(port, "/")
    now = [5.0]
    assert not _until(probe.answered, now, seconds=0.3)
    assert probe.next_try > 5.0 and probe.last_status is None  # refused: asked again later, no busy loop


def test_an_http_ready_point_is_ready_once_answered_and_its_connection_is_over(tmp_path: Path) -> None:
    service = _Service([404, 200])
    try:
        listening = TCP.replace(":1F90 ", f":{service.port:04X} ", 1)
        tables = _tables(tmp_path, listening)
        watch = readiness.Watch(service.port, None, "/ready", tables=tables)
        now = [0.0]
        assert not watch.ready(now[0])  # the request is only under way
        assert _until(watch.ready, now)
        assert service.paths == ["/ready", "/ready"]
        assert not _until(readiness.Watch(service.port + 1, None, "/ready", tables=tables).ready, [0.0], 0.3)
    finally:
        service.close()
