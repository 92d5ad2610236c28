"""Image-folder datasets, the way users bring their own data. Two layouts are read:

- split-folders, ROOT/<train|val|test>/<class>/<image>: the folders are the splits.
- class-folders, ROOT/<class>/<image> (the layout of Keras' image_dataset_from_directory,
  torchvision's ImageFolder, Teachable Machine exports): ROOT's visible sub-folders hold images
  directly and none is named train, val or test. cifarlab draws the val and test splits itself.

In both, `classes.txt` in ROOT (one name per line) sets the class order; else folder names sorted.

Split rule for class-folders (`draw_splits`): each class is split on its own, so every split
has every class. A class of n images gives max(1, floor(0.15 n)) images to test and as many to
val, the rest to train: 3 images -> 1/1/1 (train/val/test), 10 -> 8/1/1, 20 -> 14/3/3,
10,000 -> 7,000/1,500/1,500. A class needs at least 3 images (one per split); 10 or more is the
practical minimum. Which images are held out is drawn by `sampling.seeded_sample`, seeded per
class from (seed, class name): the same seed and files give the same split, another seed another
one, and adding images to one class leaves the other classes' splits unchanged.

A split is recorded as the file lists per split (`Dataset.split_files`, `Dataset.split_record()`,
`save_split_record`). Given back (`load_dataset(..., split_record=record or path)`) it is
reused: a file the record lists goes to the split the record names, a file added since (not in
the record) goes to train, so val and test stay fixed and a resumed run never sees its val/test
images in training; a recorded file that has disappeared is dropped (counted in
`split_info["missing"]`).
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cifarlab.data.dataset import Dataset, Split
from cifarlab.data.images import IMAGE_EXTENSIONS, is_image_file, read_image_rgb, resize_rgb
from cifarlab.data.sampling import seeded_sample
from cifarlab.errors import CifarlabError

SPLIT_NAMES = ("train", "val", "test")
SPLIT_FOLDERS = "split-folders"  # ROOT/<train|val|test>/<class>/<image>
CLASS_FOLDERS = "class-folders"  # ROOT/<class>/<image>
LAYOUT_PATTERNS = {SPLIT_FOLDERS: "ROOT/<train|val|test>/<class>/<image>",
                   CLASS_FOLDERS: "ROOT/<class>/<image>"}
ACCEPTED_LAYOUTS = ("an image folder ROOT/<class>/<image> (one folder of images per class) or "
                    "ROOT/<train|val|test>/<class>/<image>")
VAL_FRACTION = 0.15
TEST_FRACTION = 0.15


def _visible_dirs(folder: Path) -> list[Path]:
    """Sub-folders, skipping hidden ones (.ipynb_checkpoints, .DS_Store-style clutter)."""
    return [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]


def _images_in(folder: Path) -> list[Path]:
    """The visible image files directly in `folder`, sorted."""
    return sorted(p for p in folder.iterdir() if is_image_file(p) and not p.name.startswith("."))


def _has_image(folder: Path) -> bool:
    try:
        return any(is_image_file(p) and not p.name.startswith(".") for p in folder.iterdir())
    except OSError:
        return False


def folder_layout(root: Path) -> str | None:
    """SPLIT_FOLDERS if ROOT has a train/, val/ or test/ folder; CLASS_FOLDERS if one of its
    visible sub-folders holds images directly; None if it is not an image folder."""
    root = Path(root)
    if not root.is_dir():
        return None
    if any((root / s).is_dir() for s in SPLIT_NAMES):
        return SPLIT_FOLDERS
    if any(_has_image(d) for d in _visible_dirs(root)):
        return CLASS_FOLDERS
    return None


def is_image_folder(root: Path) -> bool:
    return folder_layout(root) is not None


def not_an_image_folder(root: Path) -> str:
    """Why the folder `root` is no dataset (for the error message), with the layouts accepted."""
    root = Path(root)
    try:
        loose = _has_image(root)
        subfolders = _visible_dirs(root)
    except OSError as exc:
        return f"{root}: cannot read the folder ({exc})"
    if loose:
        return (f"{root}: not a dataset cifarlab reads: it holds images directly, not in class "
                f"folders; cifarlab reads {ACCEPTED_LAYOUTS}: move each class's images into a "
                "folder named after the class")
    if subfolders:
        names = sorted(d.name for d in subfolders)
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        return (f"{root}: not a dataset cifarlab reads: none of its folders ({shown}) holds images "
                "directly; expected a CIFAR archive's extracted folder, or "
                f"{ACCEPTED_LAYOUTS}")
    return (f"{root}: not a dataset cifarlab reads; expected a CIFAR archive "
            "(cifar-10-python.tar.gz, cifar-10-binary.tar.gz, cifar-100-python.tar.gz), its "
            "extracted folder, or "
            f"{ACCEPTED_LAYOUTS}")


def class_names_of(root: Path, splits: list[str]) -> list[str]:
    """Class order: `classes.txt` (one name per line) if present, else sorted folder names.

    splits: the split folders holding class folders (["train", "test"]), or [""] for
    ROOT/<class>/<image>.
    """
    listed = root / "classes.txt"
    if listed.is_file():
        try:
            text = listed.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CifarlabError(f"{listed}: cannot read it ({exc}); save it as UTF-8 text, "
                                "one class name per line") from None
        names = [line.strip() for line in text.splitlines() if line.strip()]
        if not names:
            raise CifarlabError(f"{listed}: lists no classes; write one class name per line")
        if len(set(names)) != len(names):
            raise CifarlabError(f"{listed}: lists a class twice; make each line unique")
        return names
    found = sorted({d.name for s in splits for d in _visible_dirs(root / s)})
    if not found:
        where = "/".join(s for s in splits if s) or "ROOT"
        raise CifarlabError(f"{root}: no class folders under {where}; expected {ACCEPTED_LAYOUTS}")
    return found


def list_files(root: Path) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
    """ROOT/<split>/<class>/<image>: every (image path, label) of every split, failing clearly
    on a malformed tree."""
    splits = [s for s in SPLIT_NAMES if (root / s).is_dir()]
    if "train" not in splits and "test" not in splits:
        raise CifarlabError(f"{root}: needs a train/ or test/ folder (ROOT/<split>/<class>/<image>)")
    classes = class_names_of(root, splits)
    files: dict[str, list[tuple[Path, int]]] = {}
    for split in splits:
        items = _labelled_images(root / split, classes)
        if not items:
            raise CifarlabError(f"{root / split}: split is empty; add images or remove the folder")
        files[split] = items
    return classes, files


def list_class_files(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """ROOT/<class>/<image>: the class names and every (image path, label), sorted by class
    then file name. Needs 2 or more classes; a class with no folder has no images (the split
    then says how many it needs)."""
    root = Path(root)
    classes = class_names_of(root, [""])
    if len(classes) < 2:
        raise CifarlabError(f"{root}: has one class ({classes[0]}); a classifier needs at least 2 "
                            "class folders, ROOT/<class>/<image>")
    return classes, _labelled_images(root, classes)


def _labelled_images(base: Path, classes: list[str]) -> list[tuple[Path, int]]:
    """Every (image path, label) under base/<class>/, checking each class folder found."""
    unknown = sorted(d.name for d in _visible_dirs(base) if d.name not in classes)
    if unknown:
        raise CifarlabError(f"{base}: folders {unknown} are not in classes.txt; "
                            "add them there or remove them")
    items: list[tuple[Path, int]] = []
    for label, cls in enumerate(classes):
        folder = base / cls
        if not folder.is_dir():
            continue
        images = _images_in(folder)
        if not images:
            raise CifarlabError(f"{folder}: class folder has no images "
                                f"({', '.join(IMAGE_EXTENSIONS)}); add some or remove the folder")
        items += [(p, label) for p in images]
    return items


def relative_names(root: Path, items: list[tuple[Path, int]]) -> list[str]:
    """The files as recorded in a split record: relative to ROOT, '/'-separated ("cat/001.png")."""
    return [path.relative_to(root).as_posix() for path, _ in items]


def holdout_sizes(n: int, val_fraction: float = VAL_FRACTION,
                  test_fraction: float = TEST_FRACTION) -> tuple[int, int]:
    """(val, test) images taken from a class of n: max(1, floor(fraction * n)) each."""
    return (max(1, math.floor(n * val_fraction + 1e-9)),
            max(1, math.floor(n * test_fraction + 1e-9)))


def min_images_per_class(val_fraction: float = VAL_FRACTION,
                         test_fraction: float = TEST_FRACTION) -> int:
    """The smallest class that leaves at least one training image after val and test."""
    n = 3
    while n - sum(holdout_sizes(n, val_fraction, test_fraction)) < 1:
        n += 1
    return n


def _class_seed(seed: int, name: str) -> int:
    """A per-class random state from (seed, class name): independent of the other classes."""
    entropy = [seed, zlib.crc32(name.encode("utf-8"))]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def draw_splits(
    labels: np.ndarray,
    class_names: list[str],
    seed: int = 0,
    val_fraction: float = VAL_FRACTION,
    test_fraction: float = TEST_FRACTION,
    source: str = "",
) -> dict[str, np.ndarray]:
    """Stratified, seeded train/val/test indices into `labels` (sorted), by the rule in the
    module docstring. source: the dataset path, for error messages."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise CifarlabError(f"split seed must be a whole number >= 0, got {seed!r}")
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise CifarlabError(f"val and test fractions must be between 0 and 1 and sum below 1, got "
                            f"{val_fraction} and {test_fraction}")
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=len(class_names))
    need = min_images_per_class(val_fraction, test_fraction)
    short = [(name, int(n)) for name, n in zip(class_names, counts) if n < need]
    if short:
        listed = ", ".join(f"'{name}' has {n}" for name, n in short[:5])
        more = f" (and {len(short) - 5} more classes)" if len(short) > 5 else ""
        raise CifarlabError(
            f"{source + ': ' if source else ''}too few images to draw val and test splits: "
            f"{listed}{more}; ROOT/<class>/<image> needs at least {need} images per class (1 for "
            "each of train, val and test; 10 or more to learn anything); add images, or give the "
            "splits yourself as ROOT/<train|val|test>/<class>/<image>")
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLIT_NAMES}
    for label, name in enumerate(class_names):
        index = np.flatnonzero(labels == label)
        n_val, n_test = holdout_sizes(len(index), val_fraction, test_fraction)
        state = _class_seed(int(seed), name)
        test, rest = seeded_sample(index, n_test, state, sort=False)
        val, train = seeded_sample(rest, n_val, state, sort=False)
        for split, chosen in zip(SPLIT_NAMES, (train, val, test)):
            parts[split].append(chosen)
    return {split: np.sort(np.concatenate(chunks)).astype(np.int64)
            for split, chunks in parts.items()}


