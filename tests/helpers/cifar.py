"""Tiny fakes of the official CIFAR releases (python batches pickled with protocol 2, bytes keys,
NumPy uint8 data; the binary records; CIFAR-100's fine and coarse labels), as a folder or a
.tar.gz; each `make_*` returns (path, the images and labels it holds)."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np

from cifarlab.data import CIFAR10_CLASSES

PER_BATCH = 3  # images per batch file: 5 train batches -> 15 train, 1 test batch -> 3 test
FINE = [f"fine{i:02d}" for i in range(100)]
COARSE = [f"coarse{i:02d}" for i in range(20)]


def fake_pixels(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 32, 32, 3) uint8 images and the (N, 3072) channel-planar rows CIFAR stores."""
    images = np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return images, images.transpose(0, 3, 1, 2).reshape(n, 3072)


def write_pickle(obj, path: Path) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


def tar_folder(folder: Path, name: str) -> Path:
    archive = folder.parent / name
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return archive


def make_cifar10_python(root: Path, archive: bool = False, per_batch: int = PER_BATCH) -> tuple[Path, dict]:
    """root/cifar-10-batches-py (or root/cifar-10-python.tar.gz) with `per_batch` images in each
    of its 6 batches; returns (path, expected)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    expected = {"train": ([], []), "test": ([], [])}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        images, rows = fake_pixels(per_batch, seed=b)
        labels = [int(x) for x in (np.arange(per_batch) + b) % 10]
        write_pickle({b"batch_label": f"batch {b}".encode(), b"labels": labels, b"data": rows,
                      b"filenames": [f"img{b}_{i}.png".encode() for i in range(per_batch)]},
                     folder / name)
        split = "test" if name == "test_batch" else "train"
        expected[split][0].append(images)
        expected[split][1].extend(labels)
    write_pickle({b"num_cases_per_batch": per_batch, b"num_vis": 3072,
                  b"label_names": [c.encode() for c in CIFAR10_CLASSES]}, folder / "batches.meta")
    (folder / "readme.html").write_text("<html>fake</html>")
    result = {s: (np.concatenate(i), np.array(l)) for s, (i, l) in expected.items()}
    return (tar_folder(folder, "cifar-10-python.tar.gz") if archive else folder), result


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
    return (tar_folder(folder, "cifar-10-binary.tar.gz") if archive else folder), result


def make_cifar100(root: Path, archive: bool = False) -> tuple[Path, dict]:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    expected = {}
    for s, name in enumerate(["train", "test"]):
        n = 6 if name == "train" else 4
        images, rows = fake_pixels(n, seed=20 + s)
        fine = [int(x) for x in (np.arange(n) * 17 + s) % 100]
        coarse = [f % 20 for f in fine]
        write_pickle({b"filenames": [b"x"] * n, b"batch_label": name.encode(), b"fine_labels": fine,
                      b"coarse_labels": coarse, b"data": rows}, folder / name)
        expected[name] = (images, np.array(fine), np.array(coarse))
    write_pickle({b"fine_label_names": [c.encode() for c in FINE],
                  b"coarse_label_names": [c.encode() for c in COARSE]}, folder / "meta")
    return (tar_folder(folder, "cifar-100-python.tar.gz") if archive else folder), expected
