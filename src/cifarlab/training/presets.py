"""Training recipes by name. A preset fills every TrainConfig field the user did not set."""

from __future__ import annotations

PRESETS: dict[str, dict] = {
    # The recipe the project was first described with, kept as the baseline: Adam, early
    # stopping (best weights restored) and reduce-LR-on-plateau on validation loss, no augmentation.
    "seed": dict(
        epochs=60, batch_size=64, lr=1e-3, optimizer="adam", schedule="plateau",
        early_stopping_patience=8, plateau_patience=3, plateau_factor=0.5,
        label_smoothing=0.0, calibrate=False, flip=False, translate=0, cutout=0, val_fraction=0.1, weight_decay=0.0,
    ),
    # Accuracy per CPU-minute: airbench94's recipe (Keller Jordan), restated for a Keras mean loss.
    "fast": dict(
        epochs=10, batch_size=1024,
        widths=(64, 256, 256),  # airbench94's widths
        optimizer="sgd", lr=1.5,  # airbench's 11.5 per 1024 examples on a summed loss = 1.5 on a mean
        momentum=0.85,
        weight_decay=0.0089,    # decoupled: the same 1.3%-per-step shrink at peak as airbench's L2
        bias_scaler=64.0,       # BatchNorm biases at 64x the learning rate (training/optim.py)
        lookahead_steps=5,      # lookahead weight averaging, ramping in over the run
        schedule="triangle",    # linear warm-up over 23% of the steps, then linear decay
        warmup_epochs=0,
        label_smoothing=0.2,    # soft targets: better accuracy in few epochs...
        calibrate=True,         # ...but under-confident: a temperature fitted on val fixes that
        flip=True, translate=2, # alternating flip + 2-pixel translation (training/pipeline.py)
        cutout=0,               # off: in 10 epochs the model does not yet overfit enough to need it
        val_fraction=0.02,      # 1,000 images: enough to calibrate and watch, 98% left to learn from
        early_stopping_patience=0,
    ),
}
