"""Starting the JVM from the kernel services: fork, set up in the child what the JVM inherits, exec.

PID 1 in a VM, PID 1 of an exported machine and an OCI image's entrypoint all start their JVM here.
Standard library only, and the builtin _signal rather than signal: PID 1 imports this before the
JVM starts, where every import is part of the boot.
"""

from __future__ import annotations

import _signal
import os

TYPE_CHECKING = False  # typing's own costs an import at boot
if TYPE_CHECKING:
    from collections.abc import Callable

# What the kernel services handle themselves, back to the default in the JVM.
HANDLED = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGPIPE, _signal.SIGCHLD)


def spawn(
    argv: list[str],
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    stdio: Callable[[], tuple[int, int, int]] | None = None,
    new_session: bool = True,
    default_signals: tuple[int, ...] = HANDLED,
) -> int:
    """Fork and exec `argv` (with `env` when given, else ours); the child's pid. `stdio` runs in the
    child and gives the fds for its stdin, stdout and stderr. A child that cannot exec says why on its
    stderr and exits with 127, as a shell does."""
    pid = os.fork()
    if pid == 0:
        try:
            if new_session:
                os.setsid()
            if stdio is not None:
                for target, fd in enumerate(stdio()):
                    os.dup2(fd, target)
            if cwd is not None:
                _enter(cwd)
            for sig in default_signals:
                _signal.signal(sig, _signal.SIG_DFL)
            if env is None:
                os.execv(argv[0], argv)
            os.execve(argv[0], argv, env)
        except BaseException as exc:  # noqa: BLE001 - report anything, then leave the child
            os.write(2, f"osv-java: cannot start {argv[0]}: {exc}\n".encode())
        os._exit(127)
    return pid


def _enter(cwd: str) -> None:
    """The host's working folder, so relative paths mean what they meant there (made when missing)."""
    try:
        os.makedirs(cwd, exist_ok=True)
        os.chdir(cwd)
    except OSError:
        os.chdir("/")
