"""Make the photos `cifarlab live --source demo` shows: src/cifarlab/live/assets/cifar10_demo.npz.

    .venv/bin/python scripts/make_demo_sample.py --data ../shared/datasets/cifar10-jpeg \\
        --real ../shared/datasets/tinyimagenet-subsets --real-per-class 3 --outliers 20

Picks --per-class (default 20) images of every class from DATA/test/<class>/ (an image folder
of CIFAR-10's test set, e.g. the shared JPEG copy), then real photos from --real ROOT (the shared
Tiny ImageNet subsets; its README.md says what each folder may be used for):
- --real-per-class (default 3) photos of every class in ROOT/cifar-classes/<class>/ (64x64 real
  photos of 7 CIFAR-10 classes, an evaluation-only folder: showing them is not training on them);
- --outliers (default 20) photos of as many distinct classes of ROOT/other-classes/, all of them
  held-out classes of `outlier_split` (bench/_common.py), never the classes a model trained with
  outlier exposure (`train --outliers-data`) has seen. Their label is -1: none of the classes.
The files of each class are sorted by name and `numpy.random.default_rng(--seed)` (default 0)
chooses among them, class by class in sorted class order (a fresh generator for each of the
three groups), so the same copies and options always give the same photos.

The file keeps each picked image's original bytes (no re-encoding; about 1 KB per 32x32 JPEG and
2 KB per 64x64 one, where decoded pixels would take 3 times more) with plain arrays only
(`np.load(..., allow_pickle=False)` reads it): `files` (the bytes, split at `ends`), `labels`
(int16: the class index, -1 for none of the classes), `class_names`, `shows` (what each photo
shows: its class, or an outlier's own class such as "sombrero") and `sources` ("CIFAR-10 test" or
"Tiny ImageNet"). `cifarlab.live.demo.load_sample` decodes it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _common import TINY_IMAGENET as REAL, outlier_split  # noqa: E402

OUT = ROOT / "src" / "cifarlab" / "live" / "assets" / "cifar10_demo.npz"
EXTENSIONS = (".jpg", ".jpeg", ".png")
NONE_OF_THE_CLASSES = -1
CIFAR_TEST, TINY_IMAGENET = "CIFAR-10 test", "Tiny ImageNet"


def class_folders(root: Path) -> list[str]:
    return sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


def choose(folder: Path, count: int, rng: np.random.Generator) -> list[Path]:
    """`count` of the folder's images, chosen by `rng` among them sorted by name."""
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS)
    if len(found) < count:
        raise SystemExit(f"{folder}: {len(found)} images, fewer than the {count} asked for")
    return [found[i] for i in sorted(rng.choice(len(found), count, replace=False))]


def pick(test: Path, per_class: int, seed: int) -> tuple[list[Path], list[int], list[str]]:
    """(files, labels, class names): `per_class` CIFAR-10 test photos of every class of TEST."""
    classes = class_folders(test)
    rng = np.random.default_rng(seed)
    files, labels = [], []
    for label, name in enumerate(classes):
        files += choose(test / name, per_class, rng)
        labels += [label] * per_class
    return files, labels, classes


def pick_real(root: Path, classes: list[str], per_class: int, seed: int) -> tuple[list[Path], list[int]]:
    """(files, labels): `per_class` real photos of each of `classes` present in ROOT/cifar-classes."""
    folder, rng = root / "cifar-classes", np.random.default_rng(seed)
    files, labels = [], []
    for name in class_folders(folder):
        if name not in classes:
            raise SystemExit(f"{folder / name}: not one of the classes {', '.join(classes)}")
        files += choose(folder / name, per_class, rng)
        labels += [classes.index(name)] * per_class
    return files, labels


def pick_outliers(root: Path, count: int, seed: int) -> list[Path]:
    """One photo each of `count` distinct held-out classes of ROOT/other-classes."""
    folder, rng = root / "other-classes", np.random.default_rng(seed)
    _, held_out = outlier_split(folder)
    if len(held_out) < count:
        raise SystemExit(f"{folder}: {len(held_out)} held-out classes, fewer than --outliers {count}")
    chosen = sorted(rng.choice(len(held_out), count, replace=False))
    return [choose(folder / held_out[i], 1, rng)[0] for i in chosen]


def save(out: Path, files: list[Path], labels: list[int], classes: list[str],
         sources: list[str]) -> None:
    blobs = [p.read_bytes() for p in files]
    shows = [classes[label] if label >= 0 else f.parent.name.replace("_", " ")
             for f, label in zip(files, labels)]
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, files=np.frombuffer(b"".join(blobs), np.uint8),
                        ends=np.cumsum([len(b) for b in blobs]), labels=np.array(labels, np.int16),
                        class_names=np.array(classes), shows=np.array(shows),
                        sources=np.array(sources))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="image folder with test/<class>/<image> (CIFAR-10's test set)")
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--real", type=Path, default=REAL,
                        help="folder with cifar-classes/ and other-classes/ (default "
                             "../shared/datasets/tinyimagenet-subsets)")
    parser.add_argument("--real-per-class", type=int, default=3,
                        help="real photos of each class in REAL/cifar-classes (0: none)")
    parser.add_argument("--outliers", type=int, default=20,
                        help="photos of distinct held-out classes of REAL/other-classes (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    files, labels, classes = pick(args.data / "test", args.per_class, args.seed)
    sources = [CIFAR_TEST] * len(files)
    if args.real_per_class:
        real, real_labels = pick_real(args.real, classes, args.real_per_class, args.seed)
        files, labels, sources = files + real, labels + real_labels, sources + [TINY_IMAGENET] * len(real)
    if args.outliers:
        other = pick_outliers(args.real, args.outliers, args.seed)
        files, labels = files + other, labels + [NONE_OF_THE_CLASSES] * len(other)
        sources += [TINY_IMAGENET] * len(other)
    save(args.out, files, labels, classes, sources)
    print(f"{args.out}: {len(files)} images ({labels.count(NONE_OF_THE_CLASSES)} of none of the "
          f"{len(classes)} classes), {args.out.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
