"""`osv-java compat`: every language example and third-party program on every JDK and target, as a matrix.

Each cell runs `osv-java run` in its own process, exactly as a user would, so a cell exercises the whole
path (resolve, build, boot, console, exit status) and a crash or a hang in one cell cannot take the
others with it. What cannot run here (a JDK, a language runtime or QEMU that is not installed) is
decided before anything starts and shows as skipped with the reason, never as passed.
"""
