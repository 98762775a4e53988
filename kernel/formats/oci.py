"""A reproducible OCI image layout writer: blobs, manifest, index, and gzip'd tar layers.

No daemon and no registry: `skopeo copy oci:DIR docker://...` or `umoci unpack` take the folder as it
is. The same entries give the same bytes: tar members sorted by path with fixed mtimes and names,
gzip without a timestamp or file name, JSON with sorted keys. Parent folders are added when missing.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kernel.formats.cpio import Entry

LAYOUT_VERSION = "1.0.0"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
# umoci and some engines want `created`; a fixed instant keeps the bytes reproducible.
EPOCH = "1970-01-01T00:00:00Z"
GZIP_LEVEL = 6  # level 9 costs twice the time for about 1 % less


@dataclass(frozen=True)
class Owned:
    """An archive entry with its owner (cpio entries are all root's; a container needs more)."""

    entry: Entry
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Blob:
    digest: str  # "sha256:HEX"
    size: int
    media_type: str

    def descriptor(self) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass
class Layer:
    """One layer: its entries by path (no leading '/')."""

    entries: dict[str, Owned] = field(default_factory=dict)
    comment: str = ""


def _normalise(path: str) -> str:
    parts = [p for p in path.strip("/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(f"bad layer path {path!r}")
    return "/".join(parts)


def _with_parents(entries: Iterable[Owned]) -> dict[str, Owned]:
    by_path: dict[str, Owned] = {}
    for owned in entries:
        path = _normalise(owned.entry.path)
        if path in by_path and by_path[path] != owned:
            raise ValueError(f"two different entries for {path!r}")
        by_path[path] = owned
    for path in list(by_path):
        parent = path.rpartition("/")[0]
        while parent and parent not in by_path:
            by_path[parent] = Owned(Entry.folder(parent))
            parent = parent.rpartition("/")[0]
    return by_path


def tar_bytes(entries: Iterable[Owned]) -> bytes:
    """The layer's uncompressed tar (PAX: long paths), members sorted so parents come first."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, owned in sorted(_with_parents(entries).items()):
            entry = owned.entry
            info = tarfile.TarInfo(path)
            info.mode = stat.S_IMODE(entry.mode)
            info.uid, info.gid, info.uname, info.gname, info.mtime = owned.uid, owned.gid, "", "", 0
            kind = stat.S_IFMT(entry.mode)
            if kind == stat.S_IFDIR:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == stat.S_IFLNK:
                info.type, info.linkname = tarfile.SYMTYPE, entry.data.decode()
                tar.addfile(info)
            elif kind == stat.S_IFREG:
                data = entry.source.read_bytes() if entry.source is not None else entry.data
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                raise ValueError(f"{path!r}: a container layer holds files, folders and symlinks only "
                                 "(the engine makes /dev)")
    return out.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=GZIP_LEVEL) as gz:
        gz.write(data)
    return out.getvalue()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


class LayoutWriter:
    """Writes blobs into `folder` (which must exist and be empty) and finally index.json."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / "blobs" / "sha256").mkdir(parents=True)

    def blob(self, data: bytes, media_type: str) -> Blob:
        digest = sha256(data)
        (self.folder / "blobs" / "sha256" / digest.split(":", 1)[1]).write_bytes(data)
        return Blob(digest, len(data), media_type)

    def image(self, layers: list[Layer], config: dict[str, object], ref: str,
              annotations: dict[str, str] | None = None) -> Blob:
        """Write the layers, the config (`config` is its "config" member) and the manifest; name it `ref`."""
        diff_ids: list[str] = []
        layer_blobs: list[Blob] = []
        for layer in layers:
            tar = tar_bytes(layer.entries.values())
            diff_ids.append(sha256(tar))
            layer_blobs.append(self.blob(gzip_bytes(tar), MEDIA_LAYER))
        image_config = {
            "created": EPOCH,
            "architecture": "amd64",
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": EPOCH, "created_by": "osv-java export", "comment": layer.comment}
                        for layer in layers],
        }
        config_blob = self.blob(_json(image_config), MEDIA_CONFIG)
        manifest: dict[str, object] = {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": config_blob.descriptor(),
            "layers": [b.descriptor() for b in layer_blobs],
        }
        if annotations:
            manifest["annotations"] = dict(annotations)
        manifest_blob = self.blob(_json(manifest), MEDIA_MANIFEST)
        index = {
            "schemaVersion": 2,
            "mediaType": MEDIA_INDEX,
            "manifests": [{**manifest_blob.descriptor(),
                           "annotations": {"org.opencontainers.image.ref.name": ref}}],
        }
        (self.folder / "oci-layout").write_bytes(_json({"imageLayoutVersion": LAYOUT_VERSION}))
        (self.folder / "index.json").write_bytes(_json(index))
        return manifest_blob
