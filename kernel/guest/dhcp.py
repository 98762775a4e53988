"""A DHCPv4 client (RFC 2131/2132) for PID 1 of an exported machine. Standard library only.

Under KubeVirt the pod's DNS servers and search domains reach a VM only by DHCP, so the exported
guest asks for its lease before the JVM starts: DISCOVER, OFFER, REQUEST, ACK on a UDP socket bound
to port 68 of an interface that is up without an address (SO_BINDTODEVICE picks the interface, the
broadcast flag asks the server to broadcast its answers, which an address-less interface can
receive). The lease is not renewed: the address stays configured in the kernel after it ends, and
the servers this is for (KubeVirt's, QEMU's user network) hand out leases of a day or more.

Packets are built and parsed by pure functions (build, parse) apart from the exchange (obtain).
"""

from __future__ import annotations

import _socket
import _struct
import time
from dataclasses import dataclass, field

CLIENT_PORT, SERVER_PORT = 68, 67
BOOTREQUEST, BOOTREPLY = 1, 2
HTYPE_ETHERNET = 1
FLAG_BROADCAST = 0x8000
MAGIC_COOKIE = b"\x63\x82\x53\x63"
# Message types (option 53)
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK = 1, 2, 3, 4, 5, 6
# Options
PAD, END = 0, 255
SUBNET_MASK, ROUTER, DNS_SERVERS, DOMAIN_NAME, INTERFACE_MTU = 1, 3, 6, 15, 26
REQUESTED_ADDRESS, LEASE_TIME, OVERLOAD, MESSAGE_TYPE, SERVER_ID = 50, 51, 52, 53, 54
PARAMETERS, MAX_MESSAGE_SIZE, CLIENT_ID, DOMAIN_SEARCH, CLASSLESS_ROUTES = 55, 57, 61, 119, 121
WANTED = bytes([SUBNET_MASK, ROUTER, DNS_SERVERS, DOMAIN_NAME, INTERFACE_MTU, LEASE_TIME, SERVER_ID,
                DOMAIN_SEARCH, CLASSLESS_ROUTES])

FIXED = "!BBBBIHH4s4s4s4s16s64s128s"  # op .. file: the BOOTP header before the magic cookie
FIXED_SIZE = _struct.calcsize(FIXED)  # 236
BOOTP_MIN_SIZE = 300  # some servers drop shorter requests (RFC 1542)
SO_BINDTODEVICE = 25  # Linux; not exported by every Python's socket module
RETRY_SECONDS = (0.5, 1.0, 2.0)  # between retransmissions, the last one repeating


@dataclass(frozen=True)
class Lease:
    """What the server gave: addresses as dotted quads, `search` as domain names."""

    address: str
    netmask: str
    routers: list[str] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    search: list[str] = field(default_factory=list)
    lease_seconds: int | None = None
    server: str | None = None
    mtu: int | None = None

    @property
    def prefix(self) -> int:
        return bin(_struct.unpack("!I", _socket.inet_aton(self.netmask))[0]).count("1")


@dataclass(frozen=True)
class Reply:
    """A server's message for this client: its type, the offered address and the raw options."""

    kind: int
    your_address: str
    options: dict[int, bytes]


def build(kind: int, xid: int, mac: bytes, requested: str | None = None, server: str | None = None) -> bytes:
    """A DISCOVER or REQUEST from `mac` (6 bytes); REQUEST names the offered address and its server."""
    header = _struct.pack(FIXED, BOOTREQUEST, HTYPE_ETHERNET, len(mac), 0, xid, 0, FLAG_BROADCAST,
                          bytes(4), bytes(4), bytes(4), bytes(4), mac, b"", b"")
    options = bytearray([MESSAGE_TYPE, 1, kind, CLIENT_ID, 1 + len(mac), HTYPE_ETHERNET, *mac])
    options += bytes([MAX_MESSAGE_SIZE, 2]) + _struct.pack("!H", 1500)
    if requested is not None:
        options += bytes([REQUESTED_ADDRESS, 4]) + _socket.inet_aton(requested)
    if server is not None:
        options += bytes([SERVER_ID, 4]) + _socket.inet_aton(server)
    options += bytes([PARAMETERS, len(WANTED)]) + WANTED + bytes([END])
    packet = header + MAGIC_COOKIE + bytes(options)
    return packet.ljust(BOOTP_MIN_SIZE, b"\0")


