"""What every benchmark does after each `osv-java run`: wait for the start-up archive a process run
may have left to be made in the background (the default when an app has none yet), so that no measured
run competes with a training run and every round finds the same archives."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kernel import cache  # noqa: E402
from kernel.build import background_training  # noqa: E402

WAIT_S = 600.0


def settle() -> None:
    busy = background_training.wait_for_all(cache.root() / "startup", WAIT_S)
    if busy:
        raise SystemExit(f"start-up archives still being made in the background after {WAIT_S:.0f} s: "
                         f"{', '.join(map(str, busy))}")
