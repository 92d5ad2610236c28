"""Training recipes by name. A preset fills every TrainConfig field the user did not set."""

from __future__ import annotations

PRESETS: dict[str, dict] = {
    # The recipe the project was first described with, kept as the baseline: Adam, early
    # stopping (best weights restored) and reduce-LR-on-plateau on validation loss, no augmentation.
    "seed": dict(
        epochs=60, batch_size=64, lr=1e-3, optimizer="adam", schedule="plateau",
        early_stopping_patience=8, plateau_patience=3, plateau_factor=0.5,
        label_smoothing=0.0, calibrate=False, flip=False, translate=0, val_fraction=0.1, weight_decay=0.0,
    ),
    # Accuracy per CPU-minute: a short schedule built for its length.
    "fast": dict(
        epochs=16, batch_size=256,  # 16 epochs: about 12 minutes on the 2-core CPU (bfloat16)
        widths=(64, 128, 256),  # airbench uses 64/256/256; half the middle width halves its cost
        lr=0.2,                 # SGD-Nesterov peak learning rate at batch 256
        optimizer="sgd", schedule="warmup-cosine",
        warmup_epochs=1,        # warm-up: BN statistics settle before the large steps
        label_smoothing=0.2,    # soft targets: better accuracy in few epochs...
        calibrate=True,         # ...but under-confident: a temperature fitted on val fixes that
        flip=True, translate=2, # the two augmentations that pay at this budget (airbench)
        val_fraction=0.02,      # 1,000 images: enough to watch for trouble, 98% left to learn from
        weight_decay=5e-4,
        early_stopping_patience=0,
    ),
}
