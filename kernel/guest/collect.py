"""Run by the guest's Python interpreter: zip exactly the modules PID 1 imports, as compiled .pyc.

Usage: python3 -S collect.py OUT.zip OUT.json [MODULE...]   (modules to add beyond PID 1's)
The snapshot of sys.modules is taken before this script imports anything of its own. The zip gets
unchecked hash-based .pyc files with fixed timestamps (reproducible, nothing compiled at boot); the
JSON lists the extension modules (.so) that must be copied beside the zip as lib-dynload.
"""

import importlib
import sys

import gc_hooks
from kernel.guest import pid1

for _name in (*pid1.LATE_IMPORTS, *gc_hooks.SUPERVISOR_MODULES, *sys.argv[3:]):
    importlib.import_module(_name)
IMPORTED = {name: getattr(module, "__file__", None) for name, module in sys.modules.items()}
IMPORTED.pop("__main__", None)

import importlib.util  # noqa: E402 - only after the snapshot
import json  # noqa: E402
import os  # noqa: E402
import zipfile  # noqa: E402

STDLIB = os.path.dirname(os.path.abspath(os.__file__))
PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(pid1.__file__))))


def compiled(source_path: str, arcname: str) -> bytes:
    with open(source_path, "rb") as f:
        source = f.read()
    code = compile(source, arcname, "exec", dont_inherit=True, optimize=0)
    return importlib._bootstrap_external._code_to_hash_pyc(  # type: ignore[attr-defined]
        code, importlib.util.source_hash(source), checked=False
    )


def main() -> None:
    out_zip, out_json = sys.argv[1], sys.argv[2]
    entries = {}
    extensions = []
    for name, path in sorted(IMPORTED.items()):
        if not path:
            continue
        path = os.path.abspath(path)
        if path.endswith(".so"):
            extensions.append(path)
        elif path.endswith(".py"):
            for base in (PROJECT, STDLIB):
                if path.startswith(base + os.sep):
                    rel = os.path.relpath(path, base)
                    entries[rel[:-3] + ".pyc"] = compiled(path, rel)
                    break
            else:
                raise SystemExit(f"module {name} ({path}) is neither in the stdlib nor in osv-java")
    with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_STORED) as zf:
        for arcname in sorted(entries):
            info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, entries[arcname])
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    with open(out_json, "w") as f:
        json.dump({"version": version, "extensions": sorted(extensions), "stdlib": STDLIB}, f)


if __name__ == "__main__":
    main()
