"""Classify many image files with any cifarlab model, one result row per input.

Inputs are files, folders (searched recursively for image files) or glob patterns. Each image is
decoded with `read_image_rgb` and resized with `resize_rgb` (the shared preprocessing path); a
file that cannot be read (not an image, truncated, empty, a decompression bomb, missing) becomes
an error row and the rest are still classified.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cifarlab.data.images import IMAGE_EXTENSIONS, read_image_rgb, resize_rgb
from cifarlab.errors import CifarlabError

FORMATS = ("table", "json", "csv")
PROGRESS_MIN_FILES = 100  # show a progress bar only when there is something to wait for
GLOB_CHARS = "*?["


@dataclass
class PredictConfig:
    paths: list[str]
    model: Path | None = None
    backend: str = "auto"
    top_k: int = 1
    format: str = "table"
    batch_size: int = 64
    progress: bool = True

    def validate(self) -> None:
        if not self.paths:
            raise CifarlabError("no input given; pass image files, folders or glob patterns")
        if self.top_k < 1:
            raise CifarlabError(f"--top-k must be at least 1, got {self.top_k}")
        if self.batch_size < 1:
            raise CifarlabError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.format not in FORMATS:
            raise CifarlabError(f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}")


@dataclass
class Row:
    """One input's result: `predictions` [(label, probability)] best first, or an `error`."""

    path: str
    predictions: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _folder_images(folder: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
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
            images = _folder_images(path)
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
                files += _folder_images(folder)
            if not files:
                add(path, "pattern matches no files")
            for p in files:
                add(p)
        else:
            add(path, "no such file or folder")
    return items


gather_inputs.__doc__ = gather_inputs.__doc__.format(exts=", ".join(IMAGE_EXTENSIONS))


def _load(path: Path, size: tuple[int, int]) -> np.ndarray | str:
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


def top_k(probabilities: np.ndarray, class_names: list[str], k: int) -> list[tuple[str, float]]:
    k = min(k, len(class_names))
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(class_names[i], float(probabilities[i])) for i in order]


def predict_files(classifier, items: list[tuple[Path, str | None]], k: int = 1, batch_size: int = 64,
                  progress: bool = True, workers: int | None = None) -> Iterator[Row]:
    """Rows in input order: images decoded in parallel threads, classified `batch_size` at a time."""
    from tqdm import tqdm

    size = tuple(classifier.input_size)
    workers = workers or min(8, os.cpu_count() or 1)
    bar = tqdm(total=len(items), unit="img", file=sys.stderr, leave=False,
               disable=not progress or len(items) < PROGRESS_MIN_FILES)
    try:
        with ThreadPoolExecutor(workers) as pool:
            for start in range(0, len(items), batch_size):
                chunk = items[start : start + batch_size]
                loaded = list(pool.map(lambda item: item[1] or _load(item[0], size), chunk))
                good = [i for i, x in enumerate(loaded) if isinstance(x, np.ndarray)]
                probs = classifier.predict(np.stack([loaded[i] for i in good])) if good else None
                by_index = {i: probs[j] for j, i in enumerate(good)}
                for i, (path, _) in enumerate(chunk):
                    if i in by_index:
                        yield Row(str(path), top_k(by_index[i], classifier.class_names, k))
                    else:
                        yield Row(str(path), error=str(loaded[i]))
                bar.update(len(chunk))
    finally:
        bar.close()


def _prob(p: float) -> str:
    return f"{p:.6f}"


def format_rows(rows: list[Row], fmt: str, k: int) -> str:
    """table: aligned text; json: a list of {path, ok, label, probability, top_k, error};
    csv: header path,ok,error,label_1,probability_1,...,label_K,probability_K."""
    if fmt == "json":
        return json.dumps([{
            "path": r.path,
            "ok": r.ok,
            "label": r.predictions[0][0] if r.ok else None,
            "probability": r.predictions[0][1] if r.ok else None,
            "top_k": [{"label": label, "probability": p} for label, p in r.predictions],
            "error": r.error,
        } for r in rows], indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        header = ["path", "ok", "error"]
        for i in range(1, k + 1):
            header += [f"label_{i}", f"probability_{i}"]
        writer.writerow(header)
        for r in rows:
            cells = [r.path, "true" if r.ok else "false", r.error or ""]
            for i in range(k):
                if i < len(r.predictions):
                    cells += [r.predictions[i][0], _prob(r.predictions[i][1])]
                else:
                    cells += ["", ""]
            writer.writerow(cells)
        return buf.getvalue()
    width = max((len(r.path) for r in rows), default=4)
    lines = []
    for r in rows:
        result = ("  ".join(f"{label} {p:.1%}" for label, p in r.predictions) if r.ok
                  else f"ERROR: {r.error}")
        lines.append(f"{r.path:<{width}}  {result}")
    return "\n".join(lines) + "\n"


def run_predict(config: PredictConfig, out=None, err=None) -> int:
    """Classify, print the rows, return 0 if every input was classified, 1 if any failed."""
    from cifarlab.models.classifier import load_classifier

    out = out or sys.stdout
    err = err or sys.stderr
    config.validate()
    items = gather_inputs(config.paths)
    classifier = load_classifier(config.model, config.backend)
    k = min(config.top_k, len(classifier.class_names))
    rows = list(predict_files(classifier, items, k, config.batch_size, config.progress))
    out.write(format_rows(rows, config.format, k))
    out.flush()
    failed = sum(not r.ok for r in rows)
    if failed:
        print(f"cifarlab predict: {failed} of {len(rows)} input(s) could not be classified "
              "(see the error rows)", file=err)
    return 1 if failed else 0
