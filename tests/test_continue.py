"""`cifarlab train --from MODEL --recipe R` with a recipe that trains from scratch: R's network
starts from every weight of MODEL up to its logits, and a mismatched parent is a one-line error."""

from __future__ import annotations

import numpy as np
import pytest

from cifarlab.cli.main import main
from cifarlab.models.io import load_keras_model
from cifarlab.models.metadata import LOGITS


def classifier_weights(path, trainable: bool = False) -> list[np.ndarray]:
    import keras

    model, _ = load_keras_model(path)
    classifier = keras.Model(model.input, model.get_layer(LOGITS).output)
    return [w.numpy() for w in classifier.trainable_weights] if trainable else classifier.get_weights()


def train(data, parent, out, *extra) -> int:
    return main(["train", "--data", str(data), "--from", str(parent), "--recipe", "fast",
                 "--out", str(out), "--quiet", *extra])


def test_a_recipe_from_a_model_starts_from_all_its_weights(open_model, shapes_folder, tmp_path):
    """With no training step the child is the parent: the open-set layer and temperature are the
    child's own, every other weight the parent's."""
    out = tmp_path / "run"
    assert train(shapes_folder, open_model, out, "--widths", "16,32,32", "--epochs", "0") == 0
    child, parent = classifier_weights(out / "model.keras"), classifier_weights(open_model)
    assert [w.shape for w in child] == [w.shape for w in parent]
    for mine, theirs in zip(child, parent):
        np.testing.assert_array_equal(mine, theirs)
    _, meta = load_keras_model(out / "model.keras")
    assert meta.parent == str(open_model) and meta.recipe["transfer"] is None


@pytest.mark.slow
def test_a_recipe_from_a_model_trains_on_and_can_mix_the_parent_back_in(tiny_model, shapes_folder, tmp_path):
    flags = ["--widths", "16,32,32", "--epochs", "2", "--batch-size", "32", "--lr", "0.05", "--seed", "1"]
    assert train(shapes_folder, tiny_model, tmp_path / "plain", *flags) == 0
    assert train(shapes_folder, tiny_model, tmp_path / "mixed", *flags, "--keep-parent", "0.25") == 0
    plain, mixed, parent = (classifier_weights(p, trainable=True) for p in
                            (tmp_path / "plain" / "model.keras", tmp_path / "mixed" / "model.keras", tiny_model))
    assert len(plain) == len(parent) > 10
    assert all(not np.array_equal(a, b) for a, b in zip(plain, parent))
    for trained, mix, theirs in zip(plain, mixed, parent):  # training is deterministic on CPU
        np.testing.assert_allclose(mix, 0.75 * trained + 0.25 * theirs, rtol=1e-5, atol=1e-6)


def test_keep_parent_needs_a_model_to_go_on_from(shapes_folder, tmp_path, capsys):
    assert main(["train", "--data", str(shapes_folder), "--keep-parent", "0.3", "--epochs", "0",
                 "--out", str(tmp_path / "run")]) == 2
    assert "add --from MODEL with a recipe that trains from scratch" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("recipe, expected", [
    ("fast", "do not fit the network of --recipe fast; give the parent's --widths"),
    ("baseline", "is a fast model and --recipe baseline trains baseline"),
])
def test_a_parent_that_does_not_fit_the_recipe_is_a_one_line_error(tiny_model, shapes_folder, tmp_path,
                                                                   capsys, recipe, expected):
    assert main(["train", "--data", str(shapes_folder), "--from", str(tiny_model), "--recipe", recipe,
                 "--epochs", "0", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and expected in error
    assert not (tmp_path / "run").exists()


def test_a_parent_of_other_classes_is_a_one_line_error(tiny_model, tmp_path, capsys):
    from helpers.images import write_flat

    other = write_flat(tmp_path / "flat", {"circle": 12, "triangle": 12}, seed=3)
    assert train(other, tiny_model, tmp_path / "run", "--widths", "16,32,32", "--epochs", "0") == 2
    error = capsys.readouterr().err.strip()
    assert "the data has circle, triangle" in error and "drop --recipe" in error


def test_a_recipe_that_goes_on_training_needs_from(shapes_folder, tmp_path, capsys):
    assert main(["train", "--data", str(shapes_folder), "--recipe", "camera-tune",
                 "--out", str(tmp_path / "run")]) == 2
    assert "add --from MODEL" in capsys.readouterr().err
