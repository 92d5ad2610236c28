"""A run folder (`--out`, default runs/RECIPE): what a run reads back to resume, and what it
leaves: model.keras, summary.json, splits.json (ROOT/<class>/<image> data: which file is in
which split) and small_data.json (the small-data values chosen at the start)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from cifarlab import RUNS_DIR, __version__
from cifarlab.atomic import write_json_atomic
from cifarlab.data import Dataset, load_dataset, save_split_record
from cifarlab.errors import CifarlabError
from cifarlab.models.metadata import ModelMetadata
from cifarlab.training.checkpoint import read_state
from cifarlab.training.distribute import is_chief

SPLITS_FILE = "splits.json"
SMALL_DATA_FILE = "small_data.json"
NOT_RECORDED = ("command", "cache_dir", "quiet")


def default_out(name: str) -> Path:
    return Path(RUNS_DIR) / name


def is_resuming(out: Path) -> bool:
    return read_state(out / "checkpoint") is not None


def load_data(cfg, dataset: Dataset | None = None, image_size: int | None = None) -> Dataset:
    """The dataset (a copy of `dataset` if given); a ROOT/<class>/<image> folder's splits are
    drawn with the run's seed, or read back from the run's splits.json when it has one."""
    if dataset is None:
        record = cfg.out / SPLITS_FILE
        dataset = load_dataset(cfg.data, image_size=image_size or cfg.image_size, labels=cfg.labels,
                               cache_dir=cfg.cache_dir, use_cache=cfg.use_cache,
                               progress=not cfg.quiet, split_seed=cfg.seed,
                               split_record=record if record.is_file() else None)
    return dataclasses.replace(dataset, splits=dict(dataset.splits))


def saved_choices(out: Path) -> dict | None:
    saved = out / SMALL_DATA_FILE
    if not saved.is_file():
        return None
    return {k: tuple(v) for k, v in json.loads(saved.read_text())["chosen"].items()}


def record_start(cfg, data: Dataset, chosen: dict) -> None:
    """What a resumed run must read back: the split and the small-data choices."""
    if data.split_record() is not None:
        save_split_record(data, cfg.out / SPLITS_FILE)
    write_json_atomic(cfg.out / SMALL_DATA_FILE, {"train_images": len(data.split("train")), "chosen": chosen})


def prepare_out(cfg) -> tuple[Path, dict | None]:
    """The checkpoint folder and its state (None: a fresh run); refuses a finished run."""
    ckpt_dir = cfg.out / "checkpoint"
    state = read_state(ckpt_dir)
    if cfg.resume and state is None:
        raise CifarlabError(f"--resume: no checkpoint in {ckpt_dir}; start without --resume")
    if state is None and (cfg.out / "model.keras").exists():
        raise CifarlabError(f"{cfg.out} already holds a finished model; choose another --out")
    if is_chief():
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        return ckpt_dir, state
    # Multi-worker: every worker must save (saving reads distributed variables collectively), but
    # only the chief writes into --out; the others save into a private folder, seeded with the
    # chief's checkpoint when resuming.
    worker_dir = Path(tempfile.mkdtemp(prefix="cifarlab-worker-"))
    for name in ("state.json", "last.keras", "best.keras") if state else ():
        if (ckpt_dir / name).is_file():
            shutil.copy2(ckpt_dir / name, worker_dir / name)
    return worker_dir, state


def metadata(cfg, data: Dataset, start, val_metrics: dict) -> ModelMetadata:
    recipe = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()
              if k not in NOT_RECORDED}
    if start.describe:
        recipe["start"] = start.describe
    return ModelMetadata(
        splits=data.split_record() or {},
        class_names=tuple(data.class_names), input_size=tuple(data.image_size),
        mean=tuple(start.mean), std=tuple(start.std),
        dataset_fingerprint=data.fingerprint, dataset_format=data.format,
        model=cfg.model, command=cfg.command, version=__version__, val_metrics=val_metrics,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        recipe=recipe, parent=str(start.parent) if start.parent else "",
    )
