"""Guest networking with plain ioctls: loopback always, eth0 for QEMU user-mode networking.

QEMU's user-mode network always gives the guest 10.0.2.15/24, gateway 10.0.2.2 and DNS 10.0.2.3,
so osv-java's own machines need no DHCP client. An exported machine asks for its lease by DHCP
(configure_by_dhcp, with kernel.guest.dhcp): under KubeVirt that is how the pod's DNS servers come.
"""

from __future__ import annotations

import _socket
import _struct
import fcntl
import os
import time

TYPE_CHECKING = False  # typing itself is not imported at boot; mypy still reads the block below
if TYPE_CHECKING:
    from collections.abc import Callable

    from kernel.guest.dhcp import Lease

# The builtin _socket and _struct, not socket and struct: the wrappers import enum and selectors,
# which cost a visible share of PID 1's start under software emulation.
AF_INET, SOCK_DGRAM = _socket.AF_INET, _socket.SOCK_DGRAM

SIOCSIFADDR, SIOCSIFNETMASK = 0x8916, 0x891C
SIOCGIFFLAGS, SIOCSIFFLAGS = 0x8913, 0x8914
SIOCADDRT, SIOCSIFMTU = 0x890B, 0x8922
IFF_UP, IFF_RUNNING = 0x1, 0x40
RTF_UP, RTF_GATEWAY = 0x1, 0x2

GUEST_ADDRESS = "10.0.2.15"
NETMASK = "255.255.255.0"
GATEWAY = "10.0.2.2"
DNS = "10.0.2.3"


def _sockaddr(address: str) -> bytes:
    return _struct.pack("HH4s8x", AF_INET, 0, _socket.inet_aton(address))


def _ifreq(name: str, payload: bytes) -> bytes:
    return _struct.pack("16s", name.encode()) + payload.ljust(24, b"\0")


def interface_up(sock: _socket.socket, name: str) -> None:
    flags = _struct.unpack("16sH", fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, _ifreq(name, b""))[:18])[1]
    fcntl.ioctl(sock.fileno(), SIOCSIFFLAGS, _ifreq(name, _struct.pack("H", flags | IFF_UP | IFF_RUNNING)))


def loopback_up() -> None:
    """lo up, and the host name /etc/hostname gives (the image's /etc/hosts resolves it); /init does the
    same when it starts the JVM itself."""
    sock = _socket.socket(AF_INET, SOCK_DGRAM)
    try:
        interface_up(sock, "lo")
    finally:
        sock.close()
    with open("/etc/hostname") as f:
        _socket.sethostname(f.read().strip())


def interface_ready(modules: list[str], load_module: Callable[[str], None], timeout: float = 10.0) -> None:
    """Load the NIC driver and wait for eth0 (no udev here: it appears a moment after)."""
    for module in modules:
        load_module(module)
    deadline = time.monotonic() + timeout
    while not os.path.exists("/sys/class/net/eth0"):
        if time.monotonic() > deadline:
            raise OSError("eth0 did not appear after loading virtio_net")
        time.sleep(0.002)


def assign(address: str, netmask: str, gateway: str | None, mtu: int | None = None) -> None:
    """eth0 up with `address`/`netmask` and a default route through `gateway` (none when None)."""
    sock = _socket.socket(AF_INET, SOCK_DGRAM)
    try:
        fcntl.ioctl(sock.fileno(), SIOCSIFADDR, _ifreq("eth0", _sockaddr(address)))
        fcntl.ioctl(sock.fileno(), SIOCSIFNETMASK, _ifreq("eth0", _sockaddr(netmask)))
        if mtu is not None:
            fcntl.ioctl(sock.fileno(), SIOCSIFMTU, _ifreq("eth0", _struct.pack("i", mtu)))
        interface_up(sock, "eth0")
        if gateway is not None:
            # struct rtentry: pad, dst, gateway, genmask, flags, ... (x86-64 layout, 120 bytes)
            route = _struct.pack(
                "L16s16s16sH38x",
                0,
                _sockaddr("0.0.0.0"),
                _sockaddr(gateway),
                _sockaddr("0.0.0.0"),
                RTF_UP | RTF_GATEWAY,
            ).ljust(120, b"\0")
            fcntl.ioctl(sock.fileno(), SIOCADDRT, route)
    finally:
        sock.close()


def write_resolv_conf(servers: list[str], search: list[str]) -> None:
    lines = [f"nameserver {server}\n" for server in servers]
    if search:
        lines.append(f"search {' '.join(search)}\n")
    with open("/etc/resolv.conf.tmp", "w") as f:
        f.writelines(lines)
    os.replace("/etc/resolv.conf.tmp", "/etc/resolv.conf")


def configure(modules: list[str], load_module: Callable[[str], None], timeout: float = 10.0,
              address: str = GUEST_ADDRESS, gateway: str = GATEWAY, dns: str | None = DNS) -> None:
    """Load the NIC driver, then give eth0 its fixed address (QEMU user mode's unless told) and a default
    route; `dns` None leaves /etc/resolv.conf alone."""
    interface_ready(modules, load_module, timeout)
    assign(address, NETMASK, gateway)
    if dns is not None:
        write_resolv_conf([dns], [])


def configure_by_dhcp(modules: list[str], load_module: Callable[[str], None],
                      obtain: Callable[[str], Lease | None], address: str = GUEST_ADDRESS,
                      gateway: str = GATEWAY, dns: str | None = DNS) -> str:
    """eth0 from the lease `obtain` (kernel.guest.dhcp.obtain) gets, or from the static addresses when no
    server answers; the console line that says which."""
    interface_ready(modules, load_module)
    sock = _socket.socket(AF_INET, SOCK_DGRAM)
    try:
        interface_up(sock, "eth0")  # without an address: DHCP's broadcasts need the link up
    finally:
        sock.close()
    start = time.monotonic()
    try:
        lease = obtain("eth0")
    except (OSError, ValueError) as exc:
        lease, why = None, f"DHCP failed ({exc})"
    else:
        why = f"no DHCP answer in {time.monotonic() - start:.1f} s"
    took = time.monotonic() - start
    if lease is None:
        assign(address, NETMASK, gateway)
        if dns is not None:
            write_resolv_conf([dns], [])
        return f"osv-java: network: {why}; static {address}/24 via {gateway}, dns {dns or 'none'}"
    gateway_used = lease.routers[0] if lease.routers else None
    assign(lease.address, lease.netmask, gateway_used, lease.mtu)
    write_resolv_conf(lease.dns, lease.search)
    return (f"osv-java: network: {lease.address}/{lease.prefix} via {gateway_used or 'no router'}, "
            f"dns {' '.join(lease.dns) or 'none'}{', search ' + ' '.join(lease.search) if lease.search else ''} "
            f"(DHCP in {took:.2f} s)")
