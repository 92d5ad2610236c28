"""The in-memory dataset every command works on: uint8 HWC RGB arrays, labels, class names."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field

import numpy as np

from cifarlab.errors import CifarlabError


@dataclass
class Split:
    images: np.ndarray  # (N, H, W, 3) uint8 RGB
    labels: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)


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
        first = next(iter(self.splits.values()))
        return tuple(first.images.shape[1:3])  # type: ignore[return-value]

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
    from sklearn.model_selection import train_test_split  # slow import: only when needed

    train = dataset.split("train")
    index = np.arange(len(train))
    try:
        keep, held = train_test_split(
            index, test_size=fraction, random_state=seed, stratify=train.labels
        )
    except ValueError as exc:
        raise CifarlabError(
            f"cannot carve a {fraction:.0%} validation split from {len(train)} training images "
            f"({exc}); use a larger dataset or a different --val-fraction"
        ) from None
    keep.sort()
    held.sort()
    splits = dict(dataset.splits)
    splits["train"] = Split(train.images[keep], train.labels[keep])
    splits["val"] = Split(train.images[held], train.labels[held])
    return dataclasses.replace(dataset, splits=splits)