def _options(data: bytes, into: dict[int, bytes]) -> None:
    """Code-length-value options into `into`; a code seen twice is concatenated (RFC 3396)."""
    i = 0
    while i < len(data):
        code = data[i]
        if code == END:
            return
        if code == PAD:
            i += 1
            continue
        if i + 1 >= len(data) or i + 2 + data[i + 1] > len(data):
            raise ValueError(f"option {code} runs past the end of the packet")
        length = data[i + 1]
        into[code] = into.get(code, b"") + data[i + 2:i + 2 + length]
        i += 2 + length


def parse(packet: bytes, xid: int, mac: bytes) -> Reply | None:
    """The reply in `packet` when it answers this client's transaction (None for anything else: other
    clients' traffic shares the broadcast address). Raises ValueError on a malformed reply to us."""
    if len(packet) < FIXED_SIZE + len(MAGIC_COOKIE):
        return None
    op, _, hlen, _, got_xid, _, _, _, yiaddr, _, _, chaddr, sname, file = _struct.unpack_from(FIXED, packet)
    if op != BOOTREPLY or got_xid != xid or chaddr[:hlen] != mac:
        return None
    if packet[FIXED_SIZE:FIXED_SIZE + 4] != MAGIC_COOKIE:
        raise ValueError("no DHCP magic cookie")
    options: dict[int, bytes] = {}
    _options(packet[FIXED_SIZE + 4:], options)
    overload = options.get(OVERLOAD, b"\0")[:1]  # options continued in the file and sname fields
    overload_bits = overload[0] if overload else 0
    if overload_bits & 1:
        _options(file, options)
    if overload_bits & 2:
        _options(sname, options)
    kind = options.get(MESSAGE_TYPE, b"")
    if len(kind) != 1:
        raise ValueError("no DHCP message type")
    return Reply(kind[0], _socket.inet_ntoa(yiaddr), options)


def _addresses(data: bytes) -> list[str]:
    if len(data) % 4:
        raise ValueError(f"an address list of {len(data)} bytes")
    return [_socket.inet_ntoa(data[i:i + 4]) for i in range(0, len(data), 4)]


def domain_names(data: bytes) -> list[str]:
    """Option 119's RFC 1035 names, with compression pointers into the option itself (RFC 3397)."""
    names = []
    i = 0
    while i < len(data):
        labels: list[str] = []
        pos, hops, end = i, 0, None
        while True:
            if pos >= len(data):
                raise ValueError("a search domain runs past the option's end")
            length = data[pos]
            if length & 0xC0 == 0xC0:  # a pointer: the rest of the name is elsewhere in the option
                if pos + 1 >= len(data) or hops > 64:
                    raise ValueError("a bad compression pointer in the search domains")
                if end is None:
                    end = pos + 2
                pos = ((length & 0x3F) << 8) | data[pos + 1]
                hops += 1
                continue
            if length == 0:
                if end is None:
                    end = pos + 1
                break
            labels.append(data[pos + 1:pos + 1 + length].decode("ascii", "replace"))
            pos += 1 + length
        if labels:
            names.append(".".join(labels))
        i = end
    return names


def _default_route(data: bytes) -> list[str]:
    """The default route's gateway among option 121's classless routes (RFC 3442): [] when none."""
    i = 0
    while i < len(data):
        width = data[i]
        if width > 32:
            raise ValueError(f"a classless route of /{width}")
        octets = (width + 7) // 8
        gateway = data[i + 1 + octets:i + 5 + octets]
        if len(gateway) != 4:
            raise ValueError("a classless route runs past the option's end")
        if width == 0:
            return [_socket.inet_ntoa(gateway)]
        i += 5 + octets
    return []


