"""Decoded-array cache: decode a dataset once, then load it in well under a second.

An entry is named after the source path and load options; inside, the content key hashes the
source's file list with each file's size, modification time and inode
(cheap to compute, changes whenever a file is added, removed or rewritten) plus the load
options. A ROOT/<class>/<image> folder is cached whole (one "all" split, its file names in the
header): its val/test split is applied after loading, so the split seed or record is not part
of the key and every seed reuses one entry. The file is written to a temporary name and
renamed, so an interrupted write never leaves a corrupt entry and a reader never sees a
half-written one; a corrupt or unreadable entry (checked by CRC32) is ignored and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from pathlib import Path

import numpy as np
from platformdirs import user_cache_dir

from cifarlab.atomic import atomic_path
from cifarlab.data.dataset import Split

CACHE_VERSION = 2
MAGIC = b"CIFARLAB-CACHE\n"
ALIGN = 64


def default_cache_dir() -> Path:
    """$CIFARLAB_CACHE if set, else the user's cache directory (~/.cache/cifarlab on Linux)."""
    return Path(os.environ.get("CIFARLAB_CACHE") or user_cache_dir("cifarlab")) / "datasets"


def _walk_stats(source: Path) -> list[str]:
    """'relative path, size, mtime, inode' of every file under `source` (os.scandir: ~60k/0.5 s)."""
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
    """One entry per (source path, load options): a changed source overwrites its entry
    instead of leaving the stale one behind. Its content key is stored inside the entry."""
    digest = hashlib.sha256(json.dumps({"v": CACHE_VERSION, "source": str(source), **options},
                                       sort_keys=True).encode())
    return Path(cache_dir) / f"{source.name}-{digest.hexdigest()[:16]}.cache"


def load_cached(path: Path, source: Path, options: dict) -> tuple[str, tuple[dict, dict[str, Split]] | None]:
    """(content key of `source`, cached (meta, splits) if the entry is for that key, else None).

    The entry is read while the source's files are stat-ed (both release the GIL), so a hit
    costs about max(read, stat) instead of their sum.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(read_cache, path)
        key = source_key(source, options)
        cached = pending.result()
    if cached and cached[0].get("source_key") == key:
        return key, cached
    return key, None


# File layout: MAGIC, 8-byte little-endian header length, JSON header (meta + one entry per
# array: name, dtype, shape, offset, nbytes, crc32), then each array's raw bytes at a 64-byte
# aligned offset. Reading is one readinto() per array straight into NumPy memory (a 60k-image
# CIFAR set loads in well under a second), and the CRC32s catch a corrupt file.


def read_cache(path: Path) -> tuple[dict, dict[str, Split]] | None:
    """The cached (meta, splits), or None when absent, corrupt or foreign (it is then rebuilt)."""
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as handle:
            if handle.read(len(MAGIC)) != MAGIC:
                return None
            header_len = int.from_bytes(handle.read(8), "little")
            # sanity bound only: a ROOT/<class>/<image> entry's header lists every file name
            if not 0 < header_len < 1 << 28:
                return None
            header = json.loads(handle.read(header_len).decode())
            size = os.fstat(handle.fileno()).st_size
            arrays: dict[str, np.ndarray] = {}
            for spec in header["arrays"]:
                array = np.empty(tuple(spec["shape"]), dtype=np.dtype(spec["dtype"]))
                if array.nbytes != spec["nbytes"] or spec["offset"] + array.nbytes > size:
                    return None
                handle.seek(spec["offset"])
                if array.nbytes and handle.readinto(memoryview(array).cast("B")) != array.nbytes:
                    return None
                if zlib.crc32(array) != spec["crc32"]:
                    return None
                arrays[spec["name"]] = array
        meta = header["meta"]
        splits = {s: Split(arrays[f"{s}_images"], arrays[f"{s}_labels"]) for s in meta["splits"]}
        classes, fingerprint = meta["classes"], meta["fingerprint"]
        if not isinstance(fingerprint, str) or not isinstance(classes, list) or not splits:
            return None
        for split in splits.values():
            if (split.images.dtype != np.uint8 or split.images.ndim != 4
                    or split.labels.shape != (split.images.shape[0],)):
                return None
            if split.labels.size and not 0 <= split.labels.min() <= split.labels.max() < len(classes):
                return None
        return meta, splits
    except (OSError, EOFError, ValueError, KeyError, TypeError, UnicodeDecodeError, MemoryError):
        return None  # corrupt or foreign file: the caller decodes the source again


def write_cache(path: Path, meta: dict, splits: dict[str, Split]) -> None:
    """Write atomically (cifarlab.atomic): readers never see a half-written cache."""
    arrays: list[tuple[str, np.ndarray]] = []
    for name, split in splits.items():
        arrays.append((f"{name}_images", np.ascontiguousarray(split.images, dtype=np.uint8)))
        arrays.append((f"{name}_labels", np.ascontiguousarray(split.labels, dtype=np.int64)))
    specs = [{"name": n, "dtype": a.dtype.str, "shape": list(a.shape), "nbytes": int(a.nbytes),
              "crc32": zlib.crc32(a), "offset": 0} for n, a in arrays]
    meta = {**meta, "splits": list(splits)}
    # Offsets depend on the header length, which depends on the offsets' digits: reserve room.
    header_len = len(json.dumps({"meta": meta, "arrays": specs})) + 32 * len(specs) + 64
    offset = _align(len(MAGIC) + 8 + header_len)
    for spec in specs:
        spec["offset"] = offset
        offset = _align(offset + spec["nbytes"])
    header = json.dumps({"meta": meta, "arrays": specs}).encode().ljust(header_len)
    with atomic_path(path, suffix=".cache") as tmp, open(tmp, "wb") as handle:
        handle.write(MAGIC + header_len.to_bytes(8, "little") + header)
        for spec, (_name, array) in zip(specs, arrays):
            handle.seek(spec["offset"])
            handle.write(memoryview(array).cast("B") if array.nbytes else b"")
        handle.truncate(offset)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN
