"""The demo source: bundled CIFAR-10 test photos and real photos of its classes and of none,
`--data`, true labels (`unknown` for none of the classes) and the running accuracy."""

from __future__ import annotations

import json
import logging
import runpy
import subprocess
import sys
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from helpers.images import SHAPE_CLASSES, write_image_folder
from helpers.paths import ROOT, SHARED_REAL
from test_live_gui import text_score

from cifarlab.cli.main import main
from cifarlab.data import CIFAR10_CLASSES
from cifarlab.errors import CifarlabError
from cifarlab.inference.rejection import UNKNOWN
from cifarlab.live.app import LiveApp
from cifarlab.live.capture import Frame
from cifarlab.live.config import LiveConfig
from cifarlab.live.demo import DWELL, OUTLIER, PERIOD, SAMPLE, DemoSource, load_sample
from cifarlab.live.overlay import GREEN, RED, OverlayState, draw_overlay, metrics
from cifarlab.live.predictor import Prediction
from cifarlab.live.roi import centered_square

SIZE = (320, 240)
SCRIPT = ROOT / "scripts" / "make_demo_sample.py"
REAL_CLASSES = ["automobile", "bird", "cat", "dog", "frog", "ship", "truck"]  # in Tiny ImageNet


@pytest.fixture(scope="session")
def shared_real():
    if not SHARED_REAL.is_dir():
        pytest.skip(f"{SHARED_REAL} is absent (CI provides ../shared/datasets)")
    return SHARED_REAL


def guess(top: str, unknown: bool = False) -> Prediction:
    """A confident prediction of class `top` (flagged `unknown` if asked)."""
    return Prediction(UNKNOWN if unknown else top, top, 1.0, [(top, 1.0)], np.ones(1, np.float32),
                      unknown=unknown)


def test_bundled_sample():
    sample = load_sample()
    cifar, real = np.array(sample.sources) == "CIFAR-10 test", np.array(sample.sources) == "Tiny ImageNet"
    assert len(sample.images) == 241 and cifar.sum() == 200 and real.sum() == 41
    assert sample.class_names == CIFAR10_CLASSES
    assert np.bincount(sample.labels[cifar], minlength=10).tolist() == [20] * 10
    assert {sample.images[i].shape for i in np.flatnonzero(cifar)} == {(32, 32, 3)}
    assert {sample.images[i].shape for i in np.flatnonzero(real)} == {(64, 64, 3)}
    in_class = sample.labels[real][sample.labels[real] != OUTLIER]
    assert sorted(CIFAR10_CLASSES[k] for k in set(in_class)) == REAL_CLASSES
    assert set(np.unique(in_class, return_counts=True)[1]) == {3}
    outliers = [sample.shows[i] for i in np.flatnonzero(sample.labels == OUTLIER)]
    assert len(set(outliers)) == len(outliers) == 20 and not set(outliers) & set(CIFAR10_CLASSES)
    with np.load(SAMPLE, allow_pickle=False) as z:   # plain arrays only
        assert all(z[k].dtype != object for k in z.files)
    assert SAMPLE.stat().st_size < 150 * 1024


def test_sample_script_reproduces_the_shipped_file(shared_cifar, shared_real, tmp_path):
    """The command in the script's docstring (its defaults) makes the shipped file's arrays;
    the outliers are of held-out classes only, and the pixels are what `cifarlab.data` reads."""
    from cifarlab.data.images import read_image_rgb

    out = tmp_path / "sample.npz"
    subprocess.run([sys.executable, str(SCRIPT), "--data", str(shared_cifar), "--real",
                    str(shared_real), "--out", str(out)], check=True, capture_output=True)
    with np.load(SAMPLE, allow_pickle=False) as shipped, np.load(out, allow_pickle=False) as made:
        assert shipped.files == made.files
        for key in shipped.files:
            np.testing.assert_array_equal(shipped[key], made[key], err_msg=key)
    script = runpy.run_path(str(SCRIPT))
    train, held_out = script["outlier_split"](shared_real / "other-classes")
    outliers = script["pick_outliers"](shared_real, 20, 0)
    assert {f.parent.name for f in outliers} <= set(held_out) and len({f.parent for f in outliers}) == 20
    files, _, _ = script["pick"](shared_cifar / "test", 20, 0)
    real, _ = script["pick_real"](shared_real, CIFAR10_CLASSES, 3, 0)
    for image, f in zip(load_sample().images, files + real + outliers):
        np.testing.assert_array_equal(image, read_image_rgb(f))


