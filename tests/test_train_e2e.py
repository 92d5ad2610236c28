"""Training end to end: `train()` on a non-CIFAR image folder and on a CIFAR-10 subset."""

from __future__ import annotations

import csv
import json

import keras
import numpy as np
import pytest
from helpers.images import SHAPE_CLASSES

from cifarlab.models.openset import without_ood_score
from cifarlab.cli.main import main
from cifarlab.data import load_dataset, with_validation
from cifarlab.data.stats import channel_stats
from cifarlab.inference import open_classifier
from cifarlab.models.io import read_metadata
from cifarlab.training.config import TrainConfig
from cifarlab.training.train import train


def accuracy_on_test_split(model_path, data_source, image_size: int, limit: int | None = None) -> float:
    """The model file's accuracy on the source's test split (a seeded subset of `limit` images)."""
    clf = open_classifier(model_path)
    test = load_dataset(data_source, image_size=image_size).split("test")
    # A seeded random subset: folder trees list the images class by class.
    pick = np.random.default_rng(0).permutation(len(test))[:limit]
    images, labels = test.images[pick], test.labels[pick]
    return float((clf.predict(images).argmax(1) == labels).mean())


class KeepTrainedWeights(keras.callbacks.Callback):
    """The in-memory network's weights when fit() ends (after Keras's finalize_variable_values)."""

    def on_train_end(self, logs=None):
        self.weights = [np.array(w) for w in self.model.get_weights()]


@pytest.mark.parametrize("model, options", [
    ("fast", dict(epochs=3, batch_size=32, lr=0.05)),
    # The baseline learns slowly on 280 images: small batches (BN statistics settle) and a higher lr.
    ("baseline", dict(epochs=3, batch_size=16, lr=3e-3, val_fraction=0.05, seed=1)),
])
@pytest.mark.slow
def test_train_on_shapes_folder(shapes_folder, tmp_path, model, options):
    out = tmp_path / model
    trained = KeepTrainedWeights()
    summary = train(TrainConfig(data=str(shapes_folder), model=model, out=out, image_size=32,
                                quiet=True, **options), extra_callbacks=[trained])
    assert summary["epochs_run"] == options["epochs"]
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(summary))

    # the metadata records the run's config, data and normalisation
    meta = read_metadata(out / "model.keras")
    assert list(meta.class_names) == SHAPE_CLASSES and meta.input_size == (32, 32)
    assert meta.model == model and meta.recipe["model"] == model
    assert {k: meta.recipe[k] for k in options} == options
    assert meta.recipe["image_size"] == 32 and meta.recipe["data"] == str(shapes_folder)
    assert meta.dataset_fingerprint == summary["dataset_fingerprint"]
    assert meta.command.startswith("cifarlab") and meta.version
    data = with_validation(load_dataset(shapes_folder, image_size=32), meta.recipe["val_fraction"],
                           meta.recipe["seed"])
    train_split, val = data.split("train"), data.split("val")
    assert (summary["train_images"], summary["val_images"]) == (len(train_split), len(val))
    assert len(train_split) + len(val) == 300 and len(val) > 0
    mean, std = channel_stats(train_split.images)
    np.testing.assert_allclose(meta.mean, mean, rtol=1e-5)
    np.testing.assert_allclose(meta.std, std, rtol=1e-5)

    # the saved model is the trained one: its weights, and the validation figures measured in memory
    saved = without_ood_score(keras.saving.load_model(out / "model.keras", safe_mode=True))
    assert len(saved.get_weights()) == len(trained.weights)
    for got, want in zip(saved.get_weights(), trained.weights):
        np.testing.assert_array_equal(got, want)
    assert meta.val_metrics == summary["val_metrics"] and meta.val_metrics["temperature"] > 0
    probs = open_classifier(out / "model.keras", backend="keras").predict(val.images).astype(np.float64)
    assert float((probs.argmax(1) == val.labels).mean()) == meta.val_metrics["accuracy"]
    log_loss = -np.log(np.clip(probs[np.arange(len(val)), val.labels], 1e-12, 1)).mean()
    assert log_loss == pytest.approx(meta.val_metrics["log_loss"], rel=1e-4)

    # log.csv: one row per epoch, and the training loss fell
    with open(out / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(options["epochs"]))
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert any((out / "tensorboard").rglob("events.out.tfevents.*"))

    # it learned: chance is 1/3 on the held-out test split
    accuracy = accuracy_on_test_split(out / "model.keras", shapes_folder, 32)
    print(f"{model}: validation {meta.val_metrics}, test accuracy {accuracy:.3f}")
    assert accuracy > 0.8 and meta.val_metrics["accuracy"] > 0.7, (accuracy, meta.val_metrics)


@pytest.mark.parametrize("model, image_size, options, at_least", [
    # The baseline's BatchNorm statistics (momentum 0.99) need a few hundred steps before
    # inference mode is any good (after 32 steps it scores ~12% though it trains at 20-26%), so it
    # gets 384 small steps on 16x16 images (~35%); fast (BN momentum 0.6) scores ~42% at 32x32.
    # Chance is 10%; each bound leaves about 10 points for run-to-run noise.
    ("baseline", 16, dict(limit_train=2048, batch_size=16, epochs=3), 0.25),
    ("fast", 32, dict(limit_train=2048, batch_size=128, lr=0.2, warmup_epochs=0.5, epochs=2), 0.32),
])
@pytest.mark.slow
def test_short_run_on_cifar10_subset_beats_chance(cifar_sample, tmp_path, model, image_size, options,
                                                  at_least):
    out = tmp_path / model
    summary = train(TrainConfig(data=str(cifar_sample), model=model, out=out, image_size=image_size,
                                val_fraction=0.1, quiet=True, **options))
    assert summary["train_images"] == options["limit_train"] and summary["epochs_run"] == options["epochs"]
    accuracy = accuracy_on_test_split(out / "model.keras", cifar_sample, image_size)
    print(f"{model}: test accuracy {accuracy:.3f}")
    assert accuracy > at_least, accuracy
    assert read_metadata(out / "model.keras").val_metrics["accuracy"] > at_least - 0.05


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
