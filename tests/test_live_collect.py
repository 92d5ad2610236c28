"""`cifarlab live --collect`: keys -> class folders, never overwriting, rate limit, the panel;
`t` -> a background training process -> the new model swapped in (or the old one kept); the
--model file watcher. The real window is in test_live_gui.py."""

from __future__ import annotations

import logging
import os
import sys
import time
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.trainer import fake_command, write_fake_trainer

from cifarlab.errors import CifarlabError
from cifarlab.live import collect as collect_module
from cifarlab.live.capture import Frame
from cifarlab.live.collect import Collector, class_list, parse_classes
from cifarlab.live.config import LiveConfig
from cifarlab.live.overlay import GREEN, RED, CollectPanel, OverlayState, draw_overlay
from cifarlab.live.predictor import UNCERTAIN
from cifarlab.live.swap import ModelWatcher
from cifarlab.live.teach import TrainingRun, fill_command, last_error


def relabel(src: Path, dst: Path, classes: list[str]) -> None:
    """Copy a .keras model file with other class names (the fake trainer's job, in-process)."""
    script = write_fake_trainer(dst.parent)
    data = dst.parent / "relabel-data"
    for name in classes:
        (data / name).mkdir(parents=True, exist_ok=True)
    import subprocess

    out = dst.parent / "relabel-out"
    subprocess.run([sys.executable, str(script), "--data", str(data), "--from", str(src),
                    "--out", str(out), "--sleep", "0"], check=True, capture_output=True)
    os.replace(out / "model.keras", dst)


def png_count(folder: Path) -> int:
    return len([p for p in folder.glob("*.png") if not p.name.startswith(".")])


class FakeClock:
    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


# ---- classes and keys ------------------------------------------------------------------

def test_parse_classes():
    assert parse_classes(" mug, phone ,,background ") == ["mug", "phone", "background"]
    assert parse_classes(None) == [] == parse_classes("")


def test_class_list_existing_folders_first_then_named(tmp_path):
    assert class_list(tmp_path / "new", ["mug", "phone", "background"]) == ["mug", "phone", "background"]
    (tmp_path / "phone").mkdir()
    (tmp_path / "background").mkdir()
    (tmp_path / ".cifarlab-runs").mkdir()          # hidden: not a class
    (tmp_path / "notes.txt").write_text("x")
    assert class_list(tmp_path, ["mug", "phone", "background"]) == ["background", "phone", "mug"]
    assert class_list(tmp_path, []) == ["background", "phone"]
    (tmp_path / "classes.txt").write_text("phone\nbackground\nmug\n")   # its order wins
    assert class_list(tmp_path, ["mug"]) == ["phone", "background", "mug"]


@pytest.mark.parametrize("setup, named, message", [
    (lambda d: None, [], "no classes"),
    (lambda d: (d / "train").mkdir(parents=True), ["a"], "train/val/test"),
    (lambda d: None, [f"c{i}" for i in range(10)], "only keys 1-9"),
    (lambda d: None, ["a/b"], "cannot be a folder name"),
    (lambda d: None, [".hidden"], "cannot be a folder name"),
    (lambda d: None, ["a", "a"], "twice"),
    (lambda d: (d.mkdir(), (d / "classes.txt").write_text("a\nb\n")), ["c"], "classes.txt does not list c"),
])
def test_class_list_errors(tmp_path, setup, named, message):
    root = tmp_path / "dir"
    setup(root)
    with pytest.raises(CifarlabError, match=message):
        class_list(root, named)


def test_classes_need_collect():
    with pytest.raises(CifarlabError, match="--collect"):
        LiveConfig(classes=("a",))


def test_keys_map_to_classes(tmp_path):
    c = Collector(tmp_path, ["mug", "phone", "background"])
    assert [c.class_for_key(ord(k)) for k in "1234"] == ["mug", "phone", "background", None]
    assert c.class_for_key(ord("0")) is None


