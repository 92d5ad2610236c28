"""Training end to end: `train()` on a non-CIFAR image folder and on a CIFAR-10 subset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cifarlab.cli.main import main
from cifarlab.data import load_dataset
from cifarlab.inference import open_classifier
from cifarlab.models.io import read_metadata
from cifarlab.training.config import TrainConfig
from cifarlab.training.train import train

SHAPES = ["circle", "square", "triangle"]


def test_accuracy(model_path, data_source, image_size: int, limit: int | None = None) -> float:
    clf = open_classifier(model_path)
    test = load_dataset(data_source, image_size=image_size).split("test")
    # A seeded random subset: folder trees list the images class by class.
    pick = np.random.default_rng(0).permutation(len(test))[:limit]
    images, labels = test.images[pick], test.labels[pick]
    return float((clf.predict(images).argmax(1) == labels).mean())


test_accuracy.__test__ = False  # a helper, not a test


@pytest.mark.parametrize("model, options", [
    ("fast", dict(epochs=3, batch_size=32, lr=0.05)),
    # The baseline learns slowly on 280 images: small batches (BN statistics settle) and a higher lr.
    ("baseline", dict(epochs=3, batch_size=16, lr=3e-3, val_fraction=0.05, seed=1)),
])
def test_train_on_shapes_folder(shapes_folder, tmp_path, model, options):
    out = tmp_path / model
    summary = train(TrainConfig(data=str(shapes_folder), model=model, out=out, image_size=32,
                                quiet=True, **options))
    assert summary["epochs_run"] == options["epochs"]
    meta = read_metadata(out / "model.keras")
    assert list(meta.class_names) == SHAPES
    assert meta.input_size == (32, 32)
    assert len(meta.mean) == len(meta.std) == 3 and all(s > 0 for s in meta.std)
    assert meta.model == model and meta.dataset_fingerprint == summary["dataset_fingerprint"]
    assert meta.command.startswith("cifarlab") and meta.version
    assert 0 <= meta.val_metrics["accuracy"] <= 1
    lines = (out / "log.csv").read_text().splitlines()
    assert lines[0].startswith("epoch") and len(lines) == 1 + options["epochs"]
    assert any((out / "tensorboard").rglob("events.out.tfevents.*"))
    assert json.loads((out / "summary.json").read_text())["model"] == model
    assert test_accuracy(out / "model.keras", shapes_folder, 32) > 0.6


@pytest.mark.parametrize("model, image_size, options", [
    # The baseline's BatchNorm statistics (momentum 0.99) need a few hundred steps before
    # inference mode is any good (after 32 steps it scores ~12% though it trains at 20-26%), so it
    # gets 384 small steps on 16x16 images (~30%); fast (BN momentum 0.6) scores ~40% at 32x32.
    ("baseline", 16, dict(limit_train=2048, batch_size=16, epochs=3)),
    ("fast", 32, dict(limit_train=2048, batch_size=128, lr=0.2, warmup_epochs=0.5, epochs=2)),
])
def test_short_run_on_cifar10_subset_beats_chance(shared_cifar, tmp_path, model, image_size, options):
    out = tmp_path / model
    train(TrainConfig(data=str(shared_cifar), model=model, out=out, image_size=image_size,
                      val_fraction=0.01, quiet=True, **options))
    accuracy = test_accuracy(out / "model.keras", shared_cifar, image_size, limit=1000)
    print(f"{model}: test accuracy {accuracy:.3f}")
    assert accuracy > 0.2, accuracy


def test_train_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--data", "--model", "--out", "--resume", "--seed", "--strategy", "--epochs",
                   "--batch-size", "--lr", "--limit-train", "--flip"):
        assert option in text


def test_resume_without_checkpoint_is_a_one_line_error(shapes_folder, tmp_path, capsys):
    code = main(["train", "--data", str(shapes_folder), "--image-size", "32",
                 "--out", str(tmp_path / "run"), "--resume", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "--resume" in err and "no checkpoint" in err
