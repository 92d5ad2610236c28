"""The in-memory dataset every command works on: uint8 HWC RGB arrays, labels, class names."""

from __future__ import annotations

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
    return Dataset(
        dataset.class_names, splits, dataset.format, dataset.source, dataset.fingerprint,
        dataset.cache,
    )
