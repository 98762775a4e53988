"""The guest's DHCP client, its pure part: the requests it builds and the replies it reads. Replies are
built here byte by byte from RFC 2131/2132 (the layout KubeVirt's and QEMU's servers send)."""

from __future__ import annotations

import socket
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.guest import dhcp

MAC = bytes.fromhex("525400a1b2c3")
XID = 0x1234ABCD


def reply(kind: int, options: bytes, your: str = "10.0.2.2", xid: int = XID, mac: bytes = MAC,
          op: int = 2, file: bytes = b"", sname: bytes = b"") -> bytes:
    header = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", op, 1, 6, 0, xid, 0, 0x8000, bytes(4),
                         socket.inet_aton(your), bytes(4), bytes(4), mac, sname, file)
    return header + b"\x63\x82\x53\x63" + bytes([53, 1, kind]) + options + b"\xff"


def opt(code: int, data: bytes) -> bytes:
    return bytes([code, len(data)]) + data


def ip(*addresses: str) -> bytes:
    return b"".join(socket.inet_aton(a) for a in addresses)


def request_options(packet: bytes) -> dict[int, bytes]:
    options: dict[int, bytes] = {}
    dhcp._options(packet[240:], options)
    return options


def test_a_discover_is_a_broadcast_bootp_request_with_the_options_it_needs() -> None:
    packet = dhcp.build(dhcp.DISCOVER, XID, MAC)
    assert len(packet) == 300  # the BOOTP minimum some servers insist on
    op, htype, hlen, _, xid, _, flags = struct.unpack_from("!BBBBIHH", packet)
    assert (op, htype, hlen, xid, flags) == (1, 1, 6, XID, 0x8000)
    assert packet[28:34] == MAC and packet[236:240] == b"\x63\x82\x53\x63"
    options = request_options(packet)
    assert options[53] == bytes([dhcp.DISCOVER])
    assert options[61] == b"\x01" + MAC
    assert {1, 3, 6, 15, 51, 119} <= set(options[55])
    assert 50 not in options and 54 not in options


def test_a_request_names_the_offered_address_and_its_server() -> None:
    options = request_options(dhcp.build(dhcp.REQUEST, XID, MAC, "10.0.2.2", "10.0.2.1"))
    assert options[53] == bytes([dhcp.REQUEST])
    assert options[50] == ip("10.0.2.2") and options[54] == ip("10.0.2.1")


def test_an_ack_gives_the_whole_lease() -> None:
    search = b"\x07default\x03svc\x07cluster\x05local\x00\xc0\x08\xc0\x0c"  # RFC 1035 pointers into itself
    packet = reply(dhcp.ACK, opt(1, ip("255.255.255.0")) + opt(3, ip("10.0.2.1")) + opt(6, ip("10.96.0.10", "8.8.8.8"))
                   + opt(119, search) + opt(51, struct.pack("!I", 86400)) + opt(54, ip("10.0.2.1"))
                   + opt(26, struct.pack("!H", 1450)) + opt(12, b"hello-vm"))
    parsed = dhcp.parse(packet, XID, MAC)
    assert parsed is not None and parsed.kind == dhcp.ACK
    lease = dhcp.lease_of(parsed)
    assert lease == dhcp.Lease(address="10.0.2.2", netmask="255.255.255.0", routers=["10.0.2.1"],
                               dns=["10.96.0.10", "8.8.8.8"],
                               search=["default.svc.cluster.local", "svc.cluster.local", "cluster.local"],
                               lease_seconds=86400, server="10.0.2.1", mtu=1450)
    assert lease.prefix == 24


def test_qemu_user_modes_ack_without_search_domains() -> None:
    packet = reply(dhcp.ACK, opt(54, ip("10.0.2.2")) + opt(51, struct.pack("!I", 86400)) + opt(1, ip("255.255.255.0"))
                   + opt(3, ip("10.0.2.2")) + opt(6, ip("10.0.2.3")), your="10.0.2.15")
    lease = dhcp.lease_of(dhcp.parse(packet, XID, MAC))  # type: ignore[arg-type]
    assert (lease.address, lease.prefix, lease.routers, lease.dns, lease.search, lease.mtu) == (
        "10.0.2.15", 24, ["10.0.2.2"], ["10.0.2.3"], [], None)


