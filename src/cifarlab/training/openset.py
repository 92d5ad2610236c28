"""Give a trained model its "none of my classes" output: the statistics of its score and the
threshold that flags an image unknown.

The statistics come from (up to STATISTICS_IMAGES) training images, unaugmented. The threshold
keeps `keep` (default 95%) of the validation images. The small-validation rule: with fewer than
MIN_VAL_IMAGES validation images, a quantile of so few is noise, so the threshold is the
TRAIN_KEEP quantile of the training images' own scores, each scored as if unseen (leave-one-out:
`openset.leave_one_out_scores`); the network trained on them, so they still score lower than
unseen images: hence the higher quantile. `cifarlab train` runs this at the end of
every run; `cifarlab openset` runs it on an existing model file.
"""

from __future__ import annotations

import logging

import keras
import numpy as np

from cifarlab.data import Split
from cifarlab.data.sampling import seeded_sample
from cifarlab.errors import CifarlabError
from cifarlab.models import openset
from cifarlab.models.metadata import OpenSet
from cifarlab.models.openset import DEFAULT_SCORE, KNN_BANK
from cifarlab.training.calibration import outputs_in_batches
from cifarlab.training.refit import open_refit

log = logging.getLogger(__name__)

DEFAULT_KEEP = 0.95
STATISTICS_IMAGES = 10_000   # enough for class means and one covariance of a few hundred features
MIN_VAL_IMAGES = 100
TRAIN_KEEP = 0.99
RANGE_ABOVE = 3.0  # the output is clipped at threshold + this x (threshold - median in-distribution score)


def sample_of(split: Split, n: int, seed: int) -> Split:
    if len(split) <= n:
        return split
    labels = split.labels if np.bincount(split.labels).min() >= 2 else None
    drawn, _ = seeded_sample(len(split), n, seed, labels=labels)
    return split.select(drawn)


def training_features(model: keras.Model, split: Split, n: int = STATISTICS_IMAGES,
                      seed: int = 0) -> tuple[Split, np.ndarray, np.ndarray]:
    """(sample, its features, its logits) of up to n training images (a stratified seeded sample)."""
    sample = sample_of(split, n, seed)
    features, logits = outputs_in_batches(openset.feature_model(model), sample.rows)
    return sample, features, logits


def training_scores(model: keras.Model, sample: Split, features: np.ndarray, logits: np.ndarray,
                    score: str, statistics: openset.Statistics, mirror: bool) -> np.ndarray:
    """The leave-one-out scores of the statistics' own images; with `mirror`, averaged with
    their mirror images' (each also left out of the bank)."""
    scores = openset.leave_one_out_scores(score, features, logits, statistics)
    if not mirror:
        return scores
    other = openset.leave_one_out_scores(
        score, *outputs_in_batches(openset.mirrored_feature_model(model), sample.rows), statistics)
    return (scores + other) / 2


def ood_scores(scored: keras.Model, images) -> np.ndarray:
    """(N,) scores of a model made by `openset.with_ood_score`."""
    return outputs_in_batches(scored, images)[1][:, 0] if len(images) else np.zeros(0, np.float32)


def score_range(scores: np.ndarray, threshold: float) -> tuple[float, float]:
    """Where the output is clipped: from below the lowest in-distribution scores to as far above
    the threshold as the threshold is above the median (flags and rankings near it unchanged)."""
    median, lowest = float(np.median(scores)), float(scores.min())
    spread = max(threshold - median, 1e-6)
    return lowest - spread, threshold + RANGE_ABOVE * spread


def add_open_set(model: keras.Model, train: Split, val: Split | None, num_classes: int,
                 score: str = DEFAULT_SCORE, keep: float = DEFAULT_KEEP, seed: int = 0,
                 bank_size: int = KNN_BANK, mirror: bool = False) -> tuple[keras.Model, OpenSet]:
    """`model` with the `ood_score` output and the `OpenSet` record of its threshold; `bank_size`
    training images' features for the kNN score (4 bytes x features each in the model file);
    `mirror`: the score averaged over the image and its mirror image."""
    if not 0 < keep < 1:
        raise CifarlabError(f"--keep {keep} must be between 0 and 1 (the share of known images kept)")
    base = openset.without_ood_score(model)
    sample, features, logits = training_features(base, train, STATISTICS_IMAGES, seed)
    statistics = openset.fit_statistics(features, sample.labels, num_classes, bank_size, seed)
    scored = openset.with_ood_score(base, score, statistics, mirror)
    if val is not None and len(val) >= MIN_VAL_IMAGES:
        scores = ood_scores(scored, val.rows)
        threshold, fitted_on = float(np.quantile(scores, keep)), "validation"
    else:
        scores = training_scores(base, sample, features, logits, score, statistics, mirror)
        threshold, fitted_on = float(np.quantile(scores, max(keep, TRAIN_KEEP))), "training"
    openset.set_range(scored, *score_range(scores, threshold))
    record = OpenSet(score, threshold, keep, fitted_on, len(scores), len(features), mirror)
    log.info(describe(record, val))
    return scored, record


def describe(record: OpenSet, val: Split | None = None) -> str:
    where = (f"keeps {record.keep:.0%} of the {record.images} validation images"
             if record.fitted_on == "validation" else
             f"the {max(record.keep, TRAIN_KEEP):.0%} quantile of {record.images} training images' "
             f"leave-one-out scores (only {len(val) if val is not None else 0} validation images, "
             f"fewer than {MIN_VAL_IMAGES})")
    views = " over each image and its mirror image" if record.mirror else ""
    return (f"open set: {record.score} score{views} from {record.statistics_images} training images; "
            f"threshold {record.threshold:.4g} {where}")


def attach_to_file(model_path, data, out=None, score: str | None = None, keep: float = DEFAULT_KEEP,
                   val_fraction: float | None = None, bank_size: int = KNN_BANK, mirror: bool | None = None):
    """`cifarlab openset`: add (or refit) the open-set output of an existing `.keras` model file
    from `data`, written atomically to `out` (default: in place); the statistics from its train
    split, the threshold from its validation split (training/refit.py). `score` and `mirror`
    default to the model's own, else knn, one view. Returns (path, OpenSet)."""
    refit = open_refit(model_path, data, "adding the open-set score", val_fraction)
    own = refit.meta.open_set or OpenSet(DEFAULT_SCORE, threshold=0.0)
    score, mirror = score or own.score, own.mirror if mirror is None else mirror
    scored, record = add_open_set(refit.model, refit.data.split("train"), refit.data.splits.get("val"),
                                  refit.meta.num_classes, score, keep, refit.seed, bank_size, mirror)
    return refit.save(scored, refit.meta.with_changes(open_set=record), out), record
