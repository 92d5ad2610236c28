"""Choosing a tf.distribute strategy: one device, all local GPUs, or several machines.

Several machines (or several processes on one machine) train one model with
`MultiWorkerMirroredStrategy`: synchronous data parallelism, gradients all-reduced every step.
To launch it, start the *same* `cifarlab train` command on every host, each with a `TF_CONFIG`
environment variable that lists the whole cluster and says which worker this host is::

    # host A (worker 0 = the chief: it writes model.keras, checkpoints and logs to --out)
    TF_CONFIG='{"cluster": {"worker": ["hostA:12345", "hostB:12345"]},
                "task": {"type": "worker", "index": 0}}' \\
        cifarlab train --data /data/cifar10 --model fast --out runs/fast-2x --strategy multiworker

    # host B (worker 1): identical command, only the task index differs
    TF_CONFIG='{"cluster": {"worker": ["hostA:12345", "hostB:12345"]},
                "task": {"type": "worker", "index": 1}}' \\
        cifarlab train --data /data/cifar10 --model fast --out runs/fast-2x --strategy multiworker

Rules:
- Every host needs the same dataset at the same `--data` path, and the listed host:port pairs
  must be reachable from every other host (the port is any free TCP port; the workers wait for
  each other at start-up).
- `--batch-size` is the *global* batch: each of N workers computes batch/N images per step, so
  the recipe (learning rate, schedule, epochs) means the same as on one machine.
- Only the chief (worker 0, or the task of type "chief" if the cluster has one) writes into
  `--out`; the other workers keep their (required, identical) copies of checkpoints and the
  final model in a temporary folder that is deleted at the end.
- To resume, rerun the same commands. Every worker reads the checkpoint from `--out`, so put
  `--out` on a shared filesystem or copy the chief's `--out/checkpoint/` to the same path on
  every host first; workers that disagree on the checkpoint stop with an error.
- With `--strategy auto` (the default) a set `TF_CONFIG` already selects multi-worker training.
"""

from __future__ import annotations

import json
import os
import types

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
            raise CifarlabError("--strategy multiworker needs TF_CONFIG (cluster and task) on every "
                                "worker; see `cifarlab.training.distribute` for how to launch it")
        try:
            config = json.loads(os.environ["TF_CONFIG"])
        except ValueError as exc:
            raise CifarlabError(f"TF_CONFIG is not valid JSON ({exc})") from None
        if not isinstance(config, dict) or "cluster" not in config or "task" not in config:
            raise CifarlabError('TF_CONFIG needs "cluster" and "task", e.g. {"cluster": {"worker": '
                                '["host0:port", "host1:port"]}, "task": {"type": "worker", "index": 0}}')
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise CifarlabError(f"unknown --strategy {name!r}; use auto, one, mirrored or multiworker")


def is_chief() -> bool:
    """The worker that writes files: task 0 of type chief/worker, or the only process."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    return task.get("type", "worker") in ("chief", "worker") and task.get("index", 0) == 0 and \
        not ("chief" in config.get("cluster", {}) and task.get("type") == "worker")


def is_multiworker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Shard a distributed dataset by element: our datasets come from in-memory arrays, not
    files, so the AUTO policy would only try FILE sharding, warn and fall back to this."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def same_on_all_workers(strategy: tf.distribute.Strategy, value: int, what: str) -> None:
    """Raise if `value` differs between workers (e.g. the checkpoint epoch each one found)."""
    if not is_multiworker(strategy):
        return
    # Only SUM and MEAN exist: all n values are equal iff n * sum(v^2) == sum(v)^2.
    local = tf.constant([value, value * value, 1], tf.float64)
    total, squares, n = strategy.reduce("SUM", strategy.run(lambda: tf.identity(local)), axis=None).numpy()
    if n * squares != total * total:
        raise CifarlabError(f"workers disagree on {what} (this worker: {value}): put --out on a "
                            "shared filesystem or copy the chief's --out/checkpoint/ to every worker")


def fix_keras_multiworker_build(model, strategy: tf.distribute.Strategy) -> None:
    """Work around two Keras 3 bugs (still in 3.15) that break `fit`/`evaluate` under
    MultiWorkerMirroredStrategy (keras-team/keras#20585), on this model instance only:

    - Before the first step Keras `strategy.reduce`s the whole (x, y) batch to build the
      metrics, which fails for a tuple of per-replica values. Building only needs shapes and
      dtypes, so the model builds from the first replica's local batch instead.
    - Each step's logs are reduced across workers with `reduce("MEAN", v, axis=0)`, which fails
      for scalar logs (loss, accuracy). The steps return them as shape-[1] tensors instead;
      the mean over axis 0 then is the mean over workers, a scalar again.
    """
    if not is_multiworker(strategy):
        return
    from keras import tree

    def first_local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tree.map_structure(first_local, next(it))
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def as_vectors(step):
        def wrapped(data):
            return tree.map_structure(lambda v: tf.reshape(v, [1]) if v.shape.rank == 0 else v, step(data))
        return wrapped

    object.__setattr__(model, "_maybe_symbolic_build", types.MethodType(maybe_symbolic_build, model))
    object.__setattr__(model, "train_step", as_vectors(model.train_step))
    object.__setattr__(model, "test_step", as_vectors(model.test_step))
