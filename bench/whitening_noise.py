"""Why the `fast` network is so sensitive to pixel noise: the whitening stem's noise gain.

The stem divides each 2x2-patch direction by sqrt(eigenvalue + eps). Natural images put almost no
variance in the highest spatial frequencies, so those directions get the largest gains, and
independent pixel noise has equal variance in every direction. This script measures, for several
eps, how much the stem raises the share of noise in its output relative to its input (the SNR
loss, in dB), for Gaussian noise at CIFAR-10-C's severity-1 and severity-5 sigmas.

    python bench/whitening_noise.py [--data ../shared/datasets/cifar10-jpeg]
Writes bench/results/whitening_noise.json (`--quick`: 64 random images, record in a temp folder).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from cifarlab.data import load_dataset  # noqa: E402
from cifarlab.data.stats import channel_stats  # noqa: E402
from cifarlab.models.fast import WHITENING_PATCH, whitening_kernel  # noqa: E402

import record
from _common import CIFAR10_JPEG, tiny_images

EPS = (5e-4, 1e-2, 1e-1, 1.0)
SIGMAS = (0.04, 0.10)  # gaussian_noise severity 1 and 5, on the 0..1 scale


def patches(x: np.ndarray) -> np.ndarray:
    p = np.lib.stride_tricks.sliding_window_view(x, (WHITENING_PATCH, WHITENING_PATCH), axis=(1, 2))
    return p.transpose(0, 1, 2, 4, 5, 3).reshape(-1, WHITENING_PATCH * WHITENING_PATCH * 3)


def power(x: np.ndarray, kernel: np.ndarray | None) -> float:
    """Mean output power of the stem (before its GELU) on standardized images x, or of x itself."""
    flat = patches(x)
    if kernel is None:
        return float(np.mean(np.square(flat)))
    return float(np.mean(np.square(flat @ kernel.reshape(-1, kernel.shape[-1]))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(CIFAR10_JPEG))
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=None, help="default: bench/results/whitening_noise.json")
    record.add_quick_option(parser)
    args = parser.parse_args()
    run = record.begin(args.quick)
    if args.quick:
        args.images = 64
    images = tiny_images(args.images, 10)[0] if args.quick else load_dataset(args.data).split("train").images
    mean, std = channel_stats(images)
    sample = images[: args.images]
    clean = (sample.astype(np.float32) - mean) / std
    rng = np.random.default_rng(0)
    rows = {}
    for eps in (None, *EPS):
        kernel = None if eps is None else whitening_kernel(images, mean, std, eps)
        signal = power(clean, kernel)
        row = {}
        for sigma in SIGMAS:
            noise = rng.normal(0, sigma * 255, clean.shape).astype(np.float32) / std
            snr_in = power(clean, None) / power(noise, None)
            snr_out = signal / power(noise, kernel)
            row[f"sigma_{sigma}"] = {"snr_in": round(snr_in, 2), "snr_out": round(snr_out, 2),
                                     "snr_loss_db": round(10 * np.log10(snr_in / snr_out), 2)}
        rows["no whitening" if eps is None else f"eps={eps:g}"] = row
        print(("no whitening" if eps is None else f"eps={eps:g}"), row)
    out = run.write(args.out or run.path("whitening_noise.json"), {
        "images": args.images,
        "note": "SNR = mean power of clean standardized patches (or their stem outputs) over that "
                "of Gaussian pixel noise; snr_loss_db = how much the stem lowers it (0 = none)",
        "snr": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
