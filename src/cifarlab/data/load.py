"""`load_dataset(source)`: read any supported dataset format, through the decoded-array cache.

Image folders come in two layouts (see cifarlab.data.folder): ROOT/<train|val|test>/<class>/<image>,
and ROOT/<class>/<image>, from which val and test are drawn per class (seeded, or as a saved
split record says: `save_split_record`, `load_dataset(..., split_record=...)`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from cifarlab.data.cache import cache_path, default_cache_dir, load_cached, read_cache, write_cache
from cifarlab.data.cifar import detect_cifar_format, load_cifar
from cifarlab.data.dataset import Dataset, Split, fingerprint_arrays
from cifarlab.data.download import DATASETS, official_archive
from cifarlab.data.folder import (
    CLASS_FOLDERS,
    SPLIT_NAMES,
    assign_splits,
    folder_layout,
    is_image_folder,
    list_class_files,
    list_files,
    load_image_folder,
    not_an_image_folder,
    read_split_record,
    relative_names,
)
from cifarlab.errors import CifarlabError

logger = logging.getLogger(__name__)

DEFAULT_FOLDER_SIZE = 32
MAX_IMAGE_SIZE = 1024


def resolve_source(source: str | Path, progress: bool = True) -> Path:
    """The path a source names: itself, or for a dataset's name (cifar10, cifar100) that is no
    path here, its official archive in the cache (downloaded on first use)."""
    path = Path(source).expanduser()
    if str(source) in DATASETS and not path.exists():
        return official_archive(str(source), progress)
    return path.resolve()


def describe_source(source: Path) -> tuple[str, Path]:
    """(format name, path to read) for a source, or a clear error if it is none we know."""
    if not source.exists():
        raise CifarlabError(f"{source}: no such file or folder; pass --data PATH to a dataset, "
                            f"or a name: {', '.join(DATASETS)}")
    found = detect_cifar_format(source)
    if found:
        return found
    if is_image_folder(source):
        return "image-folder", source
    if source.is_dir():
        raise CifarlabError(not_an_image_folder(source))
    raise CifarlabError(
        f"{source}: not a dataset cifarlab reads; expected a CIFAR archive "
        "(cifar-10-python.tar.gz, cifar-10-binary.tar.gz, cifar-100-python.tar.gz), its extracted "
        "folder, or an image folder ROOT/<class>/<image> or ROOT/<train|val|test>/<class>/<image>"
    )


def load_dataset(
    source: str | Path,
    image_size: int | None = None,
    labels: str = "fine",
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
    split_seed: int = 0,
    split_record: str | Path | Mapping | None = None,
) -> Dataset:
    """Load a dataset from an archive or folder; decoded arrays are cached for the next call, and
    a cached dataset's images are memory maps (`cifarlab.data.cache`).

    source: a path, or a dataset's name (`resolve_source`).
    image_size: square size images are resized to; CIFAR keeps its native 32 unless told
    otherwise, image folders default to 32. labels: CIFAR-100's `fine` or `coarse` labels.

    ROOT/<class>/<image> folders only (the other sources define their splits): split_seed draws
    the stratified val/test splits (`cifarlab.data.folder.draw_splits`); split_record (a path
    written by `save_split_record`, or `Dataset.split_record()`) reuses a recorded split instead,
    files added since going to train. The cache holds the decoded images of such a folder once,
    unsplit, so any seed or record reuses the same entry; the split is applied after loading.
    """
    if image_size is not None and not 1 <= int(image_size) <= MAX_IMAGE_SIZE:
        raise CifarlabError(f"--image-size must be between 1 and {MAX_IMAGE_SIZE}, got {image_size}")
    source = resolve_source(source, progress)
    fmt, root = describe_source(source)
    layout = folder_layout(root) if fmt == "image-folder" else ""
    record = _checked_record(split_record, layout, source)
    size = int(image_size or DEFAULT_FOLDER_SIZE)

    def draw(files: list[str], labels_: np.ndarray, classes: list[str]):
        return assign_splits(files, labels_, classes, split_seed, record, str(source))

    options = {"format": fmt, "size": size, "labels": labels if fmt == "cifar100-python" else ""}
    if layout == CLASS_FOLDERS:
        options["layout"] = layout
    entry = cache_path(Path(cache_dir) if cache_dir else default_cache_dir(), source, options)
    key, cached = load_cached(entry, source, options) if use_cache else ("", None)
    if cached and _usable(cached, layout):
        (meta, splits), status = cached, "hit"
    else:
        meta, splits = _decode(root, fmt, layout, size, labels, progress, draw)
        status = "off"
        if use_cache:
            splits, status = _store(entry, {**meta, "source_key": key}, splits), "miss"
    if layout == CLASS_FOLDERS:
        whole = splits["all"]
        indices, info = draw(meta["files"], whole.labels, meta["classes"])
        return _class_folder_dataset(meta, whole, indices, info, str(source), status)
    return Dataset(meta["classes"], splits, fmt, str(source), meta["fingerprint"], status, layout)


def _checked_record(record: str | Path | Mapping | None, layout: str, source: Path) -> dict | None:
    """The split record, read and validated before anything is decoded."""
    if record is None:
        return None
    if layout != CLASS_FOLDERS:
        raise CifarlabError(f"{source}: a split record applies only to ROOT/<class>/<image> "
                            "folders; this source defines its own splits")
    return read_split_record(record)


def _usable(cached: tuple[dict, dict[str, Split]], layout: str) -> bool:
    """A ROOT/<class>/<image> entry must list its files, one per image."""
    meta, splits = cached
    if layout != CLASS_FOLDERS:
        return True
    files, whole = meta.get("files"), splits.get("all")
    return isinstance(files, list) and whole is not None and len(files) == len(whole)


def _decode(root: Path, fmt: str, layout: str, size: int, labels: str, progress: bool,
            draw) -> tuple[dict, dict[str, Split]]:
    """(meta, splits) decoded from the source; a ROOT/<class>/<image> folder as one "all"
    split, its split drawn first (`draw`) so too few images fail in a second, not after minutes."""
    meta: dict = {"format": fmt}
    if layout == CLASS_FOLDERS:
        classes, items = list_class_files(root)
        meta.update(layout=layout, files=relative_names(root, items))
        draw(meta["files"], np.array([label for _, label in items], np.int64), classes)
        splits = load_image_folder({"all": items}, (size, size), progress)
    elif fmt == "image-folder":
        classes, found = list_files(root)
        splits = load_image_folder(found, (size, size), progress)
    else:
        classes, splits = load_cifar(root, fmt, labels)
        splits = _resized(splits, size)
    meta.update(classes=classes, fingerprint=fingerprint_arrays(classes, splits))
    return meta, splits


def _resized(splits: dict[str, Split], size: int) -> dict[str, Split]:
    """CIFAR's 32x32 images at size x size."""
    if size == 32:
        return splits
    from cifarlab.data.images import resize_rgb

    return {name: Split(np.stack([resize_rgb(i, (size, size)) for i in s.images]), s.labels)
            for name, s in splits.items()}


