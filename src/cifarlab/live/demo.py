"""`--source demo`: a scene for people without a camera.

Pictures slide one after another through the centre of the frame, rest in the region box for a
moment, and move on. Which pictures:
- with `--data SOURCE`: that dataset's test photos (its val or only split if it has no test);
- for a model of CIFAR-10 classes: 200 CIFAR-10 test photos shipped in `assets/cifar10_demo.npz`
  (made by `scripts/make_demo_sample.py`);
- for any other model: cards drawn from its class names, the three test shapes
  (circle/square/triangle) exactly like the test data, a coloured texture for other names.

Photos come in a fixed shuffled order that shows every class once per round. While a picture
rests in the region its frames carry its true label (`Frame.truth`), and its last resting frame
is the one decision per picture that counts towards the demo accuracy (`Frame.decisive`).
Frames depend only on their index, so a headless run is reproducible.
"""

from __future__ import annotations

import io
import time
import zlib
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from cifarlab.errors import CifarlabError
from cifarlab.live.capture import Frame
from cifarlab.live.roi import centered_square

SAMPLE = Path(__file__).parent / "assets" / "cifar10_demo.npz"
CARD = 48              # cards are drawn at 48x48 and scaled up to the region size
DWELL, MOVE = 40, 30   # frames a picture rests in the centre, frames it takes to slide to the next
PERIOD = DWELL + MOVE


def _rng(name: str, variant: int) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(f"{name}/{variant}".encode()))


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


def draw_card(name: str, variant: int = 0) -> np.ndarray:
    """A 48x48 RGB picture of class `name`: a test shape, or a coloured texture."""
    key = name.strip().lower()
    rng = _rng(key, variant)
    if key in ("circle", "square", "triangle"):
        return _shape(key, rng)
    hue = zlib.crc32(key.encode()) % 180
    hsv = np.stack([np.full((CARD, CARD), hue, np.uint8),
                    rng.integers(120, 255, (CARD, CARD), dtype=np.uint8),
                    rng.integers(60, 255, (CARD, CARD), dtype=np.uint8)], -1)
    return cv2.cvtColor(cv2.GaussianBlur(hsv, (5, 5), 0), cv2.COLOR_HSV2RGB)


def load_sample(path: Path = SAMPLE) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The bundled photos: (N, 32, 32, 3) uint8 RGB images, (N,) labels and the class names.

    The file keeps the original JPEG bytes (`files`, split at `ends`): a third of the size of
    the decoded pixels, and decoding them gives exactly what `cifarlab.data` reads.
    """
    with np.load(path, allow_pickle=False) as z:
        data, ends = z["files"].tobytes(), z["ends"]
        images = [np.asarray(Image.open(io.BytesIO(data[a:b])).convert("RGB"))
                  for a, b in zip(np.r_[0, ends[:-1]], ends)]
        return np.stack(images), z["labels"].astype(np.int64), [str(n) for n in z["class_names"]]


def load_test_split(source: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A dataset's test split (else its val split, else its first) as images, labels, classes."""
    from cifarlab.data import load_dataset

    dataset = load_dataset(source)
    name = next((s for s in ("test", "val") if s in dataset.splits), next(iter(dataset.splits)))
    split = dataset.split(name)
    return split.images, split.labels, list(dataset.class_names)