def test_background_hint(tmp_path):
    assert Collector(tmp_path / "a", ["mug", "phone"]).background_hint == \
        "tip: add a background class (e.g. --classes mug,phone,background)"
    for name in ("background", "Nothing", "none"):
        assert Collector(tmp_path / name, ["mug", name]).background_hint is None


# ---- saving ------------------------------------------------------------------------------

def test_collect_into_a_folder_that_already_has_files(tmp_path, monkeypatch):
    """An existing DIR is added to: its files are counted and kept byte for byte, and a new
    crop never takes an existing name (here the very name it would have used)."""
    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2025, 1, 2, 3, 4, 5)

    monkeypatch.setattr(collect_module, "datetime", Frozen)
    root = tmp_path / "things"
    (root / "mug").mkdir(parents=True)
    taken = root / "mug" / "20250102-030405-001.png"
    taken.write_bytes(b"not overwritten")
    (root / "mug" / "old.jpg").write_bytes(b"jpeg")
    (root / "mug" / ".tmp-junk.png").write_bytes(b"")     # hidden: not counted
    (root / "phone").mkdir()
    (root / "phone" / "p.png").write_bytes(b"p")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}

    c = Collector(root, ["mug", "phone", "background"])
    assert c.classes == ["mug", "phone", "background"]
    assert c.counts == {"mug": 2, "phone": 1, "background": 0}
    crop = np.random.default_rng(0).integers(0, 256, (150, 120, 3), dtype=np.uint8)
    saved = c.save("mug", crop)
    assert saved.path == root / "mug" / "20250102-030405-002.png"
    assert (saved.key, saved.name, saved.count) == (1, "mug", 3)
    assert np.array_equal(cv2.imread(str(saved.path)), crop)   # full resolution, lossless
    saved = c.save("background", crop[:50])                    # a class folder is made on use
    assert saved.path == root / "background" / "20250102-030405-001.png"
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(root.rglob(".tmp-*")) == [root / "mug" / ".tmp-junk.png"]  # no leftovers
    assert c.counts == {"mug": 3, "phone": 1, "background": 1}
    assert Collector(root, []).counts == {"background": 1, "mug": 3, "phone": 1}


def test_held_key_saves_a_few_crops_a_second(tmp_path):
    clock = FakeClock()
    c = Collector(tmp_path, ["a", "b"], clock=clock)
    crop = np.zeros((20, 20, 3), np.uint8)
    saved = []
    for _ in range(100):                   # auto-repeat: a key event every 20 ms for 2 s
        saved.append(c.save("a", crop) is not None)
        clock.t += 0.02
    assert sum(saved) == 8                 # 4 a second
    assert c.save("b", crop) is not None   # another class is not held back
    assert png_count(tmp_path / "a") == 8 and c.counts["a"] == 8


def test_trainable(tmp_path):
    c = Collector(tmp_path, ["a", "b", "background"], clock=FakeClock())
    assert "at least 2 classes" in c.trainable()[1]
    crop = np.zeros((8, 8, 3), np.uint8)
    for name in ("a", "b"):
        for _ in range(3):
            c.clock.t += 1
            c.save(name, crop)
    assert c.trainable() == (["a", "b"], None)
    (tmp_path / "background").mkdir()       # an empty class folder would fail the trainer
    assert "background" in c.trainable()[1]


# ---- overlay -------------------------------------------------------------------------------

def test_overlay_shows_keys_counts_last_crop_hint_and_teach_line():
    frame = np.full((720, 1280, 3), 128, np.uint8)
    crop = np.zeros((300, 300, 3), np.uint8)
    crop[:] = (255, 0, 255)                 # magenta: easy to find
    panel = CollectPanel(rows=[(1, "mug", 12), (2, "phone", 30)], last_crop=crop,
                         last_name="mug", hint="tip: add a background class")
    out = draw_overlay(frame.copy(), OverlayState(roi=(400, 120, 480, 480), collect=panel,
                                                  teach=("training... 6 s", RED)))
    left = out[:260, :400]
    assert (left == (255, 0, 255)).all(axis=2).sum() > 2000          # the thumbnail
    assert (np.abs(left.astype(int) - GREEN).sum(axis=2) < 60).any()  # the last class in green
    assert (np.abs(out[560:680].astype(int) - RED).sum(axis=2) < 60).sum() > 50  # status line
    plain = draw_overlay(frame.copy(), OverlayState(roi=(400, 120, 480, 480)))
    assert (plain[:260, :400] == 128).mean() > 0.99


