"""Official CIFAR formats (python, binary, CIFAR-100; archive and folder), pickle safety, errors.

The fakes laid out like the official releases come from tests/helpers/cifar.py.
"""

from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest
from helpers.cifar import (COARSE, FINE, PER_BATCH, make_cifar10_binary, make_cifar10_python,
                           make_cifar100, tar_folder, write_pickle)

from cifarlab.data import CIFAR10_CLASSES, load_dataset
from cifarlab.data.cifar import SafeUnpickler, safe_unpickle
from cifarlab.errors import CifarlabError


def _check(data, expected: dict, classes: list[str]) -> None:
    assert data.class_names == classes
    assert set(data.splits) == {"train", "test"}
    for split, (images, labels) in expected.items():
        got = data.split(split)
        assert got.images.dtype == np.uint8 and got.images.shape == (len(labels), 32, 32, 3)
        assert got.labels.dtype == np.int64
        np.testing.assert_array_equal(got.images, images)
        np.testing.assert_array_equal(got.labels, labels)


@pytest.mark.parametrize("archive", [False, True], ids=["folder", "archive"])
@pytest.mark.parametrize("maker,fmt", [(make_cifar10_python, "cifar10-python"),
                                       (make_cifar10_binary, "cifar10-binary")])
def test_cifar10_formats(tmp_path, maker, fmt, archive):
    path, expected = maker(tmp_path, archive)
    data = load_dataset(path, cache_dir=tmp_path / "cache")
    assert data.format == fmt and data.image_size == (32, 32)
    assert len(data.split("train")) == 5 * PER_BATCH and len(data.split("test")) == PER_BATCH
    _check(data, expected, CIFAR10_CLASSES)


def test_parent_folder_and_renamed_archive_are_detected(tmp_path):
    path, expected = make_cifar10_python(tmp_path / "dl", archive=True)
    assert load_dataset(tmp_path / "dl").format == "cifar10-python"  # folder holding the tree
    renamed = path.rename(tmp_path / "download.tgz")
    _check(load_dataset(renamed), expected, CIFAR10_CLASSES)


@pytest.mark.parametrize("archive", [False, True], ids=["folder", "archive"])
def test_cifar100_fine_and_coarse(tmp_path, archive):
    path, expected = make_cifar100(tmp_path, archive)
    fine = load_dataset(path, cache_dir=tmp_path / "c")
    coarse = load_dataset(path, labels="coarse", cache_dir=tmp_path / "c")
    assert fine.format == "cifar100-python" and fine.num_classes == 100 and coarse.num_classes == 20
    _check(fine, {s: (i, f) for s, (i, f, _c) in expected.items()}, FINE)
    _check(coarse, {s: (i, c) for s, (i, _f, c) in expected.items()}, COARSE)
    assert fine.fingerprint != coarse.fingerprint


def test_cifar_resized(tmp_path):
    path, _ = make_cifar10_binary(tmp_path)
    data = load_dataset(path, image_size=48, use_cache=False)
    assert data.split("train").images.shape == (15, 48, 48, 3) and data.cache == "off"


def test_truncated_archive(tmp_path):
    path, _ = make_cifar10_python(tmp_path, archive=True)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CifarlabError, match="truncated|download it again"):
        load_dataset(path, use_cache=False)


def test_missing_batch_in_folder(tmp_path):
    path, _ = make_cifar10_python(tmp_path)
    (path / "data_batch_3").unlink()
    with pytest.raises(CifarlabError, match="missing data_batch_3"):
        load_dataset(path, use_cache=False)


def test_truncated_binary_batch(tmp_path):
    path, _ = make_cifar10_binary(tmp_path)
    (path / "test_batch.bin").write_bytes((path / "test_batch.bin").read_bytes()[:-10])
    with pytest.raises(CifarlabError, match="test_batch.bin.*not a whole number"):
        load_dataset(path, use_cache=False)


def test_truncated_pickle(tmp_path):
    path, _ = make_cifar10_python(tmp_path)
    (path / "data_batch_2").write_bytes((path / "data_batch_2").read_bytes()[:500])
    with pytest.raises(CifarlabError, match="data_batch_2"):
        load_dataset(path, use_cache=False)


@pytest.mark.parametrize("batch,match", [
    ({b"data": np.zeros((3, 1024), np.uint8), b"labels": [0, 1, 2]}, r"shape \(3, 1024\)"),
    ({b"data": np.zeros((3, 3072), np.float32), b"labels": [0, 1, 2]}, "float32"),
    ({b"data": np.zeros((3, 3072), np.uint8), b"labels": [0, 1]}, "for 3 images"),
    ({b"data": np.zeros((3, 3072), np.uint8), b"labels": ["a", "b", "c"]}, "not a list of integers"),
    ({b"data": np.zeros((3, 3072), np.uint8), b"labels": [0, 1, 99]}, "labels outside"),
    ({b"data": np.zeros((3, 3072), np.uint8)}, "missing 'labels'"),
    ([1, 2, 3], "expected a dict"),
], ids=["shape", "dtype", "count", "strings", "range", "nokey", "notdict"])
def test_wrong_shaped_pickle(tmp_path, batch, match):
    path, _ = make_cifar10_python(tmp_path)
    write_pickle(batch, path / "data_batch_4")
    with pytest.raises(CifarlabError, match=match):
        load_dataset(path, use_cache=False)


class _Payload:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


@pytest.mark.parametrize("kind", ["os.system", "builtins.exec", "eval-in-dict"])
def test_malicious_pickle_is_refused(tmp_path, kind):
    marker = tmp_path / "pwned"
    path, _ = make_cifar10_python(tmp_path / "data")
    code = f"open({str(marker)!r}, 'w').write('x')"
    if kind == "os.system":
        payload = _Payload(os.system, f"touch {marker}")
    elif kind == "builtins.exec":
        payload = _Payload(exec, code)
    else:
        payload = {b"data": _Payload(eval, code), b"labels": [0]}
    write_pickle(payload, path / "data_batch_1")
    with pytest.raises(CifarlabError, match="unsafe or malformed pickle.*refused"):
        load_dataset(path, use_cache=False)
    assert not marker.exists()
    # the archive path goes through the same unpickler
    archive = tar_folder(path, "cifar-10-python.tar.gz")
    with pytest.raises(CifarlabError, match="refused"):
        load_dataset(archive, use_cache=False)
    assert not marker.exists()


def test_codecs_encode_is_limited_to_latin1():
    # protocol-2 pickles of bytes use _codecs.encode(text, 'latin1'); other codecs are refused
    assert safe_unpickle(pickle.dumps(b"\x00\xff", protocol=2), "x") == b"\x00\xff"
    evil = b"c_codecs\nencode\n(Vabc\nVrot13\ntR."
    with pytest.raises(CifarlabError, match="refused"):
        safe_unpickle(evil, "x")
    with pytest.raises(pickle.UnpicklingError):
        SafeUnpickler(io.BytesIO(b"cposix\nsystem\n(Vtrue\ntR.")).load()


def test_unknown_and_missing_sources(tmp_path):
    with pytest.raises(CifarlabError, match="no such file or folder"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "junk.txt").write_text("hi")
    with pytest.raises(CifarlabError, match="not a dataset cifarlab reads"):
        load_dataset(tmp_path / "junk.txt")
    with pytest.raises(CifarlabError, match="--image-size"):
        load_dataset(tmp_path / "junk.txt", image_size=0)
