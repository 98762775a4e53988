"""The EROFS writer, read back by erofs-utils' fsck.erofs (an independent reader) and by our own reader."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from kernel.formats import erofs, erofs_read
from kernel.formats.cpio_read import Tree

FSCK = shutil.which("fsck.erofs")


def make_tree(root: Path, reverse: bool = False) -> Path:
    """Files of many sizes, nested folders, symlinks, an empty file, an executable, odd names, and a
    folder with enough entries to need several directory blocks. `reverse` creates them in the
    opposite order, which must not change the image."""
    root.mkdir()
    items: list[tuple[str, bytes | str | None]] = [
        ("bin/java", b"\x7fELF" + b"x" * 100),
        ("lib/server/libjvm.so", bytes((i * 7) % 251 for i in range(3 * 4096 + 17))),
        ("lib/modules", bytes(range(256)) * 64),
        ("lib/empty", b""),
        ("conf/security/java.security", b"a=b\n"),
        ("legal/link", "../lib/modules"),
        ("odd name/é.txt", b"unicode\n"),
        ("deep/a/b/c/d/file", b"deep"),
    ]
    items += [(f"many/{'n' * (i % 40)}{i:04d}", f"{i}".encode()) for i in range(600)]
    for name, content in reversed(items) if reverse else items:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.symlink_to(content)
        else:
            path.write_bytes(content)
    (root / "bin/java").chmod(0o755)
    (root / "emptydir").mkdir()
    return root


def image_of(tree: Path) -> bytes:
    out = io.BytesIO()
    size = erofs.write(tree, out, "osv-test")
    data = out.getvalue()
    assert size == len(data) and size % 4096 == 0
    return data


def assert_same_tree(a: Path, b: Path, links_on_disk: bool = True) -> None:
    names_a = sorted(str(p.relative_to(a)) for p in a.rglob("*") if links_on_disk or not p.is_symlink())
    names_b = sorted(str(p.relative_to(b)) for p in b.rglob("*"))
    assert names_a == names_b
    for name in names_a:
        pa, pb = a / name, b / name
        assert pa.is_symlink() == pb.is_symlink(), name
        if pa.is_symlink():
            assert os.readlink(pa) == os.readlink(pb), name
        elif pa.is_file():
            assert pa.read_bytes() == pb.read_bytes(), name
            if links_on_disk:  # an extraction with modes; our reader keeps them in its members
                assert stat.S_IMODE(pa.stat().st_mode) == stat.S_IMODE(pb.stat().st_mode), name


@pytest.mark.skipif(FSCK is None, reason="fsck.erofs is not installed (apt-get install erofs-utils)")
def test_fsck_erofs_checks_and_extracts_the_same_tree(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "src")
    image = tmp_path / "runtime.img"
    image.write_bytes(image_of(tree))
    out = tmp_path / "out"
    result = subprocess.run([str(FSCK), f"--extract={out}", str(image)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr + result.stdout
    assert_same_tree(tree, out)


def test_our_reader_gives_back_the_tree(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "src")
    image = tmp_path / "runtime.img"
    image.write_bytes(image_of(tree))
    read = Tree(root=tmp_path / "read")
    erofs_read.unpack_into(read, image, "osv/jre")
    assert_same_tree(tree, read.root / "osv/jre", links_on_disk=False)  # our reader records links only
    assert read.members["osv/jre/legal/link"].link == "../lib/modules"
    for path in tree.rglob("*"):
        member = read.members["osv/jre/" + str(path.relative_to(tree))]
        assert member.mode == path.lstat().st_mode or path.is_symlink(), path


def test_same_tree_same_bytes_whatever_the_creation_order(tmp_path: Path) -> None:
    one = image_of(make_tree(tmp_path / "one"))
    two = image_of(make_tree(tmp_path / "two", reverse=True))
    assert one == two


def test_file_data_is_block_aligned_for_dax(tmp_path: Path) -> None:
    """The guest maps files straight from the image (DAX): each file must start on a 4 KiB block."""
    tree = make_tree(tmp_path / "src")
    data = image_of(tree)
    payload = (tree / "lib/server/libjvm.so").read_bytes()
    offset = data.find(payload)
    assert offset > 0 and offset % 4096 == 0


def test_damaged_image_is_an_error_not_a_crash(tmp_path: Path) -> None:
    data = image_of(make_tree(tmp_path / "src"))
    image = tmp_path / "cut.img"
    image.write_bytes(data[: len(data) // 2])
    with pytest.raises(erofs_read.ErofsError, match="past the end"):
        erofs_read.unpack_into(Tree(root=tmp_path / "a"), image, "x")
    image.write_bytes(b"\0" * 8192)
    with pytest.raises(erofs_read.ErofsError, match="no EROFS superblock"):
        erofs_read.unpack_into(Tree(root=tmp_path / "b"), image, "x")


def test_a_fifo_cannot_go_into_the_image(tmp_path: Path) -> None:
    tree = tmp_path / "src"
    tree.mkdir()
    os.mkfifo(tree / "pipe")
    with pytest.raises(ValueError, match="not a file, folder or symlink"):
        erofs.write(tree, io.BytesIO(), "x")


def test_long_volume_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    with pytest.raises(ValueError, match="longer than 16 bytes"):
        erofs.write(tmp_path / "src", io.BytesIO(), "x" * 17)


@pytest.mark.skipif(FSCK is None, reason="fsck.erofs is not installed (apt-get install erofs-utils)")
def test_extra_files_join_the_tree_as_if_they_were_in_it(tmp_path: Path) -> None:
    """Files given beside the folder (a host file, or bytes) give the image of a folder holding them."""
    tree = make_tree(tmp_path / "src")
    module = tmp_path / "fuse.ko"
    module.write_bytes(b"\x7fELF" + bytes(range(256)) * 9)
    out = io.BytesIO()
    erofs.write(tree, out, "osv-test", extra={".osv-modules/fuse.ko": module, ".osv-modules/virtiofs.ko": b"v" * 5000,
                                              "lib/added": b"beside libjvm"})
    image = tmp_path / "runtime.img"
    image.write_bytes(out.getvalue())
    extracted = tmp_path / "out"
    result = subprocess.run([str(FSCK), f"--extract={extracted}", str(image)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr + result.stdout
    assert (extracted / ".osv-modules/fuse.ko").read_bytes() == module.read_bytes()
    assert (extracted / ".osv-modules/virtiofs.ko").read_bytes() == b"v" * 5000
    assert (extracted / "lib/added").read_bytes() == b"beside libjvm"
    assert (extracted / "lib/server/libjvm.so").read_bytes() == (tree / "lib/server/libjvm.so").read_bytes()
    # The same bytes as the image of a folder that holds them.
    (tree / ".osv-modules").mkdir()
    (tree / ".osv-modules/fuse.ko").write_bytes(module.read_bytes())
    (tree / ".osv-modules/virtiofs.ko").write_bytes(b"v" * 5000)
    (tree / "lib/added").write_bytes(b"beside libjvm")
    for name in (".osv-modules/fuse.ko", ".osv-modules/virtiofs.ko", "lib/added"):
        (tree / name).chmod(0o644)
    (tree / ".osv-modules").chmod(0o755)
    assert image_of(tree) == out.getvalue()