# ---- the training process and the watcher ------------------------------------------------

def test_fill_command_and_last_error(tmp_path):
    argv = fill_command(("{python}", "-m", "x", "--data", "{data}", "--from={from}", "{out}/m"),
                        tmp_path / "d", tmp_path / "p.keras", tmp_path / "o")
    assert argv == [sys.executable, "-m", "x", "--data", str(tmp_path / "d"),
                    f"--from={tmp_path / 'p.keras'}", f"{tmp_path / 'o'}/m"]
    assert last_error("Epoch 1\ncifarlab train: error: no images\n") == "no images"
    assert last_error("Traceback...\nValueError: boom\n") == "ValueError: boom"
    assert last_error("") == ""


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_training_run_success_and_failure(tmp_path, tiny_model):
    script = write_fake_trainer(tmp_path)
    data = tmp_path / "data"
    for name in ("x", "y", "z"):
        (data / name).mkdir(parents=True)
    run = TrainingRun(fake_command(script), data, tiny_model, data / ".cifarlab-runs")
    assert run.out.parent == data / ".cifarlab-runs" and run.poll() is None
    wait_for(lambda: run.poll() is not None)
    assert run.poll() == 0 and run.model_path.is_file() and run.epochs() == 2
    assert "done" in run.output()

    bad = TrainingRun(fake_command(script, "fail"), data, tiny_model, data / ".cifarlab-runs")
    assert bad.out != run.out                     # same second: a new run folder
    wait_for(lambda: bad.poll() is not None)
    assert bad.poll() == 2 and bad.error() == "simulated failure (the trainer gave up)"

    with pytest.raises(CifarlabError, match="cannot start the training command"):
        TrainingRun(("/no/such/trainer", "{out}"), data, tiny_model, data / ".cifarlab-runs")


def test_model_watcher(tmp_path):
    path = tmp_path / "m.keras"
    path.write_bytes(b"v1")
    clock, wall = FakeClock(0.0), FakeClock(time.time() + 10)
    w = ModelWatcher(path, interval=1.0, settle=0.5, clock=clock, wall=wall)
    clock.t = 1.0
    assert not w.changed()                         # unchanged
    path.write_bytes(b"version 2")                 # fresh mtime (wall is 10 s later): settled
    assert not w.changed()                         # not yet time to look
    clock.t = 2.0
    assert w.changed()
    clock.t = 3.0
    assert not w.changed()                         # said once
    path.write_bytes(b"v3 being copied")
    wall.t = time.time()                           # modified just now: maybe still being written
    clock.t = 4.0
    assert not w.changed()
    clock.t = 5.0
    assert w.changed()                             # the same size and time a second later
    path.unlink()
    clock.t = 6.0
    assert not w.changed()                         # a missing file is no change to load


# ---- the app, headless (no window, no keyboard: keys are fed to handle_key) ----------------

def make_app(tmp_path, model, **changes):
    from cifarlab.inference import open_classifier
    from cifarlab.live.app import LiveApp
    from cifarlab.live.predictor import LivePredictor

    changes.setdefault("backend", "keras")
    config = LiveConfig(model=Path(model), source="demo", window=False, **changes)
    return LiveApp(config, LivePredictor(open_classifier(model, "keras"), config.smoothing,
                                         config.threshold, config.top_k))


def frame_of(value: int, index: int = 0) -> Frame:
    image = np.full((240, 320, 3), value, np.uint8)
    image[60:180, 100:220] = (10, 200, value)
    return Frame(image, index, index / 30)


