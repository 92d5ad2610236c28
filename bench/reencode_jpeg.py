"""Re-encode an image-folder dataset as JPEG at another quality, to measure how much the
compression of the training/test copy costs in accuracy.

    python bench/reencode_jpeg.py ../shared/datasets/cifar10-jpeg runs/cifar10-jpeg-q50 --quality 50
    python bench/time_to_accuracy.py --data runs/cifar10-jpeg-q50 --name fast-q50

The shared copy is already JPEG q75 (the originals are not on this machine), so this measures the
cost of compressing *further*, a hint (not a measurement) of what the q75 copy costs against the
originals.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
from tqdm import tqdm

from cifarlab.atomic import write_atomic


def reencode(source: Path, target: Path, quality: int) -> int:
    files = sorted(p for p in source.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    for path in tqdm(files, desc=f"JPEG q{quality}", unit="img"):
        out = (target / path.relative_to(source)).with_suffix(".jpg")
        ok, encoded = cv2.imencode(".jpg", cv2.imread(str(path), cv2.IMREAD_COLOR),
                                   [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise SystemExit(f"could not encode {path}")
        write_atomic(out, encoded.tobytes())
    return len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--quality", type=int, default=50)
    args = parser.parse_args()
    print(f"{reencode(args.source, args.target, args.quality)} images written to {args.target}")


if __name__ == "__main__":
    main()
