"""Shared by the benchmarks: a stand-in model when no trained one is shipped yet."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def untrained_fast_model(folder: Path, command: str) -> Path:
    """A `fast` CIFAR-10 network with untrained weights: right shapes and cost, chance accuracy."""
    from cifarlab.data import CIFAR10_CLASSES
    from cifarlab.models.io import save_model_file
    from cifarlab.models.metadata import ModelMetadata
    from cifarlab.models.registry import build_model

    mean = np.array([125.3, 123.0, 113.9], np.float32)
    std = np.array([63.0, 62.1, 66.7], np.float32)
    model = build_model("fast", (32, 32), 10, mean, std)
    return save_model_file(model, folder / "untrained-fast.keras", ModelMetadata(
        class_names=tuple(CIFAR10_CLASSES), input_size=(32, 32), mean=tuple(mean.tolist()),
        std=tuple(std.tolist()), model="fast", command=f"{command} (untrained)", version="bench",
        created="bench"))


def save_plot(fig, ax, path: Path, **axes) -> None:
    """Label `ax` (matplotlib `ax.set` keywords), add grid and legend, and save `fig` as a PNG."""
    ax.set(**axes)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
