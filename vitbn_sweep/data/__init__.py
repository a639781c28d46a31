"""Data pipelines: ``data.pipeline`` picks one; each is one module and one class.

Importing the package loads no torch (``Batch``, ``Pipeline`` and ``load_mnist`` load
on first use): the sweeper checks the data through ``vitbn_sweep.data.home``
before it launches a job, and may run on a Slurm login node.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import TYPE_CHECKING, Any

from vitbn_sweep.choices import PIPELINES
from vitbn_sweep.data.home import DataError, data_home, prepare

if TYPE_CHECKING:
    import torch

    from vitbn_sweep.data.base import Batch, Pipeline
    from vitbn_sweep.data.mnist import load_mnist

_LAZY = {"Batch": "base", "Pipeline": "base", "load_mnist": "mnist"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"vitbn_sweep.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


__all__ = ["Batch", "DataError", "Pipeline", "build_pipeline", "data_home", "load_mnist", "prepare"]
