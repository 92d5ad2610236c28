"""`cifarlab predict`: good images of every kind, per-file error rows, formats, exit codes."""

from __future__ import annotations

import csv
import io
import json
import struct
import zlib

import numpy as np
import pytest
from helpers.images import shapes_images
from PIL import Image

from cifarlab.cli.main import main

CLASSES = ["circle", "square", "triangle"]


def _bomb_png(path):
    """A valid tiny PNG whose header claims 100000 x 100000 pixels."""
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = data[12:29]  # b"IHDR" + 13 bytes of header fields
    ihdr[4:12] = struct.pack(">II", 100_000, 100_000)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    images, labels = shapes_images(6, size=48, seed=7)
    good = root / "good"
    (good / "nested").mkdir(parents=True)
    Image.fromarray(images[0]).save(good / "rgb.png")
    Image.fromarray(images[1]).save(good / "photo.jpg", quality=95)
    Image.fromarray(images[2]).convert("L").save(good / "gray.png")
    rgba = np.dstack([images[3], np.full(images[3].shape[:2], 255, np.uint8)])
    rgba[:4, :4, 3] = 0
    Image.fromarray(rgba, "RGBA").save(good / "nested" / "alpha.png")
    Image.fromarray(images[4]).convert("P", palette=Image.Palette.ADAPTIVE).save(good / "palette.png")
    Image.fromarray((images[5][..., 0].astype(np.uint16) * 257)).save(good / "deep16.png")
    # EXIF orientation 6 (rotate 90 CW to display): store the upright image rotated 90 CCW
    upright = images[2]
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(upright, 1)).save(good / "rotated.jpg", quality=95, exif=exif)
    Image.fromarray(upright).save(good / "upright.png")

    bad = root / "bad"
    bad.mkdir()
    (bad / "text.png").write_text("this is not an image\n")
    jpg = io.BytesIO()
    Image.fromarray(images[0]).save(jpg, "JPEG")
    (bad / "truncated.jpg").write_bytes(jpg.getvalue()[: len(jpg.getvalue()) // 2])
    (bad / "empty.png").write_bytes(b"")
    _bomb_png(bad / "bomb.png")
    (bad / "notes.txt").write_text("ignored: not an image extension\n")
    return root


def _predict_json(capsys, *args):
    code = main(["predict", *map(str, args), "--format", "json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def test_mixed_folder_rows_and_exit_1(mixed_folder, tiny_model, capsys):
    code, rows, err = _predict_json(capsys, "--model", tiny_model, "--top-k", "2", mixed_folder)
    assert code == 1
    by_name = {r["path"].rsplit("/", 1)[-1]: r for r in rows}
    good = {"rgb.png", "photo.jpg", "gray.png", "alpha.png", "palette.png", "deep16.png",
            "rotated.jpg", "upright.png"}
    bad = {"text.png", "truncated.jpg", "empty.png", "bomb.png"}
    assert set(by_name) == good | bad  # notes.txt is not picked up from a folder
    for name in good:
        row = by_name[name]
        assert row["ok"] and row["error"] is None and row["label"] in CLASSES
        assert len(row["top_k"]) == 2 and row["top_k"][0]["probability"] >= row["top_k"][1]["probability"]
        assert row["label"] == row["top_k"][0]["label"] and 0 <= row["probability"] <= 1
    for name in bad:
        assert not by_name[name]["ok"] and by_name[name]["error"] and by_name[name]["top_k"] == []
    assert "decompression bomb" in by_name["bomb.png"]["error"]
    assert "empty" in by_name["empty.png"]["error"]
    assert "truncated" in by_name["truncated.jpg"]["error"]
    assert "4 of 12" in err
    # EXIF rotation is applied: the rotated JPEG classifies like the upright original
    assert by_name["rotated.jpg"]["label"] == by_name["upright.png"]["label"]
    assert abs(by_name["rotated.jpg"]["probability"] - by_name["upright.png"]["probability"]) < 0.1


def test_all_good_exit_0_and_csv(mixed_folder, tiny_model, capsys):
    code = main(["predict", "--model", str(tiny_model), str(mixed_folder / "good"),
                 "--format", "csv", "--top-k", "3", "--batch-size", "3"])
    out = capsys.readouterr().out
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 8 and all(r["ok"] == "true" for r in rows)
    assert list(rows[0]) == ["path", "ok", "error", "unknown", "ood_score", "label_1", "probability_1",
                             "label_2", "probability_2", "label_3", "probability_3"]
    assert all(abs(sum(float(r[f"probability_{i}"]) for i in (1, 2, 3)) - 1) < 1e-3 for r in rows)


def test_table_glob_missing_and_stable_order(mixed_folder, tiny_model, capsys):
    pattern = str(mixed_folder / "good" / "*.png")
    code = main(["predict", "--model", str(tiny_model), pattern, str(mixed_folder / "nope.png"),
                 str(mixed_folder / "good" / "rgb.png")])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert len(out) == 6  # 5 pngs (rgb.png once), plus the missing file
    assert "nope.png" in out[-1] and "ERROR: no such file" in out[-1]
    assert [line.split()[0] for line in out[:5]] == sorted(line.split()[0] for line in out[:5])


def test_batch_size_does_not_change_results(mixed_folder, tiny_model, capsys):
    _, one, _ = _predict_json(capsys, "--model", tiny_model, mixed_folder, "--batch-size", "1")
    _, many, _ = _predict_json(capsys, "--model", tiny_model, mixed_folder, "--batch-size", "64")
    assert [r["label"] for r in one] == [r["label"] for r in many]
    assert np.allclose([r["probability"] or 0 for r in one], [r["probability"] or 0 for r in many], atol=1e-5)


@pytest.mark.parametrize("fmt,name", [("litert", "p.tflite"), ("onnx", "p.onnx")])
def test_exported_models_agree_with_keras(fmt, name, mixed_folder, tiny_model, tmp_path, capsys):
    out = tmp_path / name
    assert main(["export", "--model", str(tiny_model), "--format", fmt, "--out", str(out),
                 "--samples", "16"]) == 0
    capsys.readouterr()
    _, keras_rows, _ = _predict_json(capsys, "--model", tiny_model, mixed_folder / "good")
    code, rows, _ = _predict_json(capsys, "--model", out, mixed_folder / "good")
    assert code == 0
    assert [r["label"] for r in rows] == [r["label"] for r in keras_rows]
    assert np.allclose([r["probability"] for r in rows], [r["probability"] for r in keras_rows], atol=1e-5)


def test_usage_errors(tiny_model, mixed_folder, tmp_path, capsys):
    assert main(["predict", "--model", str(tiny_model), str(mixed_folder), "--top-k", "0"]) == 2
    assert main(["predict", "--model", str(tmp_path / "missing.keras"), str(mixed_folder)]) == 2
    err = capsys.readouterr().err
    assert "--top-k must be at least 1" in err and "no such model file" in err


def test_help_documents_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "1 if any input failed" in text


def test_folders_are_searched_through_symlinked_folders_once_and_any_extension_case(tmp_path):
    from cifarlab.data.files import gather_inputs

    real = tmp_path / "real" / "cats"
    real.mkdir(parents=True)
    for name in ("a.JPEG", "b.png", ".hidden.png", "notes.txt"):
        (real / name).write_bytes(b"x")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "cats").symlink_to(real, target_is_directory=True)
    (linked / "cats-again").symlink_to(real, target_is_directory=True)
    (real / "loop").symlink_to(tmp_path / "real", target_is_directory=True)
    found = [path for path, error in gather_inputs([linked]) if error is None]
    assert sorted(p.name for p in found) == ["a.JPEG", "b.png"]
