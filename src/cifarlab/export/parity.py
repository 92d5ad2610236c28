"""Parity check: does an exported model give the same answers as the Keras model it came from?

Both run on the same uint8 sample (real images from `--calibration-data`, else generated ones);
the result is the max absolute difference of the probabilities and the top-1 agreement, and for a
model with the open-set output the agreement of the `unknown` flag at the model's threshold.
A float export passes when the difference is at most `FLOAT_TOLERANCE`; a quantized one
(dynamic or int8) when top-1 agreement is at least `QUANTIZED_MIN_AGREEMENT`. The unknown flag
must agree on at least `FLOAT_MIN_UNKNOWN_AGREEMENT` of the sample for a float export and
`QUANTIZED_MIN_UNKNOWN_AGREEMENT` for a quantized one: int8 features move the score a little,
which flips the images lying that close to the threshold (docs/results.md, The shipped model's
score and its exports).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cifarlab.errors import CifarlabError

FLOAT_TOLERANCE = 1e-4
QUANTIZED_MIN_AGREEMENT = 0.99
FLOAT_MIN_UNKNOWN_AGREEMENT = 0.99
QUANTIZED_MIN_UNKNOWN_AGREEMENT = 0.97


@dataclass
class ParityResult:
    samples: int
    sample_source: str
    max_abs_diff: float
    top1_agreement: float
    criterion: str
    passed: bool
    unknown_agreement: float | None = None   # None: the model has no open-set output
    max_score_diff: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        unknown = ("" if self.unknown_agreement is None else
                   f", unknown-flag agreement {self.unknown_agreement:.2%} (max score difference "
                   f"{self.max_score_diff:.2e})")
        return (f"parity on {self.samples} {self.sample_source}: max |p_export - p_keras| = "
                f"{self.max_abs_diff:.2e}, top-1 agreement {self.top1_agreement:.2%}{unknown} -> "
                f"{verdict} ({self.criterion})")


def compare(reference, exported, quantized: bool, sample_source: str,
            threshold: float | None = None) -> ParityResult:
    """reference, exported: (probabilities, scores or None) of the Keras and the exported model."""
    (reference, ref_scores), (exported, exp_scores) = reference, exported
    result = compare_probabilities(reference, exported, quantized, sample_source)
    if ref_scores is None:
        return result
    if exp_scores is None:
        raise CifarlabError("the exported model lost the open-set output (ood_score); the export is broken")
    agreement = float(((ref_scores > threshold) == (exp_scores > threshold)).mean()) \
        if threshold is not None and len(ref_scores) else 1.0
    result.unknown_agreement = agreement
    result.max_score_diff = float(np.abs(np.asarray(ref_scores) - np.asarray(exp_scores)).max()) \
        if len(ref_scores) else 0.0
    needed = QUANTIZED_MIN_UNKNOWN_AGREEMENT if quantized else FLOAT_MIN_UNKNOWN_AGREEMENT
    result.criterion += f"; unknown flag agreement >= {needed:.0%}"
    result.passed = result.passed and agreement >= needed
    return result


def compare_probabilities(reference: np.ndarray, exported: np.ndarray, quantized: bool,
                          sample_source: str) -> ParityResult:
    reference = np.asarray(reference, np.float32)
    exported = np.asarray(exported, np.float32)
    if reference.shape != exported.shape:
        raise CifarlabError(f"exported model gives outputs of shape {exported.shape}, Keras "
                            f"{reference.shape}; the export is broken")
    diff = float(np.abs(reference - exported).max()) if reference.size else 0.0
    if not np.isfinite(exported).all():
        diff = float("inf")
    agreement = float((reference.argmax(1) == exported.argmax(1)).mean()) if len(reference) else 1.0
    if quantized:
        criterion = f"quantized: top-1 agreement >= {QUANTIZED_MIN_AGREEMENT:.0%}"
        passed = agreement >= QUANTIZED_MIN_AGREEMENT and np.isfinite(diff)
    else:
        criterion = f"float: max difference <= {FLOAT_TOLERANCE:g}"
        passed = diff <= FLOAT_TOLERANCE
    return ParityResult(len(reference), sample_source, diff, agreement, criterion, bool(passed))


def generated_images(n: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Image-like uint8 samples when no real data is given: smooth random colour fields (low-res
    noise upsampled), some with a bright filled shape, plus pixel noise."""
    import cv2

    rng = np.random.default_rng(seed)
    height, width = size
    out = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        grid = int(rng.integers(2, 9))
        base = rng.uniform(0, 255, (grid, grid, 3)).astype(np.float32)
        image = cv2.resize(base, (width, height), interpolation=cv2.INTER_CUBIC)
        if i % 2:
            color = tuple(float(c) for c in rng.uniform(0, 255, 3))
            cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
            r = int(rng.integers(max(2, min(size) // 8), max(3, min(size) // 3)))
            cv2.circle(image, (cx, cy), r, color, -1)
        image += rng.normal(0, 8, image.shape).astype(np.float32)
        out[i] = np.clip(image, 0, 255).astype(np.uint8)
    return out


def sample_images(source: str | Path | None, size: tuple[int, int], n: int,
                  seed: int = 0) -> tuple[np.ndarray, str]:
    """Up to `n` uint8 images at `size` and a description of where they came from.

    source: a dataset `load_dataset` reads (CIFAR archive/folder, image folder), or image files,
    folders or globs as `cifarlab predict` takes them; None -> generated images.
    """
    if source is None:
        return generated_images(n, size, seed), "generated images"
    from cifarlab.data import load_dataset
    from cifarlab.data.images import resize_rgb

    rng = np.random.default_rng(seed)
    path = Path(source).expanduser()
    dataset = None
    if path.exists():
        try:
            dataset = load_dataset(path, image_size=size[0], progress=False)
        except CifarlabError:
            dataset = None  # not a dataset layout: treat it as plain image files below
    if dataset is not None:
        pools = [s.images for s in dataset.splits.values() if len(s)]
        images = np.concatenate(pools) if pools else np.zeros((0, *size, 3), np.uint8)
        if len(images) > n:
            images = images[np.sort(rng.choice(len(images), n, replace=False))]
        if images.shape[1:3] != tuple(size):
            images = np.stack([resize_rgb(i, size) for i in images])
        kind = "images from " + str(source)
    else:
        from cifarlab.data.files import gather_inputs, load_resized

        files = [p for p, error in gather_inputs([str(source)]) if error is None]
        if len(files) > n:
            files = [files[i] for i in np.sort(rng.choice(len(files), n, replace=False))]
        loaded = [x for x in (load_resized(p, size) for p in files) if isinstance(x, np.ndarray)]
        images = np.stack(loaded) if loaded else np.zeros((0, *size, 3), np.uint8)
        kind = "images from " + str(source)
    if not len(images):
        raise CifarlabError(f"--calibration-data {source}: no readable images found; pass a dataset "
                            "or a folder of image files")
    return images, kind
