"""The parts of `cifarlab live` on their own: the key table, the output sink, the model swap
and the heatmap blend."""

from __future__ import annotations

import json
import logging
import time

import cv2
import numpy as np
import pytest

from cifarlab.errors import CifarlabError
from cifarlab.inference.cam import HEATMAP_ALPHA, overlay_heatmap
from cifarlab.live.capture import Frame
from cifarlab.live.config import LiveConfig
from cifarlab.live.explain import blend
from cifarlab.live.keys import KEY_ESC, KEYS, bind, help_line, key_codes
from cifarlab.live.overlay import HELP
from cifarlab.live.predictor import Prediction
from cifarlab.live.sink import OutputSink, jsonl_row
from cifarlab.live.swap import ModelSwap


class Recorder:
    """Has every action the key table names; records the calls."""

    def __init__(self):
        self.calls: list[tuple] = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, *args))


# ---- keys ------------------------------------------------------------------------------------

def test_each_key_code_has_one_action():
    codes = [code for key in KEYS for code in key_codes(key)]
    assert len(codes) == len(set(codes))


def test_key_table_binds_codes_to_the_apps_methods():
    app = Recorder()
    table = bind(app, collecting=False)
    for char in "qQ":
        table[ord(char)]()
    table[KEY_ESC]()
    table[ord(" ")]()
    table[ord("+")]()
    table[ord("_")]()
    assert app.calls == [("quit_live",)] * 3 + [("toggle_pause",), ("grow_roi",), ("shrink_roi",)]
    assert ord("1") not in table and ord("t") not in table   # --collect keys only with --collect

    collecting = bind(app, collecting=True)
    app.calls.clear()
    collecting[ord("3")]()
    collecting[ord("T")]()
    assert app.calls == [("collect", ord("3")), ("start_training",)]


def test_help_line_is_the_overlays():
    assert help_line() == HELP == ("click: inference on/off | e: heatmap | u: unknown on/off | "
                                   "space: pause | +/-: ROI size | s: snapshot | q/Esc: quit")


def test_app_keys_go_through_the_table(tmp_path):
    from cifarlab.live.app import LiveApp

    app = LiveApp(LiveConfig(source="demo", window=False))
    assert set(app.actions) == {c for k in KEYS if not k.collect for c in key_codes(k)}
    app.handle_key(ord("p"))                 # no action: nothing happens
    app.handle_key(-1)
    assert not app.paused and not app.quit
    app.handle_key(ord(" ") | 0x100)         # only the low byte counts (as cv2.waitKey's)
    assert app.paused
    app.handle_key(ord("Q"))
    assert app.quit
    assert app.save_snapshot() is None       # nothing shown yet: no snapshot


# ---- the output sink -------------------------------------------------------------------------

def prediction() -> Prediction:
    return Prediction("cat", "cat", 0.8123456789, [("cat", 0.8123456789), ("dog", 0.1)],
                      np.array([0.8, 0.1]))


def test_jsonl_row():
    row = jsonl_row(Frame(np.zeros((4, 4, 3), np.uint8), 7, 1.234567, truth="cat"), prediction(),
                    1.23456, (1, 2, 3, 4))
    assert row == {"frame": 7, "timestamp": 1.2346, "label": "cat", "class": "cat",
                   "confidence": 0.812346,
                   "top_k": [{"label": "cat", "confidence": 0.812346},
                             {"label": "dog", "confidence": 0.1}],
                   "ood_score": None, "unknown": False,
                   "inference_ms": 1.235, "roi": [1, 2, 3, 4], "truth": "cat"}


