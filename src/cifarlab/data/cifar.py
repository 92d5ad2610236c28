"""The official CIFAR-10 / CIFAR-100 releases: python (pickled) and binary batches.

Python batches are pickles, so they are read with `SafeUnpickler`, which admits only the few
NumPy globals the format needs and refuses everything else: a crafted file cannot run code.
Both the `.tar.gz` archives and their extracted folders are read; archives are read in memory
in one sequential pass (members are never extracted to disk here; `archive.safe_extract` does
that, for `cifarlab data download`).
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


_LATIN1 = {"latin1", "latin-1", "latin_1", "iso-8859-1", "iso8859-1", "l1"}


def _latin1_encode(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """Stand-in for `_codecs.encode`, which Python 3 pickles (protocol < 3) use for bytes.

    Only the latin-1 round trip that `pickle` itself emits is allowed: any other codec name
    (codec lookup can import modules) is refused.
    """
    if not isinstance(text, str) or str(encoding).lower() not in _LATIN1 or errors != "strict":
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the NumPy array-reconstruction globals.

    Everything else (os.system, builtins.exec, subprocess, ...) is refused before it can be
    called, so a crafted batch file cannot run code.
    """

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        raise pickle.UnpicklingError(f"refused to load global {module}.{name}")

    def persistent_load(self, pid):  # noqa: D401 - pickle API
        raise pickle.UnpicklingError("refused a persistent id")


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
    pixels = _key(batch, "data", what)
    raw_labels = _key(batch, label_key, what)
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 2 \
            or pixels.shape[1] != 3072:
        shape = getattr(pixels, "shape", type(pixels).__name__)
        raise CifarlabError(
            f"{what}: 'data' has shape {shape} {getattr(pixels, 'dtype', '')}, expected (N, 3072) "
            "uint8; not a CIFAR batch"
        )
    try:
        labels = np.asarray(raw_labels)
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(f"labels are {labels.dtype}")
        labels = labels.astype(np.int64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise CifarlabError(f"{what}: '{label_key}' is not a list of integers ({exc}); "
                            "not a CIFAR batch") from None
    if labels.shape != (pixels.shape[0],):
        raise CifarlabError(
            f"{what}: '{label_key}' has shape {labels.shape} for {pixels.shape[0]} images; "
            "the file is damaged"
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


_TAR_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error)


def _read_archive(root: Path, wanted: list[str]) -> dict[str, bytes]:
    """Read the `wanted` members (matched by base name) of a CIFAR archive in one pass.

    One sequential pass matters: gzip cannot seek backwards without decompressing again.
    Only regular files are read; links and anything else are ignored (never extracted).
    """
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(root, "r:*") as tar:
            for member in tar:
                base = member.name.rstrip("/").rsplit("/", 1)[-1]
                if member.isfile() and base in wanted and base not in found:
                    found[base] = tar.extractfile(member).read()  # type: ignore[union-attr]
                    if len(found) == len(wanted):
                        break
    except _TAR_ERRORS as exc:
        raise CifarlabError(f"{root}: truncated or invalid archive ({exc}); download it again") from None
    missing = [n for n in wanted if n not in found]
    if missing:
        raise CifarlabError(f"{root}: archive has no {', '.join(missing)}; it is not a complete "
                            "official CIFAR archive (truncated?), download it again")
    return found


def _reader_for(root: Path, wanted: list[str]) -> Callable[[str], bytes]:
    """Return read(member) for an extracted folder or a .tar.gz archive."""
    if root.is_dir():
        def read_file(name: str) -> bytes:
            path = root / name
            if not path.is_file():
                raise CifarlabError(f"{root}: missing {name}; the folder is incomplete, "
                                    "extract or download it again")
            return path.read_bytes()
        return read_file
    members = _read_archive(root, wanted)
    return members.__getitem__


def load_cifar(root: Path, fmt: str, label_mode: str = "fine") -> tuple[list[str], dict[str, Split]]:
    """Read an official CIFAR release (archive or extracted folder) as train/test splits."""
    _, train_names, test_names, meta_name = LAYOUTS[fmt]
    if fmt == "cifar100-python" and label_mode not in ("fine", "coarse"):
        raise CifarlabError(f"--labels must be 'fine' or 'coarse', got {label_mode!r}")
    read = _reader_for(root, [*train_names, *test_names, meta_name])
    if fmt == "cifar10-binary":
        meta = read(meta_name).decode("ascii", "replace").split()
        classes = [c for c in meta if c] or list(CIFAR10_CLASSES)

        def load(name: str) -> Split:
            return _binary_batch(read(name), f"{root}:{name}")
    else:
        meta = safe_unpickle(read(meta_name), f"{root}:{meta_name}")
        if not isinstance(meta, dict):
            raise CifarlabError(f"{root}:{meta_name}: expected a dict, found {type(meta).__name__}; "
                                "not a CIFAR meta file")
        if fmt == "cifar100-python":
            names_key, label_key = f"{label_mode}_label_names", f"{label_mode}_labels"
        else:
            names_key, label_key = "label_names", "labels"
        names = _key(meta, names_key, f"{root}:{meta_name}")
        if not isinstance(names, (list, tuple)) or not names:
            raise CifarlabError(f"{root}:{meta_name}: '{names_key}' is not a list of names; "
                                "not a CIFAR meta file")
        classes = [c.decode() if isinstance(c, bytes) else str(c) for c in names]

        def load(name: str) -> Split:
            return _python_batch(read(name), f"{root}:{name}", label_key)
    splits = {
        "train": _concat([load(n) for n in train_names]),
        "test": _concat([load(n) for n in test_names]),
    }
    for name, split in splits.items():
        if split.labels.size and (split.labels.min() < 0 or split.labels.max() >= len(classes)):
            raise CifarlabError(f"{root}: {name} labels outside 0..{len(classes) - 1}; the file is damaged")
    return classes, splits


ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")


def _archive_stem(folder: str) -> str:
    return folder.replace("-batches-py", "-python").replace("-batches-bin", "-binary")


def _sniff_archive(path: Path) -> str | None:
    """The CIFAR format of a renamed archive, from its first member's folder name."""
    try:
        with tarfile.open(path, "r:*") as tar:
            first = tar.next()
    except _TAR_ERRORS:
        return None
    if first is None:
        return None
    top = first.name.lstrip("./").split("/", 1)[0]
    return next((fmt for fmt, (folder, *_r) in LAYOUTS.items() if folder == top), None)


def detect_cifar_format(path: Path) -> tuple[str, Path] | None:
    """Name the CIFAR layout of an archive or folder (and where its batches are), or None.

    Folders: the official extracted folder, a folder holding it, or a renamed folder holding
    the batch files. Archives: the official names, or any tar whose top folder is official.
    """
    if path.is_dir():
        for fmt, (folder, train, _test, meta) in LAYOUTS.items():
            if path.name == folder:
                return fmt, path
            if (path / folder).is_dir():
                return fmt, path / folder
        for fmt, (folder, train, _test, meta) in LAYOUTS.items():
            if (path / meta).is_file() and (path / train[0]).is_file():
                return fmt, path
        return None
    if path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES):
        for fmt, (folder, *_rest) in LAYOUTS.items():
            if path.name.startswith(_archive_stem(folder)):
                return fmt, path
        sniffed = _sniff_archive(path)
        if sniffed:
            return sniffed, path
    return None
