"""Named recipes: declared once, inheriting, each printable with where its values come from."""

from __future__ import annotations

import pytest

from cifarlab.cli.main import main
from cifarlab.errors import CifarlabError
from cifarlab.training import recipes as recipes_module
from cifarlab.training.config import TrainConfig, check_recipes
from cifarlab.training.recipes import declare, get_recipe, recipes


def rows(text: str) -> dict[str, tuple[str, str]]:
    """flag -> (value, source) of a --print-config table."""
    found = {}
    for line in text.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and not line.startswith("("):
            value, _, source = parts[1].rpartition("  ")
            found[parts[0]] = (value.strip(), source.strip())
    return found


@pytest.mark.parametrize("name", list(recipes()))
def test_every_recipe_prints_its_resolved_config(name, capsys):
    parent = ["--from"] if get_recipe(name).continues else []  # the shipped model
    assert main(["train", "--recipe", name, "--print-config", *parent]) == 0
    table = rows(capsys.readouterr().out)
    assert table["recipe"][0] == name
    for field, value in get_recipe(name).values.items():
        shown = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        flag = field.replace("_", "-")
        assert table[flag] == (shown, f"recipe {name}"), flag


def test_a_flag_wins_over_the_recipe_and_says_so(capsys):
    assert main(["train", "--recipe", "fast-robust", "--epochs", "3", "--print-config"]) == 0
    table = rows(capsys.readouterr().out)
    assert table["epochs"] == ("3", "flag")
    assert table["noise"] == ("0.1", "recipe fast-robust")


def test_small_data_rule_is_named_as_the_source(tmp_path, capsys):
    from helpers.images import write_flat

    root = write_flat(tmp_path / "flat", {"a": 20, "b": 20})
    assert main(["train", "--data", str(root), "--print-config"]) == 0
    table = rows(capsys.readouterr().out)
    assert table["batch-size"][1].startswith("small-data rule")
    assert int(table["batch-size"][0]) < 1024


def test_the_shipped_and_the_default_recipes_inherit_and_override_only_what_they_name():
    sgd, robust, fast, camera, wide, tune = (
        get_recipe(name).values for name in
        ("fast-sgd", "fast-robust", "fast", "camera", "camera-wide", "camera-tune"))
    def changed(a, b):
        return {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}

    assert changed(sgd, robust) == {"epochs", "noise", "contrast", "blur", "whitening_eps"}
    assert changed(sgd, fast) == {"optimizer", "schedule", "epochs"}
    assert changed(fast, camera) == {"outliers", "outlier_kind", "ood_score", "ood_mirror"}
    assert changed(camera, wide) == {"widths", "noise", "contrast", "blur", "whitening_eps", "epochs",
                                     "ood_mirror"}
    assert changed(wide, tune) == {"optimizer", "schedule", "lr", "epochs", "keep_parent"}
    assert get_recipe("camera-tune").continues and not get_recipe("camera-tune").transfer
    assert get_recipe("fast-robust").model == "fast"
    assert get_recipe("finetune").transfer and get_recipe("finetune").values["batch_size"] == 32


def test_a_recipe_missing_a_field_fails_the_check(monkeypatch):
    check_recipes()
    monkeypatch.setattr(recipes_module, "_RECIPES", dict(recipes_module._RECIPES))
    values = {k: v for k, v in get_recipe("fast").values.items() if k != "lr"}
    declare("broken", "test", model="fast", **values)
    with pytest.raises(TypeError, match="does not set \\['lr'\\]"):
        check_recipes()


def test_unknown_recipe_suggests_the_closest(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["train", "--recipe", "fast-robst", "--print-config"])
    assert exited.value.code == 2
    assert "did you mean 'fast-robust'" in capsys.readouterr().err


def test_recipe_and_model_must_agree():
    with pytest.raises(CifarlabError, match="trains the fast model"):
        TrainConfig(recipe="fast-robust", model="baseline")
    with pytest.raises(CifarlabError, match="add --from MODEL"):
        TrainConfig(recipe="camera-tune")
    assert TrainConfig(recipe="camera-tune", from_model="x.keras").resolved().transfer is None


def test_layers_option_reaches_the_builder():
    import keras
    import numpy as np

    from cifarlab.models.registry import build_model

    cfg = TrainConfig(layers="fused-relu", widths=(8, 8, 8)).resolved()
    assert TrainConfig().resolved().layers == "fused"
    model = build_model(cfg.model, (16, 16), 3, np.zeros(3), np.ones(3), **cfg.model_options())
    kinds = {type(layer).__name__ for layer in model.layers}
    assert "ReLU" in kinds and "FusedBatchNormalization" in kinds and "GELU" not in kinds
    assert isinstance(model.get_layer("logits"), keras.layers.Dense)


def test_a_field_a_recipe_leaves_out_resolves_to_its_declared_off_value():
    assert "cutout" not in get_recipe("fast").values and "momentum" not in get_recipe("baseline").values
    fast = TrainConfig(recipe="fast", command="x").resolved()
    assert (fast.cutout, fast.outliers, fast.muon_lr) == (0, 0.0, 0.24)
    assert TrainConfig(recipe="fast", cutout=4, command="x").resolved().cutout == 4
