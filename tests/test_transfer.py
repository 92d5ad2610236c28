"""`cifarlab train --from MODEL`: head and finetune make ordinary cifarlab models (open_classifier
loads them, export accepts them), the parent's input size is enforced, --from alone uses the
default model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.images import write_flat

from cifarlab.cli.main import main
from cifarlab.data import load_dataset
from cifarlab.inference import open_classifier
from cifarlab.models.io import read_metadata


@pytest.fixture(scope="module")
def new_classes(tmp_path_factory) -> Path:
    """Two classes, 15 images each, ROOT/<class>/<image> (32 px, the tiny model's input)."""
    return write_flat(tmp_path_factory.mktemp("new") / "flat", {"circle": 15, "triangle": 15}, seed=7)


def held_out_accuracy(run: Path, root: Path) -> float:
    test = load_dataset(root, split_record=run / "splits.json", use_cache=False).split("test")
    clf = open_classifier(run / "model.keras", backend="keras")
    return float((clf.predict(test.images).argmax(1) == test.labels).mean())


@pytest.mark.parametrize("mode", ["head", "finetune"])
@pytest.mark.slow
def test_from_makes_an_ordinary_model_that_loads_and_exports(tiny_model, new_classes, tmp_path, mode):
    out = tmp_path / mode
    assert main(["train", "--data", str(new_classes), "--from", str(tiny_model), "--transfer", mode,
                 "--out", str(out), "--quiet"]) == 0
    meta = read_metadata(out / "model.keras")
    parent = read_metadata(tiny_model)
    assert meta.class_names == ("circle", "triangle") and meta.input_size == parent.input_size
    assert meta.mean == parent.mean and meta.std == parent.std
    assert meta.model == "fast" and meta.parent == str(tiny_model)
    assert meta.recipe["transfer"] == mode and meta.splits["counts"] == {"train": 22, "val": 4, "test": 4}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["transfer"] == mode and summary["train_images"] == 22
    assert (summary["curves"] == "curves.png") == (mode == "finetune")
    assert held_out_accuracy(out, new_classes) == 1.0
    images = load_dataset(new_classes, split_record=out / "splits.json", use_cache=False).split("test").images
    expected = open_classifier(out / "model.keras", backend="keras").predict(images)
    np.testing.assert_allclose(open_classifier(out / "model.keras", backend="litert").predict(images),
                               expected, atol=1e-4)
    exported = tmp_path / f"{mode}.tflite"
    assert main(["export", "--model", str(out / "model.keras"), "--format", "litert",
                 "--out", str(exported)]) == 0
    exported_model = open_classifier(exported)
    assert exported_model.class_names == ["circle", "triangle"]
    np.testing.assert_allclose(exported_model.predict(images), expected, atol=1e-4)


def test_from_with_another_image_size_is_a_one_line_error(tiny_model, new_classes, tmp_path, capsys):
    code = main(["train", "--data", str(new_classes), "--from", str(tiny_model), "--image-size", "48",
                 "--out", str(tmp_path / "run")])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "--image-size 48" in error and "32x32" in error and "drop --image-size" in error
    assert not (tmp_path / "run").exists()


def test_from_alone_uses_the_default_model(tiny_model, new_classes, tmp_path, monkeypatch):
    monkeypatch.setenv("CIFARLAB_MODEL", str(tiny_model))
    out = tmp_path / "run"
    assert main(["train", "--data", str(new_classes), "--from", "--transfer", "head",
                 "--out", str(out), "--quiet"]) == 0
    assert read_metadata(out / "model.keras").parent == str(tiny_model)


def test_transfer_needs_from(new_classes, tmp_path, capsys):
    assert main(["train", "--data", str(new_classes), "--transfer", "head",
                 "--out", str(tmp_path / "run")]) == 2
    assert "--transfer applies with --from" in capsys.readouterr().err
