"""Decoded-array cache: decode a dataset once, then load it in well under a second.

The key hashes the source's file list with each file's size and modification time (cheap to
compute, changes whenever a file is added, removed or rewritten) plus the load options. The
file is written to a temporary name and renamed, so an interrupted write never leaves a
corrupt entry and a reader never sees a half-written one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
from platformdirs import user_cache_dir

from cifarlab.data.dataset import Split

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """$CIFARLAB_CACHE if set, else the user's cache directory (~/.cache/cifarlab on Linux)."""
    return Path(os.environ.get("CIFARLAB_CACHE") or user_cache_dir("cifarlab")) / "datasets"


def source_key(source: Path, options: dict) -> str:
    digest = hashlib.sha256(json.dumps({"v": CACHE_VERSION, **options}, sort_keys=True).encode())
    paths = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    for path in paths:
        stat = path.stat()
        # size + mtime + inode: a rewrite within the file system's mtime granularity that
        # keeps the size still gets a new inode when done by replace-on-save editors/tools.
        digest.update(f"{path.relative_to(source.parent)}\0{stat.st_size}\0{stat.st_mtime_ns}"
                      f"\0{stat.st_ino}\n".encode())
    return digest.hexdigest()[:24]


def cache_path(cache_dir: Path, source: Path, key: str) -> Path:
    return cache_dir / f"{source.name}-{key}.npz"


def read_cache(path: Path) -> tuple[dict, dict[str, Split]] | None:
    """The cached (meta, splits), or None when absent or unreadable (it is then rebuilt)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(bytes(npz["meta"]).decode())
            splits = {s: Split(npz[f"{s}_images"], npz[f"{s}_labels"]) for s in meta["splits"]}
        classes, fingerprint = meta["classes"], meta["fingerprint"]
        for split in splits.values():
            if (split.images.dtype != np.uint8 or split.images.ndim != 4
                    or split.labels.shape != (split.images.shape[0],)):
                return None
            if split.labels.size and not 0 <= split.labels.min() <= split.labels.max() < len(classes):
                return None
        if not isinstance(fingerprint, str) or not splits:
            return None
        return meta, splits
    except (OSError, EOFError, ValueError, KeyError, TypeError, UnicodeDecodeError,
            zipfile.BadZipFile, zlib.error):
        return None  # corrupt or foreign file: the caller decodes the source again


def write_cache(path: Path, meta: dict, splits: dict[str, Split]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"meta": np.frombuffer(json.dumps({**meta, "splits": list(splits)}).encode(), np.uint8)}
    for name, split in splits.items():
        arrays[f"{name}_images"] = split.images
        arrays[f"{name}_labels"] = split.labels
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
