"""Training: `TrainConfig` (every option declared once), the tf.data pipeline and augmentations,
optimizer and schedule, checkpoints for bit-identical resume, tf.distribute, and `train()`."""
