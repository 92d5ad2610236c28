"""Re-encode an image-folder dataset as JPEG at another quality, to measure how much the
compression of the training/test copy costs in accuracy.

    python bench/reencode_jpeg.py ../shared/datasets/cifar10-jpeg runs/cifar10-jpeg-q50 --quality 50
    python bench/time_to_accuracy.py --data runs/cifar10-jpeg-q50 --name fast-q50

The shared copy is already JPEG q75 (the originals are not on this machine), so this measures the
cost of compressing *further*, a hint (not a measurement) of what the q75 copy costs against the
originals. Writes bench/results/reencode_jpeg-TARGETNAME.json (what was made, how fast);
`--quick` re-encodes a generated folder of 20 PNGs into a temp folder (source and target unused).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
from tqdm import tqdm

from cifarlab.atomic import write_atomic

import record
from _common import tiny_image_folder


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
    parser.add_argument("source", type=Path, nargs="?")
    parser.add_argument("target", type=Path, nargs="?")
    parser.add_argument("--quality", type=int, default=50)
    record.add_quick_option(parser)
    args = parser.parse_args()
    if not args.quick and args.target is None:
        parser.error("give SOURCE and TARGET (or --quick)")
    run = record.begin(args.quick)
    if args.quick:
        scratch = Path(tempfile.mkdtemp(prefix="bench-reencode-"))
        args.source = tiny_image_folder(scratch / "source", ["a", "b"], {"train": 10, "test": 10})
        args.target = scratch / "target"
    started = time.perf_counter()
    images = reencode(args.source, args.target, args.quality)
    seconds = time.perf_counter() - started
    out = run.write(run.path(f"reencode_jpeg-{args.target.name}.json"), {
        "source": str(args.source), "target": str(args.target), "quality": args.quality,
        "images": images, "seconds": round(seconds, 1), "images_per_s": round(images / max(seconds, 1e-9))})
    print(f"{images} images written to {args.target}; record {out}")


if __name__ == "__main__":
    main()
