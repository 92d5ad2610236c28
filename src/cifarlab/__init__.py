"""cifarlab: train, evaluate, export and run small-image classifiers live on a camera."""

__version__ = "0.1.0"
