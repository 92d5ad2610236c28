"""Every way a dataset gets in: `load_dataset(source)` reads any supported format, cached
(cifarlab.data.load); `Dataset` and `Split` are what every command works on."""

from __future__ import annotations

from cifarlab.data.cifar import CIFAR10_CLASSES
from cifarlab.data.dataset import Dataset, Split, class_weights, with_validation
from cifarlab.data.folder import (
    CLASS_FOLDERS,
    LAYOUT_PATTERNS,
    SPLIT_FOLDERS,
    draw_splits,
    folder_layout,
    read_split_record,
    save_split_record,
)
from cifarlab.data.load import describe_source, load_dataset, resolve_source
from cifarlab.data.sampling import seeded_sample

__all__ = ["CIFAR10_CLASSES", "CLASS_FOLDERS", "Dataset", "LAYOUT_PATTERNS", "SPLIT_FOLDERS",
           "Split", "class_weights", "describe_source", "draw_splits", "folder_layout",
           "load_dataset", "read_split_record", "resolve_source", "save_split_record", "seeded_sample",
           "with_validation"]
