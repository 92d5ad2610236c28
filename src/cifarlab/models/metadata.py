"""`ModelMetadata`: the one typed contract for what a cifarlab model file carries.

Everything a command needs to use a model without its training run: the label order, the input
size, the normalization already applied inside the network, where it came from and how it scored.
It is stored in three places, each with one reader/writer pair:

- inside a `.keras` zip as the entry `cifarlab.json` (`models/io.py`);
- as a sidecar `<model file>.json` beside exported `.tflite` / `.onnx` / SavedModel files
  (`read_sidecar` / `write_sidecar` here);
- in an ONNX file's `metadata_props["cifarlab"]` (`to_json` / `from_json`).

Format versions: 1 was the untyped dict tagged `"format": "cifarlab-model/1"` (its `model` was
`seed` for the baseline, read here as `baseline`); 2 adds `format_version`. A file written by a
newer cifarlab fails with a clear error instead of being misread.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from cifarlab.atomic import write_atomic
from cifarlab.errors import CifarlabError

# The layer names every model file carries: builders name them, training, the open-set score and
# the exporters find them by these names.
IMAGE = "image"                  # the uint8 RGB input
LOGITS = "logits"                # the dense layer: its input is the feature vector, its output the logits
TEMPERATURE = "temperature"      # logits / T (training/calibration.py)
PROBABILITIES = "probabilities"  # the softmax of the calibrated logits
OOD_SCORE = "ood_score"          # the open-set score output (models/openset.py)
MIRROR = "mirror"                # the flip of the input the mirrored open-set score reads

FORMAT_VERSION = 2
LEGACY_FORMAT_TAG = "cifarlab-model/1"
RENAMED_MODELS = {"seed": "baseline"}  # old model names still read from files and refused on --model


@dataclass(frozen=True)
class OpenSet:
    """How the model's `ood_score` output is read (models/openset.py, training/openset.py)."""

    score: str                 # which score the output is: msp, maxlogit, energy, mahalanobis, rmds, knn
    threshold: float           # a score above it: the image is none of the classes ("unknown")
    keep: float = 0.95         # the share of in-distribution images the threshold was set to keep
    fitted_on: str = "validation"  # "validation", or "training" (the small-validation rule)
    images: int = 0            # how many images the threshold was fitted on
    statistics_images: int = 0  # how many training images the score's statistics came from
    mirror: bool = False       # the score is the mean over the image and its mirror image

    @classmethod
    def from_dict(cls, data: dict, source: str = "model") -> OpenSet:
        try:
            return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})
        except TypeError as exc:
            raise CifarlabError(f"{source}: unreadable open_set metadata ({exc}); rerun "
                                "`cifarlab openset` on the model") from None


@dataclass(frozen=True)
class ModelMetadata:
    class_names: tuple[str, ...]          # label order: output i is class_names[i]
    input_size: tuple[int, int]           # (height, width) of the uint8 RGB input
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)  # per channel, 0..255 scale, applied inside the model
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    model: str = "unknown"                # registered architecture + recipe name (models/registry.py)
    dataset_fingerprint: str = ""
    dataset_format: str = ""
    command: str = ""                     # the command line that trained it
    version: str = ""                     # cifarlab version that wrote it
    created: str = ""                     # ISO time
    val_metrics: dict = field(default_factory=dict)
    recipe: dict = field(default_factory=dict)   # the resolved training configuration
    splits: dict = field(default_factory=dict)   # recorded train/val/test file lists, if drawn by cifarlab
    parent: str = ""                      # the model a transfer run started from
    export: dict = field(default_factory=dict)   # format, quantization, parity of an exported copy
    open_set: OpenSet | None = None       # the out-of-distribution output's meaning; None: no rejection
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if not self.class_names:
            raise CifarlabError("model metadata lists no class names")
        if len(self.input_size) != 2 or min(self.input_size) < 1:
            raise CifarlabError(f"model metadata has a bad input_size {list(self.input_size)}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def with_changes(self, **changes) -> ModelMetadata:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["class_names"] = list(self.class_names)
        data["input_size"] = list(self.input_size)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict, source: str = "model") -> ModelMetadata:
        if not isinstance(data, dict) or "class_names" not in data or "input_size" not in data:
            raise CifarlabError(f"{source}: not cifarlab model metadata (no class_names/input_size); "
                                "re-train or re-export the model with cifarlab")
        version = _format_version(data, source)
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["format_version"] = FORMAT_VERSION if version < FORMAT_VERSION else version
        values["class_names"] = tuple(str(c) for c in data["class_names"])
        values["input_size"] = tuple(int(v) for v in data["input_size"])
        for key in ("mean", "std"):
            if key in values:
                values[key] = tuple(float(v) for v in values[key])
        if isinstance(values.get("open_set"), dict):
            values["open_set"] = OpenSet.from_dict(values["open_set"], source)
        values["model"] = RENAMED_MODELS.get(values.get("model", "unknown"), values.get("model", "unknown"))
        return cls(**values)

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "model") -> ModelMetadata:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise CifarlabError(f"{source}: unreadable model metadata ({exc}); re-train or re-export") from None
        return cls.from_dict(data, source)


def _format_version(data: dict, source: str) -> int:
    if data.get("format") == LEGACY_FORMAT_TAG and "format_version" not in data:
        return 1
    version = data.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise CifarlabError(f"{source}: unknown model metadata format {data.get('format')!r}; "
                            "re-train or re-export the model with cifarlab")
    if version > FORMAT_VERSION:
        raise CifarlabError(f"{source}: written by a newer cifarlab (metadata format {version}; this "
                            f"one reads up to {FORMAT_VERSION}); upgrade cifarlab to use it")
    return version


def sidecar_path(path: str | Path) -> Path:
    """`model.tflite` -> `model.tflite.json`."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def write_sidecar(model_path: str | Path, metadata: ModelMetadata) -> Path:
    return write_atomic(sidecar_path(model_path), metadata.to_json())


def read_sidecar(model_path: str | Path) -> ModelMetadata | None:
    """The sidecar's metadata, None when there is no sidecar, an error when it is unreadable."""
    side = sidecar_path(model_path)
    if not side.is_file():
        return None
    try:
        text = side.read_text()
    except OSError as exc:
        raise CifarlabError(f"{side}: unreadable model metadata ({exc}); re-run `cifarlab export`") from None
    return ModelMetadata.from_json(text, str(side))
