"""The three libc calls PID 1 needs (mount, syscall, reboot), through _ctypes directly.

The ctypes package builds dozens of types and imports struct, types and more at import time, a
visible part of PID 1's start under software emulation; these few lines are all we use of it.
Arguments convert as ctypes converts them without argtypes: int to C int, bytes to char *, None to NULL.
"""

from __future__ import annotations

import _ctypes

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing pulls in re, enum and functools: a third of a second at boot
    from typing import Any


class _Int(_ctypes._SimpleCData):  # type: ignore[name-defined, misc]
    _type_ = "i"


class _Function(_ctypes.CFuncPtr):  # type: ignore[name-defined, misc]
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = _Int


class _Process:
    """Symbols of the running program and the libraries it loaded (dlopen(NULL))."""

    _handle = _ctypes.dlopen(None, 0)  # type: ignore[arg-type]


def function(name: str) -> Any:
    return _Function((name, _Process()))  # type: ignore[arg-type]


def errno() -> int:
    return int(_ctypes.get_errno())


mount = function("mount")
syscall = function("syscall")
reboot = function("reboot")
