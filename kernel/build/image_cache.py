"""The bound on the cache's images: each edit of a jar is a new image (about 20 MB of its own beside
the files it shares with its runtime's part), so an edit-and-run loop would fill the disk.

Every run that finds its image marks it used (the folder's time); each new image then prunes the
cache to the KEEP most recently used. An image used within GRACE seconds is never removed, whatever
the count: another run may have just found it. Removal renames the folder to a temporary name first
(so no run ever sees half an image), then deletes it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

from kernel import cache

KEEP = 32  # images kept in the cache (with 20 MB each of their own: about 0.7 GB, plus the apps' files)
GRACE = 3600.0  # seconds an image stays after its last use, whatever the count


def touch(folder: Path) -> None:
    """Mark the image in `folder` as just used."""
    with contextlib.suppress(OSError):
        os.utime(folder)


def prune(folder: Path, keep: int = KEEP, grace: float = GRACE) -> list[str]:
    """Remove all but the `keep` most recently used images in `folder` (none used within `grace`
    seconds); returns the names removed."""
    images = []
    for path in folder.iterdir():
        if path.name.startswith(cache.TEMP_PREFIX) or not path.is_dir():
            continue
        with contextlib.suppress(OSError):  # another run may be pruning too
            images.append((path.stat().st_mtime, path))
    removed = []
    now = time.time()
    for used, path in sorted(images, reverse=True)[keep:]:
        if now - used < grace:
            continue
        doomed = folder / f"{cache.TEMP_PREFIX}{path.name}-pruned"
        try:
            os.rename(path, doomed)
        except OSError:
            continue  # gone already, or another run is removing it
        if now - doomed.stat().st_mtime < grace:  # a run marked it between our look and the rename
            with contextlib.suppress(OSError):
                os.rename(doomed, path)
            continue
        shutil.rmtree(doomed, ignore_errors=True)
        removed.append(path.name)
    return removed
