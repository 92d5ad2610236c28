"""The on-screen overlay, drawn with OpenCV in place on the BGR frame.

Every text sits on a filled, darkened (75% black) box so it stays readable on bright and dark
scenes alike. Only those small boxes are blended, never the whole frame: the overlay costs well
under a millisecond at 1080p.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from cifarlab.live.keys import help_line
from cifarlab.live.predictor import UNCERTAIN, UNKNOWN, Prediction

FONT = cv2.FONT_HERSHEY_SIMPLEX
ROI_ON = (0, 255, 0)          # BGR: green box while classifying
ROI_OFF = (160, 160, 160)     # grey box while inference is off
NEUTRAL = (200, 200, 200)     # light grey box and label of a region that is none of the classes
WHITE = (255, 255, 255)
YELLOW = (0, 220, 255)
RED = (60, 60, 255)
GREEN = (80, 230, 80)
BAR = (0, 200, 0)
BAR_TOP = (0, 255, 255)
HELP = help_line()


@dataclass
class CollectPanel:
    """`--collect`: the key, name and image count of each class, and the last saved crop."""
    rows: list[tuple[int, str, int]]          # (key 1..9, class, images)
    last_crop: np.ndarray | None = None       # BGR, any size (drawn as a thumbnail)
    last_name: str | None = None
    hint: str | None = None                   # e.g. the tip to add a background class


@dataclass
class OverlayState:
    roi: tuple[int, int, int, int]
    prediction: Prediction | None = None
    fps: float = 0.0
    inference_ms: float = 0.0
    inference_on: bool = True
    paused: bool = False
    backend: str = ""
    notice: str | None = None
    show_help: bool = True
    extra: list[str] = field(default_factory=list)
    truth: str | None = None             # demo: the true label (`unknown`: none of the classes)
    score: tuple[int, int] = (0, 0)      # demo: (right, scored) pictures, shown once any is scored
    collect: CollectPanel | None = None  # --collect: classes, counts, last crop
    teach: tuple[str, tuple[int, int, int]] | None = None  # training status line and its colour
    open_set_off: bool = False           # key u turned the "unknown" rejection off


def score_text(score: tuple[int, int]) -> str:
    right, scored = score
    return f"demo accuracy {right}/{scored} = {100 * right / max(1, scored):.0f}%"


def truth_right(pred: Prediction, truth: str) -> bool:
    """Whether `pred` gets the demo truth right: `unknown` for a picture of none of the classes
    (truth `unknown`), else not `unknown` and the top class is the truth ("uncertain" included)."""
    return pred.unknown if truth == UNKNOWN else not pred.unknown and pred.top_class == truth


def truth_text(truth: str) -> str:
    return f"true: {'none of the classes' if truth == UNKNOWN else truth}"


def dark_box(frame: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> None:
    """Darken a rectangle to 25% of its brightness (a semi-transparent black box)."""
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 > x0 and y1 > y0:
        region = frame[y0:y1, x0:x1]
        np.right_shift(region, 2, out=region)


def text_box(frame: np.ndarray, text: str, x: int, y: int, scale: float, color=WHITE,
             thickness: int = 1, pad: int = 6) -> tuple[int, int]:
    """Text with its top-left corner at (x, y) on a dark box; returns the box's (width, height)."""
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thickness)
    bw, bh = tw + 2 * pad, th + base + 2 * pad
    dark_box(frame, x, y, x + bw, y + bh)
    cv2.putText(frame, text, (x + pad, y + pad + th), FONT, scale, color, thickness, cv2.LINE_AA)
    return bw, bh


def fit_text(text: str, scale: float, thickness: int, max_width: int) -> str:
    """`text`, cut short with '...' so it is at most `max_width` pixels wide."""
    if cv2.getTextSize(text, FONT, scale, thickness)[0][0] <= max_width:
        return text
    while len(text) > 1 and cv2.getTextSize(text + "...", FONT, scale, thickness)[0][0] > max_width:
        text = text[:-1]
    return text + "..."


