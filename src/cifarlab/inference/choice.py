"""`--model` and `--backend`, declared once for every command that opens a model: field factories
for a command's settings dataclass."""

from __future__ import annotations

from cifarlab.inference.open import BACKEND_HELP, BACKENDS
from cifarlab.options import option

MODEL_HELP = ("a .keras, .tflite or .onnx model made by cifarlab (default: $CIFARLAB_MODEL or the "
              "shipped models/cifar10-fast.keras)")


def model_option(help: str = MODEL_HELP, **kwargs):
    """The `model: Path | None` field (None: `resolve_model_path`'s default)."""
    return option(None, help, metavar="PATH", **kwargs)


def backend_option(**kwargs):
    """The `backend: str` field: one of BACKENDS, `auto` by default."""
    return option("auto", BACKEND_HELP, choices=BACKENDS, **kwargs)