def test_cifar_model_gets_photos_other_models_get_cards():
    photos = DemoSource(CIFAR10_CLASSES, size=SIZE, realtime=False)
    assert len(photos.pictures) == 241 and photos.truths[:10] != photos.truths[10:20]
    first_test = [t for t, c in zip(photos.truths, photos.captions) if c.startswith("CIFAR-10")][:10]
    assert sorted(first_test) == sorted(CIFAR10_CLASSES)   # every class once per round
    assert photos.truths.index(UNKNOWN) < 10                 # a real photo of none of the classes,
    assert any(p.shape == (64, 64, 3) and t != UNKNOWN       # and one of a class, come early
               for p, t in zip(photos.pictures[:10], photos.truths))
    assert photos.truths.count(UNKNOWN) == 20 and sum(p.shape[0] == 64 for p in photos.pictures) == 41
    subset = DemoSource(["cat", "dog"], size=SIZE, realtime=False)
    assert len(subset.pictures) == 40 + 6 + 20 and set(subset.truths) == {"cat", "dog", UNKNOWN}
    cards = DemoSource(SHAPE_CLASSES, size=SIZE, realtime=False)
    assert cards.truths == SHAPE_CLASSES * 3 and cards.pictures[0].shape == (48, 48, 3)


def test_frames_are_a_function_of_the_index_and_carry_the_truth():
    a = DemoSource(CIFAR10_CLASSES, size=SIZE, realtime=False)
    b = DemoSource(CIFAR10_CLASSES, size=SIZE, realtime=False)
    frames = [a.read() for _ in range(2 * PERIOD)]
    for i in (0, 5, DWELL, DWELL + 7, PERIOD + 3, 2 * PERIOD - 1):
        image, truth = b.render(i)
        np.testing.assert_array_equal(frames[i].image, image)
        assert frames[i].index == i and frames[i].truth == truth
    for k in range(2):
        rest = frames[k * PERIOD + 10]
        assert rest.truth == a.truths[k]
        assert_region_shows(rest.image, a.pictures[k], SIZE)
    assert [f.truth is not None for f in frames[:PERIOD]] == [True] * DWELL + [False] * (PERIOD - DWELL)
    assert [f.index for f in frames if f.decisive] == [DWELL - 1, PERIOD + DWELL - 1]


def assert_region_shows(image: np.ndarray, picture: np.ndarray, size: tuple[int, int]) -> None:
    """The default region of `image` is exactly `picture` (RGB, any size) scaled to fill it."""
    x, y, side, _ = centered_square(size[::-1], 0.5)
    scaled = cv2.resize(picture, (side, side), interpolation=cv2.INTER_CUBIC)[..., ::-1]
    np.testing.assert_array_equal(image[y : y + side, x : x + side], scaled)


def test_outlier_photo_fills_the_region_and_its_caption_names_it():
    size = (1280, 720)
    source = DemoSource(CIFAR10_CLASSES, size=size, realtime=False)
    k = source.truths.index(UNKNOWN)
    image, truth = source.render(k * PERIOD + 10)
    assert truth == UNKNOWN and source.pictures[k].shape == (64, 64, 3)
    assert_region_shows(image, source.pictures[k], size)
    caption = source.captions[k]
    assert caption.startswith("Tiny ImageNet photo (") and caption.endswith(": none of the classes)")
    _, scale, thick, _ = metrics(*size[::-1])
    assert text_score(image, f"demo {k + 1} of 241: {caption}", scale, thick) > 0.9


class FixedPredictor:
    """Says `answer` for every frame."""

    backend, input_size, class_names = "fake", (32, 32), list(CIFAR10_CLASSES)

    def __init__(self, answer: Prediction | None = None):
        self.answer = answer

    def warmup(self) -> float:
        return 0.0

    def reset(self) -> None:
        pass

    def infer(self, rgb: np.ndarray):
        return rgb, 0.1

    def update(self, rgb) -> Prediction:
        return self.answer


class OraclePredictor(FixedPredictor):
    """Recognises the demo's pictures by nearest neighbour and answers right (`unknown` for a
    picture of none of the classes), but gets picture 1 wrong."""

    def __init__(self, source: DemoSource):
        super().__init__()
        self.source = source
        self.pictures = np.stack([cv2.resize(p, self.input_size, interpolation=cv2.INTER_AREA)
                                  for p in source.pictures]).astype(np.float32)

    def update(self, rgb: np.ndarray) -> Prediction:
        nearest = int(((self.pictures - rgb.astype(np.float32)) ** 2).sum((1, 2, 3)).argmin())
        truth = self.source.truths[nearest]
        if truth == UNKNOWN:
            return guess("cat", unknown=True)
        k = CIFAR10_CLASSES.index(truth) + (nearest == 1)
        return guess(CIFAR10_CLASSES[k % 10])


