"""Official CIFAR formats (python, binary, CIFAR-100; archive and folder), pickle safety, errors.

The `make_*` builders write tiny fakes laid out exactly like the official releases (python
batches pickled with protocol 2, bytes keys, NumPy uint8 data); other test files import them.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from cifarlab.data import CIFAR10_CLASSES, load_dataset
from cifarlab.data.cifar import SafeUnpickler, safe_unpickle
from cifarlab.errors import CifarlabError

PER_BATCH = 3  # images per batch file: 5 train batches -> 15 train, 1 test batch -> 3 test
FINE = [f"fine{i:02d}" for i in range(100)]
COARSE = [f"coarse{i:02d}" for i in range(20)]


def fake_pixels(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 32, 32, 3) uint8 images and the (N, 3072) channel-planar rows CIFAR stores."""
    images = np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return images, images.transpose(0, 3, 1, 2).reshape(n, 3072)


def _pickle(obj, path: Path) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


def _archive(folder: Path, name: str) -> Path:
    archive = folder.parent / name
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return archive


def make_cifar10_python(root: Path, archive: bool = False) -> tuple[Path, dict]:
    """root/cifar-10-batches-py (or root/cifar-10-python.tar.gz); returns (path, expected)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    expected = {"train": ([], []), "test": ([], [])}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        images, rows = fake_pixels(PER_BATCH, seed=b)
        labels = [int(x) for x in (np.arange(PER_BATCH) + b) % 10]
        _pickle({b"batch_label": f"batch {b}".encode(), b"labels": labels, b"data": rows,
                 b"filenames": [f"img{b}_{i}.png".encode() for i in range(PER_BATCH)]},
                folder / name)
        split = "test" if name == "test_batch" else "train"
        expected[split][0].append(images)
        expected[split][1].extend(labels)
    _pickle({b"num_cases_per_batch": PER_BATCH, b"label_names": [c.encode() for c in CIFAR10_CLASSES],
             b"num_vis": 3072}, folder / "batches.meta")
    (folder / "readme.html").write_text("<html>fake</html>")
    result = {s: (np.concatenate(i), np.array(l)) for s, (i, l) in expected.items()}
    return (_archive(folder, "cifar-10-python.tar.gz") if archive else folder), result


def make_cifar10_binary(root: Path, archive: bool = False) -> tuple[Path, dict]:
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    expected = {"train": ([], []), "test": ([], [])}
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for b, name in enumerate(names):
        images, rows = fake_pixels(PER_BATCH, seed=10 + b)
        labels = (np.arange(PER_BATCH) + 2 * b) % 10
        records = np.concatenate([labels[:, None].astype(np.uint8), rows], axis=1)
        (folder / name).write_bytes(records.tobytes())
        split = "test" if name.startswith("test") else "train"
        expected[split][0].append(images)
        expected[split][1].extend(labels.tolist())
    (folder / "batches.meta.txt").write_text("\n".join(CIFAR10_CLASSES) + "\n\n")
    result = {s: (np.concatenate(i), np.array(l)) for s, (i, l) in expected.items()}
    return (_archive(folder, "cifar-10-binary.tar.gz") if archive else folder), result


def make_cifar100(root: Path, archive: bool = False) -> tuple[Path, dict]:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    expected = {}
    for s, name in enumerate(["train", "test"]):
        n = 6 if name == "train" else 4
        images, rows = fake_pixels(n, seed=20 + s)
        fine = [int(x) for x in (np.arange(n) * 17 + s) % 100]
        coarse = [f % 20 for f in fine]
        _pickle({b"filenames": [b"x"] * n, b"batch_label": name.encode(), b"fine_labels": fine,
                 b"coarse_labels": coarse, b"data": rows}, folder / name)
        expected[name] = (images, np.array(fine), np.array(coarse))
    _pickle({b"fine_label_names": [c.encode() for c in FINE],
             b"coarse_label_names": [c.encode() for c in COARSE]}, folder / "meta")
    return (_archive(folder, "cifar-100-python.tar.gz") if archive else folder), expected


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
    _pickle(batch, path / "data_batch_4")
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
    _pickle(payload, path / "data_batch_1")
    with pytest.raises(CifarlabError, match="unsafe or malformed pickle.*refused"):
        load_dataset(path, use_cache=False)
    assert not marker.exists()
    # the archive path goes through the same unpickler
    archive = _archive(path, "cifar-10-python.tar.gz")
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
