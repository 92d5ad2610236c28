"""Decoded-array cache: decode a dataset once, then open it as memory maps, never decoding again.

An entry is a folder named after the source path and load options, holding one `.npy` file per
array and `header.json` (class names, fingerprint, which file holds which array, and the content
key). Images are opened with `np.load(mmap_mode="r")`: a split larger than memory is read only as
far as it is used. The content key hashes the source's file list with each file's size,
modification time and inode (cheap to compute, changes whenever a file is added, removed or
rewritten) plus the load options; a changed source is decoded again. A ROOT/<class>/<image> folder
is cached whole (one "all" split, its file names in the header): its val/test split is applied
after loading, so the split seed or record is not part of the key and every seed reuses one entry.

Every file is written to a temporary name and renamed, the arrays under names that hold the
content key, the header last: the header is what makes an entry valid, so a crash leaves the
previous entry or the new one, never a mix. No file is rewritten in place, so a process that has
an entry mapped keeps reading what it mapped. A missing, unreadable or inconsistent entry (an
older cifarlab's single-file format included) is ignored and rebuilt. Pixels carry no checksum
(checking one would read every image at every load).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
from platformdirs import user_cache_dir

from cifarlab.atomic import atomic_path, write_json_atomic
from cifarlab.data.dataset import Split

logger = logging.getLogger(__name__)

CACHE_VERSION = 3
HEADER = "header.json"


def cache_root() -> Path:
    """$CIFARLAB_CACHE if set, else the user's cache directory (~/.cache/cifarlab on Linux)."""
    return Path(os.environ.get("CIFARLAB_CACHE") or user_cache_dir("cifarlab"))


def default_cache_dir() -> Path:
    """Where decoded arrays go: `cache_root()`/datasets."""
    return cache_root() / "datasets"


def _walk_stats(source: Path) -> list[str]:
    """'relative path, size, mtime, inode' of every file under `source` (os.scandir only)."""
    rows: list[str] = []
    stack = [str(source)]
    base = len(str(source.parent)) + 1
    seen: set[tuple[int, int]] = set()
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir():  # follows symlinked folders (as the loaders do), once each
                    stat = entry.stat()
                    if (stat.st_dev, stat.st_ino) not in seen:
                        seen.add((stat.st_dev, stat.st_ino))
                        stack.append(entry.path)
                    continue
                if not entry.is_file():
                    continue
                stat = entry.stat()
            except OSError:
                continue
            # size + mtime + inode: a rewrite within the file system's mtime granularity that
            # keeps the size still gets a new inode when done by replace-on-save tools.
            rows.append(f"{entry.path[base:]}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ino}")
    rows.sort()
    return rows


def source_key(source: Path, options: dict) -> str:
    """Hash of the load options and every source file's path, size, mtime and inode."""
    digest = hashlib.sha256(json.dumps({"v": CACHE_VERSION, **options}, sort_keys=True).encode())
    if source.is_file():
        stat = source.stat()
        rows = [f"{source.name}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ino}"]
    else:
        rows = _walk_stats(source)
    digest.update("\n".join(rows).encode())
    return digest.hexdigest()[:24]


def cache_path(cache_dir: Path, source: Path, options: dict) -> Path:
    """The entry folder of (source path, load options): a changed source replaces its entry
    instead of leaving the stale one behind. Its content key is stored in the header."""
    digest = hashlib.sha256(json.dumps({"v": CACHE_VERSION, "source": str(source), **options},
                                       sort_keys=True).encode())
    return Path(cache_dir) / f"{source.name}-{digest.hexdigest()[:16]}"


def load_cached(path: Path, source: Path, options: dict) -> tuple[str, tuple[dict, dict[str, Split]] | None]:
    """(content key of `source`, cached (meta, splits) if the entry is for that key, else None)."""
    key = source_key(source, options)
    cached = read_cache(path)
    if cached and cached[0].get("source_key") == key:
        return key, cached
    return key, None


def read_cache(path: Path) -> tuple[dict, dict[str, Split]] | None:
    """The cached (meta, splits), images memory-mapped, or None when absent, unreadable or
    inconsistent (the caller then decodes the source again)."""
    try:
        header = json.loads((Path(path) / HEADER).read_text(encoding="utf-8"))
        if header.get("version") != CACHE_VERSION:
            return None
        splits = {name: Split(np.load(path / files["images"], mmap_mode="r"),
                              np.load(path / files["labels"]))
                  for name, files in header["arrays"].items()}
        meta = header["meta"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.debug("dataset cache %s is unreadable (%s); decoding again", path, exc)
        return None
    return (meta, splits) if _consistent(meta, splits) else None


def _consistent(meta: dict, splits: dict[str, Split]) -> bool:
    classes = meta.get("classes")
    if not isinstance(meta.get("fingerprint"), str) or not isinstance(classes, list) or not splits:
        return False
    for split in splits.values():
        images, labels = split.stored, split.labels
        if images.dtype != np.uint8 or images.ndim != 4 or labels.shape != (images.shape[0],):
            return False
        if labels.size and not 0 <= labels.min() <= labels.max() < len(classes):
            return False
    return True


def write_cache(path: Path, meta: dict, splits: dict[str, Split]) -> None:
    """Write the entry atomically: its arrays, then the header that names them; then remove the
    arrays of the entry it replaces."""
    path = Path(path)
    stamp = meta.get("source_key") or "entry"
    arrays = {}
    for name, split in splits.items():
        files = {"images": f"{stamp}-{name}-images.npy", "labels": f"{stamp}-{name}-labels.npy"}
        _save(path / files["images"], np.asarray(split.images, dtype=np.uint8))
        _save(path / files["labels"], np.asarray(split.labels, dtype=np.int64))
        arrays[name] = files
    write_json_atomic(path / HEADER, {"version": CACHE_VERSION, "meta": meta, "arrays": arrays})
    named = {file for files in arrays.values() for file in files.values()}
    for stale in path.glob("*.npy"):
        if stale.name not in named:
            stale.unlink(missing_ok=True)


def _save(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array, allow_pickle=False)
