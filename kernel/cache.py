"""The osv-java cache folder and atomic writes into it.

Everything is written under a temporary name in the same folder and renamed into place, so an
interrupted build leaves the cache exactly as it was.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from jvmbridge.errors import OsvJavaError

TEMP_PREFIX = ".tmp-"


def root() -> Path:
    """$OSV_JAVA_CACHE, else ~/.cache/osv-java (created on first use)."""
    base = os.environ.get("OSV_JAVA_CACHE") or str(Path.home() / ".cache" / "osv-java")
    return Path(base)


def ensure(sub: str) -> Path:
    """The cache subfolder `sub`, created if missing; a clear error when the cache is not writable."""
    path = root() / sub
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cache_error(path, exc) from exc
    if not os.access(path, os.W_OK):
        raise OsvJavaError(
            f"cache folder {path} is not writable",
            hint="fix its permissions, or point OSV_JAVA_CACHE at a writable folder",
        )
    return path


def cache_error(path: Path, exc: OSError) -> OsvJavaError:
    if exc.errno == errno.ENOSPC:
        return OsvJavaError(
            f"no space left on the device holding {path}",
            hint="free some space, or point OSV_JAVA_CACHE at a larger disk",
        )
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return OsvJavaError(
            f"cannot write to {path}: {exc.strerror}",
            hint="point OSV_JAVA_CACHE at a writable folder",
        )
    return OsvJavaError(f"cannot write to {path}: {exc.strerror}", hint="check the cache folder (OSV_JAVA_CACHE)")


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder beside `final`; on success rename it to `final`, else remove it."""
    final.parent.mkdir(parents=True, exist_ok=True)
    # Made inside the try, under a name chosen first (64 random bits: never an existing one), so that an
    # interrupt arriving just after the folder exists still removes it (mkdtemp left that window open).
    tmp = final.parent / f"{TEMP_PREFIX}{final.name}-{os.urandom(8).hex()}"
    import shutil  # here: a run that writes nothing to the cache does not load it (with bz2 and lzma)

    try:
        try:
            tmp.mkdir(mode=0o700)
        except OSError as exc:
            raise cache_error(final.parent, exc) from exc
        yield tmp
        if final.exists():
            shutil.rmtree(tmp)  # someone else finished the same entry first; theirs is identical
        else:
            os.rename(tmp, final)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, OsvJavaError):
            raise cache_error(final.parent, exc) from exc
        raise


def write_file_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(path.parent / f"{TEMP_PREFIX}{path.name}-{os.urandom(8).hex()}")  # made inside the try, as above
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise cache_error(path.parent, exc) from exc
        raise


MEMOS_KEPT = 1000  # remembered digests, 64 bytes each


def file_digest(path: Path) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def remembered_digest(path: Path) -> str:
    """file_digest of a file that runs read again and again (the kernel, an archived app's jars),
    remembered in the cache by the file's device, inode, size, modification and change times: hashed
    once, not at every run (a write in place changes the change time, which no one can set back)."""
    stat = path.stat()
    memo = root() / "digests" / f"{stat.st_dev}-{stat.st_ino}-{stat.st_size}-{stat.st_mtime_ns}-{stat.st_ctime_ns}"
    with contextlib.suppress(OSError, UnicodeDecodeError):
        known = memo.read_text()
        if len(known) == 64:
            return known
    digest = file_digest(path)
    with contextlib.suppress(OsvJavaError, OSError):  # a read-only cache only costs the hash again
        write_file_atomic(memo, digest.encode())
        _bound_memos(memo.parent)
    return digest


def _bound_memos(folder: Path) -> None:
    """Each edit of a jar leaves a memo: past MEMOS_KEPT, the older half goes (a lost one is a hash again)."""
    memos = list(folder.iterdir())
    if len(memos) <= MEMOS_KEPT:
        return
    by_age = sorted(memos, key=lambda m: m.stat().st_mtime_ns)
    for memo in by_age[: len(memos) // 2]:
        memo.unlink(missing_ok=True)


def sweep_stale_temps(folder: Path, older_than_s: float = 3600.0) -> None:
    """Remove temporary entries an hour old: left by a process that was SIGKILLed mid-write."""
    if not folder.is_dir():
        return
    import shutil

    limit = time.time() - older_than_s
    for child in folder.iterdir():
        if not child.name.startswith(TEMP_PREFIX):
            continue
        with contextlib.suppress(OSError):
            if child.lstat().st_mtime < limit:
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink()
