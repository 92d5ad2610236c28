"""Bulk classification of image files: `gather_inputs` then `predict_files` (see `cifarlab predict`)."""

from cifarlab.data.files import gather_inputs
from cifarlab.predict.core import PredictConfig, Row, predict_files, run_predict

__all__ = ["PredictConfig", "Row", "gather_inputs", "predict_files", "run_predict"]
