"""`cifarlab predict` with open-set rejection: noise is `unknown`, the training kind of image is
not, `--ood-threshold` overrides or turns it off, and a model without the score still works."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

from cifarlab.cli.main import main
from cifarlab.errors import CifarlabError
from cifarlab.predict.core import PredictConfig

CLASSES = ["circle", "square", "triangle"]
NOISE = 6


@pytest.fixture(scope="module")
def noise_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("noise")
    rng = np.random.default_rng(3)
    for i in range(NOISE):
        Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(root / f"noise{i}.png")
    return root


def _run(capsys, fmt, *args):
    code = main(["predict", *map(str, args), "--format", fmt])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _json(capsys, *args):
    code, out, err = _run(capsys, "json", *args)
    return code, json.loads(out), err


def _split(rows, key="path"):
    """(noise rows, shape rows) of rows named by their path."""
    noise = [r for r in rows if "noise" in r[key].rsplit("/", 1)[-1]]
    return noise, [r for r in rows if r not in noise]


def test_noise_is_unknown_and_shapes_mostly_not_json(open_model, noise_folder, shapes_folder, capsys):
    code, rows, err = _json(capsys, "--model", open_model, "--top-k", "2", noise_folder,
                            shapes_folder / "train")
    assert code == 0 and "no open-set score" not in err
    noise, shapes = _split(rows)
    assert len(noise) == NOISE and len(shapes) == 300
    for row in noise:
        assert row["unknown"] is True and row["label"] == "unknown"
        assert isinstance(row["ood_score"], float)
        assert [t["label"] in CLASSES for t in row["top_k"]] == [True, True]
        assert row["probability"] == row["top_k"][0]["probability"]
    assert all(isinstance(r["ood_score"], float) for r in shapes)
    assert all((r["label"] == "unknown") == r["unknown"] for r in shapes)
    assert sum(r["unknown"] for r in shapes) <= 0.1 * len(shapes)
    assert all(r["label"] == r["top_k"][0]["label"] for r in shapes if not r["unknown"])
    assert min(r["ood_score"] for r in noise) > np.median([r["ood_score"] for r in shapes])


def test_csv_columns_and_error_row(open_model, noise_folder, shapes_folder, tmp_path, capsys):
    code, out, _ = _run(capsys, "csv", "--model", open_model, "--backend", "keras", noise_folder,
                        shapes_folder / "train" / "circle", tmp_path / "missing.png")
    assert code == 1
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0])[:6] == ["path", "ok", "error", "unknown", "ood_score", "label_1"]
    error = [r for r in rows if r["ok"] == "false"]
    assert len(error) == 1 and error[0]["unknown"] == "" and error[0]["ood_score"] == ""
    noise, shapes = _split([r for r in rows if r["ok"] == "true"])
    assert len(noise) == NOISE and len(shapes) == 100
    assert all(r["unknown"] == "true" and r["label_1"] in CLASSES for r in noise)
    assert sum(r["unknown"] == "true" for r in shapes) <= 0.1 * len(shapes)
    assert all(np.isfinite(float(r["ood_score"])) for r in noise + shapes)


def test_threshold_off_number_and_extremes(open_model, noise_folder, shapes_folder, capsys):
    inputs = ["--model", open_model, "--backend", "keras", noise_folder, shapes_folder / "train" / "square"]
    _, off, _ = _json(capsys, *inputs, "--ood-threshold", "off")
    assert not any(r["unknown"] for r in off) and all(r["label"] in CLASSES for r in off)
    assert all(isinstance(r["ood_score"], float) for r in off)  # the score is still reported
    _, high, _ = _json(capsys, *inputs, "--ood-threshold", "1e9")
    assert not any(r["unknown"] for r in high)
    _, low, _ = _json(capsys, *inputs, "--ood-threshold=-1e9")  # "=": argparse takes -1e9 for an option
    assert all(r["unknown"] and r["label"] == "unknown" for r in low)
    middle = float(np.median([r["ood_score"] for r in off]))
    _, mid, _ = _json(capsys, *inputs, "--ood-threshold", middle)
    assert [r["unknown"] for r in mid] == [r["ood_score"] > middle for r in off]


def test_table_reads_unknown_with_nearest_class(open_model, noise_folder, shapes_folder, capsys):
    code, out, _ = _run(capsys, "table", "--model", open_model, "--backend", "keras", noise_folder,
                        shapes_folder / "train" / "triangle")
    lines = out.splitlines()
    assert code == 0 and len(lines) == NOISE + 100
    noise = [line for line in lines if "/noise" in line]
    assert len(noise) == NOISE
    assert all("unknown (ood " in line and "; nearest: " in line and "%)" in line for line in noise)
    known = [line for line in lines if "/noise" not in line and "unknown" not in line]
    assert known and all(line.split()[-2] == "ood" for line in known)


def test_model_without_score_gets_null_fields(tiny_model, noise_folder, tmp_path, capsys):
    code, rows, err = _json(capsys, "--model", tiny_model, "--backend", "keras", noise_folder,
                            tmp_path / "missing.png")
    assert code == 1
    assert err.count("no open-set score") == 1 and "cifarlab openset" in err
    good = [r for r in rows if r["ok"]]
    assert len(good) == NOISE
    assert all(r["unknown"] is False and r["ood_score"] is None and r["label"] in CLASSES for r in good)
    error = [r for r in rows if not r["ok"]]
    assert error[0]["unknown"] is None and error[0]["ood_score"] is None
    code, out, err = _run(capsys, "table", "--model", tiny_model, "--backend", "keras", noise_folder,
                          "--ood-threshold", "off")
    assert code == 0 and "ood" not in out and "unknown" not in out
    assert "no open-set score" not in err  # turned off: nothing to say


def test_bad_threshold_is_a_one_line_error(open_model, noise_folder, capsys):
    with pytest.raises(SystemExit) as exit_info:  # argparse's usage error
        main(["predict", "--model", str(open_model), str(noise_folder), "--ood-threshold", "abc"])
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "--ood-threshold 'abc'" in err and "'auto' or 'off'" in err
    with pytest.raises(CifarlabError, match="--ood-threshold 'abc'"):
        PredictConfig(paths=["x.png"], ood_threshold="abc")
    assert PredictConfig(paths=["x.png"], ood_threshold="2.5").ood_threshold == 2.5
