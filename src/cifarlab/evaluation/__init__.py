"""Model evaluation: metrics (scikit-learn), plots (matplotlib Agg) and a self-contained report."""

from cifarlab.evaluation.metrics import compute_metrics, expected_calibration_error
from cifarlab.evaluation.run import EvaluateConfig, EvaluateResult, evaluate

__all__ = ["EvaluateConfig", "EvaluateResult", "compute_metrics", "evaluate",
           "expected_calibration_error"]
