"""`cifarlab export`: every format round-trips with its parity check, and runs in predict."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cifarlab.cli.main import main
from cifarlab.inference import open_classifier
from cifarlab.inference.litert import keras_to_tflite
from cifarlab.models.io import load_keras_model


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def test_images(shapes_folder):
    from cifarlab.data import load_dataset

    return load_dataset(shapes_folder, image_size=32).split("test").images


@pytest.mark.parametrize("fmt,name", [("litert", "m.tflite"), ("onnx", "m.onnx"),
                                      ("savedmodel", "m_savedmodel")])
def test_float_export_roundtrip(fmt, name, tiny_model, export_dir, test_images, capsys):
    out = export_dir / name
    code = main(["export", "--model", str(tiny_model), "--format", fmt, "--out", str(out),
                 "--samples", "64"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "PASS" in printed and "top-1 agreement 100.00%" in printed
    side = json.loads((export_dir / f"{name}.json").read_text())
    assert side["class_names"] == ["circle", "square", "triangle"]
    assert side["export"]["parity"]["passed"] and side["export"]["parity"]["max_abs_diff"] <= 1e-4
    assert not [p for p in export_dir.iterdir() if p.name.startswith(".tmp")]
    if fmt == "savedmodel":
        assert (out / "saved_model.pb").is_file() and (out / "assets.extra" / "cifarlab.json").is_file()
        return
    exported = open_classifier(out)
    keras = open_classifier(tiny_model)
    assert exported.class_names == keras.class_names
    p_exp, p_keras = exported.predict(test_images), keras.predict(test_images)
    assert np.abs(p_exp - p_keras).max() < 1e-5
    assert np.abs(exported.predict_one(test_images[0]) - p_keras[0]).max() < 1e-5


def test_onnx_metadata_props_without_sidecar(tiny_model, export_dir, test_images):
    out = export_dir / "alone.onnx"
    assert main(["export", "--model", str(tiny_model), "--format", "onnx", "--out", str(out),
                 "--samples", "8"]) == 0
    (export_dir / "alone.onnx.json").unlink()
    clf = open_classifier(out)
    assert clf.class_names == ["circle", "square", "triangle"] and clf.backend == "onnx"


def test_tflite_without_sidecar_is_a_clear_error(tiny_model, export_dir, tmp_path, capsys):
    src = export_dir / "lonely.tflite"
    assert main(["export", "--model", str(tiny_model), "--format", "litert", "--out", str(src),
                 "--samples", "8"]) == 0
    lonely = tmp_path / "copy.tflite"
    lonely.write_bytes(src.read_bytes())
    capsys.readouterr()
    assert main(["predict", "--model", str(lonely), str(tmp_path)]) == 2
    assert "copy.tflite.json" in capsys.readouterr().err


def test_keras_in_memory_litert_matches_keras(tiny_model, test_images):
    litert = open_classifier(tiny_model, backend="litert")
    keras = open_classifier(tiny_model)
    assert litert.backend == "litert"
    assert np.abs(litert.predict(test_images) - keras.predict(test_images)).max() < 1e-5
    assert litert.predict(test_images[:0]).shape == (0, 3)


@pytest.mark.parametrize("quantize", ["dynamic", "int8"])
def test_quantized_litert(quantize, tiny_model, shapes_folder, export_dir, test_images, capsys):
    out = export_dir / f"m.{quantize}.tflite"
    code = main(["export", "--model", str(tiny_model), "--format", "litert", "--quantize", quantize,
                 "--calibration-data", str(shapes_folder), "--out", str(out), "--samples", "200"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "quantized" in printed and "PASS" in printed
    clf = open_classifier(out)
    agree = (clf.predict(test_images).argmax(1) == open_classifier(tiny_model).predict(test_images).argmax(1))
    assert agree.mean() >= 0.95
    model, meta = load_keras_model(tiny_model)
    assert out.stat().st_size < 0.5 * len(keras_to_tflite(model, meta.input_size))  # int8 weights


def test_int8_without_calibration_data_explains(tiny_model, tmp_path, capsys):
    code = main(["export", "--model", str(tiny_model), "--format", "litert", "--quantize", "int8",
                 "--out", str(tmp_path / "x.tflite")])
    assert code == 2
    assert "--calibration-data" in capsys.readouterr().err
    assert not (tmp_path / "x.tflite").exists()


def test_bad_out_suffix_and_quantize_onnx(tiny_model, tmp_path, capsys):
    assert main(["export", "--model", str(tiny_model), "--format", "onnx", "--out", str(tmp_path / "x.tflite")]) == 2
    assert main(["export", "--model", str(tiny_model), "--format", "onnx", "--quantize", "dynamic"]) == 2
    err = capsys.readouterr().err
    assert "must end in .onnx" in err and "only available with --format litert" in err


def test_parity_failure_exits_1(tiny_model, tmp_path, monkeypatch, capsys):
    import cifarlab.export.core as core

    real = core.EXPORTERS["onnx"]

    def skewed(*args):
        path, (probs, scores) = real(*args)
        return path, (probs + 1e-3, scores)
    monkeypatch.setitem(core.EXPORTERS, "onnx", skewed)
    out = tmp_path / "skew.onnx"
    assert main(["export", "--model", str(tiny_model), "--format", "onnx", "--out", str(out),
                 "--samples", "8"]) == 1
    assert "FAIL" in capsys.readouterr().out and out.is_file()


def test_export_help_documents_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "1 when a float export differs by more than 0.0001" in text
    assert "99%" in text
