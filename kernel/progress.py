"""Progress on long work (fetching a kernel, linking a JRE), on stderr.

The app's stderr is the terminal's, so our progress shows only where a person watches (stderr is a
terminal) or when asked (--verbose sets OSV_JAVA_PROGRESS=1); OSV_JAVA_PROGRESS=0 silences it.
Problems (warnings, errors) are not progress and are always printed by their callers.
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
