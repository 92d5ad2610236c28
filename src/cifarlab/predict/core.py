"""Classify many image files with any cifarlab model, one result row per input.

Inputs are files, folders (searched recursively for image files) or glob patterns. Each image is
decoded with `read_image_rgb` and resized with `resize_rgb` (the shared preprocessing path); a
file that cannot be read (not an image, truncated, empty, a decompression bomb, missing) becomes
an error row and the rest are still classified. With a model that has the open-set output, an
image whose out-of-distribution score is above the threshold is labelled `unknown`.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cifarlab.data.files import gather_inputs, load_resized
from cifarlab.errors import CifarlabError
from cifarlab.inference import open_classifier, top_k
from cifarlab.inference.choice import backend_option, model_option
from cifarlab.inference.rejection import (NO_REJECTION, UNKNOWN, Rejection, parse_threshold, rejection_for,
                                          threshold_option)
from cifarlab.models.io import require_keras_file, resolve_model_path
from cifarlab.options import REQUIRED, Options, at_least, option
from cifarlab.predict.explain import ExplainWriter

FORMATS = ("table", "json", "csv")
PROGRESS_MIN_FILES = 100  # show a progress bar only when there is something to wait for

log = logging.getLogger(__name__)


@dataclass
class PredictConfig(Options):
    paths: list[str] = option(REQUIRED, "image files, folders (recursive) or glob patterns (quote them)",
                              metavar="PATH", positional="+")
    model: Path | None = model_option()
    backend: str = backend_option()
    top_k: int = option(1, "labels per image, most probable first", metavar="K", check=at_least(1))
    format: str = option("table", "output format on stdout (json and csv are machine-readable)",
                         choices=FORMATS)
    batch_size: int = option(64, "images decoded and classified together", metavar="B",
                             check=at_least(1))
    progress: bool = option(True, "a progress bar on stderr (shown for 100+ files only)")
    explain: Path | None = option(
        None, "also write each image's class-activation map into DIR: <name>.cam.png (the map "
              "blended over the image, with label and confidence) and <name>.cam.npy (float32, "
              "the image's own height x width, 0..1); needs a .keras model", metavar="DIR")
    explain_class: str | None = option(None, "explain this class instead of each image's predicted one",
                                       metavar="NAME")
    ood_threshold: str | float = threshold_option()

    def check(self) -> None:
        self.ood_threshold = parse_threshold(self.ood_threshold)
        if not self.paths:
            raise CifarlabError("no input given; pass image files, folders or glob patterns")
        if self.explain_class is not None and self.explain is None:
            raise CifarlabError("--explain-class needs --explain DIR (where the maps are written)")


@dataclass
class Row:
    """One input's result: `predictions` [(label, probability)] best first, or an `error`;
    `ood_score` (None when the model has none) and `unknown` (rejected as none of the classes)."""

    path: str
    predictions: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None
    ood_score: float | None = None
    unknown: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def label(self) -> str | None:
        """UNKNOWN for a rejected image, else the most probable class (None for an error row)."""
        if not self.ok:
            return None
        return UNKNOWN if self.unknown else self.predictions[0][0]

    @property
    def probability(self) -> float | None:
        """The most probable class's probability (also for a rejected image)."""
        return self.predictions[0][1] if self.ok else None

    def to_dict(self) -> dict:
        """The row as `--format json` prints it."""
        return {
            "path": self.path,
            "ok": self.ok,
            "label": self.label,
            "probability": self.probability,
            "top_k": [{"label": label, "probability": p} for label, p in self.predictions],
            "error": self.error,
            "unknown": self.unknown if self.ok else None,
            "ood_score": self.ood_score,
        }


def classify_chunk(classifier, chunk: list[tuple[Path, str | None]], loaded: list, k: int,
                   rejection: Rejection, explain=None) -> list[Row]:
    """The rows of one chunk: `loaded[i]` is chunk[i]'s decoded image or its error message."""
    good = [i for i, x in enumerate(loaded) if isinstance(x, np.ndarray)]
    results = {}
    if good:
        batch = np.stack([loaded[i] for i in good])
        probs, scores = classifier.predict_scored(batch)
        if explain is not None:
            explain.write([chunk[i][0] for i in good], batch)
        results = {i: (probs[j], None if scores is None else float(scores[j])) for j, i in enumerate(good)}
    rows = []
    for i, (path, _) in enumerate(chunk):
        if i not in results:
            rows.append(Row(str(path), error=str(loaded[i])))
            continue
        probs_i, score = results[i]
        rows.append(Row(str(path), top_k(probs_i, classifier.class_names, k), ood_score=score,
                        unknown=rejection.is_unknown(score)))
    return rows


