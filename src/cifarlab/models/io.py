"""The model file: a `.keras` archive that carries everything needed to use it.

Its `ModelMetadata` (models/metadata.py) is stored as the entry `cifarlab.json` inside the
`.keras` zip, so `unzip -p model.keras cifarlab.json` reads it without any code. Keras ignores
the extra entry when loading. Loading always uses Keras safe mode.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from cifarlab.atomic import atomic_path
from cifarlab.errors import CifarlabError
from cifarlab.models.metadata import ModelMetadata

METADATA_ENTRY = "cifarlab.json"
DEFAULT_MODEL_ENV = "CIFARLAB_MODEL"


def save_model_file(model, path: str | Path, metadata: ModelMetadata) -> Path:
    """Save `model` with `metadata` atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(METADATA_ENTRY, metadata.to_json())
    return path


def read_metadata(path: str | Path) -> ModelMetadata:
    """The cifarlab metadata of a `.keras` model file, or a clear error if it is not one of ours."""
    path = Path(path)
    if not path.is_file():
        raise CifarlabError(f"{path}: no such model file; train one with `cifarlab train` or pass --model")
    try:
        with zipfile.ZipFile(path) as archive:
            text = archive.read(METADATA_ENTRY)
    except KeyError:
        raise CifarlabError(f"{path}: a Keras file without cifarlab metadata; train it with `cifarlab train`") from None
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CifarlabError(f"{path}: not a readable .keras model file ({exc}); it may be truncated") from None
    return ModelMetadata.from_json(text, str(path))


def load_keras_model(path: str | Path):
    """(keras model, ModelMetadata), loaded in safe mode (no arbitrary code from the file)."""
    import keras

    import cifarlab.models.layers  # noqa: F401  (registers cifarlab's layers for safe mode)
    import cifarlab.models.openset  # noqa: F401  (and the open-set score layer)

    meta = read_metadata(path)
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a damaged file
        raise CifarlabError(f"{path}: cannot load the model ({exc.__class__.__name__}: {exc})") from None
    return model, meta


def is_keras_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".keras"


def require_keras_file(path: str | Path, purpose: str, flag: str = "--model") -> Path:
    """`path` if it is a `.keras` file, else an error: `purpose` needs the Keras layers, which
    exported `.tflite`/`.onnx` files do not carry (e.g. purpose="explaining")."""
    path = Path(path)
    if not is_keras_file(path):
        raise CifarlabError(f"{flag} {path}: {purpose} needs a .keras model (exported .tflite/.onnx "
                            "files carry no Keras layers); pass the .keras file")
    return path


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
