"""`cifarlab live` headless: JSONL equals offline predictions frame for frame, errors, reconnect."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.images import SHAPE_CLASSES, shapes_images

from cifarlab.cli.main import main
from cifarlab.inference import open_classifier
from cifarlab.live.capture import EndOfStream, SourceLost, VideoSource
from cifarlab.live.predictor import UNCERTAIN, LivePredictor
from cifarlab.live.config import roi_problem
from cifarlab.live.roi import centered_square, clamp_roi, crop_for_model, scale_roi

FRAME_W, FRAME_H = 320, 240


def write_shapes_video(path: Path, n: int = 24, seed: int = 7) -> np.ndarray:
    """A video whose default ROI (centred square, half the short side) shows one labelled shape
    per frame on a textured background; returns the true labels."""
    images, labels = shapes_images(n, 48, seed=seed)
    x, y, w, h = centered_square((FRAME_H, FRAME_W), 0.5)
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (FRAME_W, FRAME_H))
    assert writer.isOpened()
    yy, xx = np.mgrid[0:FRAME_H, 0:FRAME_W]
    for image in images:
        frame = np.clip(120 + 60 * np.sin(xx / 17.0)[..., None] + rng.integers(-20, 20, (FRAME_H, FRAME_W, 3)),
                        0, 255).astype(np.uint8)
        frame[y : y + h, x : x + w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_NEAREST)[..., ::-1]
        writer.write(frame)
    writer.release()
    return labels


def decoded_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def offline_predictions(classifier, path: Path) -> np.ndarray:
    """The same decoded frames, the same ROI and crop function, one image per call."""
    frames = decoded_frames(path)
    roi = centered_square(frames[0].shape, 0.5)
    call = getattr(classifier, "predict_one", None) or (lambda im: classifier.predict(im[None])[0])
    return np.stack([call(crop_for_model(f, roi, classifier.input_size)) for f in frames])


@pytest.fixture(scope="module")
def shapes_video(tmp_path_factory) -> tuple[Path, np.ndarray]:
    path = tmp_path_factory.mktemp("video") / "shapes.mp4"
    return path, write_shapes_video(path)


def test_headless_video_matches_offline_predictions(tiny_model, shapes_video, tmp_path, capsys):

    video, labels = shapes_video
    out, rec = tmp_path / "preds.jsonl", tmp_path / "annotated.mp4"
    code = main(["live", "--model", str(tiny_model), "--source", str(video), "--no-window",
                 "--backend", "keras", "--jsonl", str(out), "--record", str(rec)])
    assert code == 0
    assert "end of video" in capsys.readouterr().out
    rows = read_jsonl(out)
    probs = offline_predictions(open_classifier(tiny_model, "keras"), video)
    assert [r["frame"] for r in rows] == list(range(len(probs))) == list(range(len(labels)))
    assert [r["label"] for r in rows] == [SHAPE_CLASSES[i] for i in probs.argmax(1)]
    np.testing.assert_allclose([r["confidence"] for r in rows], probs.max(1), atol=2e-6)
    for r, p in zip(rows, probs):
        assert [t["label"] for t in r["top_k"]] == [SHAPE_CLASSES[i] for i in np.argsort(-p)[:3]]
        assert r["roi"] == list(centered_square((FRAME_H, FRAME_W), 0.5)) and r["inference_ms"] > 0
    assert np.mean(probs.argmax(1) == labels) >= 0.6
    assert len(decoded_frames(rec)) == len(labels)  # annotated recording, every frame


def test_tflite_model_headless(tiny_model, shapes_video, tmp_path):
    from cifarlab.inference.litert import keras_to_tflite
    from cifarlab.models.io import load_keras_model
    from cifarlab.models.metadata import write_sidecar

    model, meta = load_keras_model(tiny_model)
    tflite = tmp_path / "tiny.tflite"
    tflite.write_bytes(keras_to_tflite(model, meta.input_size))
    write_sidecar(tflite, meta)
    video, labels = shapes_video
    out = tmp_path / "preds.jsonl"
    assert main(["live", "--model", str(tflite), "--source", str(video), "--no-window",
                 "--jsonl", str(out), "--max-frames", "10", "--threads", "1"]) == 0
    rows = read_jsonl(out)
    probs = offline_predictions(open_classifier(tflite), video)[:10]
    assert len(rows) == 10
    assert [r["label"] for r in rows] == [SHAPE_CLASSES[i] for i in probs.argmax(1)]
    np.testing.assert_allclose([r["confidence"] for r in rows], probs.max(1), atol=2e-6)


def test_demo_source_headless_with_smoothing_and_threshold(tiny_model, tmp_path, capsys):
    out, rec = tmp_path / "demo.jsonl", tmp_path / "demo.mp4"
    assert main(["live", "--model", str(tiny_model), "--source", "demo", "--no-window",
                 "--width", "320", "--height", "240", "--max-frames", "8", "--smoothing", "0.5",
                 "--threshold", "0.99", "--backend", "keras", "--jsonl", str(out),
                 "--record", str(rec)]) == 0
    rows = read_jsonl(out)
    assert [r["frame"] for r in rows] == list(range(8))
    assert all(r["label"] in SHAPE_CLASSES + [UNCERTAIN] for r in rows)
    for r in rows:  # the threshold rule, row by row: below 0.99 reads "uncertain", else the top class
        expected = r["top_k"][0]["label"] if r["confidence"] >= 0.99 else UNCERTAIN
        assert r["label"] == expected and r["top_k"][0]["confidence"] == pytest.approx(r["confidence"])
    assert len(decoded_frames(rec)) == 8
    assert "backend keras" in capsys.readouterr().out


# ---- errors: one line, exit 2 ------------------------------------------------------------

def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("DISPLAY", None)
    return subprocess.run([sys.executable, "-m", "cifarlab.cli.main", "live", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(Path("/dev/video0").exists(), reason="this machine has a camera")
def test_no_camera_is_one_line_error(tiny_model):
    start = time.monotonic()
    result = run_cli("--model", str(tiny_model), "--source", "0", "--no-window")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "no camera at index 0" in lines[0] and "--source demo" in lines[0]
    assert time.monotonic() - start < 30


@pytest.mark.skipif(Path("/dev/video0").exists(), reason="this machine has a camera")
@pytest.mark.slow
def test_default_source_falls_back_to_demo_without_camera(tiny_model, tmp_path):
    jsonl = tmp_path / "auto.jsonl"
    result = run_cli("--model", str(tiny_model), "--no-window", "--max-frames", "3", "--jsonl", str(jsonl))
    assert result.returncode == 0, result.stderr
    assert "showing the built-in demo scene" in result.stdout
    assert len(jsonl.read_text().splitlines()) == 3


def test_window_without_display_is_one_line_error(tiny_model, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code = main(["live", "--model", str(tiny_model), "--source", "demo"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no display" in err[0], err


@pytest.mark.parametrize("source, expected", [
    ("missing.mp4", "missing.mp4: no such video file"),
    ("notavideo.mp4", "notavideo.mp4: "),
    ("rtsp://127.0.0.1:9/none", "cannot open stream rtsp://127.0.0.1:9/none"),
])
def test_bad_source_is_one_line_error(tiny_model, tmp_path, monkeypatch, capsys, source, expected):
    (tmp_path / "notavideo.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    code = main(["live", "--model", str(tiny_model), "--source", source, "--no-window",
                 "--open-timeout", "5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and expected in err[0], err
    assert time.monotonic() - start < 10


def test_foreign_model_and_bad_options(tmp_path, capsys):
    import zipfile

    fake = tmp_path / "other.keras"
    with zipfile.ZipFile(fake, "w") as z:
        z.writestr("config.json", "{}")
    assert main(["live", "--model", str(fake), "--source", "demo", "--no-window"]) == 2
    assert "without cifarlab metadata" in capsys.readouterr().err
    assert main(["live", "--model", str(fake), "--roi", "1,2,3", "--no-window"]) == 2
    assert "--roi must be x,y,w,h" in capsys.readouterr().err
    assert main(["live", "--model", str(fake), "--smoothing", "1.5", "--no-window"]) == 2
    assert "--smoothing" in capsys.readouterr().err


# ---- units: ROI, smoothing, capture timeouts and reconnect --------------------------------

def test_crop_equals_convert_then_resize():
    from cifarlab.data.images import resize_rgb

    frame = np.random.default_rng(1).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    for roi, size in [((460, 180, 360, 360), (32, 32)), ((0, 0, 20, 20), (32, 32))]:
        x, y, w, h = roi
        expected = resize_rgb(cv2.cvtColor(frame[y : y + h, x : x + w], cv2.COLOR_BGR2RGB), size)
        np.testing.assert_array_equal(crop_for_model(frame, roi, size), expected)


def test_roi_helpers():
    assert centered_square((720, 1280, 3), 0.5) == (460, 180, 360, 360)
    assert roi_problem((10, 20, 100, 50)) is None
    assert "w, h at least 8" in roi_problem((10, 20, -5, 50))
    assert clamp_roi((300, 200, 100, 100), (240, 320)) == (220, 140, 100, 100)
    bigger = scale_roi((100, 60, 120, 120), 1.5, (240, 320))
    assert bigger[2] == bigger[3] == 180 and bigger[:2] == (70, 30)
    assert scale_roi((0, 0, 300, 300), 2.0, (240, 320)) == (0, 0, 320, 240)


class FakeClassifier:
    class_names = ["a", "b", "c"]
    input_size = (8, 8)
    backend = "fake"

    def __init__(self, outputs):
        self.outputs = list(outputs)

    def predict(self, images):
        return np.asarray([self.outputs.pop(0)], np.float32)

    def predict_one(self, image):
        return self.predict(image[None])[0]

    def predict_one_scored(self, image):
        return self.predict_one(image), None


def test_smoothing_and_threshold():
    p = LivePredictor(FakeClassifier([[1, 0, 0], [0, 1, 0]]), smoothing=0.75, threshold=0.6)
    first = p.update(p.infer(np.zeros((8, 8, 3), np.uint8))[0])
    assert first.label == "a" and first.confidence == 1.0
    second = p.update(p.infer(np.zeros((8, 8, 3), np.uint8))[0])
    np.testing.assert_allclose(second.probabilities, [0.75, 0.25, 0])
    assert second.label == "a"
    p.threshold = 0.8
    assert p.update(np.array([0.5, 0.3, 0.2], np.float32)).label == UNCERTAIN


class FakeCap:
    """A capture giving `frames` good frames, then failing (unplugged) or blocking (hung)."""

    def __init__(self, frames: int, hang: bool = False):
        self.left, self.hang = frames, hang
        self.release_event = threading.Event()

    def isOpened(self):  # noqa: N802 - cv2 API
        return True

    def get(self, prop):
        return 100.0

    def read(self):
        if self.left > 0:
            self.left -= 1
            time.sleep(0.01)
            return True, np.zeros((24, 32, 3), np.uint8)
        if self.hang:
            self.release_event.wait(30)
        return False, None

    def release(self):
        self.release_event.set()


def drain(source, limit: float) -> tuple[int, Exception | None]:
    got, deadline = 0, time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            frame = source.read(timeout=0.1)
        except (SourceLost, EndOfStream) as exc:
            return got, exc
        got += frame is not None
    return got, None


def test_unplugged_camera_reconnects_then_gives_up(caplog):
    caplog.set_level(logging.INFO, logger="cifarlab.live")
    opens = []

    def opener():
        opens.append(time.monotonic())
        if len(opens) in (1, 2):
            return FakeCap(3)          # unplugged after 3 frames, comes back once
        return None                    # then gone for good

    source = VideoSource("0", "camera", opener, reconnect_timeout=1.5, read_timeout=1.0)
    start = time.monotonic()
    got, exc = drain(source, 10)
    assert isinstance(exc, SourceLost) and "did not come back within 1.5s" in str(exc)
    assert 1.0 < time.monotonic() - start < 5
    assert got >= 2 and len(opens) >= 3
    out = caplog.text
    assert "source: reconnected" in out and "reconnecting (attempt 2)" in out


def test_hung_read_times_out():
    caps = [FakeCap(2, hang=True)]

    def opener():
        return caps.pop(0) if caps else None

    source = VideoSource("rtsp://x", "stream", opener, read_timeout=0.5, reconnect_timeout=1.0)
    start = time.monotonic()
    got, exc = drain(source, 10)
    assert got == 2 and isinstance(exc, SourceLost)
    assert time.monotonic() - start < 4
    source.close()


def test_app_exits_cleanly_when_source_is_lost(tmp_path, capsys):
    from cifarlab.live.app import LiveApp
    from cifarlab.live.config import LiveConfig

    caps = [FakeCap(5)]
    source = VideoSource("0", "camera", lambda: caps.pop() if caps else None, reconnect_timeout=0.5)
    predictor = LivePredictor(FakeClassifier([[0.2, 0.7, 0.1]] * 50))
    out = tmp_path / "p.jsonl"
    app = LiveApp(LiveConfig(window=False, jsonl=out), predictor=predictor, source=source)
    with pytest.raises(SourceLost):
        app.run()
    rows = read_jsonl(out)
    assert 1 <= len(rows) <= 5 and rows[0]["label"] == "b"
