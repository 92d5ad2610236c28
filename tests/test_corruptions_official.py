"""The official CIFAR-10-C files: read memory-mapped, and every malformed file a one-line error."""

from __future__ import annotations

import numpy as np
import pytest

from cifarlab.errors import CifarlabError
from cifarlab.evaluation.corruptions import corrupt, load_official


def fake_official(folder, names=("gaussian_noise", "fog"), n=4, labels=None):
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        arr = np.repeat(np.arange(1, 6, dtype=np.uint8), n)[:, None, None, None] * (k + 1)
        np.save(folder / f"{name}.npy", np.broadcast_to(arr, (5 * n, 32, 32, 3)).copy())
    np.save(folder / "labels.npy",
            np.tile(np.arange(n) % 10, 5).astype(np.uint8) if labels is None else labels)
    return folder


def test_load_official(tmp_path):
    folder = fake_official(tmp_path / "CIFAR-10-C")
    data, labels = load_official(folder, ["gaussian_noise", "fog"])
    assert set(data) == {(nm, s) for nm in ("gaussian_noise", "fog") for s in range(1, 6)}
    for (name, severity), arr in data.items():
        assert arr.shape == (4, 32, 32, 3) and arr.dtype == np.uint8
        assert (np.asarray(arr) == severity * (1 + (name == "fog"))).all()
    assert labels.dtype == np.int64 and list(labels) == [0, 1, 2, 3]
    # the arrays are memory-mapped slices; corrupting one gives a plain array
    out = corrupt(data[("fog", 2)], "contrast", 1)
    assert type(out) is np.ndarray and out.shape == (4, 32, 32, 3)
    # one label per image (not repeated five times) is fine too
    np.save(folder / "labels.npy", np.arange(4))
    assert list(load_official(folder, ["fog"])[1]) == [0, 1, 2, 3]


def single_line_error(folder, names, match):
    with pytest.raises(CifarlabError, match=match) as e:
        load_official(folder, names)
    assert "\n" not in str(e.value)


def test_load_official_errors(tmp_path):
    single_line_error(tmp_path / "absent", ["fog"], "no such folder")
    good = fake_official(tmp_path / "good")
    single_line_error(good, ["fgo"], "did you mean 'fog'")
    single_line_error(good, ["snow"], "has no snow.npy")

    bad = fake_official(tmp_path / "nolabels")
    (bad / "labels.npy").unlink()
    single_line_error(bad, ["fog"], "has no labels.npy")

    bad = fake_official(tmp_path / "dtype")
    np.save(bad / "fog.npy", np.zeros((20, 32, 32, 3), np.float32))
    single_line_error(bad, ["fog"],
                      r"fog.npy: expected \(N\*5, H, H, 3\) uint8 images, got float32")

    bad = fake_official(tmp_path / "shape")
    np.save(bad / "fog.npy", np.zeros((20, 32, 32), np.uint8))
    single_line_error(bad, ["fog"], r"got uint8 \(20, 32, 32\)")

    bad = fake_official(tmp_path / "five")
    np.save(bad / "fog.npy", np.zeros((21, 32, 32, 3), np.uint8))
    single_line_error(bad, ["fog"], "21 images is not 5 severities")

    bad = fake_official(tmp_path / "count", labels=np.zeros(7, np.uint8))
    single_line_error(bad, ["fog"], "7 labels for 4 images")

    bad = fake_official(tmp_path / "blocks", labels=np.arange(20))
    single_line_error(bad, ["fog"], "5 severity blocks differ")

    bad = fake_official(tmp_path / "labeltype", labels=np.zeros(20, np.float32))
    single_line_error(bad, ["fog"], "1-D integer array")

    bad = fake_official(tmp_path / "mixed")
    np.save(bad / "fog.npy", np.zeros((10, 32, 32, 3), np.uint8))
    single_line_error(bad, ["gaussian_noise", "fog"], "2 images per severity, but the other")

    bad = fake_official(tmp_path / "pickle")
    np.save(bad / "fog.npy", np.array([{"a": 1}] * 5, dtype=object), allow_pickle=True)
    single_line_error(bad, ["fog"], "not a readable .npy")

    bad = fake_official(tmp_path / "garbage")
    (bad / "fog.npy").write_bytes(b"not an npy file at all")
    single_line_error(bad, ["fog"], "not a readable .npy")
