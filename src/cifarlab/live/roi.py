"""The region of interest: where it is, and the one crop -> RGB -> `resize_rgb` path to the model."""

from __future__ import annotations

import cv2
import numpy as np

from cifarlab.data.images import resize_rgb

Roi = tuple[int, int, int, int]  # x, y, w, h
MIN_SIDE = 8


def centered_square(frame_shape: tuple[int, ...], fraction: float) -> Roi:
    """A centred square whose side is `fraction` of the shorter frame side."""
    height, width = frame_shape[:2]
    side = max(MIN_SIDE, min(int(round(min(height, width) * fraction)), height, width))
    return (width - side) // 2, (height - side) // 2, side, side


def clamp_roi(roi: Roi, frame_shape: tuple[int, ...]) -> Roi:
    """Keep the region inside the frame (shrinking it if the frame is smaller)."""
    height, width = frame_shape[:2]
    x, y, w, h = roi
    w, h = max(1, min(w, width)), max(1, min(h, height))
    x, y = min(max(0, x), width - w), min(max(0, y), height - h)
    return x, y, w, h


def scale_roi(roi: Roi, factor: float, frame_shape: tuple[int, ...]) -> Roi:
    """Grow or shrink around the region's centre (the `+`/`-` keys)."""
    height, width = frame_shape[:2]
    x, y, w, h = roi
    cx, cy = x + w / 2, y + h / 2
    nw = int(round(min(max(MIN_SIDE, w * factor), width)))
    nh = int(round(min(max(MIN_SIDE, h * factor), height)))
    return clamp_roi((int(round(cx - nw / 2)), int(round(cy - nh / 2)), nw, nh), frame_shape)


def crop_for_model(frame_bgr: np.ndarray, roi: Roi, input_size: tuple[int, int]) -> np.ndarray:
    """Frame (BGR, as OpenCV reads it) -> ROI crop -> model input size -> RGB (uint8).

    The live loop, the tests' offline predictions and the benchmark all call this function.
    `resize_rgb` (the one preprocessing path) resizes each channel independently, so resizing
    the BGR crop and then swapping channels gives exactly the same pixels as converting first,
    while converting 32x32 pixels instead of the whole crop.
    """
    x, y, w, h = clamp_roi(roi, frame_bgr.shape)
    small = resize_rgb(frame_bgr[y : y + h, x : x + w], input_size)
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