def test_sink_writes_rows_video_and_snapshots(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="cifarlab.live")
    sink = OutputSink(tmp_path / "out" / "p.jsonl", tmp_path / "out" / "v.mp4", tmp_path / "snaps")
    sink.open(fps=10)
    picture = np.full((48, 64, 3), 90, np.uint8)
    for i in range(3):
        frame = Frame(picture, i, i / 10)
        sink.write(frame, prediction() if i != 1 else None, 0.5, (0, 0, 8, 8), picture)
    snap = sink.snapshot(picture, 2)
    sink.close()
    rows = [json.loads(line) for line in (tmp_path / "out" / "p.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in rows] == [0, 2]          # frame 1 was not classified
    cap = cv2.VideoCapture(str(tmp_path / "out" / "v.mp4"))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 3 and cap.get(cv2.CAP_PROP_FPS) == 10
    cap.release()
    assert snap.parent == tmp_path / "snaps" and snap.name.endswith("-000002.png")
    assert cv2.imread(str(snap)).shape == picture.shape
    assert f"snapshot: {snap}" in caplog.text


def test_sink_without_outputs_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sink = OutputSink()
    sink.open()
    sink.write(Frame(np.zeros((4, 4, 3), np.uint8), 0, 0.0), prediction(), 1.0, (0, 0, 2, 2),
               np.zeros((4, 4, 3), np.uint8))
    sink.close()
    assert list(tmp_path.iterdir()) == []


def test_sink_says_which_path_it_cannot_write(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CifarlabError, match="cannot write"):
        OutputSink(jsonl=tmp_path / "file" / "p.jsonl").open()
    sink = OutputSink(record=tmp_path / "file" / "v.mp4")
    sink.open()
    with pytest.raises(CifarlabError, match="cannot write a video there"):
        sink.write(Frame(np.zeros((8, 8, 3), np.uint8), 0, 0.0), None, 0.0, (0, 0, 2, 2),
                   np.zeros((8, 8, 3), np.uint8))


# ---- the model swap --------------------------------------------------------------------------

class Loaded:
    """A stand-in predictor: only warmed up."""

    def __init__(self):
        self.warm = 0

    def warmup(self):
        self.warm += 1


def wait_for_load(models: ModelSwap):
    deadline = time.monotonic() + 10
    while True:
        load = models.poll()
        if load is not None:
            return load
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_swap_keeps_the_old_model_until_the_new_one_is_loaded(tmp_path, monkeypatch):
    old, new = Loaded(), Loaded()
    models = ModelSwap(LiveConfig(model=tmp_path / "a.keras", watch_model=False), old)
    models.start()
    assert old.warm == 1 and models.watcher is None and models.path == tmp_path / "a.keras"

    monkeypatch.setattr(models, "open_predictor", lambda path, swap=True: new)
    models.load(tmp_path / "b.keras", "teach")
    assert models.loading_kind() == "teach"
    load = wait_for_load(models)
    assert load.error is None and models.predictor is new and models.path == tmp_path / "b.keras"
    assert models.loading is None and models.poll() is None   # said once

    def broken(path, swap=True):
        raise CifarlabError("not a model")

    monkeypatch.setattr(models, "open_predictor", broken)
    models.load(tmp_path / "c.keras", "watch")
    load = wait_for_load(models)
    assert load.error == "not a model" and models.predictor is new
    assert models.path == tmp_path / "b.keras"


def test_swapped_in_keras_files_run_in_keras(monkeypatch, tmp_path):
    import cifarlab.live.swap as swap

    opened = []

    class Predictor:
        def __init__(self, classifier, *args):
            self.classifier = classifier

        def warmup(self):
            opened.append("warm")

    monkeypatch.setattr(swap, "open_classifier", lambda path, backend, *a, **k: (path, backend))
    monkeypatch.setattr(swap, "LivePredictor", Predictor)
    for backend, swapped, first in (("auto", "keras", "auto"), ("onnx", "keras", "onnx"),
                                    ("litert", "litert", "litert")):
        models = ModelSwap(LiveConfig(backend=backend))
        assert models.open_predictor(tmp_path / "m.keras").classifier[1] == swapped
        assert models.open_predictor(tmp_path / "m.keras", swap=False).classifier[1] == first
    assert models.open_predictor(tmp_path / "m.tflite").classifier[1] == "litert"
    assert opened == ["warm"] * 7                 # every opened model is warmed up


# ---- the heatmap -----------------------------------------------------------------------------

def test_live_blend_is_the_inference_heatmap_in_bgr():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    cam = rng.random((8, 8)).astype(np.float32)
    region = frame[10:42, 20:52].copy()
    blend(frame, (20, 10, 32, 32), cam)
    rgb = overlay_heatmap(np.ascontiguousarray(region[..., ::-1]), cam)
    np.testing.assert_array_equal(frame[10:42, 20:52], rgb[..., ::-1])
    assert HEATMAP_ALPHA == 0.45
    np.testing.assert_array_equal(overlay_heatmap(region, cam, alpha=0.0, bgr=True), region)
