"""CIFAR-10-C corruptions (Hendrycks & Dietterich, ICLR 2019) on batches of uint8 RGB images.

The 15 benchmark corruptions and the 4 extras of `make_cifar_c.py` (hendrycks/robustness,
ImageNet-C/create_c) with its 32x32 severity table, re-implemented on NumPy, OpenCV, SciPy and
Pillow and vectorised over the batch, one module per family (noise, blur, weather, digital), each
operation declared with its parameters in `registry`. No Wand/ImageMagick is needed: its motion
blur is rebuilt from ImageMagick's definition (`motion`). Frost uses the original frost photos
(shipped in `frost/`, downscaled x0.2 as the original does).

`corrupt(images, name, severity, seed)` is deterministic (`apply`). Other image sizes than 32:
the parameters that are lengths in pixels scale by size/32 (each family's docstring lists them).

Agreement with make_cifar_c.py (tests/test_corruptions_ops.py and test_corruptions_draws.py run
transcriptions of it on the same random draws): brightness, saturate, pixelate and glass blur's
pixel shuffle match bit for bit; the rest match to within one grey level in a few % of values.
The original truncates float64 results to uint8, so where the exact value is a whole number its
last bit decides, and the float32 used here can land on the other side. The random numbers
come from NumPy's Generator, not the legacy global RandomState, so the noise differs from the
official files while its distribution is the same. The original's quirks are kept on purpose:
glass blur's "swap" of NumPy views is really a copy; zoom_blur uses np.arange's float factors
(7, 12, 16, 21, 26 of them); frost picks from the first five textures only; spatter's cast to
uint8 wraps values above 1.0.
"""

# The families register their corruptions on import, in the published order of the names.
from cifarlab.evaluation.corruptions import noise  # noqa: F401  # isort: skip
from cifarlab.evaluation.corruptions import blur  # noqa: F401  # isort: skip
from cifarlab.evaluation.corruptions import weather  # noqa: F401  # isort: skip
from cifarlab.evaluation.corruptions import digital  # noqa: F401  # isort: skip
from cifarlab.evaluation.corruptions.apply import corrupt, iter_corrupted
from cifarlab.evaluation.corruptions.official import load_official
from cifarlab.evaluation.corruptions.parsing import parse_corruptions, parse_severities
from cifarlab.evaluation.corruptions.registry import (
    REGISTRY,
    SEVERITIES,
    Corruption,
    corruption,
    extra_names,
    main_names,
)

CORRUPTIONS: tuple[str, ...] = main_names()
EXTRA_CORRUPTIONS: tuple[str, ...] = extra_names()
ALL_CORRUPTIONS: tuple[str, ...] = CORRUPTIONS + EXTRA_CORRUPTIONS

__all__ = ["ALL_CORRUPTIONS", "CORRUPTIONS", "EXTRA_CORRUPTIONS", "REGISTRY", "SEVERITIES",
           "Corruption", "corrupt", "corruption", "iter_corrupted", "load_official",
           "parse_corruptions", "parse_severities"]