def _store(entry: Path, meta: dict, splits: dict[str, Split]) -> dict[str, Split]:
    """Write the cache entry; its memory-mapped splits (the decoded ones if it cannot be written)."""
    try:
        write_cache(entry, meta, splits)
    except OSError as exc:  # a full disk or read-only cache must not stop the command
        logger.warning("cannot write the dataset cache %s (%s); set --cache-dir or $CIFARLAB_CACHE "
                       "to a writable folder", entry, exc)
        return splits
    stored = read_cache(entry)
    return stored[1] if stored else splits


def _class_folder_dataset(meta: dict, whole: Split, indices: dict[str, np.ndarray], info: dict,
                          source: str, cache: str) -> Dataset:
    """Cut the decoded ROOT/<class>/<image> images into their splits (rows of `whole`: no copy).

    The fingerprint hashes the whole decoded set's fingerprint with the split indices: the same
    pixels, labels and split give the same fingerprint, without hashing the pixels again.
    """
    files = meta["files"]
    splits = {name: whole.select(idx) for name, idx in indices.items()}
    split_files = {name: [files[i] for i in idx] for name, idx in indices.items()}
    digest = hashlib.sha256(f"{CLASS_FOLDERS}\n{meta['fingerprint']}".encode())
    for name in SPLIT_NAMES:
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(indices.get(name, np.empty(0)), dtype=np.int64).data)
    return Dataset(meta["classes"], splits, "image-folder", source, digest.hexdigest()[:16], cache,
                   CLASS_FOLDERS, split_files, info)
