"""`--source demo`: a scene for people without a camera.

Pictures slide one after another through the centre of the frame, rest in the region box for a
moment, and move on. Which pictures:
- with `--data SOURCE`: that dataset's test photos (its val or only split if it has no test);
- for a model of CIFAR-10 classes (or some of them): the photos shipped in
  `assets/cifar10_demo.npz` (made by `scripts/make_demo_sample.py`) of its classes: 20 CIFAR-10
  test photos per class, 3 real 64x64 photos (Tiny ImageNet) of each of 7 classes, and 20 real
  photos of other things (one each of 20 classes held out from outlier-exposure training);
- for any other model: cards drawn from its class names, the three test shapes
  (circle/square/triangle) exactly like the test data, a coloured texture for other names.

Photos come in a fixed shuffled order that shows every class once per round; the real photos and
the other things are spread evenly among the CIFAR-10 ones (the first of each within the first 10
pictures). Every picture is scaled to the region, whatever its size. While a picture rests in the
region its frames carry its true label (`Frame.truth`): a class, or `unknown` for a photo of
none of the classes, right when the model says `unknown` (its open-set flag; a model without one
gets those wrong). Its last resting frame is the one decision per picture that counts towards the
demo accuracy (`Frame.decisive`). A caption under the pictures says what the current one is.
Frames depend only on their index, so a headless run is reproducible.
"""

from __future__ import annotations

import io
import time
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from cifarlab.errors import CifarlabError
from cifarlab.inference.rejection import UNKNOWN
from cifarlab.live.capture import Frame
from cifarlab.live.overlay import FONT, fit_text, metrics, text_box
from cifarlab.live.roi import centered_square

SAMPLE = Path(__file__).parent / "assets" / "cifar10_demo.npz"
CARD = 48              # cards are drawn at 48x48 and scaled up to the region size
DWELL, MOVE = 40, 30   # frames a picture rests in the centre, frames it takes to slide to the next
PERIOD = DWELL + MOVE
OUTLIER = -1           # the sample's label of a photo of none of its classes
CAPTION = (225, 225, 225)


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


@dataclass
class Sample:
    """The bundled photos (see `load_sample`)."""
    images: list[np.ndarray]   # RGB uint8: 32x32 CIFAR-10 test photos, 64x64 real photos
    labels: np.ndarray         # class index, OUTLIER (-1): none of the classes
    class_names: list[str]
    shows: list[str]           # what each photo shows: its class, or an outlier's own ("altar")
    sources: list[str]         # where it comes from: "CIFAR-10 test" or "Tiny ImageNet"


@dataclass
class Pictures:
    """What the demo shows, in order: RGB pictures of any size, their true labels (a class, or
    `unknown` for none of the model's classes), captions, and whether they are photos."""
    images: list[np.ndarray]
    truths: list[str]
    captions: list[str]
    photos: bool


def load_sample(path: Path = SAMPLE) -> Sample:
    """The bundled photos: CIFAR-10 test photos, and real photos of its classes and of none.

    The file keeps the original JPEG bytes (`files`, split at `ends`): a third of the size of
    the decoded pixels, and decoding them gives exactly what `cifarlab.data` reads.
    """
    with np.load(path, allow_pickle=False) as z:
        data, ends = z["files"].tobytes(), z["ends"]
        images = [np.asarray(Image.open(io.BytesIO(data[a:b])).convert("RGB"))
                  for a, b in zip(np.r_[0, ends[:-1]], ends)]
        return Sample(images, z["labels"].astype(np.int64), [str(n) for n in z["class_names"]],
                      [str(n) for n in z["shows"]], [str(n) for n in z["sources"]])


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


def interleave(groups: list[np.ndarray]) -> np.ndarray:
    """The indices of all `groups` in one order that keeps each group's own order and spreads
    every group evenly over the whole (a group of 20 among 240 comes every 12th, from the 6th)."""
    keys = np.concatenate([(np.arange(len(g)) + 0.5) / len(g) for g in groups])
    return np.concatenate(groups)[np.argsort(keys, kind="stable")]


