"""`cifarlab calibrate`: the temperature refitted on other photos lowers their log-loss, changes
no prediction and no open-set score, and bad data leaves the file as it was."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from sklearn.metrics import log_loss

from cifarlab.cli.main import main
from cifarlab.data import load_dataset
from cifarlab.inference import open_classifier
from cifarlab.models.io import read_metadata

NOISE = np.random.default_rng(7).integers(0, 256, (32, 32, 32, 3), dtype=np.uint8)


def test_calibrate_refits_the_temperature_and_keeps_the_mirrored_score(tiny_model, shapes_folder, tmp_path, capsys):
    from helpers.images import write_image_folder

    photos = write_image_folder(tmp_path / "photos", {"train": 30, "val": 150}, size=32)
    path = shutil.copy(tiny_model, tmp_path / "model.keras")
    assert main(["openset", "--model", str(path), "--data", str(shapes_folder), "--score", "energy",
                 "--mirror"]) == 0
    before = open_classifier(path, "keras")
    probs, scores = before.predict_scored(NOISE)
    out = tmp_path / "calibrated.keras"
    assert main(["calibrate", "--model", str(path), "--data", str(photos), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "temperature 1.000 ->" in printed and "150 validation images" in printed
    previous, after = (float(x) for x in printed.split("log-loss ")[1].split(" on ")[0].split(" -> "))
    assert after <= previous
    # the figures are those of the files themselves on the validation photos
    val = load_dataset(photos, image_size=32, use_cache=False).split("val")
    for file, expected in ((path, previous), (out, after)):
        val_probs = open_classifier(file, "keras").predict(val.images)
        assert log_loss(val.labels, val_probs, labels=[0, 1, 2]) == pytest.approx(expected, abs=2e-4)
    meta = read_metadata(out)
    assert meta.val_metrics["temperature"] != 1.0 and meta.open_set == before.metadata.open_set
    calibrated = open_classifier(out, "keras")
    new_probs, new_scores = calibrated.predict_scored(NOISE)
    np.testing.assert_array_equal(new_probs.argmax(1), probs.argmax(1))
    assert not np.allclose(new_probs, probs, atol=1e-4)
    np.testing.assert_allclose(new_scores, scores, rtol=1e-5, atol=1e-5)  # score and mirror kept


def test_calibrate_with_too_few_validation_images_is_an_error_and_writes_nothing(tiny_model, tmp_path, capsys):
    from helpers.images import write_flat

    few = write_flat(tmp_path / "few", {"circle": 10, "square": 10})
    path = shutil.copy(tiny_model, tmp_path / "model.keras")
    before = (tmp_path / "model.keras").read_bytes()
    assert main(["calibrate", "--model", str(path), "--data", str(few)]) != 0
    assert "a temperature needs at least 100" in capsys.readouterr().err
    assert (tmp_path / "model.keras").read_bytes() == before
