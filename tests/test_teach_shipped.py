"""Teaching new classes from the shipped model itself: `train --from` with default flags on real
photos (held-out accuracy, no divergence), and `t` in the live app with the real trainer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers.paths import SHARED_REAL, SHIPPED_MODEL
from test_live_collect import FakeClock, frame_of, make_app, run_until

from cifarlab.cli.main import main
from cifarlab.data.images import read_image_rgb, resize_rgb
from cifarlab.inference import open_classifier

CLASSES = ("acorn", "bannister", "goldfish", "jellyfish", "sombrero")
TRAIN_IMAGES, HELD_OUT = 20, 50


def real_photos(names: tuple[str, ...], first: int, count: int) -> dict[str, list[Path]]:
    if not SHARED_REAL.is_dir():
        pytest.skip(f"{SHARED_REAL} is absent (CI provides ../shared/datasets)")
    root = SHARED_REAL / "other-classes"
    return {name: sorted((root / name).iterdir())[first:first + count] for name in names}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_finetune_from_the_shipped_model_with_default_flags(tmp_path):
    data = tmp_path / "my_things"
    for name, paths in real_photos(CLASSES, 0, TRAIN_IMAGES).items():
        (data / name).mkdir(parents=True)
        for path in paths:
            shutil.copy(path, data / name)
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), "--from", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parent"] == str(SHIPPED_MODEL) and summary["rollbacks"] == []

    classifier = open_classifier(out / "model.keras", "keras")
    held_out = real_photos(CLASSES, TRAIN_IMAGES, HELD_OUT)
    images = np.stack([resize_rgb(read_image_rgb(p), classifier.input_size)
                       for paths in held_out.values() for p in paths])
    truth = np.repeat([classifier.class_names.index(n) for n in held_out], HELD_OUT)
    predicted = classifier.predict(images).argmax(1)
    assert (predicted == truth).mean() >= 0.5  # chance: 0.2 (docs/results.md: learning new classes)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_t_in_the_live_app_teaches_from_the_shipped_model(tmp_path):
    root = tmp_path / "things"
    app = make_app(tmp_path, SHIPPED_MODEL, collect=root, classes=("dark", "bright", "background"))
    app.collector.clock = clock = FakeClock()
    for value, key in ((30, "1"), (220, "2"), (120, "3")):
        app.process(frame_of(value))
        for _ in range(4):
            clock.t += 1.0
            app.handle_key(ord(key))
    old = app.predictor
    app.handle_key(ord("t"))
    assert app.teacher.run is not None, app.teach_line()
    run_until(app, lambda: app.predictor is not old or "failed" in app.teach_line()[0], timeout=240)
    assert app.predictor is not old, app.teach_line()
    assert app.predictor.class_names == ["background", "bright", "dark"]
    assert app.teach_line()[0] == "new model: background, bright, dark"
