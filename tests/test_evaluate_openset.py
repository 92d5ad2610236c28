"""`cifarlab evaluate`'s open-set section: the score's cost on the test split, how it tells
uniform-noise images from the shapes, its histogram, and models without the score."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from cifarlab.cli.main import main

NOISE_IMAGES = 20
PLOT = "open_set_scores.png"


@pytest.fixture(scope="module")
def noise_folder(tmp_path_factory) -> Path:
    """Uniform-noise 32x32 PNGs (none of circle, square, triangle) and one unreadable file."""
    root = tmp_path_factory.mktemp("noise")
    rng = np.random.default_rng(1)
    for i in range(NOISE_IMAGES):
        cv2.imwrite(str(root / f"{i:03d}.png"), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    (root / "broken.png").write_bytes(b"not a png")
    return root


@pytest.fixture(scope="module")
def with_ood(open_model, shapes_folder, noise_folder, tmp_path_factory):
    """One CLI run with --ood: (exit code, stdout, output folder)."""
    out = tmp_path_factory.mktemp("eval-ood") / "out"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["evaluate", str(open_model), "--data", str(shapes_folder), "--out", str(out),
                     "--no-progress", "--ood", str(noise_folder)])
    return code, buffer.getvalue(), out


def run_api(model: Path, data: Path, out: Path, **settings):
    from cifarlab.evaluation import EvaluateConfig, evaluate

    return evaluate(EvaluateConfig(data=data, model=model, out=out, progress=False, **settings))


def test_ood_section_tells_noise_from_shapes(with_ood, open_model):
    from cifarlab.models.io import read_metadata

    code, stdout, out = with_ood
    assert code == 0
    m = json.loads((out / "metrics.json").read_text())
    section = m["open_set"]
    assert section["available"] and section["score"] == read_metadata(open_model).open_set.score
    assert section["threshold"] == pytest.approx(read_metadata(open_model).open_set.threshold)
    assert section["outside_images"] == NOISE_IMAGES  # the unreadable file is skipped
    assert section["auroc"] > 0.9 and section["flagged_outside"] > 0.5
    assert 0 <= section["fpr95"] < 0.5
    assert 0 <= section["rejected_share"] < 0.5 and section["accepted_accuracy"] > 0.6
    assert "open_set" in m["evaluation"]["seconds"]
    assert f"{NOISE_IMAGES} outside images: AUROC {section['auroc']:.3f}" in stdout


def test_ood_report_has_the_section_and_histogram(with_ood):
    _, _, out = with_ood
    m = json.loads((out / "metrics.json").read_text())
    assert m["open_set"]["plot"] == PLOT and PLOT in m["plots"]
    assert (out / PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    assert "<h2>Open set</h2>" in html
    section = html.split("<h2>Open set</h2>")[1].split("<h2>")[0]
    assert f'alt="{PLOT}"' in section and "outside images flagged unknown" in section
    assert f'id="ood-auroc">{m["open_set"]["auroc"]:.3f}<' in section
    assert html.count('src="data:image/png;base64,') == len(m["plots"])  # shown once


def test_unreadable_ood_files_are_counted_in_the_log(open_model, noise_folder):
    from cifarlab.evaluation.inputs import gather_outside, load_outside

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("cifarlab.evaluation.inputs").addHandler(handler)
    try:
        images = load_outside(gather_outside([str(noise_folder)]), (32, 32))
    finally:
        logging.getLogger("cifarlab.evaluation.inputs").removeHandler(handler)
    assert images.shape == (NOISE_IMAGES, 32, 32, 3)
    assert [r.getMessage().split(" (first")[0] for r in records] == [
        f"--ood: skipped 1 of {NOISE_IMAGES + 1} files that could not be read"]
    assert "broken.png" in records[0].getMessage()


def test_without_ood_the_rejected_share_is_reported(open_model, shapes_folder, tmp_path):
    result = run_api(open_model, shapes_folder, tmp_path / "plain")
    section = result.metrics["open_set"]
    assert section["available"] and "auroc" not in section and "outside_images" not in section
    assert 0 <= section["rejected_share"] < 0.5 and section["test_images"] == 90
    assert section["rejection"].startswith(f"open set: {section['score']} score, unknown above")
    assert (result.out_dir / PLOT).is_file()
    html = result.report.read_text()
    assert 'id="rejected-share">' in html and "outside images flagged" not in html


def test_model_without_score_says_so(tiny_model, shapes_folder, noise_folder, tmp_path):
    result = run_api(tiny_model, shapes_folder, tmp_path / "tiny", ood=[str(noise_folder)])
    section = result.metrics["open_set"]
    assert section == {"available": False, "note": section["note"]}
    assert section["note"].startswith("no open-set score; add it with `cifarlab openset --model")
    assert PLOT not in result.metrics["plots"] and not (result.out_dir / PLOT).exists()
    assert "no open-set score; add it with" in result.report.read_text()


def test_tta_keeps_the_plain_images_score(open_model, shapes_folder):
    from cifarlab.data import load_dataset
    from cifarlab.evaluation.predict import predict_scored_split
    from cifarlab.inference import open_classifier

    images = load_dataset(shapes_folder, image_size=32).split("test").images[:20]
    classifier = open_classifier(open_model, "keras")
    plain_probs, plain = predict_scored_split(classifier, images, 8, tta=False, progress=False)
    tta_probs, with_tta = predict_scored_split(classifier, images, 8, tta=True, progress=False)
    np.testing.assert_allclose(with_tta, plain, rtol=1e-5, atol=1e-5)
    assert not np.allclose(tta_probs, plain_probs)  # the probabilities did average the views


def test_threshold_off_rejects_nothing():
    from cifarlab.evaluation.openset import open_set_section
    from cifarlab.inference.rejection import Rejection

    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    section = open_set_section(Rejection(None, "rmds", "--ood-threshold off"), np.array([0, 1, 1]),
                               probs, np.array([1.0, 2.0, 9.0]), np.array([8.0, 10.0]), "m.keras")
    assert section["rejected_share"] == 0 and section["accepted_accuracy"] == pytest.approx(2 / 3)
    assert section["flagged_outside"] is None and section["auroc"] == pytest.approx(5 / 6)
    rejecting = open_set_section(Rejection(5.0, "rmds"), np.array([0, 1, 1]), probs,
                                 np.array([1.0, 2.0, 9.0]), None, "m.keras")
    assert rejecting["rejected_share"] == pytest.approx(1 / 3) and rejecting["accepted_accuracy"] == 1.0


@pytest.mark.parametrize("name", ["empty", "absent/*.png"])
def test_ood_matching_no_image_is_a_one_line_error(name, open_model, shapes_folder, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["evaluate", str(open_model), "--data", str(shapes_folder), "--out", str(tmp_path / "o"),
                 "--no-progress", "--ood", str(tmp_path / name)])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1
    assert f"--ood {tmp_path / name}:" in err and "none of the model's classes" in err
    assert not (tmp_path / "o").exists()
