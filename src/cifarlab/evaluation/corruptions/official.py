"""The official CIFAR-10-C files (Zenodo record 2535967), read as memory-mapped arrays."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from cifarlab.errors import CifarlabError
from cifarlab.evaluation.corruptions.registry import SEVERITIES, all_names, lookup

_OFFICIAL_HINT = ("expected the extracted CIFAR-10-C.tar (Zenodo record 2535967): "
                  "<corruption>.npy files of (N*5, 32, 32, 3) uint8 and labels.npy")


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise CifarlabError(f"{path.parent}: has no {path.name}; {_OFFICIAL_HINT}")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CifarlabError(f"{path}: not a readable .npy array ({reason}); re-extract it from "
                            "CIFAR-10-C.tar") from None


def _load_labels(folder: Path) -> np.ndarray:
    labels = _load_npy(folder / "labels.npy")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise CifarlabError(f"{folder / 'labels.npy'}: expected a 1-D integer array, got "
                            f"{labels.dtype} {tuple(labels.shape)}; {_OFFICIAL_HINT}")
    return labels


def _load_images(path: Path) -> np.ndarray:
    arr = _load_npy(path)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[3] != 3 \
            or arr.shape[1] != arr.shape[2]:
        raise CifarlabError(f"{path}: expected (N*5, H, H, 3) uint8 images, got {arr.dtype} "
                            f"{tuple(arr.shape)}; {_OFFICIAL_HINT}")
    if arr.shape[0] == 0 or arr.shape[0] % 5:
        raise CifarlabError(f"{path}: {arr.shape[0]} images is not 5 severities of equal "
                            f"size; {_OFFICIAL_HINT}")
    return arr


def _labels_per_image(folder: Path, labels: np.ndarray, count: int) -> np.ndarray:
    """The N labels of labels.npy, which holds N or the official five repeated copies (5N)."""
    if len(labels) == 5 * count:
        blocks = np.asarray(labels).reshape(5, count)
        if not (blocks == blocks[0]).all():
            raise CifarlabError(f"{folder / 'labels.npy'}: its 5 severity blocks differ; "
                                "re-extract CIFAR-10-C.tar")
        return blocks[0]
    if len(labels) != count:
        raise CifarlabError(f"{folder / 'labels.npy'}: {len(labels)} labels for {count} images "
                            f"per severity (need {count} or {5 * count}); {_OFFICIAL_HINT}")
    return labels


def load_official(folder: Path, names: Iterable[str] | None = None
                  ) -> tuple[dict[tuple[str, int], np.ndarray], np.ndarray]:
    """Read the official CIFAR-10-C arrays: ({(name, severity): images}, labels).

    Each <name>.npy holds severity 1's images first, then 2..5; the arrays are memory-mapped
    (slices of the files, read when used). labels.npy may hold one label per image (N) or the
    five repeated copies the official file has (5N); the N labels are returned as int64.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise CifarlabError(f"{folder}: no such folder; {_OFFICIAL_HINT}")
    names = list(all_names()) if names is None else [lookup(n).name for n in names]
    if not names:
        raise CifarlabError("no corruption to load; name at least one")
    labels = _load_labels(folder)
    out: dict[tuple[str, int], np.ndarray] = {}
    count = None
    for name in names:
        path = folder / f"{name}.npy"
        arr = _load_images(path)
        n = arr.shape[0] // 5
        if count is not None and n != count:
            raise CifarlabError(f"{path}: {n} images per severity, but the other files have "
                                f"{count}; re-extract CIFAR-10-C.tar")
        count = n
        for severity in SEVERITIES:
            out[(name, severity)] = arr[(severity - 1) * n:severity * n]
    return out, np.asarray(_labels_per_image(folder, labels, count), dtype=np.int64)
