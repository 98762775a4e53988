"""Builders of malformed inputs and the harness that runs osv-java on them.

Every bad input is made here from real parts (this machine's libraries, the hello example's class),
patched the way real breakage looks: a foreign e_machine, a renamed DT_NEEDED, a version that glibc
never had, a truncated file. The harness runs the real command line in a subprocess with its own
OSV_JAVA_CACHE and snapshots the cache before and after.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile

ROOT = Path(__file__).resolve().parents[2]
HELLO_JAR = ROOT / "examples" / "hello" / "hello.jar"
LIBZ = Path("/usr/lib/x86_64-linux-gnu/libz.so.1")
EM_AARCH64 = 183


# ------------------------------------------------------------------ running the command line


@dataclass
class Result:
    status: int
    stdout: str
    stderr: str


# The console script pip installed for this interpreter: the command line users run, with every
# command registered the way osv_java.cli registers it.
OSV_JAVA = Path(sys.executable).parent / "osv-java"


def osv(
    args: list[str],
    cache: Path,
    timeout: float = 240,
    env: dict[str, str] | None = None,
    wrapper: list[str] | None = None,
) -> Result:
    """Run `osv-java ARGS` in a subprocess with `cache` as its OSV_JAVA_CACHE."""
    full_env = {**os.environ, "OSV_JAVA_CACHE": str(cache), **(env or {})}
    proc = subprocess.run(
        [*(wrapper or []), str(OSV_JAVA), *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_one_error(result: Result, status: int, *needles: str) -> None:
    """Exit `status`, one `osv-java: error:` line naming each needle, an optional hint, no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("osv-java: error: ")]
    assert result.status == status, f"exit {result.status}, wanted {status}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    assert len(errors) == 1, f"wanted one error line:\n{result.stderr}"
    for needle in needles:
        assert needle.lower() in errors[0].lower(), f"{needle!r} not in {errors[0]!r}"


# ------------------------------------------------------------------ the cache


def snapshot(cache: Path) -> dict[str, tuple[str, int, int]]:
    """Every path under the cache with its kind, size and mtime.

    The answers about the app's JDK modules (cache/jdeps, cache/classdeps: one per class path entry,
    cache/jdkpackages: one per JDK) are complete, content-keyed records written while the app is
    resolved, before any check can run; they are left out.
    """
    records = ("jdeps", "classdeps", "jdkpackages")
    shot: dict[str, tuple[str, int, int]] = {}
    if not cache.exists():
        return shot
    for path in sorted(cache.rglob("*")):
        rel = str(path.relative_to(cache))
        if rel.split("/", 1)[0] in records:
            continue
        st = path.lstat()
        kind = "dir" if stat.S_ISDIR(st.st_mode) else "link" if stat.S_ISLNK(st.st_mode) else "file"
        shot[rel] = (kind, st.st_size if kind == "file" else 0, st.st_mtime_ns if kind == "file" else 0)
    return shot


def temp_leftovers(cache: Path) -> list[str]:
    return [str(p) for p in cache.rglob(".tmp-*")] if cache.exists() else []


def copy_kernel_cache(source: Path, target: Path) -> None:
    """Give `target` the kernel fetched once into `source` (hard links), with its own default.json."""
    kernels = source / "kernels"
    (target / "kernels").mkdir(parents=True, exist_ok=True)
    record = json.loads((kernels / "default.json").read_text())
    folder = Path(record["folder"])
    dest = target / "kernels" / folder.name
    if not dest.exists():
        shutil.copytree(folder, dest, copy_function=os.link, symlinks=True)
    (target / "kernels" / "default.json").write_text(json.dumps({"folder": str(dest)}))


def kernel_folder(cache: Path) -> Path:
    return Path(json.loads((cache / "kernels" / "default.json").read_text())["folder"])


# ------------------------------------------------------------------ jars


def hello_class() -> bytes:
    with zipfile.ZipFile(HELLO_JAR) as zf:
        return zf.read("Main.class")


def manifest(main_class: str | None = "Main", extra: str = "") -> bytes:
    text = "Manifest-Version: 1.0\r\n"
    if main_class:
        text += f"Main-Class: {main_class}\r\n"
    return (text + extra + "\r\n").encode()


def make_jar(
    path: Path,
    entries: dict[str, bytes],
    main_class: str | None = "Main",
    extra_manifest: str = "",
    with_class: bool = True,
) -> Path:
    """A jar with a manifest, the hello Main.class (unless not wanted) and `entries`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("META-INF/MANIFEST.MF", manifest(main_class, extra_manifest))
        if with_class:
            zf.writestr("Main.class", hello_class())
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def symlink_jar(path: Path, name: str, target: str) -> Path:
    """A jar holding a Unix symlink entry `name` -> `target` (as zip -y writes them)."""
    make_jar(path, {})
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(info, target)
    return path


def zip_bomb(path: Path, size: int = 300 << 20) -> Path:
    """One entry of `size` zero bytes: a few hundred KB on disk, a 1000:1 expansion."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("META-INF/MANIFEST.MF", manifest())
        zf.writestr("Main.class", hello_class())
        with zf.open("data.bin", "w", force_zip64=True) as out:
            block = bytes(1 << 20)
            for _ in range(size >> 20):
                out.write(block)
    return path


