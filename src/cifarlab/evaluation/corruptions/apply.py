"""`corrupt`: one corruption at one severity on a batch, seeded so that runs agree image for image.

The one random generator is seeded from (seed, name, severity), and each image's random draws come
from it in image order, so the first k images of a batch come out the same as a batch of just
those k.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

import numpy as np

from cifarlab.errors import CifarlabError
from cifarlab.evaluation.corruptions.registry import lookup

CHUNK = 1024  # images processed at a time (bounds the float32 temporaries to a few tens of MB)
MIN_SIZE = 8


def check_severity(severity: int) -> int:
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) \
            or not 1 <= int(severity) <= 5:
        raise CifarlabError(f"severity must be an integer from 1 to 5, got {severity!r}")
    return int(severity)


def check_images(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[3] != 3:
        raise CifarlabError(f"corruptions need (N, H, W, 3) uint8 RGB images, got {x.dtype} "
                            f"{tuple(x.shape)}; convert them with np.uint8 and stack them")
    if x.shape[1] != x.shape[2] or x.shape[1] < MIN_SIZE:
        raise CifarlabError(f"corruptions need square images of at least {MIN_SIZE}x{MIN_SIZE} "
                            f"pixels, got {x.shape[1]}x{x.shape[2]}; resize them first")
    return x


def seeded_rng(seed: int | None, name: str, severity: int) -> np.random.Generator:
    base = 0 if seed is None else int(seed) % (1 << 64)
    return np.random.default_rng([base, zlib.crc32(name.encode()), severity])


def corrupt(images: np.ndarray, name: str, severity: int, seed: int | None = None) -> np.ndarray:
    """Corrupt a batch of (N, H, W, 3) uint8 RGB square images; returns a new uint8 batch.

    Deterministic: the generator is seeded from (seed, name, severity) (seed None means 0), and
    each image's draws come from it in order, so a prefix of a batch gets the same result.
    """
    entry = lookup(name)
    severity = check_severity(severity)
    x = check_images(images)
    out = np.empty(x.shape, np.uint8)  # a plain array even for a memory-mapped input
    if len(x) == 0:
        return out
    rng = seeded_rng(seed, entry.name, severity)
    params = entry.params[severity - 1]
    for start in range(0, len(x), CHUNK):
        out[start:start + CHUNK] = entry.apply(np.ascontiguousarray(x[start:start + CHUNK]),
                                               params, rng)
    return out


def iter_corrupted(images: np.ndarray, labels: np.ndarray, names: Iterable[str],
                   severities: Iterable[int], seed: int = 0
                   ) -> Iterator[tuple[str, int, np.ndarray]]:
    """Yield (name, severity, corrupted images) for every name and severity; the labels stay
    those given (checked to match the images in number)."""
    names = [lookup(n).name for n in names]
    severities = [check_severity(s) for s in severities]
    if len(labels) != len(images):
        raise CifarlabError(f"{len(images)} images but {len(labels)} labels; pass one label "
                            "per image")
    for name in names:
        for severity in severities:
            yield name, severity, corrupt(images, name, severity, seed)