def round_robin(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """A seeded shuffle of the indices, reordered so every class comes once per round."""
    order = np.random.default_rng(seed).permutation(len(labels))
    rank = np.zeros(len(labels), np.int64)  # how many of its class came before it in `order`
    seen: dict[int, int] = {}
    for i in order:
        rank[i] = seen[labels[i]] = seen.get(labels[i], -1) + 1
    return order[np.argsort(rank[order], kind="stable")]


def pick_pictures(class_names: list[str], data: str | Path | None = None,
                  variants: int = 3) -> tuple[list[np.ndarray], list[str], bool]:
    """(RGB pictures, their true labels, whether they are photos) for the model's classes."""
    if data is not None:
        images, labels, names = load_test_split(data)
        unknown = sorted(set(names) - set(class_names))
        if unknown:
            raise CifarlabError(f"--data {data}: classes {', '.join(unknown)} are not the model's "
                                f"({', '.join(class_names)}); give a dataset of the model's classes")
    else:
        images, labels, names = load_sample()
        if not set(class_names) <= set(names):   # not a CIFAR-10 model: drawn cards
            cards = [(draw_card(name, v), name) for v in range(variants) for name in class_names]
            return [c for c, _ in cards], [n for _, n in cards], False
    keep = np.flatnonzero(np.isin(labels, [i for i, n in enumerate(names) if n in class_names]))
    order = keep[round_robin(labels[keep])]
    return list(images[order]), [names[labels[i]] for i in order], True


class DemoSource:
    """A source like `VideoSource` (read/status/close/fps/kind) generating the demo scene."""

    kind = "demo"
    spec = "demo"
    status = None

    def __init__(self, class_names: list[str], size: tuple[int, int] = (1280, 720),
                 roi_fraction: float = 0.5, realtime: bool = True, fps: float = 30.0,
                 variants: int = 3, data: str | Path | None = None):
        self.width, self.height = size
        self.fps, self.realtime = fps, realtime
        self.pictures, self.truths, photos = pick_pictures(class_names, data, variants)
        # a resting picture fills the default region exactly, so the model sees just the picture
        self.x, self.y, self.side, _ = centered_square((self.height, self.width), roi_fraction)
        self.spacing = int(self.side * 1.35)
        self.caption = (("photo", f" from {data}") if data is not None else
                        ("CIFAR-10 test photo", " (bundled sample)") if photos else ("drawing", ""))
        interpolation = cv2.INTER_CUBIC if photos else cv2.INTER_NEAREST
        # upscaled BGR tiles, made when first shown (a test split can hold 10,000 photos)
        self.tile = lru_cache(maxsize=16)(lambda i: np.ascontiguousarray(cv2.resize(
            self.pictures[i], (self.side, self.side), interpolation=interpolation)[..., ::-1]))
        yy, xx = np.mgrid[0 : self.height, 0 : self.width]
        rng = np.random.default_rng(0)
        base = (40 + 50 * xx / self.width + 30 * yy / self.height)[..., None]
        tint = np.array([1.0, 0.9, 0.8])
        noise = rng.integers(-6, 7, (self.height, self.width, 1))
        self.background = np.clip(base * tint + noise, 0, 255).astype(np.uint8)
        self._index = 0
        self._t0 = time.monotonic()

    def render(self, index: int) -> tuple[np.ndarray, str | None]:
        """Frame `index` and the true label of the picture resting in the region (None while
        the pictures move)."""
        frame = self.background.copy()
        current, phase = divmod(index, PERIOD)
        t = max(0.0, (phase - DWELL) / MOVE)
        shift = t * t * (3 - 2 * t)   # smoothstep from one picture to the next
        n = len(self.pictures)
        for k in range(-3, 4):
            x = self.x + int(round((k - shift) * self.spacing))
            if x >= self.width or x + self.side <= 0:
                continue
            x0, x1 = max(0, x), min(self.width, x + self.side)
            frame[self.y : self.y + self.side, x0:x1] = self.tile((current + k) % n)[:, x0 - x : x1 - x]
        what, where = self.caption
        cv2.putText(frame, f"demo: {what} {current % n + 1} of {n}{where}", (10, self.height - 50),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5 * self.height / 720, (200, 200, 200), 1, cv2.LINE_AA)
        return frame, self.truths[current % n] if phase < DWELL else None

    def read(self, timeout: float = 0.1) -> Frame | None:
        if self.realtime:
            due = self._t0 + self._index / self.fps
            wait = due - time.monotonic()
            if wait > timeout:
                time.sleep(timeout)
                return None
            if wait > 0:
                time.sleep(wait)
        i = self._index
        image, truth = self.render(i)
        self._index += 1
        return Frame(image, i, i / self.fps, truth=truth, decisive=i % PERIOD == DWELL - 1)

    def close(self) -> None:
        pass
