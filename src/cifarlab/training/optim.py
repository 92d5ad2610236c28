"""The optimizer and schedule of the `fast` recipe, as airbench94 runs them, in Keras terms.

- `Triangle`: linear warm-up then linear decay; a short run needs no long cosine tail.
- `BiasBoostSGD`: SGD-Nesterov whose BatchNorm biases learn `bias_scaler`x faster (weight decay
  unscaled): with BN scales frozen, the biases are the only per-channel knobs and need big steps.
- Lookahead: every `lookahead_steps` steps the weights are reset to an exponential average of
  themselves whose momentum ramps from 0 to 0.95 as (progress)^0.6 over the run, so the end of
  training averages over many nearby solutions while the start still moves freely. The average is
  Keras's optimizer EMA (saved with checkpoints, so resuming is exact); the reset is the
  `LookaheadReset` callback, because a conditional overwrite inside the train step breaks under
  tf.distribute (a merge_call inside a cond).
- `MuonSGD` (airbench94_muon): the 3x3 conv filters take Muon steps instead (momentum, then the
  update orthogonalized by a Newton-Schulz iteration, weights renormalised to a fixed norm);
  everything else takes the SGD steps above. Keras's own `Muon` hands every non-2-D variable
  to AdamW, so it cannot train conv filters as Muon does.
"""

from __future__ import annotations

import keras
from keras import ops

from cifarlab.errors import CifarlabError


@keras.saving.register_keras_serializable("cifarlab")
class Triangle(keras.optimizers.schedules.LearningRateSchedule):
    """`peak * start` rising linearly to `peak` over `warmup_fraction` of the run, then falling
    linearly to `peak * end` at `total_steps`."""

    def __init__(self, peak: float, total_steps: int, warmup_fraction: float = 0.23,
                 start: float = 0.2, end: float = 0.07):
        self.peak, self.total_steps = float(peak), int(total_steps)
        self.warmup_fraction, self.start, self.end = float(warmup_fraction), float(start), float(end)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = max(1.0, round(self.warmup_fraction * self.total_steps))
        rising = self.start + (1 - self.start) * step / warmup
        falling = 1 + (self.end - 1) * (step - warmup) / max(1.0, self.total_steps - warmup)
        return self.peak * ops.where(step < warmup, rising, ops.maximum(falling, self.end))

    def get_config(self) -> dict:
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_fraction": self.warmup_fraction,
                "start": self.start, "end": self.end}


@keras.saving.register_keras_serializable("cifarlab")
class BiasBoostSGD(keras.optimizers.SGD):
    """SGD-Nesterov with BatchNorm biases (`beta`) at `bias_scaler` x the learning rate, and
    optional lookahead weight averaging (see the module docstring)."""

    def __init__(self, learning_rate=0.01, momentum: float = 0.85, bias_scaler: float = 1.0,
                 lookahead_steps: int = 0, total_steps: int = 1, lookahead_momentum: float = 0.95,
                 **kwargs):
        kwargs.pop("nesterov", None)
        if lookahead_steps:
            kwargs.update(use_ema=True, ema_overwrite_frequency=None, ema_momentum=lookahead_momentum)
        super().__init__(learning_rate, momentum=momentum, nesterov=True, **kwargs)
        self.bias_scaler, self.lookahead_steps = float(bias_scaler), int(lookahead_steps)
        self.total_steps = int(total_steps)

    def _backend_apply_gradients(self, grads, trainable_variables):
        if self.bias_scaler != 1.0:  # a scaled gradient is a scaled step: momentum is linear
            grads = [g * self.bias_scaler if g is not None and v.name == "beta" else g
                     for g, v in zip(grads, trainable_variables)]
        return super()._backend_apply_gradients(grads, trainable_variables)

    def _update_model_variables_moving_average(self, trainable_variables):
        progress = ops.minimum(ops.cast(self.iterations, "float32") / self.total_steps, 1.0)
        momentum = self.ema_momentum * ops.power(progress, 0.6)
        for var, average in zip(trainable_variables, self._model_variables_moving_average):
            if average is not None:
                average.assign(momentum * average + (1 - momentum) * var)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(bias_scaler=self.bias_scaler, lookahead_steps=self.lookahead_steps,
                      total_steps=self.total_steps, lookahead_momentum=self.ema_momentum)
        return config


