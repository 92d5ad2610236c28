"""cifarlab: train, evaluate, export and run small-image classifiers live on a camera."""

__version__ = "0.1.0"

RUNS_DIR = "runs"  # where training runs and evaluations go by default (relative to the working folder)
