"""HTTP probing of a cell that serves: waiting for its first page (the port comes from kernel.vm.monitor.free_port)."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request


def wait_for_page(url: str, proc: subprocess.Popen[bytes], deadline: float) -> tuple[int, str] | str:
    """(status, body) of the first answer to GET `url`, or why there was none (the run ended, time ran out)."""
    while True:
        if proc.poll() is not None:
            return f"the server exited with status {proc.returncode} before answering GET {url}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return int(response.status), response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode(errors="replace")
        except OSError:
            pass
        if time.monotonic() > deadline:
            return f"no answer to GET {url} before the timeout"
        time.sleep(0.5)
