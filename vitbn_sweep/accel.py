"""How a run executes its model: ``trainer.compile`` and ``trainer.precision``.

compile    torch.compile the model's forward in place (``nn.Module.compile``), so its
           parameters, state dict and checkpoints keep their names.
precision  fp32 | bf16: bf16 runs forward and loss under CUDA autocast; the weights,
           the optimiser state and the gradients stay float32. CPU (and MPS) runs
           refuse bf16 with a ConfigError instead of quietly running something else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial

import torch
from torch import nn

from vitbn_sweep.choices import PRECISIONS
from vitbn_sweep.validate import ConfigError

Autocast = Callable[[], AbstractContextManager[None]]


def prepare_model(model: nn.Module, *, compile: bool, device: torch.device) -> nn.Module:
    """The model on ``device``, its forward compiled if asked; the same module object."""
    model = model.to(device)
    if compile:
        model.compile()
    return model


def autocast_factory(precision: str, device: torch.device) -> Autocast:
    """A factory of the context to run forward passes (and the loss) under."""
    if precision not in PRECISIONS:
        raise ConfigError(
            f"trainer.precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
        )
    if precision == "fp32":
        return contextlib.nullcontext
    if device.type != "cuda":
        raise ConfigError(
            f"trainer.precision={precision} is supported on CUDA only (bf16 autocast); this run "
            f"is on {device}: use trainer.precision=fp32"
        )
    return partial(torch.autocast, device_type="cuda", dtype=torch.bfloat16)