def run_until(app, condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    i = 0
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        app.poll_background()
        app.process(frame_of(40, i))
        i += 1
        time.sleep(0.02)


def test_app_collects_trains_and_swaps_then_keeps_the_old_model_on_failure(tmp_path, tiny_model, caplog):
    caplog.set_level(logging.INFO, logger="cifarlab.live")
    script = write_fake_trainer(tmp_path)
    root = tmp_path / "things"
    app = make_app(tmp_path, tiny_model, collect=root, classes=("roundy", "boxy", "background"),
                   threshold=0.99, train_command=fake_command(script))
    app.process(frame_of(40))
    x, y, w, h = app.roi
    app.collector.clock = clock = FakeClock()
    for key in "1231":
        clock.t += 1.0
        app.handle_key(ord(key))
    app.handle_key(ord("7"))            # no class on key 7: said on screen
    assert "no class on key 7" in app.teach_line()[0]
    assert png_count(root / "roundy") == 2 and png_count(root / "boxy") == 1
    crop = cv2.imread(str(min((root / "boxy").glob("*.png"))))
    assert crop.shape == (h, w, 3)                   # full resolution, not the model's 32x32
    assert np.array_equal(crop, frame_of(40).image[y : y + h, x : x + w])

    app.handle_key(ord("t"))             # too few images yet
    assert app.teacher.run is None and "at least 3 images" in app.teach_line()[0]
    for key in "123123123":
        clock.t += 1.0
        app.handle_key(ord(key))
    old = app.predictor
    app.handle_key(ord("t"))
    assert app.teacher.run is not None
    assert app.teach_line()[0].startswith("training... ")
    run_until(app, lambda: app.predictor is not old)
    assert app.predictor.class_names == ["background", "boxy", "roundy"]
    assert app.teach_line() == ("new model: background, boxy, roundy", GREEN)
    assert app.model_path == app.collector.root / ".cifarlab-runs" / app.model_path.parent.name / "model.keras"
    _, pred, _ = app.process(frame_of(40))
    assert app.predictor.threshold == 0.99                      # under it: 'uncertain', as before
    assert (pred.label == UNCERTAIN) == (pred.confidence < 0.99)
    out = caplog.text
    caplog.clear()
    assert "collect: 2 boxy -> " in out and "teach: new model live " in out
    demo = Frame(frame_of(40).image, 99, 3.3, truth="circle", decisive=True)
    app.process(demo)                                # a demo truth of the old classes:
    assert app.truth is None and app.score == (0, 0)   # neither shown nor scored

    # the next run starts from the model running now, and fails: the new model stays
    app.config.train_command = fake_command(script, "fail")
    current = app.predictor
    app.handle_key(ord("t"))
    assert str(app.model_path) in app.teacher.run.argv
    run_until(app, lambda: app.teacher.run is None)
    assert app.predictor is current
    assert app.teach_line() == ("training failed: simulated failure (the trainer gave up)", RED)
    assert "teach: failed (exit 2)" in caplog.text


def test_app_reloads_a_changed_model_file(tmp_path, tiny_model, caplog):
    caplog.set_level(logging.INFO, logger="cifarlab.live")
    path = tmp_path / "live.keras"
    path.write_bytes(Path(tiny_model).read_bytes())
    app = make_app(tmp_path, path, backend="auto")
    app.models.watcher = ModelWatcher(path, interval=0.05, settle=0.0)
    old = app.predictor
    path.write_bytes(b"broken")                       # a bad file: said, the old model stays
    run_until(app, lambda: app.message is not None)
    assert app.predictor is old and app.teach_line()[1] == RED
    relabel(Path(tiny_model), path, ["one", "two", "three"])
    run_until(app, lambda: app.predictor is not old)
    assert app.predictor.class_names == ["one", "three", "two"]
    assert app.predictor.backend == "keras"     # swapped in without the LiteRT conversion stall
    assert f"model: reloaded {path}: one, three, two" in caplog.text
