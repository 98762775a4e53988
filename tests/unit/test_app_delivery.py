"""How the app reaches a machine restored from its runtime's boot snapshot: the image's app.cpio
sent after the run request on the control port (kernel.vm.conversation, kernel.guest.control) and
unpacked by PID 1 (kernel.guest.unpack); and how a snapshot's RAM is written and copied sparse."""

from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from kernel.formats import cpio
from kernel.guest import unpack, wire
from kernel.guest.control import Control
from kernel.vm import snapshot
from kernel.vm.conversation import ControlChannel


def _archive(entries: list[cpio.Entry], path: Path) -> bytes:
    with open(path, "wb") as out:
        cpio.write(entries, out)
    return path.read_bytes()


def test_unpack_writes_what_the_image_builder_archived(tmp_path: Path) -> None:
    jar = tmp_path / "host" / "app.jar"
    jar.parent.mkdir()
    jar.write_bytes(os.urandom(70_001))  # not a multiple of 4: the archive pads it
    data = _archive([cpio.Entry.from_host("work/app/app.jar", jar),
                     cpio.Entry.file("work/app/run.sh", b"#!/bin/sh\n", 0o755),
                     cpio.Entry.symlink("work/app/latest.jar", "app.jar"),
                     cpio.Entry.folder("work/app/empty")], tmp_path / "app.cpio")
    root = tmp_path / "guest"
    root.mkdir()
    assert unpack.unpack(data, str(root)) == 6  # work and work/app are added as parents
    assert (root / "work/app/app.jar").read_bytes() == jar.read_bytes()
    assert (root / "work/app/app.jar").stat().st_mtime == 0  # the archive's, as the kernel unpacks it
    assert stat.S_IMODE((root / "work/app/run.sh").stat().st_mode) == 0o755
    assert os.readlink(root / "work/app/latest.jar") == "app.jar"
    assert (root / "work/app/empty").is_dir()
    # The next edit of the app replaces its files.
    changed = _archive([cpio.Entry.file("work/app/app.jar", b"edited")], tmp_path / "again.cpio")
    unpack.unpack(changed, str(root))
    assert (root / "work/app/app.jar").read_bytes() == b"edited"


@pytest.mark.parametrize("cut", [10, 200])
def test_unpack_refuses_an_archive_cut_short(tmp_path: Path, cut: int) -> None:
    data = _archive([cpio.Entry.file("a/b.txt", b"x" * 300)], tmp_path / "app.cpio")
    with pytest.raises(ValueError, match="app's archive"):
        unpack.unpack(data[:cut], str(tmp_path))


def test_unpack_refuses_a_path_that_leaves_the_root(tmp_path: Path) -> None:
    data = bytearray(_archive([cpio.Entry.file("a/xx/b", b"x")], tmp_path / "app.cpio"))
    data = data.replace(b"a/xx/b", b"a/../b")  # same length: the header's name size still holds
    with pytest.raises(ValueError, match="outside the root"):
        unpack.unpack(bytes(data), str(tmp_path / "root"))


def test_a_payload_arrives_whole_between_the_messages_around_it(tmp_path: Path) -> None:
    """The host sends the run request, the app's bytes and more messages at once; PID 1 reads the
    request as a line, the bytes as bytes (even ones that look like lines), then the next lines."""
    fifo = tmp_path / "port"
    os.mkfifo(fifo)
    guest = Control(str(fifo))  # a FIFO opened read-write stands in for the virtio port
    host_end, reader = socket.socketpair()
    payload = b"line one\nop=fake\n" + os.urandom(300_000)
    host = ControlChannel(host_end)

    def forward() -> None:
        with open(fifo, "wb") as port:
            while chunk := reader.recv(65536):
                port.write(chunk)
                port.flush()

    def send() -> None:  # while the guest reads: the port holds only so much
        host.send("hello")
        host.send_with_payload("run", payload, argv=["java", "-jar", "x.jar"])
        host.send("stdin-eof", bytes=3)
        host_end.shutdown(socket.SHUT_WR)

    threads = [threading.Thread(target=forward, daemon=True), threading.Thread(target=send, daemon=True)]
    for thread in threads:
        thread.start()
    assert wire.first(guest.receive(10.0), "op") == "hello"
    run = guest.receive(10.0)
    assert run["argv"] == ["java", "-jar", "x.jar"]
    assert guest.read_payload(int(wire.number(run, wire.PAYLOAD) or 0)) == payload
    after = guest.receive(10.0)
    assert wire.first(after, "op") == "stdin-eof" and wire.first(after, "bytes") == "3"
    for thread in threads:
        thread.join(5.0)
    os.close(guest.fd)


def test_snapshot_ram_keeps_its_data_and_leaves_out_holes_and_zero_pages(tmp_path: Path) -> None:
    page = 4096
    ram = tmp_path / "ram"
    with open(ram, "wb") as f:
        f.truncate(64 * page)
        f.seek(3 * page)
        f.write(os.urandom(2 * page) + bytes(page) + b"tail")  # data, a page of zeros, a partial page
        f.seek(40 * page)
        f.write(os.urandom(page))
    saved = tmp_path / "saved"
    source = os.open(ram, os.O_RDONLY)
    with open(saved, "wb") as out:
        written = snapshot.write_sparse(source, out.fileno(), page)
    os.close(source)
    assert written == 4 * page  # two pages, the one holding "tail", the one at 40: not the zero page
    assert saved.read_bytes() == ram.read_bytes()
    assert os.stat(saved).st_blocks * 512 <= 4 * page  # the zero page and the holes take no space
    source = os.open(saved, os.O_RDONLY)
    memfd = os.memfd_create("test-ram")
    assert snapshot.copy_data(source, memfd) >= written
    os.close(source)
    assert os.pread(memfd, 64 * page, 0) == ram.read_bytes()
    os.close(memfd)


def test_the_cache_keeps_the_most_recently_used_snapshots_whole(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSV_JAVA_CACHE", str(tmp_path))
    folder = tmp_path / "snapshots"
    folder.mkdir()
    for i in range(snapshot.KEEP + 2):
        made = folder / f"{i:024d}{snapshot.SUFFIX}"
        made.mkdir()
        (made / snapshot.STATE).write_bytes(b"s")
        (made / snapshot.RAM).write_bytes(b"r")
        os.utime(made, (1000 + i, 1000 + i))  # made in this order: the first three are the least recently used
    snapshot.touch(folder / f"{0:024d}{snapshot.SUFFIX}")  # ... but the first was just restored
    legacy = folder / "old.vmstate"
    legacy.write_bytes(b"a snapshot of the format before")
    partial = folder / f".{1:024d}{snapshot.SUFFIX}.123.tmp"
    partial.mkdir()
    os.utime(partial, (1000, 1000))  # an interrupted save, long ago
    snapshot.prune()
    kept = sorted(p.name for p in folder.iterdir())
    assert kept == [f"{i:024d}{snapshot.SUFFIX}" for i in (0, *range(3, snapshot.KEEP + 2))]
    assert all((folder / name / snapshot.RAM).exists() for name in kept)
