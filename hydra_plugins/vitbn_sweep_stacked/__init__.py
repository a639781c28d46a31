"""Hydra launcher of vitbn_sweep: a sweep's jobs trained in stacked groups (``stacked``)."""
