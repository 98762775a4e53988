"""The control channel's message format, shared by the host and PID 1.

One message per line: fields separated by TAB, each `key=value`; a key may repeat (lists). Values are
escaped so any string travels: backslash, TAB and newline become \\\\, \\t and \\n. This needs no import
at all in the guest (json would pull in re and enum, which cost a visible share of the boot under
software emulation).
"""

from __future__ import annotations

Message = dict[str, list[str]]
# Kernel command line parameter carrying the run request (base64 of its wire form); the kernel hands
# it to PID 1 as an environment variable. No dot in the name: dotted ones are taken as module options.
CMDLINE_REQUEST = "osvrun"
# The virtio-serial ports between the host and PID 1, by name.
CONTROL_PORT = "osv.ctl"
STDIN_PORT = "osv.stdin"
STDOUT_PORT = "osv.stdout"
STDERR_PORT = "osv.stderr"
# A message with this field is followed on the port by that many raw bytes (the app's files after a
# boot snapshot's restore), read with Control.read_payload rather than as lines.
PAYLOAD = "payload_bytes"
# Where the guest JVM logs class initialisation for --bootchart (when main was entered).
CLASS_INIT_LOG = "/tmp/.osv-classinit.log"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    out = []
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append({"t": "\t", "n": "\n", "\\": "\\"}.get(nxt, nxt))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def encode(op: str, **fields: object) -> bytes:
    """`op` plus fields; a list or tuple value repeats its key, None is left out, bools are 1/0."""
    parts = ["op=" + _escape(op)]
    for key, value in fields.items():
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            if item is None:
                continue
            if isinstance(item, bool):
                item = int(item)
            parts.append(key + "=" + _escape(str(item)))
    return ("\t".join(parts) + "\n").encode("utf-8", "surrogateescape")


def decode(line: bytes) -> Message:
    message: Message = {}
    for part in line.decode("utf-8", "surrogateescape").rstrip("\n").split("\t"):
        key, _, value = part.partition("=")
        message.setdefault(key, []).append(_unescape(value))
    return message


def first(message: Message, key: str, default: str | None = None) -> str | None:
    values = message.get(key)
    return values[0] if values else default


def number(message: Message, key: str) -> float | None:
    value = first(message, key)
    return None if value in (None, "") else float(value)  # type: ignore[arg-type]
