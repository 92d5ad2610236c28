"""The model file: a `.keras` archive that carries everything needed to use it.

Metadata (class names, input size, normalization statistics, dataset fingerprint, preset,
training command, package version, validation metrics) is stored as `cifarlab.json` inside the
`.keras` zip, so `unzip -p model.keras cifarlab.json` reads it without any code. Keras ignores
the extra entry when loading. Loading always uses Keras safe mode.

Metadata keys: format, class_names (label order), input_size [h, w], mean and std (per channel,
0..255 scale, already applied inside the model), dataset_fingerprint, dataset_format, model
(preset name), command (the training command line), version (cifarlab), val_metrics (dict),
created (ISO time).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

from cifarlab.atomic import atomic_path
from cifarlab.errors import CifarlabError

METADATA_ENTRY = "cifarlab.json"
FORMAT_TAG = "cifarlab-model/1"
DEFAULT_MODEL_ENV = "CIFARLAB_MODEL"


def save_model_file(model, path: str | Path, metadata: dict) -> Path:
    """Save `model` with `metadata` atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(METADATA_ENTRY, json.dumps({"format": FORMAT_TAG, **metadata}, indent=2))
    return path


def read_metadata(path: str | Path) -> dict:
    """The cifarlab metadata of a model file, or a clear error if it is not one of ours."""
    path = Path(path)
    if not path.is_file():
        raise CifarlabError(f"{path}: no such model file; train one with `cifarlab train` or pass --model")
    try:
        with zipfile.ZipFile(path) as archive:
            meta = json.loads(archive.read(METADATA_ENTRY))
    except KeyError:
        raise CifarlabError(f"{path}: a Keras file without cifarlab metadata; train it with `cifarlab train`") from None
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CifarlabError(f"{path}: not a readable .keras model file ({exc}); it may be truncated") from None
    if meta.get("format") != FORMAT_TAG:
        raise CifarlabError(f"{path}: unknown model format {meta.get('format')!r}; expected {FORMAT_TAG}")
    return meta


def load_keras_model(path: str | Path):
    """(keras model, metadata), loaded in safe mode (no arbitrary code from the file)."""
    import keras

    meta = read_metadata(path)
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a damaged file
        raise CifarlabError(f"{path}: cannot load the model ({exc.__class__.__name__}: {exc})") from None
    return model, meta


def default_model_path() -> Path:
    """$CIFARLAB_MODEL, else the model shipped in this repository's models/ folder."""
    env = os.environ.get(DEFAULT_MODEL_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "models" / "cifar10-fast.keras"


def resolve_model_path(path: str | Path | None) -> Path:
    if path:
        return Path(path)
    default = default_model_path()
    if not default.is_file():
        raise CifarlabError(
            f"no --model given and the default model {default} is missing; pass --model PATH "
            f"(or set {DEFAULT_MODEL_ENV}) or train one with `cifarlab train`"
        )
    return default
