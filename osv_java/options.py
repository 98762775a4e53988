"""Parsing and checking of the values users give on the command line (-m, -c, -p, -e)."""

from __future__ import annotations

import errno
import re
import urllib.parse
from typing import TYPE_CHECKING

from jvmbridge.errors import UsageError

if TYPE_CHECKING:  # imported where used: most runs have no ready point and publish nothing
    from kernel.vm.ready import ReadyPoint

MIN_MEMORY_MB = 128
MAX_CPUS = 255


def memory_mb(value: str) -> int:
    """'1G', '512M', '1536m', '2g' or a plain number of MiB."""
    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgGtT]?)[iI]?[bB]?\s*", value)
    if not m:
        raise UsageError(f"memory size {value!r} is not a size", hint="give -m a size such as 512M or 2G")
    number, unit = int(m.group(1)), m.group(2).upper()
    mb = {"": number, "K": number // 1024, "M": number, "G": number * 1024, "T": number * 1024 * 1024}[unit]
    if mb < MIN_MEMORY_MB:
        raise UsageError(f"memory size {value!r} is below {MIN_MEMORY_MB}M", hint="a JVM needs at least -m 128M")
    return mb


def cpus(value: str) -> int:
    if not value.strip().isdigit() or not 1 <= int(value) <= MAX_CPUS:
        raise UsageError(f"CPU count {value!r} is not a whole number from 1 to {MAX_CPUS}", hint="e.g. -c 2")
    return int(value)


def _port(text: str, spec: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise UsageError(f"port {text!r} in -p {spec!r} is not a number from 1 to 65535", hint="e.g. -p 8080:8080")
    return int(text)


def publish(spec: str) -> tuple[str, int, int]:
    """HOST:GUEST or ADDRESS:HOST:GUEST -> (address, host port, guest port); address 127.0.0.1 by default."""
    parts = spec.split(":")
    if len(parts) == 2:
        address, host, guest = "127.0.0.1", parts[0], parts[1]
    elif len(parts) == 3:
        import ipaddress

        address, host, guest = parts
        try:
            if ipaddress.ip_address(address).version != 4:
                raise ValueError
        except ValueError:
            raise UsageError(
                f"address {address!r} in -p {spec!r} is not an IPv4 address", hint="e.g. -p 0.0.0.0:8080:8080"
            ) from None
    else:
        raise UsageError(f"-p {spec!r} is not HOST:GUEST or ADDRESS:HOST:GUEST", hint="e.g. -p 8080:8080")
    return address, _port(host, spec), _port(guest, spec)


def check_port_free(address: str, port: int) -> None:
    """UsageError when the host port cannot be bound (in use, or not ours to take)."""
    import socket  # here: most runs publish nothing, and a process run starts sooner without it

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((address, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(
                    f"host port {address}:{port} is already in use",
                    hint=f"stop what listens there, or publish on another port: -p {port + 1}:GUEST",
                ) from None
            raise UsageError(
                f"cannot bind host port {address}:{port}: {exc.strerror}",
                hint="choose another address or port for -p",
            ) from None


def env_pair(spec: str) -> tuple[str, str]:
    name, sep, value = spec.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise UsageError(f"-e {spec!r} is not KEY=VALUE", hint="e.g. -e GREETING=hello")
    return name, value


def ready_point(value: str) -> ReadyPoint:
    """--snapshot-when-ready: a number is a TCP port in the guest (1-65535), an http:// URL on the
    guest's own host a request that must answer 200-399, anything else an absolute file path in the guest."""
    from kernel.vm.ready import MAX_PORT, ReadyPoint

    text = value.strip()
    if text.isdigit():
        if not 1 <= int(text) <= MAX_PORT:
            raise UsageError(f"--snapshot-when-ready {value!r} is not a port from 1 to {MAX_PORT}",
                             hint="give the TCP port the app listens on in the guest, e.g. --snapshot-when-ready 8080")
        return ReadyPoint(port=int(text))
    if "://" in text:
        return _http_ready_point(value, text)
    if not text.startswith("/") or "\0" in text or text.rstrip("/") == "":
        raise UsageError(f"--snapshot-when-ready {value!r} is neither a port number nor an absolute file path",
                         hint="give a TCP port (e.g. 8080), an URL the app answers once ready (e.g. "
                              "http://localhost:8080/health) or the absolute path of a file the app creates once "
                              "ready (e.g. /tmp/ready)")
    return ReadyPoint(path=text)


LOCAL_HOSTS = ("", "localhost", "127.0.0.1")


def _http_ready_point(value: str, text: str) -> ReadyPoint:
    """http://localhost:PORT/PATH: PID 1 asks it on the guest's loopback (no TLS in the guest)."""
    from kernel.vm.ready import MAX_PORT, ReadyPoint

    hint = "give http://localhost:PORT/PATH, the app's port in the guest, e.g. http://localhost:8080/health"
    try:
        url = urllib.parse.urlsplit(text)
        port = url.port
    except ValueError as exc:
        raise UsageError(f"--snapshot-when-ready {value!r} is not a valid URL ({exc})", hint=hint) from None
    if url.scheme.lower() != "http":
        raise UsageError(f"--snapshot-when-ready {value!r}: only http:// URLs are asked (PID 1 has no TLS)",
                         hint=hint)
    if port == 0:
        raise UsageError(f"--snapshot-when-ready {value!r} is not a port from 1 to {MAX_PORT}", hint=hint)
    if (url.hostname or "") not in LOCAL_HOSTS:
        raise UsageError(f"--snapshot-when-ready {value!r}: the request goes to the app in the guest, not to "
                         f"{url.hostname}", hint=hint)
    target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    if not target.startswith("/") or any(not 0x21 <= ord(c) <= 0x7E for c in target):
        raise UsageError(f"--snapshot-when-ready {value!r}: the path must be printable ASCII without spaces "
                         "(percent-encode the rest)", hint=hint)
    return ReadyPoint(port=port or 80, http_target=target)


def check_zygote(target: str, cold_boot: bool, volumes: bool, ready: bool) -> None:
    """UsageError where a started JVM's snapshot cannot be used."""
    for given, what, hint in (
        (target == "process", "--target process (no VM to save)", "drop --target process"),
        (cold_boot, "--cold-boot (it restores a saved machine)", "drop --cold-boot"),
        (volumes, "-v (QEMU cannot migrate vhost-user-fs)", "drop -v"),
        (ready, "--snapshot-when-ready (that saves the app itself)", "drop --snapshot-when-ready"),
    ):
        if given:
            raise UsageError(f"--zygote does not go with {what}", hint=f"{hint}, or drop --zygote")


def check_ready_point(cold_boot: bool, volumes: bool, target: str) -> None:
    """UsageError where a ready-point snapshot cannot work."""
    if target == "process":
        raise UsageError("--snapshot-when-ready saves a VM: it does not go with --target process",
                         hint="drop --target process, or drop --snapshot-when-ready")
    if cold_boot:
        raise UsageError("--snapshot-when-ready restores a saved machine: it does not go with --cold-boot",
                         hint="drop --cold-boot, or drop --snapshot-when-ready")
    if volumes:
        raise UsageError("--snapshot-when-ready cannot save a VM with -v volumes (QEMU cannot migrate vhost-user-fs)",
                         hint="drop -v (put the files in the app's class path or image), or drop --snapshot-when-ready")