def read_split_record(record: str | Path | Mapping) -> dict:
    """A split record as {"files": {split: [relative path, ...]}, "seed", ...}, validated.

    record: a path to a JSON file written by `save_split_record`, the dict
    `Dataset.split_record()` returns, or just {"train": [...], "val": [...], "test": [...]}.
    """
    where = "split record"
    if isinstance(record, (str, Path)):
        where = str(record)
        try:
            record = json.loads(Path(record).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CifarlabError(f"{where}: no such split record") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CifarlabError(f"{where}: cannot read the split record ({exc})") from None
    if not isinstance(record, Mapping):
        raise CifarlabError(f"{where}: not a split record (expected a JSON object)")
    files = record.get("files", record)
    expected = 'expected {"files": {"train": [...], "val": [...], "test": [...]}} of relative paths'
    if not isinstance(files, Mapping) or not files or not set(files) <= set(SPLIT_NAMES):
        raise CifarlabError(f"{where}: not a split record; {expected}")
    clean: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    for split in SPLIT_NAMES:
        names = files.get(split, [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise CifarlabError(f"{where}: '{split}' must be a list of file paths; {expected}")
        clean[split] = [n.replace("\\", "/") for n in names]
        for name in clean[split]:
            if seen.setdefault(name, split) != split:
                raise CifarlabError(f"{where}: {name} is in both '{seen[name]}' and '{split}'; "
                                    "a file belongs to one split")
    if not seen:
        raise CifarlabError(f"{where}: records no files; {expected}")
    meta = {k: record.get(k) for k in ("seed", "val_fraction", "test_fraction")} \
        if "files" in record else {}
    return {**meta, "files": clean}


def apply_split_record(files: list[str], record: str | Path | Mapping,
                       source: str = "") -> tuple[dict[str, np.ndarray], dict]:
    """Indices into `files` per split as a split record says; files not in it go to train.

    Returns (indices per split, info with "added_to_train" and "missing" counts).
    """
    recorded = read_split_record(record)
    split_of = {name: split for split, names in recorded["files"].items() for name in names}
    assigned = [split_of.get(name) for name in files]
    matched = sum(a is not None for a in assigned)
    if matched == 0:
        raise CifarlabError(
            f"{source + ': ' if source else ''}none of its {len(files)} images is in the split "
            f"record (which lists {len(split_of)}); the record belongs to another dataset")
    indices = {split: np.array([i for i, a in enumerate(assigned) if (a or "train") == split],
                               dtype=np.int64) for split in SPLIT_NAMES}
    info = {"method": "record", "seed": recorded.get("seed"),
            "val_fraction": recorded.get("val_fraction"),
            "test_fraction": recorded.get("test_fraction"),
            "added_to_train": len(files) - matched, "missing": len(split_of) - matched}
    return indices, info


def assign_splits(files: list[str], labels: np.ndarray, class_names: list[str], seed: int = 0,
                  split_record: str | Path | Mapping | None = None,
                  source: str = "") -> tuple[dict[str, np.ndarray], dict]:
    """(indices per split, split_info) for a class-folders dataset: from `split_record` if
    given, else drawn by `draw_splits(labels, class_names, seed)`."""
    if split_record is not None:
        return apply_split_record(files, split_record, source)
    indices = draw_splits(labels, class_names, seed, source=source)
    return indices, {"method": "seeded", "seed": int(seed), "val_fraction": VAL_FRACTION,
                     "test_fraction": TEST_FRACTION, "added_to_train": 0, "missing": 0}


def save_split_record(dataset: Dataset, path: str | Path) -> Path:
    """Write `dataset.split_record()` as JSON (atomically), e.g. into a run folder, for
    `load_dataset(..., split_record=path)` to reuse. Only class-folders datasets have one."""
    from cifarlab.atomic import write_json_atomic

    record = dataset.split_record()
    if record is None:
        raise CifarlabError(f"{dataset.source}: has no drawn split to record; only "
                            "ROOT/<class>/<image> folders do (other sources define their splits)")
    return write_json_atomic(path, record)


def _decode(path: Path, size: tuple[int, int]) -> np.ndarray:
    return resize_rgb(read_image_rgb(path), size)


def load_image_folder(
    files: dict[str, list[tuple[Path, int]]], size: tuple[int, int], progress: bool = True
) -> dict[str, Split]:
    """Decode every image (threads: Pillow releases the GIL while decoding) into uint8 arrays."""
    total = sum(len(v) for v in files.values())
    splits: dict[str, Split] = {}
    with ThreadPoolExecutor(max_workers=4) as pool, tqdm(
        total=total, desc="decoding images", unit="img", disable=not progress or total < 500
    ) as bar:
        for split, items in files.items():
            images = np.empty((len(items), *size, 3), dtype=np.uint8)
            for i, image in enumerate(pool.map(lambda item: _decode(item[0], size), items)):
                images[i] = image
                bar.update()
            splits[split] = Split(images, np.array([label for _, label in items], dtype=np.int64))
    return splits
