"""Block devices in the guest appear a moment after their driver loads (no udev here): wait for them."""

from __future__ import annotations

import os
import time


def wait_for(device: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while not os.path.exists(device):
        if time.monotonic() > deadline:
            raise OSError(f"{device} did not appear within {timeout:g}s of loading its driver")
        time.sleep(0.001)
    return device