def test_running_accuracy_counts_one_decision_per_picture(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="cifarlab.live")
    source = DemoSource(CIFAR10_CLASSES, size=SIZE, realtime=False)
    k = source.truths.index(UNKNOWN)     # pictures up to the first outlier, said `unknown`
    out = tmp_path / "demo.jsonl"
    config = LiveConfig(source="demo", window=False, max_frames=(k + 1) * PERIOD, jsonl=out)
    app = LiveApp(config, OraclePredictor(source), source)
    assert app.run() == 0
    assert app.score == (k, k + 1)       # all right but picture 1
    assert f"live: demo accuracy {k}/{k + 1} = {100 * k / (k + 1):.0f}%" in caplog.text
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == (k + 1) * PERIOD
    assert [r.get("truth") for r in rows[:PERIOD]] == [source.truths[0]] * DWELL + [None] * (PERIOD - DWELL)
    resting = rows[k * PERIOD : k * PERIOD + DWELL]
    assert {(r["truth"], r["label"], r["unknown"]) for r in resting} == {(UNKNOWN, UNKNOWN, True)}


@pytest.mark.parametrize("truth, answer, right", [
    (UNKNOWN, guess("cat", unknown=True), 1),    # none of the classes, and the model says so
    (UNKNOWN, guess("cat"), 0),                  # none of the classes, called a cat
    ("cat", guess("cat"), 1),
    ("cat", guess("cat", unknown=True), 0),      # a cat rejected as none of the classes
    ("dog", guess("cat"), 0),
])
def test_a_picture_is_right_when_the_model_says_its_class_or_unknown_for_none(truth, answer, right):
    app = LiveApp(LiveConfig(source="demo", window=False), FixedPredictor(answer))
    frame = Frame(np.full((240, 320, 3), 90, np.uint8), DWELL - 1, 1.3, truth=truth, decisive=True)
    app.process(frame)
    assert app.truth == truth and app.score == (right, 1)
    app.process(Frame(frame.image, DWELL, 1.4, truth=truth))   # not decisive: not scored again
    assert app.score == (right, 1)


def test_an_outlier_is_not_scored_for_a_model_of_other_classes():
    """After `t` taught new classes, the demo's pictures were picked for the old ones."""
    app = LiveApp(LiveConfig(source="demo", window=False), FixedPredictor(guess("cat", unknown=True)),
                  SimpleNamespace(class_names=["cat", "dog"]))
    app.process(Frame(np.full((240, 320, 3), 90, np.uint8), 0, 0.0, truth=UNKNOWN, decisive=True))
    assert app.truth is None and app.score == (0, 0)


@pytest.mark.parametrize("answer, truth, text, color", [
    (guess("cat"), "dog", "true: dog", RED),
    (guess("dog"), "dog", "true: dog", GREEN),
    (guess("cat", unknown=True), UNKNOWN, "true: none of the classes", GREEN),
    (guess("cat"), UNKNOWN, "true: none of the classes", RED),
])
def test_overlay_shows_truth_and_accuracy(answer, truth, text, color):
    size = (1280, 720)
    blank = np.full((size[1], size[0], 3), 128, np.uint8)
    roi = centered_square(blank.shape, 0.5)
    shown = draw_overlay(blank.copy(), OverlayState(roi=roi, prediction=answer, truth=truth,
                                                    score=(17, 20)))
    _, scale, thick, _ = metrics(*size[::-1])
    above = shown[: roi[1]]   # the label row is above the region, the score top right
    assert text_score(above, answer.label, scale * 1.4, thick + 1) > 0.9
    assert text_score(above, text, scale * 1.4, thick + 1) > 0.9
    other = GREEN if color == RED else RED
    assert (above == color).all(2).any() and not (above == other).all(2).any()
    assert text_score(above, "demo accuracy 17/20 = 85%", scale * 1.2, thick + 1) > 0.9
    plain = draw_overlay(blank.copy(), OverlayState(roi=roi, prediction=answer))
    assert text_score(plain[: roi[1]], text, scale * 1.4, thick + 1) < 0.7


def test_data_option_uses_the_datasets_test_split(tmp_path):
    root = write_image_folder(tmp_path / "shapes", {"train": 6, "test": 9})
    source = DemoSource(SHAPE_CLASSES, size=SIZE, realtime=False, data=root)
    assert len(source.pictures) == 9 and sorted(source.truths) == sorted(SHAPE_CLASSES * 3)
    assert source.pictures[0].shape == (32, 32, 3)
    with pytest.raises(CifarlabError, match="classes circle, square, triangle are not the model's"):
        DemoSource(["cat", "dog"], size=SIZE, realtime=False, data=root)
    assert LiveConfig(data=str(root)).source == "demo"
    with pytest.raises(CifarlabError, match="--data"):
        LiveConfig(source="0", data=str(root))


def test_data_option_headless(tiny_model, tmp_path, capsys):
    root = write_image_folder(tmp_path / "shapes", {"test": 6})
    out = tmp_path / "demo.jsonl"
    assert main(["live", "--model", str(tiny_model), "--data", str(root), "--no-window",
                 "--width", "320", "--height", "240", "--max-frames", str(PERIOD),
                 "--backend", "keras", "--jsonl", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == PERIOD and {r.get("truth") for r in rows} == {rows[0]["truth"], None}
    assert rows[0]["truth"] in SHAPE_CLASSES
    assert "live: demo accuracy " in capsys.readouterr().out   # one photo came to rest: x/1