def test_a_domain_name_is_the_search_list_when_no_search_option_comes() -> None:
    lease = dhcp.lease_of(dhcp.parse(reply(dhcp.ACK, opt(15, b"example.org\0")), XID, MAC))  # type: ignore[arg-type]
    assert lease.search == ["example.org"]
    assert lease.netmask == "255.0.0.0"  # no mask option: the address's natural one (10/8)


def test_classless_routes_replace_the_router_option() -> None:
    routes = bytes([24, 192, 168, 1]) + ip("10.0.2.9") + bytes([0]) + ip("10.0.2.254")
    lease = dhcp.lease_of(dhcp.parse(reply(dhcp.ACK, opt(3, ip("10.0.2.1")) + opt(121, routes)), XID, MAC))  # type: ignore[arg-type]
    assert lease.routers == ["10.0.2.254"]


def test_options_split_over_the_overload_fields_and_repeated_codes_are_joined() -> None:
    file = opt(6, ip("10.0.2.3")) + b"\xff"
    packet = reply(dhcp.ACK, opt(52, b"\x01") + opt(6, ip("10.0.2.4")), file=file)
    lease = dhcp.lease_of(dhcp.parse(packet, XID, MAC))  # type: ignore[arg-type]
    assert lease.dns == ["10.0.2.4", "10.0.2.3"]


@pytest.mark.parametrize("packet", [
    reply(dhcp.OFFER, b"", xid=XID + 1),  # another transaction
    reply(dhcp.OFFER, b"", mac=bytes.fromhex("525400000001")),  # another client
    reply(dhcp.OFFER, b"", op=1),  # a request (another client's, seen on the broadcast address)
    b"\x02" * 100,  # too short to be DHCP
])
def test_what_is_not_for_this_client_is_ignored(packet: bytes) -> None:
    assert dhcp.parse(packet, XID, MAC) is None


@pytest.mark.parametrize("packet, message", [
    (reply(dhcp.ACK, b"")[:236] + b"\0\0\0\0" + b"\x35\x01\x05\xff", "no DHCP magic cookie"),
    (reply(dhcp.ACK, b"")[:240] + b"\x06\x08\x0a\x00", "runs past the end"),
    (reply(dhcp.ACK, b"")[:240] + b"\x01\x04\xff\xff\xff\x00\xff", "no DHCP message type"),
])
def test_a_malformed_reply_to_this_client_is_refused(packet: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dhcp.parse(packet, XID, MAC)


@pytest.mark.parametrize("data, message", [
    (b"\x03abc", "past the option's end"),
    (b"\xc0\x00", "bad compression pointer"),  # a pointer to itself
])
def test_malformed_search_domains_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dhcp.domain_names(data)


def test_a_bad_address_list_or_route_is_refused() -> None:
    with pytest.raises(ValueError, match="address list of 5 bytes"):
        dhcp.lease_of(dhcp.parse(reply(dhcp.ACK, opt(6, b"\x0a\x00\x02\x03\x04")), XID, MAC))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="classless route of /33"):
        dhcp.lease_of(dhcp.parse(reply(dhcp.ACK, opt(121, bytes([33]) + bytes(9))), XID, MAC))  # type: ignore[arg-type]


@given(st.binary(max_size=400))
def test_any_bytes_parse_or_raise_value_error(noise: bytes) -> None:
    packet = reply(dhcp.ACK, b"")[:240] + noise
    try:
        parsed = dhcp.parse(packet, XID, MAC)
        if parsed is not None:
            dhcp.lease_of(parsed)
    except ValueError:
        pass


@given(st.lists(st.from_regex(r"[a-z0-9]{1,20}(\.[a-z0-9]{1,20}){0,3}", fullmatch=True), max_size=5))
def test_uncompressed_search_domains_round_trip(names: list[str]) -> None:
    data = b"".join(b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
                    for name in names)
    assert dhcp.domain_names(data) == names
