"""Run a trained model: one `Classifier` contract, three runtimes (Keras, LiteRT, ONNX Runtime),
one `open_classifier(path, backend, threads)` used by every command, and class-activation maps."""

from cifarlab.inference.base import Classifier, check_batch, top_k, traced_call
from cifarlab.inference.open import BACKEND_HELP, BACKENDS, open_classifier

__all__ = ["BACKENDS", "BACKEND_HELP", "Classifier", "check_batch", "open_classifier", "top_k", "traced_call"]
