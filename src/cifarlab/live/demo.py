"""`--source demo`: a synthetic scene for people without a camera.

Picture cards of the model's classes slide one after another through the centre of the frame,
stop in the region box for a moment, and move on. Cards are drawn from the class names: the
three test shapes (circle/square/triangle) exactly like the test data, simple pictures for the
ten CIFAR-10 classes, and a coloured texture for any other name. Frames depend only on their
index, so a headless run is reproducible.
"""

from __future__ import annotations

import time
import zlib

import cv2
import numpy as np

from cifarlab.live.capture import Frame

CARD = 48          # cards are drawn at 48x48 and scaled up to the region size
DWELL, MOVE = 40, 30   # frames a card rests in the centre, frames it takes to slide to the next


def _rng(name: str, variant: int) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(f"{name}/{variant}".encode()))


def _bg(rng, low, high) -> np.ndarray:
    """48x48 RGB background: noise between two colours."""
    t = rng.random((CARD, CARD, 1))
    return (np.array(low) * (1 - t) + np.array(high) * t).astype(np.uint8)


def _sky_ground(rng, sky, ground, horizon: int) -> np.ndarray:
    img = _bg(rng, np.array(sky) - 25, np.array(sky) + 15)
    img[horizon:] = _bg(rng, np.array(ground) - 25, np.array(ground) + 15)[horizon:]
    return np.clip(img, 0, 255).astype(np.uint8)


