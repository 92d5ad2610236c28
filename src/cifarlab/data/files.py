"""Image files named on a command line: files, folders (searched recursively) and glob patterns.

Used by `predict` (one result row per input) and by `export`'s calibration sample.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from cifarlab.data.images import IMAGE_EXTENSIONS, read_image_rgb, resize_rgb
from cifarlab.errors import CifarlabError

GLOB_CHARS = "*?["


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def find_image_files(folder: Path) -> list[Path]:
    """Every image file under `folder`, recursively (through symlinked folders, each real folder
    once), skipping hidden files and folders; sorted."""
    found, visited = [], set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in visited:  # a link back up the tree, or a second link to one folder
            dirs[:] = []
            continue
        visited.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / f for f in files if _is_image_name(Path(f))]
    return sorted(found)


def gather_inputs(paths: Iterable[str | Path]) -> list[tuple[Path, str | None]]:
    """Expand inputs to [(file, None)] in a stable order, or [(input, error)] for an input that
    names nothing. Folders are searched recursively for image extensions
    ({exts}); files named explicitly are taken whatever their extension. Duplicates are dropped.
    """
    items: list[tuple[Path, str | None]] = []
    seen: set[Path] = set()

    def add(path: Path, error: str | None = None) -> None:
        key = path.resolve() if error is None else path
        if key not in seen:
            seen.add(key)
            items.append((path, error))

    for raw in paths:
        text = str(raw)
        path = Path(text).expanduser()
        if path.is_dir():
            images = find_image_files(path)
            if not images:
                add(path, f"folder has no image files ({', '.join(IMAGE_EXTENSIONS)})")
            for p in images:
                add(p)
        elif path.exists():
            add(path)
        elif any(c in text for c in GLOB_CHARS):
            matches = sorted(Path(m) for m in glob.glob(os.path.expanduser(text), recursive=True))
            files = [m for m in matches if m.is_file()]
            for folder in (m for m in matches if m.is_dir()):
                files += find_image_files(folder)
            if not files:
                add(path, "pattern matches no files")
            for p in files:
                add(p)
        else:
            add(path, "no such file or folder")
    return items


gather_inputs.__doc__ = gather_inputs.__doc__.format(exts=", ".join(IMAGE_EXTENSIONS))


def load_resized(path: Path, size: tuple[int, int]) -> np.ndarray | str:
    """The image at `size` (uint8 RGB), or why it could not be read (never raises)."""
    try:
        if path.is_file() and path.stat().st_size == 0:
            return "empty file (0 bytes); replace or remove it"
        return resize_rgb(read_image_rgb(path), size)
    except CifarlabError as exc:
        message = str(exc)
        prefix = f"{path}: "
        return message[len(prefix):] if message.startswith(prefix) else message
    except Exception as exc:  # a decoder bug must not stop a bulk run
        return f"cannot read it ({exc.__class__.__name__}: {exc})"
