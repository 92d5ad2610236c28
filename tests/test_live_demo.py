"""The demo source: bundled CIFAR-10 photos, `--data`, true labels and the running accuracy."""

from __future__ import annotations

import json
import logging
import runpy

import cv2
import numpy as np
import pytest
from helpers.images import SHAPE_CLASSES, write_image_folder
from helpers.paths import ROOT

from cifarlab.cli.main import main
from cifarlab.data import CIFAR10_CLASSES
from cifarlab.errors import CifarlabError
from cifarlab.live.app import LiveApp
from cifarlab.live.config import LiveConfig
from cifarlab.live.demo import DWELL, PERIOD, SAMPLE, DemoSource, load_sample
from cifarlab.live.overlay import OverlayState, draw_overlay
from cifarlab.live.predictor import Prediction
from cifarlab.live.roi import centered_square

SIZE = (320, 240)


def test_bundled_sample():
    images, labels, names = load_sample()
    assert images.shape == (200, 32, 32, 3) and images.dtype == np.uint8
    assert names == CIFAR10_CLASSES
    assert np.bincount(labels, minlength=10).tolist() == [20] * 10
    assert SAMPLE.stat().st_size < 500 * 1024


def test_sample_script_reproduces_the_shipped_file(shared_cifar):
    from cifarlab.data.images import read_image_rgb

    pick = runpy.run_path(str(ROOT / "scripts" / "make_demo_sample.py"))["pick"]
    files, labels, classes = pick(shared_cifar / "test", 20, 0)
    with np.load(SAMPLE, allow_pickle=False) as z:
        assert z["files"].tobytes() == b"".join(f.read_bytes() for f in files)
        assert z["labels"].tolist() == labels and z["class_names"].tolist() == classes
    images, _, _ = load_sample()   # the same pixels `cifarlab.data` decodes from those files
    np.testing.assert_array_equal(images, np.stack([read_image_rgb(f) for f in files]))


def test_cifar_model_gets_photos_other_models_get_cards():
    photos = DemoSource(CIFAR10_CLASSES, size=SIZE, realtime=False)
    assert len(photos.pictures) == 200 and photos.truths[:10] != photos.truths[10:20]
    assert sorted(photos.truths[:10]) == sorted(CIFAR10_CLASSES)   # every class once per round
    subset = DemoSource(["cat", "dog"], size=SIZE, realtime=False)
    assert len(subset.pictures) == 40 and set(subset.truths) == {"cat", "dog"}
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
    x, y, side, _ = centered_square(SIZE[::-1], 0.5)
    for k in range(2):
        rest = frames[k * PERIOD + 10]
        assert rest.truth == a.truths[k]
        photo = cv2.resize(a.pictures[k], (side, side), interpolation=cv2.INTER_CUBIC)[..., ::-1]
        np.testing.assert_array_equal(rest.image[y : y + side, x : x + side], photo)
    assert [f.truth is not None for f in frames[:PERIOD]] == [True] * DWELL + [False] * (PERIOD - DWELL)
    assert [f.index for f in frames if f.decisive] == [DWELL - 1, PERIOD + DWELL - 1]


class OraclePredictor:
    """Recognises the demo's photos by nearest neighbour, but gets picture 1 wrong."""

    backend, input_size = "fake", (32, 32)

    def __init__(self, source: DemoSource):
        self.source, self.class_names = source, list(CIFAR10_CLASSES)
        self.pictures = np.stack(source.pictures).astype(np.float32)

    def warmup(self) -> float:
        return 0.0

    def reset(self) -> None:
        pass

    def infer(self, rgb: np.ndarray):
        nearest = int(((self.pictures - rgb.astype(np.float32)) ** 2).sum((1, 2, 3)).argmin())
        return nearest, 0.1

    def update(self, nearest: int) -> Prediction:
        k = CIFAR10_CLASSES.index(self.source.truths[nearest]) + (nearest == 1)
        label = CIFAR10_CLASSES[k % 10]
        probs = np.eye(10, dtype=np.float32)[k % 10]
        return Prediction(label, label, 1.0, [(label, 1.0)], probs)


def test_running_accuracy_counts_one_decision_per_photo(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="cifarlab.live")
    source = DemoSource(CIFAR10_CLASSES, size=SIZE, realtime=False)
    out = tmp_path / "demo.jsonl"
    config = LiveConfig(source="demo", window=False, max_frames=3 * PERIOD, jsonl=out)
    app = LiveApp(config, OraclePredictor(source), source)
    assert app.run() == 0
    assert app.score == (2, 3)   # 3 photos came to rest: 2 right, picture 1 wrong
    assert "live: demo accuracy 2/3 = 67%" in caplog.text
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 * PERIOD
    assert [r.get("truth") for r in rows[:PERIOD]] == [source.truths[0]] * DWELL + [None] * (PERIOD - DWELL)


def test_overlay_shows_truth_and_accuracy():
    blank = np.full((240, 320, 3), 128, np.uint8)
    pred = Prediction("cat", "cat", 0.9, [("cat", 0.9)], np.array([0.9]))
    state = OverlayState(roi=centered_square(blank.shape, 0.5), prediction=pred)
    plain = draw_overlay(blank.copy(), state)
    state.truth, state.score = "dog", (17, 20)
    shown = draw_overlay(blank.copy(), state)
    changed = np.argwhere((shown != plain).any(2))
    assert changed[:, 1].max() > 200 and changed[:, 0].max() > 40  # "true: dog" and the score row


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
