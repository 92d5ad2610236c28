"""`cifarlab evaluate` end to end on the tiny shapes model: files, report rendering, errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.images import write_image_folder

from cifarlab.cli.main import main

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
PLOTS = ["confusion_matrix.png", "confusion_matrix_normalized.png", "per_class_accuracy.png",
         "roc.png", "pr.png", "reliability.png", "misclassified.png"]


@pytest.fixture(scope="module")
def evaluated(tiny_model, shapes_folder, tmp_path_factory):
    """One CLI run, shared by the checks below: (exit code, stdout, output folder)."""
    out = tmp_path_factory.mktemp("eval") / "out"
    capture = tmp_path_factory.mktemp("log") / "stdout.txt"
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["evaluate", str(tiny_model), "--data", str(shapes_folder), "--out", str(out),
                     "--no-progress"])
    capture.write_text(buffer.getvalue())
    return code, buffer.getvalue(), out


def test_cli_writes_every_output(evaluated, shapes_folder):
    code, stdout, out = evaluated
    assert code == 0
    for name in [*PLOTS, "metrics.json", "report.html"]:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]  # no temp files left
    for name in PLOTS:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    m = json.loads((out / "metrics.json").read_text())
    assert m["num_samples"] == 90 and m["num_classes"] == 3
    assert m["accuracy"] > 0.6
    assert m["model_metadata"]["class_names"] == ["circle", "square", "triangle"]
    assert m["evaluation"]["split"] == "test" and len(m["evaluation"]["dataset_fingerprint"]) == 16
    seconds = m["evaluation"]["seconds"]
    assert list(seconds) == ["load_model", "load_data", "predict", "metrics", "plots", "total"]
    assert all(v >= 0 for v in seconds.values()) and seconds["total"] > 0
    assert seconds["total"] >= sum(v for k, v in seconds.items() if k != "total") - 0.01  # rounding
    assert m["plots"] == PLOTS
    assert len(m["calibration"]["table"]) == 15
    assert [r["class"] for r in m["per_class"]] == ["circle", "square", "triangle"]
    assert np.array(m["confusion_matrix"]["counts"]).sum(1).tolist() == [30, 30, 30]
    assert f"accuracy {m['accuracy']:.2%}" in stdout
    assert "weakest classes:" in stdout
    assert f"report: {out / 'report.html'}" in stdout
    html = (out / "report.html").read_text()
    assert "class-activation maps of the predicted and of the true class" in html
    assert html.count('src="data:image/png;base64,') == len(PLOTS)
    assert not re.search(r'(src|href)="(?!data:)', html)  # nothing external
    assert f"{m['accuracy']:.2%}" in html


def test_tta_and_resize_via_api(tiny_model, shapes_folder, tmp_path):
    """--image-size 48 decodes at 48x48, so images are resized to the model's 32x32."""
    from cifarlab.evaluation import EvaluateConfig, evaluate

    result = evaluate(EvaluateConfig(data=shapes_folder, model=tiny_model, tta=True, image_size=48,
                                     out=tmp_path / "tta", progress=False))
    info = result.metrics["evaluation"]
    assert info["tta"] and info["resized_to_model_input"] and info["image_size_in_dataset"] == [48, 48]
    assert result.metrics["accuracy"] > 0.5
    assert result.report.is_file()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
@pytest.mark.gui
def test_report_renders_in_headless_chromium(evaluated, tmp_path):
    from PIL import Image

    _, _, out = evaluated
    url = (out / "report.html").resolve().as_uri()
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "report.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1280,2000", url],
                   capture_output=True, timeout=60, check=False)
    assert shot.is_file(), "chromium wrote no screenshot"
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (2000, 1280)
    assert pixels.std() > 20, pixels.std()  # not a blank page
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=60).stdout
    images = re.findall(r"<img\b[^>]*>", dom)
    assert len(images) == len(PLOTS)
    assert all('src="data:image/png;base64,' in tag for tag in images)
    accuracy = json.loads((out / "metrics.json").read_text())["accuracy"]
    assert re.search(rf'id="accuracy">{re.escape(f"{accuracy:.2%}")}<', dom)


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    code = main(["evaluate", *args, "--no-progress"])
    err = capsys.readouterr().err.strip()
    return code, err


def test_error_class_names_do_not_match(tiny_model, tmp_path, capsys):
    root = tmp_path / "animals"
    for cls in ("cat", "dog"):
        write_image_folder(root / "_", {"test": 3})  # any pixels; moved under other class names
        (root / "test").mkdir(parents=True, exist_ok=True)
        shutil.move(str(root / "_" / "test" / "circle"), str(root / "test" / cls))
        shutil.rmtree(root / "_")
    code, err = run_cli([str(tiny_model), "--data", str(root), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "circle, square, triangle" in err and "cat, dog" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args,message", [
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--corruptions", "all", "--corruption-samples", "0"], "--corruption-samples must be at least 1"),
    (["--corruptions-data", "x"], "need --corruptions"),
])
def test_bad_options_fail_in_the_config(args, message, tmp_path, capsys):
    code, err = run_cli(["--data", str(tmp_path / "absent"), "--out", str(tmp_path / "o"), *args], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "o").exists()


def test_config_is_validated_when_built(tmp_path):
    from cifarlab.errors import CifarlabError
    from cifarlab.evaluation import EvaluateConfig

    with pytest.raises(CifarlabError, match="--batch-size must be at least 1, got -3"):
        EvaluateConfig(data=tmp_path, batch_size=-3)
    assert EvaluateConfig(data=tmp_path).batch_size == 256


def test_help_keeps_every_option_and_default(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--model", "--backend", "--data", "--image-size", "--labels", "--cache-dir", "--no-cache",
                 "--split", "--tta", "--out DIR", "--batch-size N", "--no-progress", "--corruptions LIST",
                 "--severities S", "--corruption-samples N", "--corruptions-data DIR"):
        assert flag in text, flag
    assert "(default: test)" in text and "(default: 256)" in text and "(default: 1-5)" in text
    assert "robustness (CIFAR-10-C): Score the model on corrupted copies" in text


def test_error_missing_model(shapes_folder, tmp_path, capsys):
    code, err = run_cli(["--model", str(tmp_path / "nope.keras"), "--data", str(shapes_folder)], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "nope.keras" in err


def test_error_missing_and_empty_split(tiny_model, shapes_folder, tmp_path, capsys):
    code, err = run_cli([str(tiny_model), "--data", str(shapes_folder), "--split", "val"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "'val'" in err
    root = write_image_folder(tmp_path / "d", {"train": 6})
    (root / "test").mkdir()
    code, err = run_cli([str(tiny_model), "--data", str(root)], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "empty" in err


def test_error_exit_code_in_a_real_process(tmp_path, shapes_folder):
    env = {**os.environ, "CIFARLAB_MODEL": str(tmp_path / "absent.keras")}
    proc = subprocess.run([sys.executable, "-m", "cifarlab.cli.main", "evaluate", "--data",
                           str(shapes_folder)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "absent.keras" in proc.stderr
