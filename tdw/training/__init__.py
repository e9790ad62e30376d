"""Training: run directories, checkpoints, the trainer, densify and legacy import."""
