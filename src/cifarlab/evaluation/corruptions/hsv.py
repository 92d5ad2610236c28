"""One HSV channel scaled and shifted, as skimage's rgb2hsv -> hsv2rgb does it (brightness and
saturate)."""

from __future__ import annotations

import numpy as np

# hsv2rgb's sectors 0..5 -> (r, g, b) taken from (v, p, q, t):
# (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) (v,p,q)
_HSV_PICK = np.array([[0, 3, 1], [2, 0, 1], [1, 0, 3], [1, 2, 0], [3, 1, 0], [0, 1, 2]], np.intp)
SATURATION, VALUE = 1, 2


def hsv_adjust(x: np.ndarray, channel: int, a: float, b: float) -> np.ndarray:
    """The original's rgb2hsv -> channel * a + b (clipped to [0, 1]) -> hsv2rgb -> uint8.

    skimage's float64 arithmetic, operation for operation, so the truncation to uint8 agrees
    bit for bit (a closed form in float32 differs by one grey level wherever the exact result is
    a whole number); np.where and one gather stand in for its masks and np.choose, which are
    slower.
    """
    r, g, bl = (x[..., i] / 255.0 for i in range(3))  # contiguous planes: much faster
    v = np.maximum(np.maximum(r, g), bl)
    delta = v - np.minimum(np.minimum(r, g), bl)
    flat = delta == 0.0
    safe = np.where(flat, 1.0, delta)
    s = np.where(flat, 0.0, delta / np.where(v == 0, 1.0, v))
    h = np.where(bl == v, 4.0 + (r - g) / safe,
                 np.where(g == v, 2.0 + (bl - r) / safe, (g - bl) / safe))
    h = h / 6.0  # in [-1/6, 5/6]: "% 1.0" is fmod (exact here) then + 1.0 for negatives
    h = np.where(flat, 0.0, np.where(h < 0, h + 1.0, h))
    if channel == SATURATION:
        s = np.clip(s * a + b, 0, 1)
    else:
        v = np.clip(v * a + b, 0, 1)
    hi = np.floor(h * 6)
    f = h * 6 - hi
    sector = hi.astype(np.uint8) % 6
    cand = np.concatenate([v.ravel(), (v * (1 - s)).ravel(), (v * (1 - f * s)).ravel(),
                           (v * (1 - (1 - f) * s)).ravel()])  # v, p, q, t
    size = v.size
    pick = _HSV_PICK[sector.ravel()] * size + np.arange(size)[:, None]
    out = np.take(cand, pick).reshape(x.shape)
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)
