"""Models registered by name: `build_model("fast", ...)`. Add a preset with `@register`."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from cifarlab.errors import CifarlabError

Builder = Callable[..., keras.Model]
_REGISTRY: dict[str, Builder] = {}


def register(name: str) -> Callable[[Builder], Builder]:
    def add(builder: Builder) -> Builder:
        _REGISTRY[name] = builder
        return builder
    return add


def model_names() -> list[str]:
    _import_presets()
    return sorted(_REGISTRY)


def _import_presets() -> None:
    from cifarlab.models import fast, seed  # noqa: F401  (registration side effect)


def normalized_input(input_size: tuple[int, int], mean: np.ndarray, std: np.ndarray) -> tuple:
    """uint8 RGB input -> per-channel standardized float: normalization lives inside the model."""
    inputs = keras.Input((*input_size, 3), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1.0, name="to_float")(inputs)
    x = keras.layers.Normalization(mean=list(map(float, mean)), variance=list(map(float, np.square(std))),
                                   name="standardize")(x)
    return inputs, x


def softmax_head(logits, temperature: float = 1.0):
    """Probabilities from logits divided by `temperature` (fitted after training, see
    training/calibration.py); float32 whatever the model's compute precision."""
    x = keras.layers.Rescaling(1.0 / temperature, name="temperature")(logits)
    return keras.layers.Activation("softmax", dtype="float32", name="probabilities")(x)


def build_model(name: str, input_size: tuple[int, int], num_classes: int, mean: np.ndarray,
                std: np.ndarray, dtype_policy: str = "float32", **options) -> keras.Model:
    """Build a registered model; `dtype_policy` (e.g. "mixed_bfloat16") applies to this model only.

    The softmax output always stays float32, so probabilities are exact whatever the policy.
    """
    _import_presets()
    if name not in _REGISTRY:
        raise CifarlabError(f"unknown model {name!r}; choose one of {', '.join(model_names())}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype_policy)
    try:
        return _REGISTRY[name](input_size=input_size, num_classes=num_classes, mean=mean, std=std, **options)
    finally:
        keras.config.set_dtype_policy(previous)



def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of uint8 images on the 0..255 scale (in chunks: no float copy)."""
    total = np.zeros(3)
    total_sq = np.zeros(3)
    for start in range(0, len(images), 4096):
        chunk = images[start : start + 4096].reshape(-1, 3).astype(np.float64)
        total += chunk.sum(0)
        total_sq += np.square(chunk).sum(0)
    n = images.shape[0] * images.shape[1] * images.shape[2]
    mean = total / n
    return mean.astype(np.float32), np.sqrt(np.maximum(total_sq / n - mean**2, 1e-6)).astype(np.float32)
