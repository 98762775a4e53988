"""How the guest's first process starts the JVM before the kernel services' Python is up.

/init (kernel/guest/init.sh, run by busybox) mounts the JRE and, when the host put the JVM's command
on the kernel command line, starts the JVM at once and only then execs Python as PID 1, which adopts
it. Python's start-up (about half a second under software emulation) then overlaps the JVM's.

The host sends that command as a shell snippet (`shell_command`), base64 on the command line. A
shell runs a background command with SIGINT and SIGQUIT ignored, and nothing in the shell can undo
that; a JVM that starts with SIGINT ignored never installs its handler, so Ctrl-C would not reach
the app. Hence the launcher: a static program of 262 bytes that makes a new session (so the host's
signals go to the JVM's whole process group), restores SIGINT and SIGQUIT to their default, and
execs its arguments.
"""

from __future__ import annotations

import shlex

from kernel.formats import tinyelf

LAUNCHER_IN_IMAGE = "/bin/osv-launch"
CMDLINE_PARAM = "osvexec"  # no dot: dotted parameters are taken as module options

_MESSAGE = b"osv-java: cannot start the JVM\n"
CODE = bytes.fromhex(
    "4889e3"  # mov rbx, rsp                (argc, argv..., NULL, envp...)
    "6a006a006a006a00"  # push 0 x4         (a zeroed struct sigaction: SIG_DFL, no flags, empty mask)
    "b870000000" "0f05"  # setsid()
    "bf02000000" "4889e6" "31d2" "41ba08000000" "b80d000000" "0f05"  # rt_sigaction(SIGINT, rsp, NULL, 8)
    "bf03000000" "b80d000000" "0f05"  # rt_sigaction(SIGQUIT, rsp, NULL, 8)
    "488b0b"  # mov rcx, [rbx]              argc
    "488d7310"  # lea rsi, [rbx+16]         &argv[1]
    "488b3e"  # mov rdi, [rsi]              argv[1]
    "488d54cb10"  # lea rdx, [rbx+rcx*8+16] envp
    "b83b000000" "0f05"  # execve(argv[1], &argv[1], envp)
    "bf02000000" "488d3518000000" "ba" + f"{len(_MESSAGE):02x}" + "000000" "b801000000" "0f05"  # write(2, msg)
    "bf7f000000" "b83c000000" "0f05"  # exit(127)
) + _MESSAGE


def elf() -> bytes:
    return tinyelf.elf(CODE)


def shell_command(argv: list[str], env: list[str], cwd: str, settings: dict[str, str] | None = None,
                  launcher_path: str = LAUNCHER_IN_IMAGE) -> str:
    """The snippet /init evaluates in the JVM's background process: the same start as PID 1's start_jvm.

    The policies' guest `settings` (path -> value) are written first, as pid1.apply_settings does. The
    working folder is made if missing (it is the host's, so relative paths mean what they meant
    there), else /; the environment is exactly `env`.
    """
    q = shlex.quote
    writes = "".join(
        f"echo {q(value)} >{q(path)} || echo osv-java: cannot set {q(path)} >&2; "
        for path, value in (settings or {}).items()
    )
    return (
        f"{writes}mkdir -p {q(cwd)} 2>/dev/null; cd {q(cwd)} 2>/dev/null || cd /; "
        f"exec env -i -- {' '.join(q(item) for item in env)} {q(launcher_path)} {' '.join(q(a) for a in argv)}"
    )
