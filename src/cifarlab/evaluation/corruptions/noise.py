"""Noise: gaussian, shot (Poisson) and impulse (salt and pepper), and the extra speckle noise.

Their settings need no scaling at other image sizes.
"""

from __future__ import annotations

import functools

import numpy as np

from cifarlab.evaluation.corruptions.filters import finish
from cifarlab.evaluation.corruptions.registry import corruption


@corruption("gaussian_noise", params=(0.04, 0.06, 0.08, 0.09, 0.10), main=True)
def gaussian_noise(x, c, rng):
    """x + N(0, c) on the [0, 1] scale."""
    noise = rng.standard_normal(x.shape, dtype=np.float32)
    return finish(x + noise * np.float32(c * 255))


@functools.lru_cache(maxsize=8)
def _poisson_tables(lam: float):
    """Inverse-CDF tables of Poisson(k * lam / 255) for the 256 grey levels k, and guide tables.

    Supports end 12 standard deviations + 24 above the largest mean (tail mass < 1e-30).
    """
    from scipy.special import gammaln

    means = np.arange(256) * (lam / 255)
    length = int(np.ceil(means[-1] + 12 * np.sqrt(means[-1]) + 24))
    j = np.arange(length)
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = j[None, :] * np.log(means[:, None]) - means[:, None] - gammaln(j + 1)[None, :]
    pmf = np.exp(logp)
    pmf[0] = 0
    pmf[0, 0] = 1  # mean 0: always 0
    cdf = np.cumsum(pmf, axis=1)
    cdf[:, -1] = 1.0
    bins = length
    steps = np.arange(bins) / bins
    guide = np.stack([np.searchsorted(row, steps, side="right") for row in cdf]).astype(np.int64)
    return cdf.ravel(), guide.ravel(), length, bins


def poisson_levels(x: np.ndarray, lam: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson(x * lam / 255) for uint8 x, exactly, by inverse CDF with a guide table: one
    uniform per value in order, faster than Generator.poisson on large means."""
    cdf, guide, length, bins = _poisson_tables(float(lam))
    level = x.reshape(-1).astype(np.intp)
    u = rng.random(level.size)
    counts = np.take(guide, level * bins + (u * bins).astype(np.intp))
    offset = level * length
    active = np.flatnonzero(np.take(cdf, offset + counts) <= u)
    while active.size:
        counts[active] += 1
        active = active[np.take(cdf, offset[active] + counts[active]) <= u[active]]
    return counts.reshape(x.shape)


@corruption("shot_noise", params=(500, 250, 100, 75, 50), main=True)
def shot_noise(x, c, rng):
    """poisson(x * c) / c on the [0, 1] scale."""
    return finish(poisson_levels(x, c, rng) * np.float32(255.0 / c))


@corruption("impulse_noise", params=(0.01, 0.02, 0.03, 0.05, 0.07), main=True)
def impulse_noise(x, c, rng):
    """Salt and pepper: a share c of the values set to 0 or 255, half each."""
    u = rng.random(x.shape, dtype=np.float32)
    out = x.copy()
    out[u < c / 2] = 0  # pepper and salt, half each (skimage random_noise 's&p', per channel)
    out[(u >= c / 2) & (u < c)] = 255
    return out


@corruption("speckle_noise", params=(0.06, 0.10, 0.12, 0.16, 0.20))
def speckle_noise(x, c, rng):
    """x + x * N(0, c)."""
    noise = rng.standard_normal(x.shape, dtype=np.float32)
    xf = x.astype(np.float32)
    return finish(xf + xf * noise * np.float32(c))
