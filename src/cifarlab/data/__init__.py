"""Every way a dataset gets in: `load_dataset(source)` reads any supported format, cached."""

from __future__ import annotations

import sys
from pathlib import Path

from cifarlab.data.cache import cache_path, default_cache_dir, load_cached, write_cache
from cifarlab.data.cifar import CIFAR10_CLASSES, detect_cifar_format, load_cifar
from cifarlab.data.dataset import Dataset, Split, fingerprint_arrays, with_validation
from cifarlab.data.folder import is_image_folder, list_files, load_image_folder
from cifarlab.errors import CifarlabError

__all__ = ["CIFAR10_CLASSES", "Dataset", "Split", "load_dataset", "with_validation"]

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
    raise CifarlabError(
        f"{source}: not a dataset cifarlab reads; expected a CIFAR archive "
        "(cifar-10-python.tar.gz, cifar-10-binary.tar.gz, cifar-100-python.tar.gz), its extracted "
        "folder, or an image folder ROOT/<train|val|test>/<class>/<image>"
    )


def load_dataset(
    source: str | Path,
    image_size: int | None = None,
    labels: str = "fine",
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> Dataset:
    """Load a dataset from an archive or folder; decoded arrays are cached for the next call.

    image_size: square size images are resized to; CIFAR keeps its native 32 unless told
    otherwise, image folders default to 32. labels: CIFAR-100's `fine` or `coarse` labels.
    """
    if image_size is not None and not 1 <= int(image_size) <= MAX_IMAGE_SIZE:
        raise CifarlabError(f"--image-size must be between 1 and {MAX_IMAGE_SIZE}, got {image_size}")
    source = Path(source).expanduser().resolve()
    fmt, root = describe_source(source)
    size = int(image_size or DEFAULT_FOLDER_SIZE)
    options = {"format": fmt, "size": size, "labels": labels if fmt == "cifar100-python" else ""}
    cache_file = cache_path(Path(cache_dir) if cache_dir else default_cache_dir(), source, options)
    key, cached = load_cached(cache_file, source, options) if use_cache else ("", None)
    if cached:
        meta, splits = cached
        return Dataset(meta["classes"], splits, fmt, str(source), meta["fingerprint"], "hit")

    if fmt == "image-folder":
        classes, files = list_files(root)
        splits = load_image_folder(files, (size, size), progress)
    else:
        classes, splits = load_cifar(root, fmt, labels)
        if size != 32:
            import numpy as np

            from cifarlab.data.images import resize_rgb
            splits = {n: Split(np.stack([resize_rgb(i, (size, size)) for i in s.images]), s.labels)
                      for n, s in splits.items()}
    fingerprint = fingerprint_arrays(classes, splits)
    if use_cache:
        try:
            write_cache(cache_file, {"classes": classes, "fingerprint": fingerprint, "format": fmt,
                                     "source_key": key}, splits)
        except OSError as exc:  # a full disk or read-only cache must not stop the command
            print(f"warning: cannot write the dataset cache {cache_file} ({exc}); set "
                  "--cache-dir or $CIFARLAB_CACHE to a writable folder", file=sys.stderr)
    return Dataset(classes, splits, fmt, str(source), fingerprint, "miss" if use_cache else "off")
