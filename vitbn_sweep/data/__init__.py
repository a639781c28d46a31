"""Data pipelines: ``data.pipeline`` picks one; each is one module and one class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from vitbn_sweep.choices import PIPELINES
from vitbn_sweep.data.base import Batch, Pipeline
from vitbn_sweep.data.mnist import DataError, load_mnist


def build_pipeline(
    data: Mapping[str, Any],
    *,
    batch_size: int,
    test_batch_size: int,
    seed: int,
    device: torch.device,
) -> Pipeline:
    """The pipeline named by ``data.pipeline``, loaded and ready to yield batches."""
    if data["pipeline"] == "torchvision":
        from vitbn_sweep.data.torchvision_pipeline import TorchvisionPipeline as cls
    elif data["pipeline"] == "fast":
        from vitbn_sweep.data.fast_pipeline import FastPipeline as cls
    else:
        raise ValueError(
            f"data.pipeline must be one of {', '.join(PIPELINES)}, got {data['pipeline']!r}"
        )
    return cls(
        data, batch_size=batch_size, test_batch_size=test_batch_size, seed=seed, device=device
    )


__all__ = ["Batch", "DataError", "Pipeline", "build_pipeline", "load_mnist"]
