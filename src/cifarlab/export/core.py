"""`cifarlab export`: a `.keras` model -> LiteRT (.tflite), ONNX (.onnx) or a SavedModel folder.

Every export gets a sidecar `<out>.json` holding the model's full metadata (class names, input
size, ...) plus an `export` entry (format, quantization, parity result); ONNX files also carry
it in `metadata_props["cifarlab"]` and SavedModels in `assets.extra/cifarlab.json`. Outputs are
written to a temporary name in the target folder, checked, then renamed into place.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifarlab.errors import CifarlabError
from cifarlab.export.parity import ParityResult, compare, sample_images
from cifarlab.inference.choice import model_option
from cifarlab.inference.base import split_outputs
from cifarlab.inference.keras_runtime import KerasClassifier
from cifarlab.models.io import load_keras_model, require_keras_file, resolve_model_path
from cifarlab.models.metadata import ModelMetadata, sidecar_path, write_sidecar
from cifarlab.models.metadata import OOD_SCORE
from cifarlab.models.openset import has_ood_score
from cifarlab.options import REQUIRED, Options, at_least, option

FORMATS = ("litert", "onnx", "savedmodel")
QUANTIZATIONS = ("none", "dynamic", "int8")
SUFFIX = {"litert": ".tflite", "onnx": ".onnx", "savedmodel": ""}


@dataclass
class ExportConfig(Options):
    format: str = option(REQUIRED, "litert: .tflite for LiteRT; onnx: .onnx for ONNX Runtime; "
                                   "savedmodel: a TensorFlow SavedModel folder", choices=FORMATS)
    model: Path | None = model_option()
    out: Path | None = option(None, "output file/folder (default: next to the model, e.g. "
                                    "cifar10-fast.tflite, cifar10-fast.int8.tflite, "
                                    "cifar10-fast_savedmodel)", metavar="PATH")
    quantize: str = option("none", "litert only: dynamic = int8 weights; int8 = full-integer model "
                                   "(needs --calibration-data; the open-set score head stays "
                                   "float)", choices=QUANTIZATIONS)
    calibration_data: str | None = option(
        None, "real images for int8 calibration and the parity check: a dataset (CIFAR "
              "archive/folder, image folder) or image files/folder/glob", metavar="SOURCE")
    samples: int = option(500, "images used for calibration and the parity check", metavar="N",
                          check=at_least(1))
    seed: int = option(0, "seed of the sample of images", cli=False)

    def check(self) -> None:
        if self.quantize != "none" and self.format != "litert":
            raise CifarlabError(f"--quantize {self.quantize} is only available with --format litert; "
                                "drop --quantize or export to litert")
        if self.quantize == "int8" and not self.calibration_data:
            raise CifarlabError("--quantize int8 needs real images to calibrate activation ranges; "
                                "pass --calibration-data DATASET_OR_IMAGE_FOLDER (e.g. the training data)")
        if self.out is not None and self.format != "savedmodel" and \
                Path(self.out).suffix.lower() != SUFFIX[self.format]:
            raise CifarlabError(f"--out {self.out}: a {self.format} model file must end in "
                                f"{SUFFIX[self.format]} (cifarlab picks the runtime by extension)")


def default_out(model_path: Path, fmt: str, quantize: str) -> Path:
    stem = model_path.stem + (f".{quantize}" if quantize != "none" else "")
    if fmt == "savedmodel":
        return model_path.with_name(f"{stem}_savedmodel")
    return model_path.with_name(stem + SUFFIX[fmt])


def replace_dir(tmp: Path, path: Path) -> None:
    """Move folder `tmp` to `path`, replacing an existing folder with one rename each way."""
    if path.exists() and not path.is_dir():
        raise CifarlabError(f"--out {path}: exists and is not a folder; choose another path")
    old = None
    if path.exists():
        old = path.with_name(f".old-{path.name}-{os.getpid()}")
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _export_metadata(meta: ModelMetadata, config: ExportConfig, source: Path) -> ModelMetadata:
    return meta.with_changes(export={"format": config.format, "quantize": config.quantize,
                                     "source_model": str(source)})


def quantization(quantize: str, representative_images: np.ndarray | None, float_score: bool = False):
    """A `configure(converter)` for `keras_to_tflite`: none (float32), dynamic (int8 weights) or
    int8 (full-integer, calibrated on `representative_images`, uint8 (N, H, W, 3)). With
    `float_score`, int8 keeps the open-set score head in float (`int8_keeping_score_float`)."""
    import tensorflow as tf

    def configure(converter):
        if quantize in ("dynamic", "int8"):
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "int8":
            converter.representative_dataset = lambda: ([np.asarray(image, np.uint8)[None]]
                                                        for image in representative_images)
            if float_score:
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                                       tf.lite.OpsSet.TFLITE_BUILTINS]
                return int8_keeping_score_float
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.uint8
            converter.inference_output_type = tf.uint8
        return None

    return configure


def int8_keeping_score_float(converter) -> bytes:
    """The int8 network with its `ood_score` head (feature normalisation, the kNN bank's matmul,
    top-k: a few thousand multiply-adds) left in float, as TensorFlow's quantization debugger
    leaves denylisted nodes. In int8 that head alone moves the score enough to flip the unknown
    flag of images near the threshold (docs/results.md, The shipped model's score and its
    exports). Outputs are float32 (the probabilities dequantized), the input stays uint8."""
    import tensorflow as tf

    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter,
                                                         debug_dataset=converter.representative_dataset)
    names = [t["name"] for t in tf.lite.Interpreter(model_content=debugger.calibrated_model).get_tensor_details()
             if f"/{OOD_SCORE}" in t["name"]]
    debugger.options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_nodes=names, denylisted_ops=["TOPK_V2", "EXPAND_DIMS"])  # ops of the score head only
    return debugger.get_nondebug_quantized_model()


def _litert(model, meta, config, images, tmp_dir: Path):
    from cifarlab.inference.litert import LiteRTClassifier, keras_to_tflite

    configure = quantization(config.quantize, images, float_score=has_ood_score(model))
    content = keras_to_tflite(model, meta.input_size, configure=configure)
    path = tmp_dir / "model.tflite"
    path.write_bytes(content)
    classifier = LiteRTClassifier(model_path=path, metadata=meta, source=str(path))
    return path, classifier.predict_scored(images)


def _onnx(model, meta, config, images, tmp_dir: Path):
    from cifarlab.export.onnx import keras_to_onnx
    from cifarlab.inference.onnx_runtime import OnnxClassifier

    path = tmp_dir / "model.onnx"
    path.write_bytes(keras_to_onnx(model, meta.input_size, meta))
    return path, OnnxClassifier(path, meta).predict_scored(images)


def _savedmodel(model, meta, config, images, tmp_dir: Path):
    import tensorflow as tf

    path = tmp_dir / "savedmodel"
    try:
        model.export(str(path), format="tf_saved_model", verbose=False)
    except Exception as exc:
        raise CifarlabError(f"SavedModel export failed ({exc.__class__.__name__}: {exc})") from None
    extra = path / "assets.extra"
    extra.mkdir(exist_ok=True)
    (extra / "cifarlab.json").write_text(meta.to_json())
    loaded = tf.saved_model.load(str(path))
    parts = [loaded.serve(tf.constant(images[i : i + 256])) for i in range(0, len(images), 256)]
    parts = [split_outputs([o.numpy() for o in (p if isinstance(p, (list, tuple)) else [p])],
                           meta.num_classes, str(path)) for p in parts]
    scores = np.concatenate([s for _, s in parts]) if parts[0][1] is not None else None
    return path, (np.concatenate([p for p, _ in parts]), scores)


EXPORTERS = {"litert": _litert, "onnx": _onnx, "savedmodel": _savedmodel}


def export_model(config: ExportConfig) -> tuple[Path, ParityResult]:
    """Export, check parity against Keras, write `<out>` and `<out>.json`; returns both."""
    source = resolve_model_path(config.model)
    require_keras_file(source, "export")
    model, meta = load_keras_model(source)
    out = Path(config.out) if config.out else default_out(source, config.format, config.quantize)
    images, kind = sample_images(config.calibration_data, meta.input_size, config.samples, config.seed)
    reference = KerasClassifier(model, meta).predict_scored(images)
    full_meta = _export_metadata(meta, config, source)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".tmp-export-{out.name}-"))
    try:
        path, exported = EXPORTERS[config.format](model, full_meta, config, images, tmp_dir)
        threshold = meta.open_set.threshold if meta.open_set else None
        parity = compare(reference, exported, config.quantize != "none", kind, threshold)
        full_meta = full_meta.with_changes(export={**full_meta.export, "parity": parity.as_dict()})
        if config.format == "savedmodel":
            (path / "assets.extra" / "cifarlab.json").write_text(full_meta.to_json())
            replace_dir(path, out)
        else:
            os.replace(path, out)
        write_sidecar(out, full_meta)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return out, parity


def _size(path: Path) -> str:
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() \
        else path.stat().st_size
    return f"{total / 1024:.0f} KiB" if total < 1024**2 else f"{total / 1024**2:.1f} MiB"


def run_export(config: ExportConfig, out=None) -> int:
    out = out or sys.stdout
    path, parity = export_model(config)
    quant = "" if config.quantize == "none" else f", {config.quantize} quantized"
    print(f"exported {path} ({config.format}{quant}, {_size(path)}); metadata in "
          f"{sidecar_path(path)}", file=out)
    print(parity.summary(), file=out)
    if not parity.passed:
        print("cifarlab export: parity check failed; the exported model was still written, but "
              "it does not reproduce the Keras model closely enough", file=sys.stderr)
        return 1
    return 0
