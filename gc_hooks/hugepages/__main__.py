"""`python -m gc_hooks.hugepages share|collapse PID [--json]`: the heap's huge-page share of a running
JVM, and its external collapse. Errors are one line (`osv-java: error: ...`, exit 125), no traceback.
Standard library only: it works in the guest too."""

from __future__ import annotations

import argparse
import json
import sys

from gc_hooks.hugepages.collapse import DEFAULT_STEP
from gc_hooks.hugepages.supervisor import once
from jvmbridge.errors import OsvJavaError

MB = 1 << 20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gc_hooks.hugepages", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("share", "collapse"))
    parser.add_argument("pid", type=int)
    parser.add_argument("--step-mb", type=int, default=DEFAULT_STEP // MB, help="MB per collapse call")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        before, after, result = once(args.pid, args.action == "collapse", args.step_mb)
    except OsvJavaError as exc:
        print(f"osv-java: error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 125
    if args.json:
        record: dict[str, object] = {"pid": args.pid, "share": round(before.share, 4), "rss": before.rss,
                                     "huge": before.huge, "kind": before.kind, "source": before.source}
        if after is not None and result is not None:
            record.update(share_after=round(after.share, 4), collapse_seconds=round(result.seconds, 3),
                          longest_step_ms=round(result.longest_step * 1e3, 1), collapse_error=result.error)
        print(json.dumps(record))
    else:
        print(f"before: {before.describe()}" if after is not None else before.describe())
        if after is not None and result is not None:
            print(f"collapse: {result.line()}")
            print(f"after: {after.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
