"""The run's telemetry socket: requests relayed to the guest with ids, answers routed back by id,
streams alongside one-shot requests, clean-up when a client goes.

The guest here is a script standing in for PID 1 (the real one is exercised by tests/vm/test_vm_live.py);
the port forward of a gateway request goes through a real QEMU monitor.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jvmbridge.errors import JvmError
from kernel.guest import wire
from kernel.vm import registry, relay

Answer = Callable[[str, str, dict[str, object]], None]


class ScriptedGuest:
    """Receives what the server sends to PID 1 and answers through `deliver`, from its own thread."""

    def __init__(self) -> None:
        self.sent: queue.Queue[tuple[str, dict[str, object]]] = queue.Queue()
        self.server: relay.Relay | None = None
        self.script: dict[str, Answer] = {}

    def send(self, op: str, **fields: object) -> None:
        self.sent.put((op, fields))
        answer = self.script.get(op)
        if answer is not None:
            threading.Thread(target=answer, args=(op, str(fields["id"]), fields), daemon=True).start()

    def say(self, op: str, ident: str, **fields: object) -> None:
        assert self.server is not None
        self.server.deliver(wire.decode(wire.encode(op, id=ident, **fields)))

    def next_sent(self, op: str, timeout: float = 10.0) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while True:
            got, fields = self.sent.get(timeout=max(0.01, deadline - time.monotonic()))
            if got == op:
                return fields


Served = tuple[ScriptedGuest, registry.VmRecord, relay.Relay]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    guest = ScriptedGuest()
    qmp = tmp_path / "qmp.sock"
    server = relay.Relay(tmp_path / "relay.sock", guest, qmp)
    guest.server = server
    listener = server.listen()
    record = registry.VmRecord(name="t", pid=os.getpid(), socket=str(tmp_path / "relay.sock"),
                                 main_class="Main", started=0.0)
    yield guest, record, server
    listener.close()
    server.close()


def test_answers_find_their_request_whatever_the_order(served: Served) -> None:
    guest, record, _ = served
    first_seen = threading.Event()

    def jcmd(op: str, ident: str, fields: dict[str, object]) -> None:
        if fields["line"] == "slow":
            first_seen.set()
            time.sleep(0.5)  # answered after the fast one that came later
        else:
            assert first_seen.wait(5)
        guest.say("reply", ident, data=f"ran {fields['line']}")

    guest.script["jcmd"] = jcmd
    results: dict[str, bytes] = {}
    slow = threading.Thread(target=lambda: results.update(slow=registry.request(record, "jcmd slow")))
    slow.start()
    assert first_seen.wait(5)
    assert registry.request(record, "jcmd fast") == b"ran fast"
    slow.join(10)
    assert results["slow"] == b"ran slow"


def test_a_failed_request_is_one_error_line(served: Served) -> None:
    guest, record, _ = served
    guest.script["hsperf"] = lambda op, ident, fields: guest.say("reply", ident, error="no hsperfdata for JVM 7")
    with pytest.raises(JvmError, match="VM 't': no hsperfdata for JVM 7"):
        registry.request(record, "hsperf")
    with pytest.raises(JvmError, match="unknown request 'bogus'"):
        registry.request(record, "bogus")


def test_a_stream_runs_until_its_client_goes_and_is_then_stopped(served: Served) -> None:
    guest, record, _ = served

    def events(op: str, ident: str, fields: dict[str, object]) -> None:
        assert (fields["what"], fields["decorators"]) == ("gc", "uptimenanos")
        guest.say("reply", ident)
        guest.say("log", ident, line=["[1ns][info][gc] one", "[2ns][info][gc] two"])
        guest.say("log", "999", line=["someone else's"])  # another session's: not ours to see

    guest.script["events"] = events
    guest.script["jcmd"] = lambda op, ident, fields: guest.say("reply", ident, data="alongside")
    sock, rest = registry.open_session(record, "events gc uptimenanos")
    with sock:
        assert rest == ""
        received = b""
        while received.count(b"\n") < 2:
            received += sock.recv(4096)
        assert received == b"[1ns][info][gc] one\n[2ns][info][gc] two\n"
        assert registry.request(record, "jcmd VM.version") == b"alongside"  # while the stream runs
        ident = guest.next_sent("events")["id"]
    assert guest.next_sent("events-stop")["id"] == ident


def test_a_gateway_gets_a_loopback_forward_for_as_long_as_its_client_stays(served: Served, qemu_monitor: Path) -> None:
    guest, record, server = served
    server.qmp_socket = qemu_monitor
    guest.script["gateway"] = lambda op, ident, fields: guest.say("reply", ident, port=4321)
    jar = b"PK not really a jar"
    sock, rest = registry.open_session(record, f"gateway {'t' * 24} agent.jar {len(jar)}", jar)
    with sock:
        host_port, guest_port = map(int, rest.split())
        assert guest_port == 4321
        sent = guest.next_sent("gateway")
        assert (sent["token"], sent["name"]) == ("t" * 24, "agent.jar")
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", host_port)) == 0  # QEMU listens for the guest
    stopped = guest.next_sent("gateway-stop")
    assert stopped["id"] == sent["id"]
    deadline = time.monotonic() + 5
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", host_port)) != 0:
                break
        assert time.monotonic() < deadline, "the forward outlived its client"
        time.sleep(0.05)


def test_a_gateway_without_monitor_is_refused_and_stopped(served: Served) -> None:
    guest, record, _ = served  # the fixture's QMP socket does not exist: no QEMU behind it
    guest.script["gateway"] = lambda op, ident, fields: guest.say("reply", ident, port=4321)
    with pytest.raises(JvmError, match="cannot reach QEMU's monitor"):
        registry.open_session(record, f"gateway {'t' * 24} agent.jar 3", b"abc")
    guest.next_sent("gateway-stop")
