"""`EvaluateConfig`: every setting of `cifarlab evaluate`, each default and help text declared
once (cli/evaluate.py builds its options from the fields) and validated once, when built."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cifarlab.data.source import DataSource
from cifarlab.errors import CifarlabError
from cifarlab.inference.choice import backend_option, model_option
from cifarlab.inference.rejection import threshold_option
from cifarlab.options import at_least, option

CORRUPTION_OPTIONS = ("corruptions", "severities", "corruption_samples", "corruptions_data")
OPEN_SET_OPTIONS = ("ood", "ood_threshold")


@dataclass
class EvaluateConfig(DataSource):
    """The dataset options are DataSource's; --image-size defaults to the model's input size."""

    model: Path | None = model_option()
    backend: str = backend_option()
    split: str = option("test", "dataset split to evaluate")
    tta: bool = option(False, "test-time augmentation: average the probabilities of each image, its "
                              "mirror, and both shifted one pixel up-left and down-right (6x the time)")
    out: Path | None = option(None, "output folder (default: runs/eval-<model stem>-<split>)",
                              metavar="DIR")
    batch_size: int = option(256, "images per prediction batch", check=at_least(1), metavar="N")
    corruptions: str | None = option(None, "all (15 + 4 extras), main (the 15 of the benchmark) or a "
                                           "comma list, e.g. gaussian_noise,contrast", metavar="LIST")
    severities: str = option("1-5", "severities to score: a range 1-5, one number or a comma list",
                             metavar="S")
    corruption_samples: int | None = option(
        None, "score a seeded, class-stratified subset of N images per cell (default: the whole split)",
        check=at_least(1), metavar="N")
    corruptions_data: Path | None = option(
        None, "read the official CIFAR-10-C files (<corruption>.npy, labels.npy) from DIR instead of "
              "generating the corruptions", metavar="DIR")
    ood: list[str] = option([], "outside images (none of the model's classes): image files, folders "
                                "(recursive) or glob patterns, as `cifarlab predict` takes them; "
                                "scores how well the open-set score tells them from the split",
                            metavar="PATH")
    ood_threshold: str | float = threshold_option()
    progress: bool = option(True, "progress bars on stderr")

    def check(self) -> None:
        if self.corruptions is None and (self.corruptions_data or self.corruption_samples):
            raise CifarlabError("--corruptions-data and --corruption-samples need --corruptions "
                                "(e.g. --corruptions all)")
