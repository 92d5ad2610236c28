"""Choosing a tf.distribute strategy: one device, all local GPUs, or several machines."""

from __future__ import annotations

import json
import os

import tensorflow as tf

from cifarlab.errors import CifarlabError


def make_strategy(name: str) -> tf.distribute.Strategy:
    """auto: MultiWorkerMirrored when TF_CONFIG names a cluster, Mirrored with >1 GPU, else one device."""
    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        name = "multiworker" if "TF_CONFIG" in os.environ else ("mirrored" if len(gpus) > 1 else "one")
    if name == "one":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise CifarlabError("--strategy multiworker needs TF_CONFIG (cluster and task); see README")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise CifarlabError(f"unknown --strategy {name!r}; use auto, one, mirrored or multiworker")


def is_chief() -> bool:
    """The worker that writes files: task 0 of type chief/worker, or the only process."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    return task.get("type", "worker") in ("chief", "worker") and task.get("index", 0) == 0 and \
        not ("chief" in config.get("cluster", {}) and task.get("type") == "worker")
