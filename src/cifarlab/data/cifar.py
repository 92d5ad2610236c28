"""The official CIFAR-10 / CIFAR-100 releases: python (pickled) and binary batches.

Python batches are pickles, so they are read with `SafeUnpickler`, which admits only the few
NumPy globals the format needs and refuses everything else: a crafted file cannot run code.
Both the `.tar.gz` archives and their extracted folders are read; archives are read in memory
(members are never extracted to disk here).
"""

from __future__ import annotations

import io
import pickle
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cifarlab.data.dataset import Split
from cifarlab.errors import CifarlabError

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]

# (folder inside the archive, train members, test members, meta member)
LAYOUTS = {
    "cifar10-python": (
        "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"],
        "batches.meta",
    ),
    "cifar10-binary": (
        "cifar-10-batches-bin", [f"data_batch_{i}.bin" for i in range(1, 6)], ["test_batch.bin"],
        "batches.meta.txt",
    ),
    "cifar100-python": ("cifar-100-python", ["train"], ["test"], "meta"),
}

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the NumPy array-reconstruction globals."""

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load global {module}.{name}")


def safe_unpickle(data: bytes, what: str) -> object:
    try:
        return SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        raise CifarlabError(
            f"{what}: unsafe or malformed pickle ({exc}); use an official CIFAR file"
        ) from None
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
        raise CifarlabError(f"{what}: truncated or malformed pickle ({exc}); download it again") from None


def _key(d: dict, name: str, what: str) -> object:
    for k in (name.encode(), name):
        if k in d:
            return d[k]
    raise CifarlabError(f"{what}: missing '{name}' entry; this is not a CIFAR batch file")


def _python_batch(data: bytes, what: str, label_key: str) -> Split:
    batch = safe_unpickle(data, what)
    if not isinstance(batch, dict):
        raise CifarlabError(f"{what}: expected a dict, found {type(batch).__name__}; not a CIFAR batch")
    pixels = np.asarray(_key(batch, "data", what))
    labels = np.asarray(_key(batch, label_key, what), dtype=np.int64)
    if pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[1] != 3072:
        raise CifarlabError(
            f"{what}: 'data' has shape {pixels.shape} {pixels.dtype}, expected (N, 3072) uint8; "
            "not a CIFAR batch"
        )
    if labels.shape != (pixels.shape[0],):
        raise CifarlabError(
            f"{what}: {labels.shape[0]} labels for {pixels.shape[0]} images; the file is damaged"
        )
    return Split(pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels)


def _binary_batch(data: bytes, what: str) -> Split:
    record = 1 + 3072
    if len(data) == 0 or len(data) % record:
        raise CifarlabError(
            f"{what}: {len(data)} bytes is not a whole number of {record}-byte records; "
            "the file is truncated, download it again"
        )
    rows = np.frombuffer(data, dtype=np.uint8).reshape(-1, record)
    images = rows[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    return Split(images, rows[:, 0].astype(np.int64))


def _concat(parts: list[Split]) -> Split:
    return Split(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]))


def _reader_for(root: Path) -> tuple[Callable[[str], bytes], Callable[[], None]]:
    """Return read(member) for an extracted folder or a .tar.gz archive, and a close()."""
    if root.is_dir():
        def read_file(name: str) -> bytes:
            path = root / name
            if not path.is_file():
                raise CifarlabError(f"{root}: missing {name}; the folder is incomplete")
            return path.read_bytes()
        return read_file, lambda: None
    try:
        tar = tarfile.open(root, "r:*")
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise CifarlabError(f"{root}: truncated or invalid archive ({exc}); download it again") from None

    def read_member(name: str) -> bytes:
        match = [m for n, m in members.items() if n.endswith("/" + name) or n == name]
        if not match:
            raise CifarlabError(f"{root}: archive has no {name}; it is not an official CIFAR archive")
        try:
            return tar.extractfile(match[0]).read()  # type: ignore[union-attr]
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise CifarlabError(f"{root}: truncated archive ({exc}); download it again") from None
    return read_member, tar.close


def load_cifar(root: Path, fmt: str, label_mode: str = "fine") -> tuple[list[str], dict[str, Split]]:
    """Read an official CIFAR release (archive or extracted folder) as train/test splits."""
    _, train_names, test_names, meta_name = LAYOUTS[fmt]
    read, close = _reader_for(root)
    try:
        if fmt == "cifar10-binary":
            meta = read(meta_name).decode("ascii", "replace").split()
            classes = [c for c in meta if c] or CIFAR10_CLASSES
            load = _binary_batch
            splits = {
                "train": _concat([load(read(n), f"{root}:{n}") for n in train_names]),
                "test": _concat([load(read(n), f"{root}:{n}") for n in test_names]),
            }
        else:
            meta = safe_unpickle(read(meta_name), f"{root}:{meta_name}")
            if fmt == "cifar100-python":
                if label_mode not in ("fine", "coarse"):
                    raise CifarlabError(f"--labels must be 'fine' or 'coarse', got {label_mode!r}")
                names_key, label_key = f"{label_mode}_label_names", f"{label_mode}_labels"
            else:
                names_key, label_key = "label_names", "labels"
            classes = [c.decode() if isinstance(c, bytes) else str(c)
                       for c in _key(meta, names_key, f"{root}:{meta_name}")]  # type: ignore[arg-type]
            splits = {
                "train": _concat([_python_batch(read(n), f"{root}:{n}", label_key) for n in train_names]),
                "test": _concat([_python_batch(read(n), f"{root}:{n}", label_key) for n in test_names]),
            }
    finally:
        close()
    for name, split in splits.items():
        if split.labels.size and (split.labels.min() < 0 or split.labels.max() >= len(classes)):
            raise CifarlabError(f"{root}: {name} labels outside 0..{len(classes) - 1}; the file is damaged")
    return classes, splits


def detect_cifar_format(path: Path) -> tuple[str, Path] | None:
    """Name the CIFAR layout of an archive or folder (and where its batches are), or None."""
    for fmt, (folder, *_rest) in LAYOUTS.items():
        archive_stem = folder.replace("-batches-py", "-python").replace("-batches-bin", "-binary")
        if path.is_dir() and path.name == folder:
            return fmt, path
        if path.is_dir() and (path / folder).is_dir():
            return fmt, path / folder
        if path.is_file() and path.name.startswith(archive_stem) and path.name.endswith(
            (".tar.gz", ".tgz", ".tar")
        ):
            return fmt, path
    return None
