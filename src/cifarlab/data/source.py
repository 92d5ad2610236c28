"""`DataSource`: the dataset options every command shares (`--data`, `--image-size`, `--labels`,
`--cache-dir`, `--no-cache`), declared once, and the dataset they name. The settings of `train`
and `evaluate` inherit them."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from cifarlab.data.download import DEFAULT_DATASET
from cifarlab.options import Options, at_least, option

GROUP = "dataset"
LABEL_SETS = ("fine", "coarse")


@dataclass
class DataSource(Options):
    data: str = option(
        DEFAULT_DATASET, "dataset: a CIFAR archive (.tar.gz), its extracted folder, an image folder "
                  "ROOT/<class>/<image> (val and test drawn from it, stratified and seeded) or "
                  "ROOT/<train|val|test>/<class>/<image>, or a name: cifar10, cifar100 (the official "
                  "archive, downloaded into the cache on first use)", metavar="SOURCE", group=GROUP)
    image_size: int | None = option(None, "resize images to NxN (default: 32, CIFAR's native size)",
                                    metavar="N", check=at_least(1), group=GROUP)
    labels: str = option("fine", "CIFAR-100 label set", choices=LABEL_SETS, group=GROUP)
    cache_dir: Path | None = option(None, "decoded-array cache (default: $CIFARLAB_CACHE/datasets or "
                                          "~/.cache/cifarlab/datasets)", group=GROUP)
    no_cache: bool = option(False, "decode the source without the cache", group=GROUP)

    @property
    def use_cache(self) -> bool:
        return not self.no_cache

    def load(self, image_size: int | None = None, **kwargs):
        """The `Dataset` (`image_size` overrides --image-size; kwargs go to `load_dataset`)."""
        from cifarlab.data import load_dataset

        return load_dataset(self.data, image_size=image_size or self.image_size, labels=self.labels,
                            cache_dir=self.cache_dir, use_cache=self.use_cache, **kwargs)


DATA_OPTIONS = tuple(f.name for f in fields(DataSource))  # the fields commands inherit with DataSource
