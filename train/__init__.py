"""Training: stage configs, losses, data pipeline, loop, distributed."""
