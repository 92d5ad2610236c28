"""`cifarlab live --collect DIR`: number keys save the region's crop into DIR/<class>/.

The classes are the class folders already in DIR (sorted; `classes.txt`'s order if DIR has
one) followed by the `--classes` names not among them, in the order given: key 1 is the first,
up to key 9. DIR is the `ROOT/<class>/<image>` layout `cifarlab train --data DIR` reads.

A crop is saved at the region's full resolution (not the model's input size), as PNG, named
`<class>/<YYYYmmdd-HHMMSS>-<n>.png`. It is written to a hidden temporary file and then
hard-linked to its name, which fails if the name exists: a saved file is never overwritten, a
reader never sees half a file, and an existing DIR is only added to. Holding a key saves at most
`RATE` crops a second per class (the keyboard's auto-repeat sends many more key events).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from cifarlab.data.images import IMAGE_EXTENSIONS
from cifarlab.errors import CifarlabError

MAX_CLASSES = 9                    # keys 1..9
RATE = 4.0                         # crops per second per class while a key is held
BACKGROUND_NAMES = ("background", "nothing", "none", "empty", "other", "negative")
MIN_IMAGES = 3                     # cifarlab.data draws one train, val and test image per class
SPLIT_NAMES = ("train", "val", "test")
NAME_RE = re.compile(r"^[^/\\\x00-\x1f]+$")


def parse_classes(text: str | None) -> list[str]:
    """'mug, phone,background' -> ['mug', 'phone', 'background'] (empty items dropped)."""
    if not text:
        return []
    return [name.strip() for name in text.split(",") if name.strip()]


def _check_name(name: str) -> None:
    if not NAME_RE.match(name) or name.startswith(".") or name in ("..", "classes.txt"):
        raise CifarlabError(f"--classes: {name!r} cannot be a folder name; use letters, digits, "
                            "'-' or '_' (no '/', no leading '.')")


def _count_images(folder: Path) -> int:
    try:
        return sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS
                   and not p.name.startswith(".") and p.is_file())
    except OSError:
        return 0


def class_list(root: Path, named: list[str]) -> list[str]:
    """Existing classes of `root` first (classes.txt order, else sorted folders), then the
    `named` ones not among them; a clear error for a layout or name that cannot work."""
    root = Path(root)
    for name in named:
        _check_name(name)
    if len(set(named)) != len(named):
        raise CifarlabError("--classes names a class twice; make each name unique")
    existing: list[str] = []
    if root.exists() and not root.is_dir():
        raise CifarlabError(f"--collect {root}: is a file; give a folder (it is created if missing)")
    if root.is_dir():
        if any((root / s).is_dir() for s in SPLIT_NAMES):
            raise CifarlabError(f"--collect {root}: has train/val/test folders; collect into a "
                                "folder of class folders (DIR/<class>/<image>), e.g. a new one")
        listed = root / "classes.txt"
        folders = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        if listed.is_file():
            existing = [line.strip() for line in listed.read_text(encoding="utf-8").splitlines()
                        if line.strip()]
            missing = [n for n in named if n not in existing]
            if missing:
                raise CifarlabError(f"--collect {root}: classes.txt does not list "
                                    f"{', '.join(missing)}; add them there (one name per line)")
        else:
            existing = folders
    classes = existing + [n for n in named if n not in existing]
    if not classes:
        raise CifarlabError(f"--collect {root}: no classes; name them with --classes "
                            "mug,phone,background (or make class folders in it)")
    if len(classes) > MAX_CLASSES:
        raise CifarlabError(f"--collect {root}: {len(classes)} classes ({', '.join(classes)}) but "
                            f"only keys 1-{MAX_CLASSES}; collect at most {MAX_CLASSES} at a time")
    return classes


def has_background(classes: list[str]) -> bool:
    return any(name.strip().lower() in BACKGROUND_NAMES for name in classes)


@dataclass
class Saved:
    path: Path
    name: str        # class
    key: int         # 1..9
    count: int       # images of that class now


class Collector:
    """Keys 1..9 -> classes, crops saved into `root/<class>/`, per-class counts, the last crop."""

    def __init__(self, root: str | Path, named: list[str] | None = None, rate: float = RATE,
                 clock=time.monotonic):
        self.root = Path(root)
        self.classes = class_list(self.root, list(named or []))
        self.counts = {name: _count_images(self.root / name) for name in self.classes}
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock = clock
        self._last_time: dict[str, float] = {}
        self.last: Saved | None = None
        self.last_crop: np.ndarray | None = None   # BGR, as saved

    @property
    def background_hint(self) -> str | None:
        """A tip to add a background class, when none of the classes is one."""
        if has_background(self.classes):
            return None
        return f"tip: add a background class (e.g. --classes {','.join(self.classes)},background)"

    def class_for_key(self, key: int) -> str | None:
        """'1'..'9' (as key codes) -> class name, None for other keys or keys without a class."""
        index = key - ord("1")
        return self.classes[index] if 0 <= index < len(self.classes) else None

    def ready_to_save(self, name: str) -> bool:
        last = self._last_time.get(name)
        return last is None or self.clock() - last >= self.interval - 1e-9

    def save(self, name: str, crop_bgr: np.ndarray) -> Saved | None:
        """Save `crop_bgr` into `root/<name>/`, unless the class saved one less than
        1/rate seconds ago (a held key); returns what was saved, or None."""
        if not self.ready_to_save(name):
            return None
        self._last_time[name] = self.clock()
        ok, png = cv2.imencode(".png", crop_bgr)
        if not ok:
            raise CifarlabError(f"cannot encode a {crop_bgr.shape} crop as PNG")
        folder = self.root / name
        path = self._write_new(folder, png.tobytes())
        self.counts[name] = self.counts.get(name, 0) + 1
        self.last = Saved(path, name, self.classes.index(name) + 1, self.counts[name])
        self.last_crop = crop_bgr.copy()
        return self.last

    @staticmethod
    def _write_new(folder: Path, data: bytes) -> Path:
        """Write `data` to a new `<stamp>-<n>.png` in `folder`; never replaces a file."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".png")
        except OSError as exc:
            raise CifarlabError(f"{folder}: cannot write there ({exc.strerror})") from None
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.chmod(tmp, 0o644)
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            for n in range(1, 100_000):
                path = folder / f"{stamp}-{n:03d}.png"
                try:
                    os.link(tmp, path)       # atomic, and fails if `path` exists
                    return path
                except FileExistsError:
                    continue
                except OSError:              # no hard links here (some network/FAT mounts)
                    try:
                        out_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                    except FileExistsError:
                        continue
                    with os.fdopen(out_fd, "wb") as out:
                        out.write(data)
                    return path
            raise CifarlabError(f"{folder}: no free file name for {stamp}")
        except OSError as exc:
            raise CifarlabError(f"{folder}: cannot write there ({exc.strerror})") from None
        finally:
            Path(tmp).unlink(missing_ok=True)

    def trainable(self) -> tuple[list[str], str | None]:
        """(classes with images, why training cannot start yet or None)."""
        self.counts = {name: _count_images(self.root / name) for name in self.classes}
        with_images = [n for n in self.classes if self.counts[n] > 0]
        # a class folder with too few images fails the trainer's split; one without a folder
        # (never collected) is simply left out
        few = [n for n in self.classes if (self.root / n).is_dir() and self.counts[n] < MIN_IMAGES]
        if few:
            return with_images, (f"need at least {MIN_IMAGES} images of {', '.join(few)} "
                                 f"(press its key)")
        if len(with_images) < 2:
            return with_images, "collect images of at least 2 classes first (keys 1-9)"
        return with_images, None