def draw_collect_panel(frame: np.ndarray, panel: CollectPanel, x: int, y: int, unit: float,
                       scale: float, thick: int) -> None:
    """Top-left panel: a title, one `1 mug (12)` row per class (the last saved one in green),
    the last crop as a thumbnail to their right, and the hint below."""
    row = int(26 * unit)
    pad = int(6 * unit) + 2
    title = f"collect: keys 1-{len(panel.rows)} save the box | t: train"
    lines = [f"{key}  {name} ({count})" for key, name, count in panel.rows]
    text_w = max(cv2.getTextSize(t, FONT, scale, thick)[0][0] for t in [*lines])
    title_w = cv2.getTextSize(title, FONT, scale * 0.85, 1)[0][0]
    thumb = max(int(64 * unit), row * len(lines) - 4)
    has_thumb = panel.last_crop is not None and panel.last_crop.size
    body_w = text_w + (pad * 2 + thumb if has_thumb else 0)
    box_w = max(title_w, body_w) + 2 * pad
    box_h = row + max(row * len(lines), thumb + row if has_thumb else 0) + pad
    dark_box(frame, x, y, x + box_w, y + box_h)
    cv2.putText(frame, title, (x + pad, y + int(18 * unit)), FONT, scale * 0.85, YELLOW, 1,
                cv2.LINE_AA)
    for i, (text, (_, name, _)) in enumerate(zip(lines, panel.rows)):
        ty = y + row * (i + 1) + int(19 * unit)
        color = GREEN if name == panel.last_name else WHITE
        cv2.putText(frame, text, (x + pad, ty), FONT, scale, color, thick, cv2.LINE_AA)
    if has_thumb:
        tx, ty = x + pad + text_w + 2 * pad, y + row + 2
        h, w = panel.last_crop.shape[:2]
        side_w, side_h = (thumb, max(1, thumb * h // w)) if w >= h else (max(1, thumb * w // h), thumb)
        small = cv2.resize(panel.last_crop, (side_w, side_h), interpolation=cv2.INTER_AREA)
        fh, fw = frame.shape[:2]
        side_w, side_h = min(side_w, fw - tx), min(side_h, fh - ty)
        if side_w > 0 and side_h > 0:
            frame[ty : ty + side_h, tx : tx + side_w] = small[:side_h, :side_w]
            cv2.rectangle(frame, (tx - 1, ty - 1), (tx + side_w, ty + side_h), GREEN, 1)
            cv2.putText(frame, fit_text(f"last: {panel.last_name}", scale * 0.8, 1, thumb + pad),
                        (tx, ty + side_h + int(16 * unit)), FONT, scale * 0.8, WHITE, 1,
                        cv2.LINE_AA)
    if panel.hint:
        width = frame.shape[1]
        text_box(frame, fit_text(panel.hint, scale, thick, width - x - 2 * pad - 12), x,
                 y + box_h + int(4 * unit), scale, YELLOW, thick)


def metrics(height: int, width: int) -> tuple[float, float, int, int]:
    """(unit, text scale, thickness, margin) for a frame size: 1.0 units at 720p."""
    unit = max(0.4, min(height, width * 9 / 16) / 720.0)
    return unit, 0.6 * unit, max(1, int(round(1.5 * unit))), int(10 * unit)


def roi_color(state: OverlayState) -> tuple[int, int, int]:
    if not state.inference_on:
        return ROI_OFF
    return NEUTRAL if state.prediction is not None and state.prediction.unknown else ROI_ON


def label_text(pred: Prediction) -> tuple[str, tuple[int, int, int]]:
    """The region's label and its colour: `unknown` (none of the classes) in grey, `uncertain`
    (top probability below --threshold) in yellow, else the class and its probability."""
    if pred.unknown:
        return UNKNOWN, NEUTRAL
    if pred.label == UNCERTAIN:
        return f"uncertain ({pred.top_class}? {pred.confidence * 100:.0f}%)", YELLOW
    return f"{pred.label} {pred.confidence * 100:.0f}%", WHITE


def draw_overlay(frame: np.ndarray, state: OverlayState) -> np.ndarray:
    height, width = frame.shape[:2]
    unit, scale, thick, margin = metrics(height, width)

    # ROI box (thick outline with a dark halo so it shows on bright and dark backgrounds)
    x, y, w, h = state.roi
    pred = state.prediction
    color = roi_color(state)
    cv2.rectangle(frame, (x - 2, y - 2), (x + w + 1, y + h + 1), (0, 0, 0), 1)
    cv2.rectangle(frame, (x, y), (x + w - 1, y + h - 1), color, max(2, thick + 1))

    # label + confidence just above the ROI (below it when there is no room)
    if state.inference_on and pred is not None:
        label, label_color = label_text(pred)
        big = scale * 1.4
        (tw, th), base = cv2.getTextSize(label, FONT, big, thick + 1)
        by = y - th - base - 12 - 4
        if by < 0:
            by = y + h + 4
        lw, _ = text_box(frame, label, x, by, big, label_color, thick + 1)
        if state.truth is not None:
            text_box(frame, truth_text(state.truth), x + lw + int(8 * unit), by, big,
                     GREEN if truth_right(pred, state.truth) else RED, thick + 1)
    elif not state.inference_on:
        text_box(frame, "inference OFF - click to resume", x, max(0, y - int(34 * unit)), scale,
                 ROI_OFF, thick)

    # top-k bars, top-left
    bars_bottom = margin
    if state.inference_on and pred is not None:
        row = int(26 * unit)
        bar_w = int(160 * unit)
        name_w = max(cv2.getTextSize(n, FONT, scale, thick)[0][0] for n, _ in pred.top_k)
        box_w = name_w + bar_w + int(80 * unit)
        dark_box(frame, margin, margin, margin + box_w, margin + row * len(pred.top_k) + 8)
        bars_bottom = margin + row * len(pred.top_k) + 8 + int(8 * unit)
        for i, (name, p) in enumerate(pred.top_k):
            ty = margin + row * i + int(19 * unit)
            cv2.putText(frame, name, (margin + 6, ty), FONT, scale, WHITE, thick, cv2.LINE_AA)
            bx = margin + 12 + name_w
            cv2.rectangle(frame, (bx, ty - int(13 * unit)), (bx + bar_w, ty + 2), (90, 90, 90), 1)
            cv2.rectangle(frame, (bx, ty - int(13 * unit)), (bx + int(bar_w * p), ty + 2),
                          BAR_TOP if i == 0 else BAR, -1)
            cv2.putText(frame, f"{p * 100:.0f}%", (bx + bar_w + 6, ty), FONT, scale, WHITE, thick,
                        cv2.LINE_AA)

    # collect panel, under the bars
    if state.collect is not None:
        draw_collect_panel(frame, state.collect, margin, bars_bottom, unit, scale, thick)

    # status, top-right
    status = (f"FPS {state.fps:4.1f} | inference {state.inference_ms:.1f} ms"
              f"{' (' + state.backend + ')' if state.backend else ''} | "
              f"inference {'ON' if state.inference_on else 'OFF'}"
              f"{' | open set: off' if state.open_set_off else ''}"
              f"{' | PAUSED' if state.paused else ''}")
    (sw, _), _ = cv2.getTextSize(status, FONT, scale, thick)
    _, sh = text_box(frame, status, width - sw - 12 - margin, margin, scale,
                     WHITE if state.inference_on else ROI_OFF, thick)

    # demo accuracy, under the status
    if state.score[1]:
        text = score_text(state.score)
        (aw, _), _ = cv2.getTextSize(text, FONT, scale * 1.2, thick + 1)
        text_box(frame, text, width - aw - 12 - margin, margin + sh + int(6 * unit), scale * 1.2,
                 WHITE, thick + 1)

    # notice (reconnecting, paused...), centred above the help line; the training status
    # (progress, the new model's classes, or why it failed) above that
    ns = scale * 1.1
    (_, nh), nb = cv2.getTextSize("Ag", FONT, ns, thick + 1)
    ny = height - nh - nb - 12 - margin - int(40 * unit)
    for text, color, ty in ((state.notice, RED, ny),
                            *([(state.teach[0], state.teach[1], ny - nh - nb - 12 - int(8 * unit))]
                              if state.teach else [])):
        if text:
            text = fit_text(text, ns, thick + 1, width - 2 * margin - 16)
            (nw, _), _ = cv2.getTextSize(text, FONT, ns, thick + 1)
            text_box(frame, text, max(0, (width - nw) // 2 - 8), ty, ns, color, thick + 1)

    # help line, bottom-left
    if state.show_help:
        hs = max(0.4, scale * 0.8)
        (_, hh), hb = cv2.getTextSize(HELP, FONT, hs, 1)
        text_box(frame, HELP, margin, height - hh - hb - 12 - margin, hs, WHITE, 1)
    return frame
