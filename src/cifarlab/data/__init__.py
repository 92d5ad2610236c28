"""Every way a dataset gets in: `load_dataset(source)` reads any supported format, cached.

Image folders come in two layouts (see cifarlab.data.folder): ROOT/<train|val|test>/<class>/<image>,
and ROOT/<class>/<image>, from which val and test are drawn per class (seeded, or as a saved
split record says: `save_split_record`, `load_dataset(..., split_record=...)`).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from cifarlab.data.cache import cache_path, default_cache_dir, load_cached, write_cache
from cifarlab.data.cifar import CIFAR10_CLASSES, detect_cifar_format, load_cifar
from cifarlab.data.dataset import (
    Dataset,
    Split,
    class_weights,
    fingerprint_arrays,
    with_validation,
)
from cifarlab.data.folder import (
    CLASS_FOLDERS,
    LAYOUT_PATTERNS,
    SPLIT_FOLDERS,
    SPLIT_NAMES,
    assign_splits,
    draw_splits,
    folder_layout,
    is_image_folder,
    list_class_files,
    list_files,
    load_image_folder,
    not_an_image_folder,
    read_split_record,
    relative_names,
    save_split_record,
)
from cifarlab.errors import CifarlabError

__all__ = ["CIFAR10_CLASSES", "CLASS_FOLDERS", "Dataset", "LAYOUT_PATTERNS", "SPLIT_FOLDERS",
           "Split", "class_weights", "draw_splits", "folder_layout", "load_dataset",
           "read_split_record", "save_split_record", "with_validation"]

DEFAULT_FOLDER_SIZE = 32
MAX_IMAGE_SIZE = 1024


def describe_source(source: Path) -> tuple[str, Path]:
    """(format name, path to read) for a source, or a clear error if it is none we know."""
    if not source.exists():
        raise CifarlabError(f"{source}: no such file or folder; pass --data PATH to a dataset "
                            "(or run `cifarlab data download`)")
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
    """Load a dataset from an archive or folder; decoded arrays are cached for the next call.

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
    source = Path(source).expanduser().resolve()
    fmt, root = describe_source(source)
    layout = folder_layout(root) if fmt == "image-folder" else ""
    if split_record is not None:
        if layout != CLASS_FOLDERS:
            raise CifarlabError(f"{source}: a split record applies only to ROOT/<class>/<image> "
                                "folders; this source defines its own splits")
        split_record = read_split_record(split_record)  # fail on a bad record before decoding
    size = int(image_size or DEFAULT_FOLDER_SIZE)
    options = {"format": fmt, "size": size, "labels": labels if fmt == "cifar100-python" else ""}
    if layout == CLASS_FOLDERS:
        options["layout"] = layout
    cache_file = cache_path(Path(cache_dir) if cache_dir else default_cache_dir(), source, options)
    key, cached = load_cached(cache_file, source, options) if use_cache else ("", None)
    if cached and layout == CLASS_FOLDERS:
        meta, splits = cached
        files = meta.get("files")
        whole = splits.get("all")
        if isinstance(files, list) and whole is not None and len(files) == len(whole):
            indices, info = assign_splits(files, whole.labels, meta["classes"], split_seed,
                                          split_record, str(source))
            return _class_folder_dataset(meta["classes"], files, whole, meta["fingerprint"],
                                         indices, info, str(source), "hit")
    elif cached:
        meta, splits = cached
        return Dataset(meta["classes"], splits, fmt, str(source), meta["fingerprint"], "hit",
                       layout)

    extra: dict = {}
    if layout == CLASS_FOLDERS:
        classes, items = list_class_files(root)
        files = relative_names(root, items)
        # the split is checked before decoding: too few images fail in a second, not after minutes
        indices, info = assign_splits(files, np.array([label for _, label in items], np.int64),
                                      classes, split_seed, split_record, str(source))
        splits = load_image_folder({"all": items}, (size, size), progress)
        extra = {"layout": layout, "files": files}
    elif fmt == "image-folder":
        classes, found = list_files(root)
        splits = load_image_folder(found, (size, size), progress)
    else:
        classes, splits = load_cifar(root, fmt, labels)
        if size != 32:
            from cifarlab.data.images import resize_rgb
            splits = {n: Split(np.stack([resize_rgb(i, (size, size)) for i in s.images]), s.labels)
                      for n, s in splits.items()}
    fingerprint = fingerprint_arrays(classes, splits)
    status = "off"
    if use_cache:
        status = "miss"
        try:
            write_cache(cache_file, {"classes": classes, "fingerprint": fingerprint, "format": fmt,
                                     "source_key": key, **extra}, splits)
        except OSError as exc:  # a full disk or read-only cache must not stop the command
            print(f"warning: cannot write the dataset cache {cache_file} ({exc}); set "
                  "--cache-dir or $CIFARLAB_CACHE to a writable folder", file=sys.stderr)
    if layout == CLASS_FOLDERS:
        return _class_folder_dataset(classes, files, splits["all"], fingerprint, indices, info,
                                     str(source), status)
    return Dataset(classes, splits, fmt, str(source), fingerprint, status, layout)


def _class_folder_dataset(classes: list[str], files: list[str], whole: Split,
                          whole_fingerprint: str, indices: dict[str, np.ndarray], info: dict,
                          source: str, cache: str) -> Dataset:
    """Cut the decoded ROOT/<class>/<image> images into their splits.

    The fingerprint hashes the whole decoded set's fingerprint with the split indices: the same
    pixels, labels and split give the same fingerprint, without hashing the pixels again.
    """
    splits = {name: Split(whole.images[idx], whole.labels[idx]) for name, idx in indices.items()}
    split_files = {name: [files[i] for i in idx] for name, idx in indices.items()}
    digest = hashlib.sha256(f"{CLASS_FOLDERS}\n{whole_fingerprint}".encode())
    for name in SPLIT_NAMES:
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(indices.get(name, np.empty(0)), dtype=np.int64).data)
    return Dataset(classes, splits, "image-folder", source, digest.hexdigest()[:16], cache,
                   CLASS_FOLDERS, split_files, info)
