"""The dataset every command works on: uint8 HWC RGB images, labels, class names.

Images may stay on disk: the cache hands out memory maps, and a split can be a selection of rows
of such an array (`Split.select`), so splitting a dataset larger than memory copies no pixels.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from cifarlab.data.sampling import seeded_sample
from cifarlab.errors import CifarlabError


class Rows:
    """Rows `index` of `array`, read only when indexed: `rows[i:j]` or `rows[[5, 2]]` reads just
    those rows (as an array in memory); `len`, `shape`, `dtype` and `ndim` are as for the selection
    itself. Indexing is along the first axis only."""

    def __init__(self, array: np.ndarray, index: np.ndarray):
        self.array, self.index = array, index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key) -> np.ndarray:
        return self.array[self.index[key]]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.asarray(self.array[self.index], dtype=dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), *self.array.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def ndim(self) -> int:
        return self.array.ndim


@dataclass(eq=False)
class Split:
    """A split's images, (N, H, W, 3) uint8 RGB, and labels, (N,) int64.

    `stored` holds the images, or, with `index` (sorted row numbers), a larger array they are rows
    of (often the cache's memory map). `rows` reads them without copying them all (the training
    path uses it); `images` is them as one array: `stored` itself, or the selection, made on
    first use and kept.
    """

    stored: np.ndarray
    labels: np.ndarray
    index: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    @cached_property
    def images(self) -> np.ndarray:
        return self.stored if self.index is None else self.stored[self.index]

    @property
    def rows(self) -> np.ndarray | Rows:
        """The images, read row by row when indexed: `stored` itself, or a `Rows` selection."""
        return self.stored if self.index is None else Rows(self.stored, self.index)

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.stored.shape[1:3])  # type: ignore[return-value]

    def select(self, positions: np.ndarray) -> Split:
        """The split of the images at `positions` (sorted) in this one, sharing its stored array."""
        positions = np.asarray(positions, dtype=np.int64)
        index = positions if self.index is None else self.index[positions]
        return Split(self.stored, self.labels[positions], index)


@dataclass
class Dataset:
    class_names: list[str]
    splits: dict[str, Split]
    format: str
    source: str
    fingerprint: str = ""
    cache: str = field(default="", compare=False)  # "hit", "miss" or "off"
    # Image folders only: "split-folders" (ROOT/<split>/<class>/<image>) or "class-folders"
    # (ROOT/<class>/<image>); "" for CIFAR archives.
    layout: str = field(default="", compare=False)
    # class-folders only: the image files of each split (paths relative to ROOT, "/"-separated,
    # in class order then by name), in the order of that split's arrays; empty when the source
    # defines its own splits.
    split_files: dict[str, list[str]] = field(default_factory=dict, compare=False)
    # class-folders only: how the splits were drawn ("method": "seeded" or "record", "seed",
    # "val_fraction", "test_fraction", "added_to_train", "missing"); see cifarlab.data.folder.
    split_info: dict = field(default_factory=dict, compare=False)

    @property
    def image_size(self) -> tuple[int, int]:
        return next(iter(self.splits.values())).image_size

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise CifarlabError(
                f"{self.source}: has no '{name}' split (it has: {', '.join(self.splits)}); "
                "choose one of those"
            )
        if len(self.splits[name]) == 0:
            raise CifarlabError(f"{self.source}: the '{name}' split is empty; add images to it")
        return self.splits[name]

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            name: {
                cls: int(n)
                for cls, n in zip(self.class_names, np.bincount(s.labels, minlength=self.num_classes))
            }
            for name, s in self.splits.items()
        }

    def class_weights(self, split: str = "train") -> dict[int, float]:
        """`class_weights` of a split's labels: {class index: weight} for Keras' class_weight."""
        return class_weights(self.split(split).labels, self.num_classes)

    def split_record(self) -> dict | None:
        """The JSON-ready record of which file is in which split (class-folders only, else None).

        Save it with `cifarlab.data.save_split_record` and pass it (or its path) back as
        `load_dataset(..., split_record=...)` to get the same split again.
        """
        if not self.split_files:
            return None
        info = self.split_info
        return {
            "kind": "cifarlab-split-record", "version": 1, "layout": self.layout,
            "source": self.source, "seed": info.get("seed"),
            "val_fraction": info.get("val_fraction"), "test_fraction": info.get("test_fraction"),
            "counts": {name: len(files) for name, files in self.split_files.items()},
            "files": {name: list(files) for name, files in self.split_files.items()},
        }


def class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """{class index: weight} that balances the classes (sklearn's "balanced" class weights).

    weight[c] = len(labels) / (number of classes present * count[c]), so every class adds the
    same total weight to the loss and the mean weight per image is 1. A class with no images gets
    1.0 (it never occurs, so its weight has no effect). Pass the result as Keras'
    `model.fit(..., class_weight=...)`.
    """
    labels = np.asarray(labels, dtype=np.int64).ravel()
    if num_classes < 1:
        raise CifarlabError(f"class_weights: num_classes must be at least 1, got {num_classes}")
    if labels.size == 0:
        raise CifarlabError("class_weights: no labels; the split is empty")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise CifarlabError(f"class_weights: labels must be in 0..{num_classes - 1}, "
                            f"got {int(labels.min())}..{int(labels.max())}")
    from sklearn.utils.class_weight import compute_class_weight  # slow import: only when needed

    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    result = {c: 1.0 for c in range(num_classes)}
    result.update({int(c): float(w) for c, w in zip(present, weights)})
    return result


def fingerprint_arrays(class_names: list[str], splits: dict[str, Split]) -> str:
    """A content hash of the decoded data: the same pixels and labels give the same fingerprint."""
    digest = hashlib.sha256("\n".join(class_names).encode())
    for name in sorted(splits):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(splits[name].images).data)
        digest.update(np.ascontiguousarray(splits[name].labels, dtype=np.int64).data)
    return digest.hexdigest()[:16]


def with_validation(dataset: Dataset, fraction: float, seed: int = 0) -> Dataset:
    """Carve a stratified, seeded `val` split from `train` unless the source already has one."""
    if "val" in dataset.splits or fraction <= 0:
        return dataset
    if not 0 < fraction < 1:
        raise CifarlabError(f"--val-fraction must be between 0 and 1, got {fraction}")
    train = dataset.split("train")
    try:
        held, keep = seeded_sample(len(train), fraction, seed, labels=train.labels)
    except ValueError as exc:
        raise CifarlabError(
            f"cannot carve a {fraction:.0%} validation split from {len(train)} training images "
            f"({exc}); use a larger dataset or a different --val-fraction"
        ) from None
    splits = dict(dataset.splits)
    splits["train"] = train.select(keep)
    splits["val"] = train.select(held)
    return dataclasses.replace(dataset, splits=splits)
