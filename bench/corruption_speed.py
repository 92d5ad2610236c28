"""Benchmark the CIFAR-10-C corruptions: images per second for each, and the full-run estimate.

    python bench/corruption_speed.py [--data PATH] [--images 2000]
        [--out bench/results/corruption_speed.json]

Each of the 19 corruptions is run at all 5 severities on the same --images test images (after a
small warm-up that fills the per-size caches); its rate is images / total time over the five.
The estimate for scoring CIFAR-10-C (19 corruptions x 5 severities x 10,000 images = 950,000
images) adds up 50,000 images at each corruption's rate: the corruption part only, model
inference comes on top. The machine's load average is recorded: the 2 cores are shared.
`--quick`: 8 random images, one severity, record in a temp folder.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import record
from _common import CIFAR10_JPEG, tiny_images

ROOT = Path(__file__).resolve().parents[1]
FULL_IMAGES = 10_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", type=Path, default=CIFAR10_JPEG, help="dataset source")
    parser.add_argument("--images", type=int, default=2000, help="test images to corrupt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the JSON result (default: bench/results/corruption_speed.json)")
    record.add_quick_option(parser)
    args = parser.parse_args()
    run = record.begin(args.quick)
    out = args.out or run.path("corruption_speed.json")

    import numpy as np

    from cifarlab.data import load_dataset
    from cifarlab.evaluation.corruptions import ALL_CORRUPTIONS, CORRUPTIONS, SEVERITIES, corrupt

    if args.quick:
        images, severities = tiny_images(8, 10)[0], SEVERITIES[:1]
    else:
        images, severities = load_dataset(args.data, progress=False).split("test").images[:args.images], SEVERITIES
    images = np.ascontiguousarray(images)
    n = len(images)
    per: dict[str, dict] = {}
    for name in ALL_CORRUPTIONS:
        for severity in severities:
            corrupt(images[:64], name, severity, args.seed)  # warm-up: operators, textures
        seconds = {}
        for severity in severities:
            t0 = time.perf_counter()
            corrupt(images, name, severity, args.seed)
            seconds[severity] = time.perf_counter() - t0
        total = sum(seconds.values())
        per[name] = {
            "images_per_s": round(len(severities) * n / total),
            "per_severity_images_per_s": {str(s): round(n / t) for s, t in seconds.items()},
            "full_run_s": round(len(SEVERITIES) * FULL_IMAGES * total / (len(severities) * n), 1),
        }
        print(f"{name:18s} {per[name]['images_per_s']:>8,} img/s   "
              f"{per[name]['full_run_s']:6.1f} s for 5 x {FULL_IMAGES:,}", flush=True)

    def estimate(names) -> float:
        return sum(per[nm]["full_run_s"] for nm in names)

    all_s, main_s = estimate(ALL_CORRUPTIONS), estimate(CORRUPTIONS)
    result = {
        "images": n,
        "image_size": list(images.shape[1:3]),
        "corruptions": per,
        "estimate_950k_images_s": round(all_s, 1),
        "estimate_950k_images_per_s": round(len(ALL_CORRUPTIONS) * 5 * FULL_IMAGES / all_s),
        "estimate_main_15_750k_images_s": round(main_s, 1),
        "slowest": sorted(per, key=lambda nm: per[nm]["images_per_s"])[:3],
    }
    run.write(out, result)
    print(f"950,000 images (19 x 5 x 10,000): {all_s:.0f} s of corruption "
          f"({result['estimate_950k_images_per_s']:,} img/s); the 15 main: {main_s:.0f} s")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
