"""How a run executes its model: ``trainer.compile`` and ``trainer.precision``.

compile    torch.compile the model's forward in place (``nn.Module.compile``), so its
           parameters, state dict and checkpoints keep their names.
precision  fp32 | bf16: bf16 runs forward and loss under autocast; the weights, the
           optimiser state and the gradients stay float32. On CUDA always; on a CPU only
           where it has bf16 matrix instructions (AMX or AVX-512 bf16, ``cpu_bf16_flags``),
           since elsewhere bf16 runs slower than fp32; MPS and those CPUs refuse bf16 with a
           ConfigError instead of quietly running something else. On the CPU the attention
           takes its explicit bf16 path (``models.vit.attention``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial

import torch
from torch import nn

from vitbn_sweep.choices import PRECISIONS
from vitbn_sweep.results import cpuinfo
from vitbn_sweep.validate import ConfigError

Autocast = Callable[[], AbstractContextManager[None]]
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # AMX tiles; AVX-512 bf16 dot products


def cpu_bf16_flags() -> list[str]:
    """The CPU's bf16 matrix instructions named in /proc/cpuinfo (empty: none, or not Linux).
    oneDNN runs bf16 matrix products on them; without them it converts to fp32 and is slower."""
    flags = cpuinfo().get("flags", "").split()
    return [flag for flag in BF16_CPU_FLAGS if flag in flags]


def prepare_model(model: nn.Module, *, compile: bool, device: torch.device) -> nn.Module:
    """The model on ``device``, its forward compiled if asked; the same module object."""
    model = model.to(device)
    if compile:
        model.compile()
    return model


def autocast_factory(precision: str, device: torch.device, *, cache: bool = True) -> Autocast:
    """A factory of the context to run forward passes (and the loss) under.

    ``cache=False``: autocast keeps no cache of cast weights, as CUDA graph capture needs.
    """
    if precision not in PRECISIONS:
        raise ConfigError(
            f"trainer.precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
        )
    if precision == "fp32":
        return contextlib.nullcontext
    if device.type == "cpu" and not cpu_bf16_flags():
        raise ConfigError(
            f"trainer.precision={precision} on the CPU needs bf16 matrix instructions "
            f"({' or '.join(BF16_CPU_FLAGS)} in /proc/cpuinfo), which this CPU lacks: there "
            f"bf16 is slower than fp32. Use trainer.precision=fp32"
        )
    if device.type not in ("cuda", "cpu"):
        raise ConfigError(
            f"trainer.precision={precision} is supported on CUDA and on CPUs with bf16 "
            f"matrix instructions; this run is on {device}: use trainer.precision=fp32"
        )
    return partial(
        torch.autocast, device_type=device.type, dtype=torch.bfloat16, cache_enabled=cache
    )