def sample_order(sample: Sample, keep: np.ndarray) -> np.ndarray:
    """The indices `keep`, grouped by source and in-class or not, each group in round robin of
    its classes, the groups interleaved: real photos and outliers come from the first round."""
    groups = {}
    for i in keep:
        groups.setdefault((sample.sources[i], sample.labels[i] == OUTLIER), []).append(i)
    return interleave([np.array(g)[round_robin(sample.labels[g])] for g in groups.values()])


def sample_caption(sample: Sample, i: int) -> str:
    """"CIFAR-10 test photo (cat)", "Tiny ImageNet photo (altar: none of the classes)"."""
    none = ": none of the classes" if sample.labels[i] == OUTLIER else ""
    return f"{sample.sources[i]} photo ({sample.shows[i]}{none})"


def sample_pictures(class_names: list[str]) -> Pictures | None:
    """The bundled photos of the model's classes and of none; None if it has other classes."""
    sample = load_sample()
    if not set(class_names) <= set(sample.class_names):
        return None
    ours = [i for i, n in enumerate(sample.class_names) if n in class_names]
    keep = np.flatnonzero(np.isin(sample.labels, [*ours, OUTLIER]))
    order = sample_order(sample, keep)
    return Pictures([sample.images[i] for i in order],
                    [UNKNOWN if sample.labels[i] == OUTLIER else sample.class_names[sample.labels[i]]
                     for i in order],
                    [sample_caption(sample, i) for i in order], True)


def data_pictures(class_names: list[str], data: str | Path) -> Pictures:
    """The test photos of dataset `data`, whose classes must be the model's."""
    images, labels, names = load_test_split(data)
    unknown = sorted(set(names) - set(class_names))
    if unknown:
        raise CifarlabError(f"--data {data}: classes {', '.join(unknown)} are not the model's "
                            f"({', '.join(class_names)}); give a dataset of the model's classes")
    order = round_robin(labels)
    truths = [names[labels[i]] for i in order]
    return Pictures(list(images[order]), truths, [f"photo from {data} ({t})" for t in truths], True)


def card_pictures(class_names: list[str], variants: int) -> Pictures:
    cards = [(draw_card(name, v), name) for v in range(variants) for name in class_names]
    return Pictures([c for c, _ in cards], [n for _, n in cards],
                    [f"drawing ({n})" for _, n in cards], False)


def pick_pictures(class_names: list[str], data: str | Path | None = None,
                  variants: int = 3) -> Pictures:
    """`--data`'s test photos, else the bundled photos for a model of CIFAR-10 classes, else
    drawn cards."""
    if data is not None:
        return data_pictures(class_names, data)
    return sample_pictures(class_names) or card_pictures(class_names, variants)


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
        self.class_names = list(class_names)   # the classes `truths` are relative to
        picked = pick_pictures(self.class_names, data, variants)
        self.pictures, self.truths, self.captions = picked.images, picked.truths, picked.captions
        # a resting picture fills the default region exactly, so the model sees just the picture
        self.x, self.y, self.side, _ = centered_square((self.height, self.width), roi_fraction)
        self.spacing = int(self.side * 1.35)
        interpolation = cv2.INTER_CUBIC if picked.photos else cv2.INTER_NEAREST
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
        self.draw_caption(frame, current % n)
        return frame, self.truths[current % n] if phase < DWELL else None

    def draw_caption(self, frame: np.ndarray, i: int) -> None:
        """"demo 7 of 241: Tiny ImageNet photo (altar: none of the classes)", centred under the
        pictures (clear of the overlay's notices and help line at the bottom)."""
        unit, scale, thick, margin = metrics(self.height, self.width)
        text = fit_text(f"demo {i + 1} of {len(self.pictures)}: {self.captions[i]}", scale, thick,
                        self.width - 2 * margin - 12)
        (tw, th), base = cv2.getTextSize(text, FONT, scale, thick)
        x = max(margin, (self.width - tw) // 2 - 6)
        y = min(self.y + self.side + int(12 * unit), self.height - th - base - 12)
        text_box(frame, text, x, y, scale, CAPTION, thick)

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