def overlapping_bomb(path: Path) -> Path:
    """Two central-directory entries pointing at the same local data (the overlapping-files bomb)."""
    make_jar(path, {})
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        infos = zf.infolist()
    # Point the second entry's central-directory record at the first entry's local header.
    cd = data.rfind(b"PK\x01\x02")
    first_cd = data.find(b"PK\x01\x02")
    assert cd != first_cd and len(infos) >= 2
    data[cd + 42 : cd + 46] = infos[0].header_offset.to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


def corrupt_entry(path: Path) -> Path:
    """Flip bytes inside Main.class's compressed data: the central directory stays intact, the CRC breaks."""
    make_jar(path, {"data.txt": b"hello world " * 200})
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("data.txt")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start + 2, start + min(info.compress_size, 12)):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


# ------------------------------------------------------------------ ELF files


def libz() -> bytes:
    return LIBZ.read_bytes()


def _dynstr_range(data: bytes) -> tuple[int, int]:
    elf = ELFFile(io.BytesIO(data))
    section = elf.get_section_by_name(".dynstr")
    assert section is not None
    return section["sh_offset"], section["sh_offset"] + section["sh_size"]


def patch_dynstr(data: bytes, old: str, new: str) -> bytes:
    """Rename a string in .dynstr (same length): a DT_NEEDED, a version name or an imported symbol."""
    assert len(old) == len(new)
    start, end = _dynstr_range(data)
    region = data[start:end]
    needle = b"\0" + old.encode() + b"\0"
    at = region.find(needle)
    assert at >= 0, f"{old} not in .dynstr"
    patched = region[:at] + b"\0" + new.encode() + b"\0" + region[at + len(needle) :]
    return data[:start] + patched + data[end:]


def foreign_machine(data: bytes, machine: int = EM_AARCH64) -> bytes:
    """The same file claiming another CPU (e_machine at offset 18)."""
    return data[:18] + machine.to_bytes(2, "little") + data[20:]


def truncated(data: bytes, keep: int = 300) -> bytes:
    return data[:keep]


def elf_needing_missing_lib() -> bytes:
    return patch_dynstr(libz(), "libc.so.6", "libq.so.6")


def elf_needing_future_glibc() -> bytes:
    return patch_dynstr(libz(), "GLIBC_2.14", "GLIBC_9.14")


def elf_calling_fork() -> bytes:
    return patch_dynstr(patch_dynstr(libz(), "free", "fork"), "strlen", "system")


# ------------------------------------------------------------------ images


def digest(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def synthetic_image(
    folder: Path,
    kernel_dir: Path,
    extra: dict[str, bytes] | None = None,
    drop: tuple[str, ...] = (),
    unlisted: tuple[str, ...] = (),
    symlinks: dict[str, str] | None = None,
) -> Path:
    """A small image folder in the real layout: the host's loader and libc, an ELF launcher at
    /osv/jre/bin/java, the hello jar, and `extra` files; `drop` leaves paths out of the archive but in
    image.json, `unlisted` keeps them in the archive but out of image.json."""
    from kernel.formats import cpio
    from kernel.formats.cpio import Entry

    files: dict[str, bytes] = {
        "/lib64/ld-linux-x86-64.so.2": Path("/lib64/ld-linux-x86-64.so.2").resolve().read_bytes(),
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": Path("/lib64/ld-linux-x86-64.so.2").resolve().read_bytes(),
        "/lib/x86_64-linux-gnu/libc.so.6": Path("/lib/x86_64-linux-gnu/libc.so.6").resolve().read_bytes(),
        "/osv/jre/bin/java": Path("/bin/true").resolve().read_bytes(),
        "/app/app.jar": HELLO_JAR.read_bytes(),
        **(extra or {}),
    }
    folder.mkdir(parents=True, exist_ok=True)
    entries = [Entry.file(p, data, 0o755) for p, data in files.items() if p not in drop]
    entries += [Entry.symlink(p, t) for p, t in (symlinks or {}).items()]
    with open(folder / "initramfs.img", "wb") as out:
        cpio.write(entries, out)
    os.link(kernel_dir / "vmlinuz", folder / "vmlinuz")
    manifest_files = {p: {"sha256": digest(d), "size": len(d)} for p, d in files.items() if p not in unlisted}
    record = {
        "format": 1,
        "files": manifest_files,
        "inputs": {
            "app": {
                "kind": "jar",
                "main_class": "Main",
                "jar": "/app/app.jar",
                "classpath": ["/app/app.jar"],
                "runtime": [],
            },
            "kernel": {"config": str(kernel_dir / "config"), "sha256": digest((kernel_dir / "vmlinuz").read_bytes())},
        },
        "jvm_command": ["/osv/jre/bin/java", "-jar", "/app/app.jar"],
    }
    (folder / "image.json").write_text(json.dumps(record, indent=1))
    return folder


def clone_image(source: Path, target: Path) -> Path:
    """A copy of a built image whose files a test may replace (hard links; replace, do not edit in place)."""
    target.mkdir(parents=True)
    for name in ("vmlinuz", "initramfs.img", "runtime.img"):
        os.link(source / name, target / name)
    shutil.copyfile(source / "image.json", target / "image.json")
    return target


def replace_file(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)
