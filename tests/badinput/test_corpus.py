"""Malformed inputs, everywhere a user gives them: each fails before a boot with one
`osv-java: error:` line naming the thing, the right exit status, no traceback, and the cache as it was."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.validate import helpers

Maker = Callable[[Path], list[str]]


def jar_with(entries: dict[str, bytes], **kwargs: object) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        return helpers.make_jar(tmp / "app.jar", entries, **kwargs)  # type: ignore[arg-type]

    return make


def text_file(tmp: Path) -> Path:
    path = tmp / "app.jar"
    path.write_text("just some text\n")
    return path


def truncated_jar(tmp: Path) -> Path:
    jar = helpers.make_jar(tmp / "full.jar", {"data.txt": os.urandom(4000)})
    path = tmp / "app.jar"
    path.write_bytes(jar.read_bytes()[:3000])
    return path


def header_only(tmp: Path) -> Path:
    path = tmp / "app.jar"
    path.write_bytes(b"PK\x03\x04" + os.urandom(200))
    return path


def folder_jar(tmp: Path) -> Path:
    path = tmp / "app.jar"
    path.mkdir()
    return path


def broken_link(tmp: Path) -> Path:
    path = tmp / "app.jar"
    path.symlink_to(tmp / "gone.jar")
    return path


def native(data: Callable[[], bytes]) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        return helpers.make_jar(tmp / "app.jar", {"native/linux-x86_64/libfoo.so": data()})

    return make


BAD_JARS: list[tuple[str, Callable[[Path], Path], str]] = [
    ("missing", lambda tmp: tmp / "gone.jar", "does not exist"),
    ("folder", folder_jar, "is a folder"),
    ("broken-symlink", broken_link, "broken symlink"),
    ("device", lambda tmp: Path("/dev/null"), "not a regular file"),
    ("text", text_file, "not a zip archive"),
    ("truncated", truncated_jar, "truncated or corrupt"),
    ("local-header-only", header_only, "truncated or corrupt"),
    ("zip-bomb", lambda tmp: helpers.zip_bomb(tmp / "app.jar"), "zip bomb"),
    ("overlapping-bomb", lambda tmp: helpers.overlapping_bomb(tmp / "app.jar"), "overlapping"),
    ("dotdot-entry", jar_with({"../../evil.txt": b"x"}), "escapes the jar's root"),
    ("absolute-entry", jar_with({"/etc/evil.txt": b"x"}), "escapes the jar's root"),
    (
        "symlink-out",
        lambda tmp: helpers.symlink_jar(tmp / "app.jar", "conf/passwd", "../../../etc/passwd"),
        "outside the jar",
    ),
    ("no-main-class", jar_with({}, main_class=None), "no Main-Class"),
    ("main-class-missing", jar_with({}, main_class="com.example.Gone"), "main class com.example.Gone"),
    ("corrupt-entry", lambda tmp: helpers.corrupt_entry(tmp / "app.jar"), "corrupt"),
    ("so-not-elf", native(lambda: b"hello, not a library"), "libfoo.so"),
    ("so-truncated", native(lambda: helpers.truncated(helpers.libz(), 1000)), "libfoo.so"),
    ("so-aarch64", native(lambda: helpers.foreign_machine(helpers.libz())), "AARCH64"),
    ("so-needs-missing-lib", native(helpers.elf_needing_missing_lib), "libq.so.6"),
    ("so-needs-new-glibc", native(helpers.elf_needing_future_glibc), "GLIBC_9.14"),
]


def check_untouched(cache: Path, before: dict[str, tuple[str, int, int]]) -> None:
    assert helpers.temp_leftovers(cache) == []
    assert helpers.snapshot(cache) == before


@pytest.mark.parametrize(("name", "make", "needle"), BAD_JARS, ids=[c[0] for c in BAD_JARS])
def test_build_rejects_bad_jar(
    name: str, make: Callable[[Path], Path], needle: str, tmp_path: Path, cache: Path
) -> None:
    jar = make(tmp_path)
    before = helpers.snapshot(cache)
    result = helpers.osv(["build", str(jar), "-o", str(tmp_path / "out")], cache)
    helpers.assert_one_error(result, 125, needle)
    check_untouched(cache, before)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("name", "make", "needle"),
    [
        c
        for c in BAD_JARS
        if c[0]
        in (
            "text",
            "truncated",
            "zip-bomb",
            "dotdot-entry",
            "no-main-class",
            "main-class-missing",
            "so-aarch64",
            "so-needs-new-glibc",
        )
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_validate_reports_bad_jar(
    name: str, make: Callable[[Path], Path], needle: str, tmp_path: Path, cache: Path
) -> None:
    jar = make(tmp_path)
    before = helpers.snapshot(cache)
    result = helpers.osv(["validate", str(jar)], cache)
    assert result.status == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert needle.lower() in result.stdout.lower()
    check_untouched(cache, before)


def busy_port() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


BAD_OPTIONS: list[tuple[str, list[str], str]] = [
    ("memory-word", ["run", "-m", "lots", "JAR"], "memory size 'lots'"),
    ("memory-tiny", ["run", "-m", "1M", "JAR"], "below 128M"),
    ("cpus-zero", ["run", "-c", "0", "JAR"], "CPU count '0'"),
    ("cpus-word", ["run", "-c", "two", "JAR"], "CPU count 'two'"),
    ("publish-range", ["run", "-p", "99999:80", "JAR"], "port '99999'"),
    ("publish-shape", ["run", "-p", "8080", "JAR"], "-p '8080'"),
    ("publish-address", ["run", "-p", "example:80:80", "JAR"], "not an IPv4 address"),
    ("env", ["run", "-e", "1BAD", "JAR"], "-e '1BAD'"),
    ("ready-port-zero", ["run", "--snapshot-when-ready", "0", "JAR"], "--snapshot-when-ready '0'"),
    ("ready-port-range", ["run", "--snapshot-when-ready", "65536", "JAR"], "not a port from 1 to 65535"),
    ("ready-relative-file", ["run", "--snapshot-when-ready", "ready.txt", "JAR"], "nor an absolute file path"),
    ("ready-cold-boot", ["run", "--snapshot-when-ready", "8080", "--cold-boot", "JAR"], "--cold-boot"),
    ("ready-volume", ["run", "--snapshot-when-ready", "8080", "-v", "/tmp:/data", "JAR"], "vhost-user-fs"),
    ("ready-process", ["run", "--snapshot-when-ready", "8080", "--target", "process", "JAR"], "--target process"),
    ("run-missing-jar", ["run", "GONE"], "does not exist"),
    ("jdk-not-jdk", ["build", "JAR", "--jdk", "TMP", "-o", "OUT"], "is not a JDK"),
    ("jdk-missing", ["build", "JAR", "--jdk", "/nonexistent/jdk", "-o", "OUT"], "/nonexistent/jdk"),
    ("jdk-version", ["build", "JAR", "--jdk", "99", "-o", "OUT"], "no JDK 99"),
    ("kernel-text", ["build", "JAR", "--kernel", "TEXT", "-o", "OUT"], "not an x86 bzImage"),
    ("kernel-folder", ["build", "JAR", "--kernel", "TMP", "-o", "OUT"], "is not a file"),
    ("kernel-missing", ["build", "JAR", "--kernel", "/nonexistent/vmlinuz", "-o", "OUT"], "does not exist"),
    ("modules-alone", ["build", "JAR", "--modules", "TMP", "-o", "OUT"], "--modules goes with --kernel"),
    ("cp-missing", ["build", "Main", "-cp", "/nonexistent/classes", "-o", "OUT"], "/nonexistent/classes"),
    ("cp-bad-main", ["build", "a/b/Main.class", "-cp", "JAR", "-o", "OUT"], "not a class name"),
    ("output-not-image", ["build", "JAR", "-o", "NOTIMAGE"], "not an osv-java image folder"),
]


@pytest.mark.parametrize(("name", "args", "needle"), BAD_OPTIONS, ids=[c[0] for c in BAD_OPTIONS])
def test_bad_option_values(name: str, args: list[str], needle: str, tmp_path: Path, cache: Path) -> None:
    text = tmp_path / "vmlinuz.txt"
    text.write_text("not a kernel\n")
    not_image = tmp_path / "notimage"
    not_image.mkdir()
    (not_image / "precious.txt").write_text("keep me")
    table = {
        "JAR": str(helpers.HELLO_JAR),
        "GONE": str(tmp_path / "gone.jar"),
        "TMP": str(tmp_path),
        "OUT": str(tmp_path / "out"),
        "TEXT": str(text),
        "NOTIMAGE": str(not_image),
    }
    argv = [table.get(a, a) for a in args]
    before = helpers.snapshot(cache)
    result = helpers.osv(argv, cache)
    helpers.assert_one_error(result, 125, needle)
    check_untouched(cache, before)
    assert (not_image / "precious.txt").read_text() == "keep me"


def test_published_port_in_use(tmp_path: Path, cache: Path) -> None:
    sock, port = busy_port()
    with sock:
        before = helpers.snapshot(cache)
        result = helpers.osv(["run", "-p", f"{port}:80", str(helpers.HELLO_JAR)], cache)
    helpers.assert_one_error(result, 125, f"127.0.0.1:{port} is already in use")
    check_untouched(cache, before)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["validate", "/nonexistent/app.jar"], "does not exist"),
        (["validate", "TMP"], "not an osv-java image"),
        (["validate", "JAR", "--jdk", "TMP"], "is not a JDK"),
    ],
    ids=["missing", "folder", "jdk"],
)
def test_validate_errors(args: list[str], needle: str, tmp_path: Path, cache: Path) -> None:
    """When validate cannot check, it fails like every command: one error line, a hint, 125."""
    argv = [{"TMP": str(tmp_path), "JAR": str(helpers.HELLO_JAR)}.get(a, a) for a in args]
    result = helpers.osv(argv, cache)
    helpers.assert_one_error(result, 125, needle)
    assert result.stderr.splitlines()[-1].startswith("hint: "), result.stderr
    assert result.stdout == "", result.stdout


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs user and mount namespaces (unshare -rm)")
def test_read_only_cache(tmp_path: Path, cache: Path) -> None:
    before = helpers.snapshot(cache)
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    result = helpers.osv(
        ["build", str(helpers.HELLO_JAR), "-o", str(tmp_path / "out")],
        cache,
        wrapper=["unshare", "-rm", "sh", "-c", script, str(cache)],
    )
    helpers.assert_one_error(result, 125, str(cache))
    check_untouched(cache, before)


@pytest.mark.skipif(not _can_unshare(), reason="needs user and mount namespaces (unshare -rm)")
def test_full_cache(tmp_path: Path, shared_cache: Path) -> None:
    full = tmp_path / "small-cache"
    full.mkdir()
    kernel = helpers.kernel_folder(shared_cache)
    script = 'mount -t tmpfs -o size=6m tmpfs "$0" && exec "$@"'
    argv = [
        "build",
        str(helpers.HELLO_JAR),
        "-o",
        str(tmp_path / "out"),
        "--kernel",
        str(kernel / "vmlinuz"),
        "--modules",
        str(kernel / "modules"),
    ]
    check = "; n=$(find \"$0\" -name '.tmp-*' | wc -l); echo leftovers=$n >&2; exit $rc"
    result = helpers.osv(
        argv,
        full,
        wrapper=[
            "unshare",
            "-rm",
            "sh",
            "-c",
            'mount -t tmpfs -o size=6m tmpfs "$0" && "$@"; rc=$?' + check,
            str(full),
        ],
    )
    del script
    assert "leftovers=0" in result.stderr
    result.stderr = "\n".join(line for line in result.stderr.splitlines() if not line.startswith("leftovers="))
    helpers.assert_one_error(result, 125, "space")
