"""The one exception root of osv-java.

It lives in the lowest layer (jvmbridge) so every layer above can raise it without pointing back up.
The CLI turns any OsvJavaError into `osv-java: error: WHAT` plus `hint: HOW` and exit status 125.
"""

from __future__ import annotations


class OsvJavaError(Exception):
    """A failure the user can act on: `message` says what, `hint` says how to fix it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(OsvJavaError):
    """Bad input from the user: a file, a value or an option that cannot work."""


class DependencyError(OsvJavaError):
    """Something osv-java needs is missing on this machine (QEMU, a JDK, a kernel)."""


class BuildError(OsvJavaError):
    """Building an image failed."""


class BootError(OsvJavaError):
    """The VM did not boot or did not report back; carries the console log tail, and for a guest that
    hung, where its vCPUs were (kernel.vm.vcpus)."""

    def __init__(self, message: str, hint: str | None = None, console_tail: str = "") -> None:
        super().__init__(message, hint)
        self.console_tail = console_tail
        self.vcpus = ""


class AppTimeout(OsvJavaError):
    """The app ran past --timeout and was stopped (either target)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the app did not finish within --timeout {seconds:g}s; it was stopped",
                         hint="raise --timeout, or look at what the app waits for")


class JvmError(OsvJavaError):
    """Talking to a running JVM failed (attach, hsperfdata, logging)."""


class StopTimeout(Exception):
    """The app was sent SIGTERM and did not end within --stop-timeout: it was killed (either target).

    Not an OsvJavaError: the run ends as a killed app does, with 137 (128+SIGKILL) as `docker stop`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the app did not stop within --stop-timeout {seconds:g}s of SIGTERM; it was killed")
        self.seconds = seconds
