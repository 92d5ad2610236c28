"""Make the photos `cifarlab live --source demo` shows: src/cifarlab/live/assets/cifar10_demo.npz.

    .venv/bin/python scripts/make_demo_sample.py --data ../shared/datasets/cifar10-jpeg

Picks --per-class (default 20) images of every class from DATA/test/<class>/ (an image folder
of CIFAR-10's test set, e.g. the shared JPEG copy): the files of each class are sorted by name
and `numpy.random.default_rng(--seed)` (default 0) chooses among them, class by class in sorted
class order, so the same copy and options always give the same photos. The file keeps each
picked image's original bytes (no re-encoding; about 1 KB per 32x32 JPEG, where the decoded
pixels would take 2.8 KB compressed) with their labels and the class names, all plain arrays
(`np.load(..., allow_pickle=False)` reads it); `cifarlab.live.demo.load_sample` decodes it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "cifarlab" / "live" / "assets" / "cifar10_demo.npz"
EXTENSIONS = (".jpg", ".jpeg", ".png")


def pick(test: Path, per_class: int, seed: int) -> tuple[list[Path], list[int], list[str]]:
    classes = sorted(d.name for d in test.iterdir() if d.is_dir() and not d.name.startswith("."))
    rng = np.random.default_rng(seed)
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(p for p in (test / name).iterdir() if p.suffix.lower() in EXTENSIONS)
        if len(found) < per_class:
            raise SystemExit(f"{test / name}: {len(found)} images, fewer than --per-class {per_class}")
        files += [found[i] for i in sorted(rng.choice(len(found), per_class, replace=False))]
        labels += [label] * per_class
    return files, labels, classes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="image folder with test/<class>/<image> (CIFAR-10's test set)")
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    files, labels, classes = pick(args.data / "test", args.per_class, args.seed)
    blobs = [p.read_bytes() for p in files]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, files=np.frombuffer(b"".join(blobs), np.uint8),
                        ends=np.cumsum([len(b) for b in blobs]), labels=np.array(labels, np.uint8),
                        class_names=np.array(classes))
    print(f"{args.out}: {len(files)} images of {len(classes)} classes, "
          f"{args.out.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
