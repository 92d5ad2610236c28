"""`cifarlab live` with open-set rejection: JSONL rows carry the ood score and the `unknown`
flag, a noise region reads `unknown` (grey), key u turns the rejection off and on, a swapped-in
model brings its own threshold, and a model without the score keeps working unchanged."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_live_gui import TOOLS, screenshot, start_live, text_score, xdotool
from test_live_gui import display  # noqa: F401 - the Xvfb fixture

from cifarlab.cli.main import main
from cifarlab.errors import CifarlabError
from cifarlab.inference.rejection import UNKNOWN, Rejection
from cifarlab.live.app import LiveApp
from cifarlab.live.capture import Frame
from cifarlab.live.config import LiveConfig
from cifarlab.live.keys import help_line
from cifarlab.live.overlay import FONT, NEUTRAL, ROI_ON, OverlayState, draw_overlay, metrics
from cifarlab.live.predictor import UNCERTAIN, LivePredictor, Prediction
from cifarlab.models import openset
from cifarlab.live.roi import centered_square
from cifarlab.live.sink import jsonl_row
from cifarlab.models.io import read_metadata

W, H = 320, 240


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def noise_frame(index: int = 0, size: tuple[int, int] = (W, H)) -> Frame:
    image = np.random.default_rng(index).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Frame(image, index, index / 30)


def headless_demo(model: Path, out: Path, *extra: str) -> list[dict]:
    assert main(["live", "--model", str(model), "--source", "demo", "--no-window", "--width",
                 str(W), "--height", str(H), "--max-frames", "6", "--backend", "keras",
                 "--jsonl", str(out), *extra]) == 0
    return read_jsonl(out)


def started_app(model: Path, **changes) -> LiveApp:
    """The app with its model opened as `cifarlab live` opens it (no source, no window)."""
    app = LiveApp(LiveConfig(model=model, source="demo", window=False, backend="keras", **changes))
    app.models.start()
    return app


# ---- headless runs: the JSONL fields ---------------------------------------------------------

def test_open_model_rows_carry_score_and_flag(open_model, tmp_path, capsys):
    rows = headless_demo(open_model, tmp_path / "open.jsonl")
    threshold = read_metadata(open_model).open_set.threshold
    assert len(rows) == 6
    for r in rows:
        assert isinstance(r["ood_score"], float) and r["unknown"] is (r["ood_score"] > threshold)
        assert (r["label"] == UNKNOWN) is r["unknown"]
        assert r["class"] in ("circle", "square", "triangle") and len(r["top_k"]) == 3
    out = capsys.readouterr().out
    assert out.count(f"open set: {openset.DEFAULT_SCORE} score, unknown above") == 1, out


def test_model_without_score_rows_have_null_score(tiny_model, tmp_path, capsys):
    rows = headless_demo(tiny_model, tmp_path / "tiny.jsonl", "--smoothing", "0.5")
    assert len(rows) == 6
    assert all(r["ood_score"] is None and r["unknown"] is False for r in rows)
    assert all(r["label"] != UNKNOWN for r in rows)
    out = capsys.readouterr().out
    assert out.count("this model has no open-set score") == 1, out


def test_jsonl_row_fields():
    pred = Prediction(UNKNOWN, "cat", 0.5, [("cat", 0.5)], np.array([0.5, 0.5]), 17.1234567, True)
    row = jsonl_row(Frame(np.zeros((4, 4, 3), np.uint8), 3, 0.1), pred, 1.0, (0, 0, 4, 4))
    assert (row["label"], row["class"], row["ood_score"], row["unknown"]) == (UNKNOWN, "cat", 17.123457, True)
    plain = jsonl_row(Frame(np.zeros((4, 4, 3), np.uint8), 3, 0.1),
                      Prediction("cat", "cat", 0.5, [("cat", 0.5)], np.array([0.5, 0.5])), 1.0, (0, 0, 4, 4))
    assert plain["ood_score"] is None and plain["unknown"] is False


# ---- the app: noise is unknown, u toggles, swaps bring their own threshold -----------------

def test_noise_region_is_unknown_and_u_toggles_it(open_model, caplog):
    caplog.set_level(logging.INFO, logger="cifarlab.live")
    app = started_app(open_model)
    assert app.predictor.rejection.active
    _, pred, _ = app.process(noise_frame(0))
    assert pred.unknown and pred.label == UNKNOWN and pred.ood_score > app.predictor.rejection.threshold
    assert pred.top_class in app.predictor.class_names and len(pred.top_k) == 3   # bars stay

    app.handle_key(ord("u"))
    assert "open set: OFF" in caplog.text and app.open_set_off()
    _, pred, _ = app.process(noise_frame(1))
    assert not pred.unknown and pred.label == pred.top_class and pred.ood_score is not None

    app.handle_key(ord("U"))
    assert "open set: ON" in caplog.text and not app.open_set_off()
    assert app.process(noise_frame(2))[1].unknown


@pytest.mark.parametrize("model, why", [("tiny_model", "no open-set score in the model"),
                                        ("open_model", "--ood-threshold off")])
def test_u_without_rejection_is_only_a_notice(model, why, request):
    changes = {"ood_threshold": "off"} if model == "open_model" else {}
    app = started_app(request.getfixturevalue(model), **changes)
    app.handle_key(ord("u"))
    assert app.open_set_on and not app.open_set_off()
    assert why in app.message[0]
    pred = app.process(noise_frame(0))[1]
    assert not pred.unknown and pred.label != UNKNOWN


def test_swapped_in_model_rejects_by_its_own_threshold(tiny_model, open_model, caplog):
    caplog.set_level(logging.INFO, logger="cifarlab.live")
    app = started_app(tiny_model)
    assert not app.predictor.rejection.active
    app.handle_key(ord("u"))            # nothing to turn off yet
    app.models.load(open_model, "watch")
    assert app.models.loading.wait(120)
    app.poll_background()
    assert app.predictor.rejection.threshold == read_metadata(open_model).open_set.threshold
    assert app.process(noise_frame(0))[1].unknown
    app.handle_key(ord("u"))            # off, and it stays off for the next model
    app.models.load(open_model, "watch")
    assert app.models.loading.wait(120)
    app.poll_background()
    assert not app.predictor.rejecting and not app.process(noise_frame(1))[1].unknown
    assert caplog.text.count(f"open set: {openset.DEFAULT_SCORE} score, unknown above") == 2   # one line per model


# ---- the predictor and its options ------------------------------------------------------------

class ScoredClassifier:
    class_names = ["a", "b"]
    input_size = (8, 8)
    backend = "fake"

    def __init__(self, outputs):
        self.outputs = list(outputs)

    def predict_one_scored(self, image):
        probs, score = self.outputs.pop(0)
        return np.asarray(probs, np.float32), score


def test_score_is_smoothed_before_the_threshold():
    p = LivePredictor(ScoredClassifier([([1, 0], 0.0), ([1, 0], 20.0), ([0.3, 0.7], 20.0)]),
                      smoothing=0.5, threshold=0.9)
    p.rejection = Rejection(12.0, "test")
    rgb = np.zeros((8, 8, 3), np.uint8)
    first = p.update(p.infer(rgb)[0])
    assert first.ood_score == 0.0 and first.label == "a" and not first.unknown
    second = p.update(p.infer(rgb)[0])
    assert second.ood_score == pytest.approx(10.0) and not second.unknown   # one 20 is not enough
    third = p.update(p.infer(rgb)[0])
    assert third.ood_score == pytest.approx(15.0) and third.unknown
    assert third.confidence == pytest.approx(0.65)                # below --threshold 0.9
    assert third.label == UNKNOWN and third.top_class == "a"    # unknown wins over uncertain
    p.rejecting = False
    assert p.update((np.array([0.4, 0.6], np.float32), 30.0)).label == UNCERTAIN
    p.reset()
    assert p.update((np.array([0.0, 1.0], np.float32), 1.0)).ood_score == 1.0


def test_ood_threshold_option():
    assert LiveConfig(source="demo", ood_threshold="2.5").ood_threshold == 2.5
    assert LiveConfig(source="demo", ood_threshold="OFF").ood_threshold == "off"
    with pytest.raises(CifarlabError, match="--ood-threshold 'maybe'"):
        LiveConfig(source="demo", ood_threshold="maybe")
    assert "u: unknown on/off" in help_line()


def test_overlay_draws_unknown_grey_with_bars():
    blank = np.full((H, W, 3), 128, np.uint8)
    roi = centered_square(blank.shape, 0.5)
    known = Prediction("circle", "circle", 0.6, [("circle", 0.6), ("square", 0.4)], np.array([0.6, 0.4]))
    unknown = Prediction(UNKNOWN, "circle", 0.6, known.top_k, known.probabilities, 40.0, True)
    plain = draw_overlay(blank.copy(), OverlayState(roi=roi, prediction=known))
    shown = draw_overlay(blank.copy(), OverlayState(roi=roi, prediction=unknown))
    x, y, w, h = roi
    assert (plain[y + h // 2, x] == ROI_ON).all() and (shown[y + h // 2, x] == NEUTRAL).all()
    np.testing.assert_array_equal(shown[:30, :95], plain[:30, :95])       # the same top-k bars
    off = draw_overlay(blank.copy(), OverlayState(roi=roi, prediction=known, open_set_off=True))
    assert (off[:40, W // 2 :] != plain[:40, W // 2 :]).any()             # the status says so


# ---- the window under Xvfb -----------------------------------------------------------------

GW, GH = 960, 720


def write_noise_video(path: Path, frames: int = 20) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (GW, GH))
    for i in range(frames):
        writer.write(noise_frame(i, (GW, GH)).image)
    writer.release()
    return path


def roi_edge_pixels(window: np.ndarray) -> np.ndarray:
    x, y, w, h = centered_square((GH, GW), 0.5)
    return np.concatenate([window[y + 20 : y + h - 20, x], window[y + 20 : y + h - 20, x + w - 1]])


def wait_for_box(env, tmp_path: Path, geometry: dict, color, name: str) -> np.ndarray:
    deadline = time.monotonic() + 20   # a busy machine may take a while to paint
    while True:
        shot = screenshot(env, tmp_path / f"{name}.png", geometry)
        if (roi_edge_pixels(shot) == color).all(axis=1).mean() > 0.9 or time.monotonic() > deadline:
            return shot
        time.sleep(0.5)


def label_pixels(shot: np.ndarray, scale: float, thickness: int) -> np.ndarray:
    """The solid text pixels of the `unknown` label's box above the region (placed as the
    overlay places it)."""
    x, y, _, _ = centered_square((GH, GW), 0.5)
    (tw, th), base = cv2.getTextSize(UNKNOWN, FONT, scale, thickness)
    top = y - th - base - 16
    box = shot[top : top + th + base + 12, x : x + tw + 12].reshape(-1, 3).astype(int)
    return box[box.min(axis=1) > 150]


@pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                    reason="needs Xvfb, xdotool and ImageMagick's import")
@pytest.mark.gui
def test_window_shows_grey_unknown(display, open_model, tmp_path):  # noqa: F811 - the fixture
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "TF_CPP_MIN_LOG_LEVEL": "2"}
    video = write_noise_video(tmp_path / "noise.mp4")
    _, scale, thick, _ = metrics(GH, GW)
    proc, lines, wid, geometry = start_live(env, tmp_path, "--model", str(open_model), "--loop",
                                            size=(GW, GH), source=str(video))
    try:
        shot = wait_for_box(env, tmp_path, geometry, NEUTRAL, "unknown")
        assert (roi_edge_pixels(shot) == NEUTRAL).all(axis=1).mean() > 0.9, "grey region box missing"
        assert text_score(shot, UNKNOWN, scale * 1.4, thick + 1) > 0.8
        text = label_pixels(shot, scale * 1.4, thick + 1)
        assert len(text) > 30 and text.max() <= max(NEUTRAL) + 5        # grey, not white
        assert (text.max(axis=1) - text.min(axis=1)).max() <= 12          # neutral: no hue
        bars = shot[: GH // 4, : GW // 3]
        assert max(text_score(bars, n, scale, thick) for n in ("circle", "square", "triangle")) > 0.8

        xdotool(env, "key", "--window", wid, "u")
        lines.wait_for("open set: OFF", 10)
        shot = wait_for_box(env, tmp_path, geometry, ROI_ON, "off")
        assert (roi_edge_pixels(shot) == ROI_ON).all(axis=1).mean() > 0.9, "green box after u"
        xdotool(env, "key", "--window", wid, "q")
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
