"""`--model` and `--backend`, declared once for every command that opens a model: field factories
for a command's settings dataclass, and `ModelChoice` for a parser of its own."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cifarlab.inference.open import BACKEND_HELP, BACKENDS
from cifarlab.options import Options, option

MODEL_HELP = ("a .keras, .tflite or .onnx model made by cifarlab (default: $CIFARLAB_MODEL or the "
              "shipped models/cifar10-fast.keras)")


def model_option(help: str = MODEL_HELP, **kwargs):
    """The `model: Path | None` field (None: `resolve_model_path`'s default)."""
    return option(None, help, metavar="PATH", **kwargs)


def backend_option(**kwargs):
    """The `backend: str` field: one of BACKENDS, `auto` by default."""
    return option("auto", BACKEND_HELP, choices=BACKENDS, **kwargs)


@dataclass
class ModelChoice(Options):
    model: Path | None = model_option()
    backend: str = backend_option()