def _natural_mask(address: str) -> str:
    first = _socket.inet_aton(address)[0]
    return "255.0.0.0" if first < 128 else "255.255.0.0" if first < 192 else "255.255.255.0"


def lease_of(reply: Reply) -> Lease:
    """The lease an ACK grants. Classless routes, when given, replace the router option (RFC 3442)."""
    options = reply.options
    mask = options.get(SUBNET_MASK)
    routers = (_default_route(options[CLASSLESS_ROUTES]) if CLASSLESS_ROUTES in options
               else _addresses(options.get(ROUTER, b"")))
    search = domain_names(options[DOMAIN_SEARCH]) if DOMAIN_SEARCH in options else []
    domain = options.get(DOMAIN_NAME, b"").rstrip(b"\0").decode("ascii", "replace")
    if domain and not search:
        search = [domain]
    lease = options.get(LEASE_TIME)
    server = options.get(SERVER_ID)
    mtu = options.get(INTERFACE_MTU)
    return Lease(
        address=reply.your_address,
        netmask=_socket.inet_ntoa(mask) if mask and len(mask) == 4 else _natural_mask(reply.your_address),
        routers=routers,
        dns=_addresses(options.get(DNS_SERVERS, b"")),
        search=search,
        lease_seconds=_struct.unpack("!I", lease)[0] if lease and len(lease) == 4 else None,
        server=_socket.inet_ntoa(server) if server and len(server) == 4 else None,
        mtu=_struct.unpack("!H", mtu)[0] if mtu and len(mtu) == 2 else None,
    )


def transaction_id(mac: bytes) -> int:
    """Unique enough per machine and boot without the kernel's random pool, which early boot may lack."""
    return (int.from_bytes(mac[2:], "big") ^ time.monotonic_ns()) & 0xFFFFFFFF


def mac_address(interface: str) -> bytes:
    with open(f"/sys/class/net/{interface}/address") as f:
        return bytes.fromhex(f.read().strip().replace(":", ""))


def _receive(sock: _socket.socket, until: float, xid: int, mac: bytes, kinds: tuple[int, ...]) -> Reply | None:
    """The first reply of one of `kinds` to this transaction before `until`; None on time-out."""
    while True:
        left = until - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            packet = sock.recv(4096)
        except TimeoutError:
            return None
        try:
            reply = parse(packet, xid, mac)
        except ValueError:
            continue  # a broken reply: wait for a good one or retransmit
        if reply is not None and reply.kind in kinds:
            return reply


def obtain(interface: str, budget: float = 4.0) -> Lease | None:
    """A lease for `interface` (up, without an address), or None when none came within `budget` seconds.
    Retransmits DISCOVER (and REQUEST) after 0.5, 1, 2, 2 … s; a NAK starts over."""
    mac = mac_address(interface)
    deadline = time.monotonic() + budget
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_BROADCAST, 1)
        sock.setsockopt(_socket.SOL_SOCKET, SO_BINDTODEVICE, interface.encode())
        sock.bind(("0.0.0.0", CLIENT_PORT))
        xid = transaction_id(mac)
        message, wanted = build(DISCOVER, xid, mac), (OFFER,)
        attempt = 0
        while time.monotonic() < deadline:
            try:
                sock.sendto(message, ("255.255.255.255", SERVER_PORT))
            except OSError:
                pass  # the link not ready yet, say: wait as for a lost packet, then send again
            wait = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
            reply = _receive(sock, min(deadline, time.monotonic() + wait), xid, mac, (*wanted, NAK))
            attempt += 1
            if reply is None:
                continue
            if reply.kind == OFFER:
                server = reply.options.get(SERVER_ID)
                message = build(REQUEST, xid, mac, reply.your_address,
                                _socket.inet_ntoa(server) if server and len(server) == 4 else None)
                wanted, attempt = (ACK,), 0
            elif reply.kind == ACK:
                return lease_of(reply)
            else:  # NAK: the offer is gone, start over
                message, wanted = build(DISCOVER, xid, mac), (OFFER,)
        return None
    finally:
        sock.close()
