"""Saying "none of my classes": the threshold that turns a model's out-of-distribution score into
an `unknown` flag, from the model file or a command's `--ood-threshold`."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from cifarlab.errors import CifarlabError
from cifarlab.options import option

OFF = "off"
UNKNOWN = "unknown"
HOW_TO_ADD = "add it with `cifarlab openset --model {path} --data TRAINING_DATA`"
THRESHOLD_HELP = ("out-of-distribution score above which an image is 'unknown' (none of the "
                  "classes): a number, 'auto' (the model's own, fitted to keep 95%% of its "
                  "validation images) or 'off' (always a class)")

log = logging.getLogger(__name__)


def parse_threshold(text: str) -> str | float:
    text = str(text).strip().lower()
    if text in ("auto", OFF):
        return text
    try:
        return float(text)
    except ValueError:
        raise CifarlabError(f"--ood-threshold {text!r}: use a number, 'auto' or 'off'") from None


def threshold_option(**kwargs):
    """The `ood_threshold` field every command that classifies declares."""
    return option("auto", THRESHOLD_HELP, metavar="T|auto|off", parse=parse_threshold, **kwargs)


@dataclass(frozen=True)
class Rejection:
    """`threshold` None: rejection off (no score, or turned off)."""

    threshold: float | None
    score: str = ""
    source: str = "model"   # "model", "--ood-threshold" or why it is off

    @property
    def active(self) -> bool:
        return self.threshold is not None

    def unknown(self, scores) -> np.ndarray:
        """Boolean flags for (N,) scores (all False when rejection is off or there are no scores)."""
        if scores is None or self.threshold is None:
            return np.zeros(0 if scores is None else len(np.atleast_1d(scores)), bool)
        return np.atleast_1d(np.asarray(scores)) > self.threshold

    def is_unknown(self, score: float | None) -> bool:
        return self.threshold is not None and score is not None and score > self.threshold

    def describe(self) -> str:
        if self.threshold is None:
            return f"open set: off ({self.source})"
        return f"open set: {self.score} score, unknown above {self.threshold:.4g} ({self.source})"


NO_REJECTION = Rejection(None, source="not asked")


def rejection_for(classifier, setting: str | float = "auto", path: str = "MODEL",
                  say=log.info) -> Rejection:
    """The rejection a command uses: the model's threshold, `setting` when it is a number, none
    when 'off'. A model without the open-set output gets one line saying how to add it."""
    open_set = classifier.metadata.open_set
    if not classifier.has_ood_score or open_set is None:
        if setting != OFF:
            say(f"this model has no open-set score, so every image gets a class; {HOW_TO_ADD.format(path=path)}")
        return Rejection(None, source="no open-set score in the model")
    score = f"{open_set.score} (image and mirror image)" if open_set.mirror else open_set.score
    if setting == OFF:
        return Rejection(None, score, "--ood-threshold off")
    if setting == "auto":
        where = (f"keeps {open_set.keep:.0%} of {open_set.images} validation images"
                 if open_set.fitted_on == "validation"
                 else f"fitted on {open_set.images} training images: too few validation images")
        return Rejection(open_set.threshold, score, where)
    return Rejection(float(setting), score, "--ood-threshold")
