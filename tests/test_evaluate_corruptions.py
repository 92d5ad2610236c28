"""`cifarlab evaluate --corruptions`: the robustness section, its plot, report, table and errors."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from cifarlab.cli.main import main
from cifarlab.evaluation.corruptions import ALL_CORRUPTIONS, CORRUPTIONS, corrupt

NAMES = "gaussian_noise,contrast,defocus_blur"


def run_evaluate(*args: str) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["evaluate", *args, "--no-progress"])
    return code, buffer.getvalue()


@pytest.fixture(scope="module")
def corrupted_eval(tiny_model, shapes_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("corr")
    code, stdout = run_evaluate(str(tiny_model), "--data", str(shapes_folder), "--out", str(out),
                                "--corruptions", NAMES, "--severities", "1,5", "--corruption-samples", "45")
    return code, stdout, out


def test_section_plot_report_and_table(corrupted_eval):
    code, stdout, out = corrupted_eval
    assert code == 0
    section = json.loads((out / "metrics.json").read_text())["corruptions"]
    assert list(section["accuracy"]) == NAMES.split(",")
    assert section["severities"] == [1, 5] and section["images_per_cell"] == 45
    for cells in section["accuracy"].values():
        assert set(cells) == {"1", "5"} and all(0 <= v <= 1 for v in cells.values())
        # 45 of 90 images, stratified: accuracies are multiples of 1/45
        assert all(abs(v * 45 - round(v * 45)) < 1e-9 for v in cells.values())
    means = [np.mean(list(c.values())) for c in section["accuracy"].values()]
    assert section["mean_all"] == pytest.approx(np.mean(means))
    assert section["mean_15"] is None  # not all 15 were scored
    assert section["ratio_all"] == pytest.approx(section["mean_all"] / section["clean_accuracy"])
    assert (out / "corruptions.png").read_bytes()[:4] == b"\x89PNG"
    assert "Robustness to corruptions" in (out / "report.html").read_text()
    assert "gaussian_noise" in stdout and "mean over all 3" in stdout


def test_runs_agree_image_for_image(corrupted_eval, tiny_model, shapes_folder, tmp_path):
    _, _, first = corrupted_eval
    code, _ = run_evaluate(str(tiny_model), "--data", str(shapes_folder), "--out", str(tmp_path),
                           "--corruptions", NAMES, "--severities", "1,5", "--corruption-samples", "45")
    assert code == 0
    again = json.loads((tmp_path / "metrics.json").read_text())["corruptions"]["accuracy"]
    assert again == json.loads((first / "metrics.json").read_text())["corruptions"]["accuracy"]


def test_official_files_give_the_same_scores_as_generating_them(tiny_model, shapes_folder, tmp_path):
    from cifarlab.data import load_dataset

    test = load_dataset(shapes_folder, image_size=32).split("test")
    official = tmp_path / "CIFAR-10-C"
    official.mkdir()
    for name in ("gaussian_noise", "contrast"):
        np.save(official / f"{name}.npy", np.concatenate([corrupt(test.images, name, s, 0) for s in range(1, 6)]))
    np.save(official / "labels.npy", np.tile(test.labels, 5))
    scores = []
    for extra in ([], ["--corruptions-data", str(official)]):
        out = tmp_path / f"out{len(extra)}"
        code, _ = run_evaluate(str(tiny_model), "--data", str(shapes_folder), "--out", str(out),
                               "--corruptions", "gaussian_noise,contrast", *extra)
        assert code == 0
        scores.append(json.loads((out / "metrics.json").read_text())["corruptions"]["accuracy"])
    assert scores[0] == scores[1]
    np.save(official / "labels.npy", np.tile(test.labels[::-1], 5))  # labels of another order
    code, _ = run_evaluate(str(tiny_model), "--data", str(shapes_folder), "--out", str(tmp_path / "x"),
                           "--corruptions", "contrast", "--corruptions-data", str(official))
    assert code == 2


@pytest.mark.parametrize("args,message", [
    (["--corruptions", "gausian_noise"], "gaussian_noise"),
    (["--corruptions", "all", "--severities", "0-6"], "severit"),
    (["--corruption-samples", "10"], "need --corruptions"),
])
def test_bad_options_fail_before_any_work(args, message, tiny_model, shapes_folder, tmp_path, capsys):
    code, _ = run_evaluate(str(tiny_model), "--data", str(shapes_folder), "--out", str(tmp_path / "o"), *args)
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_shipped_model_does_not_get_better_with_severity(cifar_sample, tmp_path):
    """On a fixed 200-image sample of CIFAR-10 test photos: the mean over all 19 corruptions falls
    with each severity, and no corruption scores better at severity 5 than at 1 (beyond one image
    of sampling noise)."""
    from cifarlab.models.io import default_model_path

    if not default_model_path().is_file():
        pytest.skip("no shipped model")
    code, _ = run_evaluate("--data", str(cifar_sample), "--out", str(tmp_path), "--corruptions", "all",
                           "--corruption-samples", "200")
    assert code == 0
    section = json.loads((tmp_path / "metrics.json").read_text())["corruptions"]
    assert list(section["accuracy"]) == list(ALL_CORRUPTIONS) and section["mean_15"] is not None
    by_severity = [np.mean([section["accuracy"][n][str(s)] for n in ALL_CORRUPTIONS]) for s in range(1, 6)]
    assert all(a >= b for a, b in zip(by_severity, by_severity[1:])), by_severity
    for name in ALL_CORRUPTIONS:
        assert section["accuracy"][name]["5"] <= section["accuracy"][name]["1"] + 1 / 200, name
    assert section["mean_15"] == pytest.approx(np.mean([section["mean_per_corruption"][n] for n in CORRUPTIONS]))
