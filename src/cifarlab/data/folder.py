"""Image-folder datasets: ROOT/<split>/<class>/<image>, the way users bring their own data."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cifarlab.data.dataset import Split
from cifarlab.data.images import IMAGE_EXTENSIONS, is_image_file, read_image_rgb, resize_rgb
from cifarlab.errors import CifarlabError

SPLIT_NAMES = ("train", "val", "test")


def _visible_dirs(folder: Path) -> list[Path]:
    """Sub-folders, skipping hidden ones (.ipynb_checkpoints, .DS_Store-style clutter)."""
    return [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]


def is_image_folder(root: Path) -> bool:
    return root.is_dir() and any((root / s).is_dir() for s in SPLIT_NAMES)


def class_names_of(root: Path, splits: list[str]) -> list[str]:
    """Class order: `classes.txt` (one name per line) if present, else sorted folder names."""
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
        raise CifarlabError(f"{root}: no class folders under {'/'.join(splits)}; expected "
                            "ROOT/<split>/<class>/<image>")
    return found


def list_files(root: Path) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
    """Find every (image path, label) of every split, failing clearly on a malformed tree."""
    splits = [s for s in SPLIT_NAMES if (root / s).is_dir()]
    if "train" not in splits and "test" not in splits:
        raise CifarlabError(f"{root}: needs a train/ or test/ folder (ROOT/<split>/<class>/<image>)")
    classes = class_names_of(root, splits)
    files: dict[str, list[tuple[Path, int]]] = {}
    for split in splits:
        items: list[tuple[Path, int]] = []
        for label, cls in enumerate(classes):
            folder = root / split / cls
            if not folder.is_dir():
                continue
            images = sorted(p for p in folder.iterdir()
                            if is_image_file(p) and not p.name.startswith("."))
            if not images:
                raise CifarlabError(f"{folder}: class folder has no images "
                                    f"({', '.join(IMAGE_EXTENSIONS)}); add some or remove the folder")
            items += [(p, label) for p in images]
        unknown = sorted(d.name for d in _visible_dirs(root / split) if d.name not in classes)
        if unknown:
            raise CifarlabError(f"{root / split}: folders {unknown} are not in classes.txt; "
                                "add them there or remove them")
        if not items:
            raise CifarlabError(f"{root / split}: split is empty; add images or remove the folder")
        files[split] = items
    return classes, files


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