def orthogonalized(update, steps: int = 3, eps: float = 1e-7):
    """Newton-Schulz's approximately orthogonal matrix of a 2-D `update` (airbench94_muon's
    quintic coefficients: singular values land in about 0.5..1.5, which trains as well as 1)."""
    a, b, c = 3.4445, -4.7750, 2.0315
    tall = update.shape[0] > update.shape[1]
    x = ops.transpose(update) if tall else update
    x = x / (ops.sqrt(ops.sum(ops.square(x))) + eps)  # the top singular value at most 1
    x = ops.cast(x, "bfloat16")  # as airbench: the iteration tolerates it, and bf16 matmuls are cheap
    for _ in range(steps):
        gram = ops.matmul(x, ops.transpose(x))
        x = a * x + ops.matmul(b * gram + c * ops.matmul(gram, gram), x)
    x = ops.cast(x, update.dtype)
    return ops.transpose(x) if tall else x


@keras.saving.register_keras_serializable("cifarlab")
class MuonSGD(BiasBoostSGD):
    """`BiasBoostSGD`, with Muon steps of `muon_lr` x (the schedule's fraction of its peak) for
    the 4-D conv kernels (see the module docstring)."""

    def __init__(self, learning_rate=0.01, muon_lr: float = 0.24, muon_momentum: float = 0.6,
                 peak_lr: float = 1.0, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.muon_lr, self.muon_momentum, self.peak_lr = float(muon_lr), float(muon_momentum), float(peak_lr)

    @staticmethod
    def takes_muon(variable) -> bool:
        return len(variable.shape) == 4  # a conv kernel

    def update_step(self, gradient, variable, learning_rate):
        if not self.takes_muon(variable):
            return super().update_step(gradient, variable, learning_rate)
        m = self.momentums[self._get_variable_index(variable)]
        gradient = ops.cast(gradient, variable.dtype)
        self.assign(m, self.muon_momentum * m + gradient)
        step = gradient + self.muon_momentum * m  # Nesterov
        outputs = variable.shape[-1]  # a Keras kernel is (h, w, in, out): one column per filter
        matrix = orthogonalized(ops.reshape(step, (-1, outputs)))
        norm = ops.sqrt(ops.sum(ops.square(variable)))
        lr = ops.cast(learning_rate, variable.dtype) * (self.muon_lr / self.peak_lr)
        self.assign(variable, variable * (outputs ** 0.5 / norm) - lr * ops.reshape(matrix, variable.shape))

    def _apply_weight_decay(self, variables):  # the renormalisation above replaces it for filters
        super()._apply_weight_decay([v for v in variables if not self.takes_muon(v)])

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(muon_lr=self.muon_lr, muon_momentum=self.muon_momentum, peak_lr=self.peak_lr)
        return config


class LookaheadReset(keras.callbacks.Callback):
    """After every `lookahead_steps`-th optimizer step, set the weights to the optimizer's average."""

    def on_train_batch_end(self, batch, logs=None):
        optimizer = self.model.optimizer
        steps = getattr(optimizer, "lookahead_steps", 0)
        if steps and int(keras.ops.convert_to_numpy(optimizer.iterations)) % steps == 0:
            optimizer.finalize_variable_values(self.model.trainable_weights)


def make_schedule(cfg, steps_per_epoch: int):
    """The learning rate (a schedule or a constant) of `cfg.schedule`."""
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.schedule == "triangle":
        return Triangle(cfg.lr, total_steps)
    if cfg.schedule == "linear":  # airbench94_muon's: no warm-up, straight down from the peak
        return Triangle(cfg.lr, total_steps, warmup_fraction=0.0, start=1.0)
    if cfg.schedule == "warmup-cosine":
        warmup = max(1, int(cfg.warmup_epochs * steps_per_epoch))
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=cfg.lr / 10, warmup_target=cfg.lr, warmup_steps=warmup,
            decay_steps=max(1, total_steps - warmup), alpha=0.0)
    if cfg.schedule in ("constant", "plateau"):
        return cfg.lr
    raise CifarlabError(f"unknown schedule {cfg.schedule!r}; use triangle, linear, warmup-cosine, constant or plateau")


SGD_STEPPED = ("sgd", "muon")  # optimizers whose `lr` is an SGD learning rate (muon: for all but filters)


def make_optimizer(cfg, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    lr = make_schedule(cfg, steps_per_epoch)
    wd = cfg.weight_decay or None
    clip = dict(global_clipnorm=cfg.clip_norm) if cfg.clip_norm else {}
    if cfg.optimizer in SGD_STEPPED:
        sgd = dict(momentum=cfg.momentum, bias_scaler=cfg.bias_scaler, lookahead_steps=cfg.lookahead_steps,
                   total_steps=cfg.epochs * steps_per_epoch, weight_decay=wd, **clip)
        if cfg.optimizer == "sgd":
            return BiasBoostSGD(lr, **sgd)
        return MuonSGD(lr, muon_lr=cfg.muon_lr, muon_momentum=cfg.muon_momentum, peak_lr=cfg.lr, **sgd)
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(lr, weight_decay=wd, **clip)
    raise CifarlabError(f"unknown optimizer {cfg.optimizer!r}; use sgd, muon or adam")
