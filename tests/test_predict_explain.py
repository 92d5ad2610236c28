"""`cifarlab predict --explain`: a map file pair per image, at the image's own size."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers.images import shapes_images

from cifarlab.cli.main import main


@pytest.fixture()
def photos(tmp_path):
    images, _ = shapes_images(3, size=48, seed=5)
    folder = tmp_path / "in"
    folder.mkdir()
    for i, (image, size) in enumerate(zip(images, [(48, 48), (90, 60), (33, 120)])):
        cv2.imwrite(str(folder / f"img{i}.png"), cv2.resize(image, size)[..., ::-1])
    (folder / "sub").mkdir()
    cv2.imwrite(str(folder / "sub" / "img0.png"), images[0][..., ::-1])  # the same stem again
    return folder


def test_maps_at_each_images_own_size(tiny_model, photos, tmp_path, capsys):
    out = tmp_path / "cams"
    assert main(["predict", str(photos), "--model", str(tiny_model), "--explain", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{stem}.cam.{ext}" for stem in ("img0", "img0-2", "img1", "img2")
                           for ext in ("png", "npy"))
    for stem, (h, w) in {"img0": (48, 48), "img1": (60, 90), "img2": (120, 33)}.items():
        cam = np.load(out / f"{stem}.cam.npy")
        assert cam.shape == (h, w) and cam.dtype == np.float32
        assert cam.min() >= 0 and cam.max() <= 1 and cam.max() > 0.5
        picture = cv2.imread(str(out / f"{stem}.cam.png"))
        assert picture.shape == (h, w, 3)
    printed = capsys.readouterr().out
    assert "img1.png" in printed


def test_explain_class_changes_the_map(tiny_model, photos, tmp_path):
    maps = {}
    for name in ("circle", "triangle"):
        out = tmp_path / name
        assert main(["predict", str(photos / "img1.png"), "--model", str(tiny_model), "--explain", str(out),
                     "--explain-class", name]) == 0
        maps[name] = np.load(out / "img1.cam.npy")
    assert np.abs(maps["circle"] - maps["triangle"]).max() > 0.1


def test_unknown_explain_class_is_one_line_error(tiny_model, photos, tmp_path, capsys):
    out = tmp_path / "cams"
    code = main(["predict", str(photos), "--model", str(tiny_model), "--explain", str(out),
                 "--explain-class", "hexagon"])
    assert code == 2 and "not one of the model's classes" in capsys.readouterr().err
    assert not out.exists()


def test_explain_class_needs_explain(tiny_model, photos, capsys):
    code = main(["predict", str(photos), "--model", str(tiny_model), "--explain-class", "circle"])
    assert code == 2 and "needs --explain" in capsys.readouterr().err


def test_explain_needs_the_keras_model(tiny_model, photos, tmp_path, capsys):
    from cifarlab.inference.litert import keras_to_tflite
    from cifarlab.models.io import load_keras_model
    from cifarlab.models.metadata import write_sidecar

    model, meta = load_keras_model(tiny_model)
    tflite = tmp_path / "m.tflite"
    tflite.write_bytes(keras_to_tflite(model, meta.input_size))
    write_sidecar(tflite, meta)
    code = main(["predict", str(photos), "--model", str(tflite), "--explain", str(tmp_path / "c")])
    assert code == 2 and "needs a .keras model" in capsys.readouterr().err
