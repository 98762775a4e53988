"""Progress on long work (fetching a kernel, linking a JRE), on stderr.

The app's stderr is the terminal's, so our progress shows only where a person watches (stderr is a
terminal) or when asked (--verbose sets OSV_JAVA_PROGRESS=1); OSV_JAVA_PROGRESS=0 silences it.
Problems are not progress: `warn` always prints.
"""

from __future__ import annotations

import os
import sys


def wanted() -> bool:
    setting = os.environ.get("OSV_JAVA_PROGRESS")
    if setting in ("0", "1"):
        return setting == "1"
    return sys.stderr.isatty()


def say(message: str) -> bool:
    """Print `osv-java: MESSAGE` when progress is wanted; True when it was printed."""
    if not wanted():
        return False
    print(f"osv-java: {message}", file=sys.stderr, flush=True)
    return True


def warn(message: str) -> None:
    """Print `osv-java: warning: MESSAGE`, always: something the user should know went wrong."""
    print(f"osv-java: warning: {message}", file=sys.stderr, flush=True)
