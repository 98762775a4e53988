"""A runtime's share of its images, built once: every app of a runtime links to the same files.

An image is its runtime (kernel, PID 1, guest Python, the JRE, language runtimes: the base initramfs
and the runtime disk) plus the app's own files. Building the runtime's files (reading kernel
modules' dependencies, writing 70 MB, hashing every JRE file) took most of an image's build, and an
edited jar is a new image: so they are built once per runtime, kept in the cache under `runtimes/`,
and each image folder holds hard links to them (a copy on a file system without links), with its
own files beside them.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kernel import cache

FORMAT = 1
META = "part.json"


@dataclass(frozen=True)
class RuntimePart:
    """A built runtime part: its folder and what its builder recorded (see kernel.build.image)."""

    folder: Path
    meta: dict

    def place(self, name: str, target: Path) -> None:
        """Put the part's file `name` at `target`: a hard link, else a copy."""
        try:
            os.link(self.folder / name, target)
        except OSError:
            shutil.copyfile(self.folder / name, target)


def get(key: str, build: Callable[[Path], dict]) -> RuntimePart:
    """The part with this key, built now with `build(folder)` (which writes its files into `folder`
    and returns what to record) when the cache does not hold it yet; all or nothing."""
    final = cache.ensure("runtimes") / key
    if not (final / META).exists():
        cache.sweep_stale_temps(final.parent)
        with cache.atomic_dir(final) as tmp:
            meta = build(tmp)
            (tmp / META).write_text(json.dumps(meta, sort_keys=True))
    return RuntimePart(final, json.loads((final / META).read_text()))