def predict_files(classifier, items: list[tuple[Path, str | None]], k: int = 1, batch_size: int = 64,
                  progress: bool = True, workers: int | None = None, explain=None,
                  rejection: Rejection = NO_REJECTION) -> Iterator[Row]:
    """Rows in input order: images decoded in parallel threads, classified `batch_size` at a time;
    `explain` (an ExplainWriter) also writes each classified image's class-activation map;
    `rejection` marks the images it rejects as unknown."""
    from tqdm import tqdm

    size = tuple(classifier.input_size)
    workers = workers or min(8, os.cpu_count() or 1)
    bar = tqdm(total=len(items), unit="img", file=sys.stderr, leave=False,
               disable=not progress or len(items) < PROGRESS_MIN_FILES)
    try:
        with ThreadPoolExecutor(workers) as pool:
            for start in range(0, len(items), batch_size):
                chunk = items[start : start + batch_size]
                loaded = list(pool.map(lambda item: item[1] or load_resized(item[0], size), chunk))
                yield from classify_chunk(classifier, chunk, loaded, k, rejection, explain)
                bar.update(len(chunk))
    finally:
        bar.close()


def _prob(p: float) -> str:
    return f"{p:.6f}"


def _csv_text(rows: list[Row], k: int) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = ["path", "ok", "error", "unknown", "ood_score"]
    for i in range(1, k + 1):
        header += [f"label_{i}", f"probability_{i}"]
    writer.writerow(header)
    for r in rows:
        cells = [r.path, "true" if r.ok else "false", r.error or "",
                 ("true" if r.unknown else "false") if r.ok else "",
                 "" if r.ood_score is None else f"{r.ood_score:.6g}"]
        for i in range(k):
            if i < len(r.predictions):
                cells += [r.predictions[i][0], _prob(r.predictions[i][1])]
            else:
                cells += ["", ""]
        writer.writerow(cells)
    return buf.getvalue()


def _table_result(r: Row) -> str:
    """`cat 61.2%  dog 20.0%`, then `  ood 3.2` when the model scores; a rejected image:
    `unknown (ood 12.3; nearest: cat 61.2%  dog 20.0%)`."""
    if not r.ok:
        return f"ERROR: {r.error}"
    classes = "  ".join(f"{label} {p:.1%}" for label, p in r.predictions)
    if r.unknown:
        return f"{UNKNOWN} (ood {r.ood_score:.3g}; nearest: {classes})"
    return classes if r.ood_score is None else f"{classes}  ood {r.ood_score:.3g}"


def format_rows(rows: list[Row], fmt: str, k: int) -> str:
    """table: aligned text; json: a list of {path, ok, label, probability, top_k, error, unknown,
    ood_score}; csv: header path,ok,error,unknown,ood_score,label_1,probability_1,...,label_K,
    probability_K. A rejected image's label is `unknown`; its top_k still lists the classes."""
    if fmt == "json":
        return json.dumps([r.to_dict() for r in rows], indent=2) + "\n"
    if fmt == "csv":
        return _csv_text(rows, k)
    width = max((len(r.path) for r in rows), default=4)
    return "\n".join(f"{r.path:<{width}}  {_table_result(r)}" for r in rows) + "\n"


def run_predict(config: PredictConfig, out=None, err=None) -> int:
    """Classify, print the rows, return 0 if every input was classified, 1 if any failed."""
    out = out or sys.stdout
    err = err or sys.stderr
    items = gather_inputs(config.paths)
    model_path = resolve_model_path(config.model)
    # The maps come from the Keras model's layers, so explaining runs the model in Keras.
    if config.explain:
        require_keras_file(model_path, "explaining")
    classifier = open_classifier(model_path, "keras" if config.explain else config.backend)
    # stdout carries only the rows (json and csv are parsed), so the no-score notice is a warning.
    rejection = rejection_for(classifier, config.ood_threshold, str(model_path), say=log.warning)
    log.debug(rejection.describe())
    explain = ExplainWriter(classifier, config.explain, config.explain_class) if config.explain else None
    k = min(config.top_k, len(classifier.class_names))
    rows = list(predict_files(classifier, items, k, config.batch_size, config.progress,
                              explain=explain, rejection=rejection))
    out.write(format_rows(rows, config.format, k))
    out.flush()
    failed = sum(not r.ok for r in rows)
    if failed:
        print(f"cifarlab predict: {failed} of {len(rows)} input(s) could not be classified "
              "(see the error rows)", file=err)
    return 1 if failed else 0
