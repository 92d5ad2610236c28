"""The Python API (cifarlab.api): the commands' contracts from Python; `import cifarlab` imports no
TensorFlow, and after it plain Keras reads cifarlab's model files, in either import order; the
README's example runs as shown."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import cifarlab
from cifarlab.cli.main import main
from cifarlab.errors import CifarlabError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "cifar10-fast.keras"


def python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=240)


def write_photos(folder: Path, n: int = 2) -> list[Path]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    paths = [folder / f"photo{i}.png" for i in range(n)]
    for path in paths:
        cv2.imwrite(str(path), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return paths


def test_import_cifarlab_imports_neither_tensorflow_nor_keras():
    proc = python("import sys, cifarlab; print([m for m in ('tensorflow', 'keras') if m in sys.modules])")
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("imports", ["import cifarlab, keras", "import keras, cifarlab",
                                     "import keras"])
def test_model_files_load_in_plain_keras_after_import_cifarlab(imports):
    proc = python(f"{imports}; print(keras.saving.load_model({str(SHIPPED)!r}).output_names)")
    if "cifarlab" in imports:
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "ood_score" in proc.stdout
    else:  # what registering changes: without it Keras does not know the layers
        assert proc.returncode != 0 and "cifarlab>" in proc.stderr


def test_predict_gives_the_rows_of_the_command(open_model, tmp_path, capsys):
    paths = write_photos(tmp_path / "photos", 3)
    model = cifarlab.load(open_model, backend="keras")
    rows = model.predict(tmp_path / "photos", top_k=2)
    assert main(["predict", str(tmp_path / "photos"), "--model", str(open_model), "--backend", "keras",
                 "--top-k", "2", "--format", "json"]) == 0
    assert [row.to_dict() for row in rows] == json.loads(capsys.readouterr().out)

    images = np.stack([cv2.imread(str(p))[..., ::-1] for p in paths])  # RGB, as files are read
    for batch, n in ((images, 3), (list(images), 3), (images[0], 1)):  # a batch, a list, one image
        from_arrays, from_files = model(batch, top_k=2), rows[:n]
        assert [r.label for r in from_arrays] == [r.label for r in from_files]
        assert [r.ood_score for r in from_arrays] == pytest.approx([r.ood_score for r in from_files])
    assert not any(row.unknown for row in model.predict(images, ood_threshold="off"))
    with pytest.raises(CifarlabError, match=r"expected uint8 RGB images .* got float32 \(32, 32, 3\)"):
        model.predict(images[0].astype(np.float32))


def test_unknown_option_names_say_did_you_mean():
    with pytest.raises(CifarlabError, match="^cifarlab.train: unknown option 'epoch'; did you mean "
                                            "'epochs'"):
        cifarlab.train(data="cifar10", epoch=1)
    with pytest.raises(CifarlabError, match="^cifarlab.evaluate: unknown option 'splt'; did you mean "
                                            "'split'"):
        cifarlab.evaluate(splt="val")


def readme_example() -> str:
    section = (ROOT / "README.md").read_text().split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_the_readme_example_runs(cifar10_mirror, tmp_path, monkeypatch, capsys):
    """On a small CIFAR-10-format archive served over loopback as the official one."""
    code = readme_example()
    assert len(code.splitlines()) <= 12
    cifar10_mirror(per_batch=40)
    monkeypatch.chdir(tmp_path)
    write_photos(tmp_path / "photos")
    exec(compile(code, "README.md (Python API)", "exec"), {})
    out = capsys.readouterr().out
    assert "photo0.png" in out and "photo1.png" in out
    assert (tmp_path / "runs").is_dir()
