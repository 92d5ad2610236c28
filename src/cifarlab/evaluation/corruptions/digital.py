"""Digital: contrast, elastic transform, pixelate and JPEG compression, and the extra saturate.

elastic_transform's parameters are fractions of the image size already; pixelate's shrink factor
and the colour and JPEG settings need no scaling at other sizes.
"""

from __future__ import annotations

import cv2
import numpy as np

from cifarlab.errors import CifarlabError
from cifarlab.evaluation.corruptions.filters import finish, gaussian
from cifarlab.evaluation.corruptions.hsv import SATURATION, hsv_adjust
from cifarlab.evaluation.corruptions.registry import corruption
from cifarlab.evaluation.corruptions.resample import bilinear_reflect, pil_box_resize_axis


@corruption("contrast", params=(0.75, 0.5, 0.4, 0.3, 0.15), main=True)
def contrast(x, c, rng):
    """Scaled by c about the per-image, per-channel mean."""
    xf = x.astype(np.float32)
    means = xf.mean(axis=(1, 2), keepdims=True)
    return finish((xf - means) * np.float32(c) + means)


def _affine_warp(xf: np.ndarray, u: np.ndarray, affine: float) -> np.ndarray:
    """Each image warped by the affine map that moves three points by up to `affine` pixels."""
    n, size = xf.shape[:2]
    center = np.float32((size, size)) // 2
    square = size // 3
    pts1 = np.float32([center + square, [center[0] + square, center[1] - square],
                       center - square])
    pts2 = pts1[None] + (-affine + 2 * affine * u.reshape(n, 3, 2)).astype(np.float32)
    warped = np.empty_like(xf)
    for i in range(n):
        m = cv2.getAffineTransform(pts1, pts2[i])
        warped[i] = cv2.warpAffine(xf[i], m, (size, size), borderMode=cv2.BORDER_REFLECT_101)
    return warped


@corruption("elastic_transform", main=True, params=(
    (0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03),
))
def elastic_transform(x, c, rng):
    """(alpha, sigma, affine), each times the image size: an affine warp, then smooth
    displacement fields of amplitude alpha and smoothness sigma."""
    n, size = x.shape[:2]
    alpha, sigma, affine = (v * size for v in c)
    u = rng.random((n, 6 + 2 * size * size))
    warped = _affine_warp(x.astype(np.float32), u[:, :6], affine)
    if alpha == 0:  # no displacement: sampling at the pixel centres returns the warped image
        return finish(warped)
    fields = (u[:, 6:] * 2 - 1).reshape(n * 2, size, size)
    fields = (gaussian(fields, sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
    dx, dy = fields[0::2], fields[1::2]
    grid = np.arange(size, dtype=np.float32)
    yy = grid[None, :, None] + dy
    xx = grid[None, None, :] + dx
    return finish(bilinear_reflect(warped, yy, xx))


@corruption("pixelate", params=(0.95, 0.9, 0.85, 0.75, 0.65), main=True)
def pixelate(x, c, rng):
    """PIL box resize down by the factor c and back up."""
    size = x.shape[1]
    small = max(1, int(size * c))
    y = pil_box_resize_axis(pil_box_resize_axis(x, small, 2), small, 1)
    return np.ascontiguousarray(pil_box_resize_axis(pil_box_resize_axis(y, size, 2), size, 1))


@corruption("jpeg_compression", params=(80, 65, 58, 50, 40), main=True)
def jpeg_compression(x, c, rng):
    """Encoded and decoded as JPEG of quality c."""
    # cv2 and Pillow both wrap libjpeg-turbo with the same defaults (4:2:0, islow DCT, fancy
    # upsampling): identical bytes out, at a fraction of Pillow's per-image cost.
    out = np.empty_like(x)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(c)]
    for i, img in enumerate(x):
        ok, buf = cv2.imencode(".jpg", img[..., ::-1], params)
        if not ok:
            raise CifarlabError("JPEG encoding failed; check that OpenCV has JPEG support")
        out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return out


@corruption("saturate", params=((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)))
def saturate(x, c, rng):
    """HSV saturation * c[0] + c[1]."""
    return hsv_adjust(x, SATURATION, c[0], c[1])