def _shape(name: str, rng) -> np.ndarray:
    img = rng.integers(0, 80, (CARD, CARD, 3), dtype=np.uint8)
    color = tuple(int(c) for c in rng.integers(150, 256, 3))
    c, r = rng.integers(CARD // 3, 2 * CARD // 3, 2), int(rng.integers(CARD // 5, CARD // 3))
    if name == "circle":
        cv2.circle(img, (int(c[0]), int(c[1])), r, color, -1)
    elif name == "square":
        cv2.rectangle(img, (int(c[0] - r), int(c[1] - r)), (int(c[0] + r), int(c[1] + r)), color, -1)
    else:
        pts = np.array([[c[0], c[1] - r], [c[0] - r, c[1] + r], [c[0] + r, c[1] + r]], np.int32)
        cv2.fillPoly(img, [pts], color)
    return img


def _animal(img, rng, body, legs=True, neck=0, ears="none", antlers=False, long_legs=False):
    cx = 20 + int(rng.integers(-2, 3))
    cv2.ellipse(img, (cx, 28), (13, 7), 0, 0, 360, body, -1)
    if legs:
        ll = 13 if long_legs else 8
        for dx in (-10, -5, 6, 11):
            cv2.line(img, (cx + dx, 32), (cx + dx, 32 + ll), body, 2)
    hx, hy = cx + 14, 22 - neck
    if neck:
        cv2.line(img, (cx + 9, 25), (hx, hy), body, 4)
    cv2.ellipse(img, (hx + 2, hy), (5, 4), 0, 0, 360, body, -1)
    if ears == "pointy":
        cv2.fillPoly(img, [np.array([[hx - 2, hy - 2], [hx, hy - 8], [hx + 2, hy - 2]], np.int32)], body)
    elif ears == "floppy":
        cv2.ellipse(img, (hx - 1, hy + 2), (2, 4), 0, 0, 360, tuple(int(v * 0.6) for v in body), -1)
    if antlers:
        cv2.line(img, (hx, hy - 3), (hx - 4, hy - 10), (70, 50, 30), 1)
        cv2.line(img, (hx + 2, hy - 3), (hx + 5, hy - 10), (70, 50, 30), 1)
    return img


def _draw_cifar(name: str, rng) -> np.ndarray | None:
    j = lambda c, d=25: tuple(int(np.clip(v + rng.integers(-d, d + 1), 0, 255)) for v in c)  # noqa: E731
    if name == "airplane":
        img = _bg(rng, (120, 160, 210), (170, 200, 240))
        c = j((200, 200, 210))
        cv2.ellipse(img, (24, 24), (18, 4), -10, 0, 360, c, -1)
        cv2.fillPoly(img, [np.array([[22, 24], [14, 40], [20, 40], [30, 24]], np.int32)], c)
        cv2.fillPoly(img, [np.array([[22, 22], [18, 10], [23, 10], [30, 22]], np.int32)], c)
        cv2.fillPoly(img, [np.array([[6, 26], [3, 17], [8, 17], [11, 25]], np.int32)], c)
        return img
    if name in ("automobile", "car", "truck"):
        img = _sky_ground(rng, (150, 170, 190), (90, 90, 90), 32)
        c = j((200, 30, 30), 50)
        if name == "truck":
            cv2.rectangle(img, (4, 12), (30, 34), j((220, 220, 220)), -1)
            cv2.rectangle(img, (31, 20), (43, 34), c, -1)
            cv2.rectangle(img, (34, 22), (41, 27), (150, 200, 230), -1)
        else:
            cv2.rectangle(img, (5, 24), (43, 34), c, -1)
            cv2.fillPoly(img, [np.array([[12, 24], [17, 15], [32, 15], [37, 24]], np.int32)], c)
            cv2.rectangle(img, (18, 17), (31, 23), (150, 200, 230), -1)
        for wx in (13, 36):
            cv2.circle(img, (wx, 35), 5, (20, 20, 20), -1)
        return img
    if name == "ship":
        img = _sky_ground(rng, (160, 190, 225), (40, 80, 140), 30)
        cv2.fillPoly(img, [np.array([[4, 26], [44, 26], [38, 34], [9, 34]], np.int32)], j((70, 70, 80)))
        cv2.rectangle(img, (15, 17), (32, 26), j((235, 235, 235), 15), -1)
        cv2.rectangle(img, (20, 11), (25, 17), j((200, 60, 40)), -1)
        return img
    if name == "bird":
        img = _bg(rng, (110, 150, 200), (160, 200, 230))
        c = j((140, 90, 50), 40)
        cv2.ellipse(img, (22, 26), (11, 7), -15, 0, 360, c, -1)
        cv2.circle(img, (33, 18), 5, c, -1)
        cv2.fillPoly(img, [np.array([[37, 17], [44, 19], [37, 21]], np.int32)], (240, 160, 30))
        cv2.ellipse(img, (19, 24), (8, 4), -35, 0, 360, tuple(int(v * 0.7) for v in c), -1)
        return img
    if name == "cat":
        img = _bg(rng, (120, 100, 80), (170, 150, 120))
        c = j((210, 140, 60), 45)
        cv2.circle(img, (24, 27), 13, c, -1)
        for s in (-1, 1):
            cv2.fillPoly(img, [np.array([[24 + s * 4, 17], [24 + s * 12, 6], [24 + s * 13, 21]], np.int32)], c)
            cv2.circle(img, (24 + s * 5, 25), 2, (40, 160, 40), -1)
        cv2.circle(img, (24, 30), 1, (200, 120, 140), -1)
        return img
    if name == "frog":
        img = _bg(rng, (90, 80, 50), (130, 120, 80))
        c = j((60, 150, 50), 30)
        cv2.ellipse(img, (24, 30), (15, 10), 0, 0, 360, c, -1)
        for s in (-1, 1):
            cv2.circle(img, (24 + s * 7, 21), 4, c, -1)
            cv2.circle(img, (24 + s * 7, 21), 2, (10, 10, 10), -1)
        return img
    if name in ("deer", "dog", "horse"):
        img = _sky_ground(rng, (120, 160, 100), (80, 120, 50), 36)
        if name == "deer":
            return _animal(img, rng, j((150, 100, 60)), neck=5, ears="pointy", antlers=True, long_legs=True)
        if name == "dog":
            return _animal(img, rng, j((170, 120, 70), 50), neck=2, ears="floppy")
        return _animal(img, rng, j((100, 60, 35), 30), neck=8, ears="pointy", long_legs=True)
    return None


def draw_card(name: str, variant: int = 0) -> np.ndarray:
    """A 48x48 RGB picture of class `name` (a texture for names with no drawing)."""
    key = name.strip().lower()
    rng = _rng(key, variant)
    if key in ("circle", "square", "triangle"):
        return _shape(key, rng)
    img = _draw_cifar(key, rng)
    if img is not None:
        return img
    hue = zlib.crc32(key.encode()) % 180
    hsv = np.stack([np.full((CARD, CARD), hue, np.uint8),
                    rng.integers(120, 255, (CARD, CARD), dtype=np.uint8),
                    rng.integers(60, 255, (CARD, CARD), dtype=np.uint8)], -1)
    return cv2.cvtColor(cv2.GaussianBlur(hsv, (5, 5), 0), cv2.COLOR_HSV2RGB)


class DemoSource:
    """A source like `VideoSource` (read/status/close/fps/kind) generating the demo scene."""

    kind = "demo"
    spec = "demo"
    status = None

    def __init__(self, class_names: list[str], size: tuple[int, int] = (1280, 720),
                 roi_fraction: float = 0.5, realtime: bool = True, fps: float = 30.0,
                 variants: int = 3):
        self.width, self.height = size
        self.fps, self.realtime = fps, realtime
        self.class_names = list(class_names)
        side = max(16, int(min(self.width, self.height) * roi_fraction * 0.9))
        self.side = side
        self.spacing = int(side * 1.35)
        # the sequence: every class once per round, a new drawing variant each round
        self.cards = []
        for v in range(variants):
            for name in self.class_names:
                card = cv2.resize(draw_card(name, v), (side, side), interpolation=cv2.INTER_NEAREST)
                self.cards.append((name, np.ascontiguousarray(card[..., ::-1])))  # RGB -> BGR
        yy, xx = np.mgrid[0 : self.height, 0 : self.width]
        rng = np.random.default_rng(0)
        base = (40 + 50 * xx / self.width + 30 * yy / self.height)[..., None]
        tint = np.array([1.0, 0.9, 0.8])
        noise = rng.integers(-6, 7, (self.height, self.width, 1))
        self.background = np.clip(base * tint + noise, 0, 255).astype(np.uint8)
        self._index = 0
        self._t0 = time.monotonic()

    def _offset(self, index: int) -> tuple[int, float]:
        """Card number at the centre and how far (0..1) it has moved on towards the next."""
        period = DWELL + MOVE
        card, phase = divmod(index, period)
        if phase < DWELL:
            return card, 0.0
        t = (phase - DWELL) / MOVE
        return card, t * t * (3 - 2 * t)   # smoothstep

    def render(self, index: int) -> tuple[np.ndarray, str]:
        frame = self.background.copy()
        card, shift = self._offset(index)
        cx, cy = self.width // 2, self.height // 2
        n = len(self.cards)
        name_now = self.cards[card % n][0]
        for k in range(-3, 4):
            x = int(round(cx + (k - shift) * self.spacing - self.side / 2))
            y = cy - self.side // 2
            if x >= self.width or x + self.side <= 0:
                continue
            name, img = self.cards[(card + k) % n]
            x0, x1 = max(0, x), min(self.width, x + self.side)
            frame[y : y + self.side, x0:x1] = img[:, x0 - x : x1 - x]
        cv2.putText(frame, f"demo scene: showing a drawing of '{name_now}'",
                    (10, self.height - 50), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * self.height / 720,
                    (200, 200, 200), 1, cv2.LINE_AA)
        return frame, name_now

    def read(self, timeout: float = 0.1) -> Frame | None:
        if self.realtime:
            due = self._t0 + self._index / self.fps
            wait = due - time.monotonic()
            if wait > timeout:
                time.sleep(timeout)
                return None
            if wait > 0:
                time.sleep(wait)
        image, _ = self.render(self._index)
        frame = Frame(image, self._index, self._index / self.fps)
        self._index += 1
        return frame

    def close(self) -> None:
        pass
