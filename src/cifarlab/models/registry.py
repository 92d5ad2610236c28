"""Models registered by name: `@register("fast", summary, options=(...))`. Each model's default
training recipe is the recipe of the same name in cifarlab.training.recipes.

`options` names the TrainConfig fields that are passed to the builder as keyword arguments
(architecture options such as `widths`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from cifarlab.errors import CifarlabError
from cifarlab.models.metadata import IMAGE, PROBABILITIES, RENAMED_MODELS, TEMPERATURE
from cifarlab.options import choice_error

Builder = Callable[..., keras.Model]
MODULES = ("baseline", "fast")  # imported on first use: each registers itself


@dataclass(frozen=True)
class ModelEntry:
    name: str
    build: Builder
    summary: str
    options: tuple[str, ...] = ()
    init_from_data: bool = False  # the builder takes `init_images` (data-dependent initialisation)


_REGISTRY: dict[str, ModelEntry] = {}


def register(name: str, summary: str, options: tuple[str, ...] = (),
             init_from_data: bool = False):
    def add(builder: Builder) -> Builder:
        _REGISTRY[name] = ModelEntry(name, builder, summary, tuple(options), init_from_data)
        return builder
    return add


def _import_models() -> None:
    import importlib

    for module in MODULES:
        importlib.import_module(f"cifarlab.models.{module}")


def model_entries() -> dict[str, ModelEntry]:
    _import_models()
    return dict(sorted(_REGISTRY.items()))


def model_names() -> list[str]:
    return list(model_entries())


def get_entry(name: str) -> ModelEntry:
    """The registered model `name`, or an error listing the known ones (with a suggestion)."""
    entries = model_entries()
    if name in entries:
        return entries[name]
    if name in RENAMED_MODELS:
        new = RENAMED_MODELS[name]
        raise CifarlabError(f"model {name!r} is now called {new!r}; use --model {new}")
    raise CifarlabError(choice_error(f"unknown model {name!r}", name, entries))


def normalized_input(input_size: tuple[int, int], mean: np.ndarray, std: np.ndarray) -> tuple:
    """uint8 RGB input -> per-channel standardized float: normalization lives inside the model."""
    inputs = keras.Input((*input_size, 3), dtype="uint8", name=IMAGE)
    x = keras.layers.Rescaling(1.0, name="to_float")(inputs)
    x = keras.layers.Normalization(mean=list(map(float, mean)), variance=list(map(float, np.square(std))),
                                   name="standardize")(x)
    return inputs, x


def softmax_head(logits, temperature: float = 1.0):
    """Probabilities from logits divided by `temperature` (fitted after training, see
    training/calibration.py); float32 whatever the model's compute precision."""
    x = keras.layers.Rescaling(1.0 / temperature, name=TEMPERATURE)(logits)
    return keras.layers.Activation("softmax", dtype="float32", name=PROBABILITIES)(x)


def build_model(name: str, input_size: tuple[int, int], num_classes: int, mean: np.ndarray,
                std: np.ndarray, dtype_policy: str = "float32", init_images: np.ndarray | None = None,
                **options) -> keras.Model:
    """Build a registered model; `dtype_policy` (e.g. "mixed_bfloat16") applies to this model only.

    The softmax output always stays float32, so probabilities are exact whatever the policy.
    `init_images` (uint8 training images) go to models that initialise from data (`fast`'s
    whitening stem); the others do not need them.
    """
    entry = get_entry(name)
    if entry.init_from_data:
        options["init_images"] = init_images
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype_policy)
    try:
        return entry.build(input_size=input_size, num_classes=num_classes, mean=mean, std=std, **options)
    finally:
        keras.config.set_dtype_policy(previous)
