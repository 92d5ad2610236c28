"""Options shared by several commands (dataset and model selection)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cifarlab.data import Dataset, load_dataset


def add_data_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    group = parser.add_argument_group("dataset")
    group.add_argument("--data", required=required, metavar="SOURCE",
                       help="dataset: a CIFAR archive (.tar.gz), its extracted folder, or an image "
                            "folder ROOT/<class>/<image> (val and test drawn from it, stratified and "
                            "seeded) or ROOT/<train|val|test>/<class>/<image>")
    group.add_argument("--image-size", type=int, default=None, metavar="N",
                       help="resize images to NxN (default: 32, CIFAR's native size)")
    group.add_argument("--labels", choices=["fine", "coarse"], default="fine",
                       help="CIFAR-100 label set")
    group.add_argument("--cache-dir", type=Path, default=None,
                       help="decoded-array cache (default: $CIFARLAB_CACHE/datasets or ~/.cache/cifarlab/datasets)")
    group.add_argument("--no-cache", action="store_true", help="decode the source without the cache")


def dataset_from_args(args: argparse.Namespace, image_size: int | None = None) -> Dataset:
    return load_dataset(args.data, image_size=image_size or args.image_size, labels=args.labels,
                        cache_dir=args.cache_dir, use_cache=not args.no_cache)


def add_model_argument(parser: argparse.ArgumentParser, backend: bool = True) -> None:
    """--model, and (for commands that run it) --backend."""
    from cifarlab.inference.open import BACKEND_HELP, BACKENDS

    parser.add_argument("--model", type=Path, default=None, metavar="PATH",
                        help="a .keras, .tflite or .onnx model made by cifarlab (default: "
                             "$CIFARLAB_MODEL or the shipped models/cifar10-fast.keras)")
    if backend:
        parser.add_argument("--backend", choices=BACKENDS, default="auto", help=BACKEND_HELP)
