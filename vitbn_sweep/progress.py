"""Progress display: a live bar for an interactive single run, else nothing per step.

The per-epoch log line is written by the training loop in every mode, so
multirun and batch jobs get exactly one line per epoch in their log.
"""

from __future__ import annotations

import sys
import time

import torch

BAR_REFRESH_STEPS = 10  # steps between bar updates (each reads the loss, a device sync)


def _multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


class Progress:
    """No per-step output."""

    @staticmethod
    def create(mode: str, *, epoch: int, epochs: int, steps: int) -> Progress:
        """``mode``: bar | log | auto (a bar when stderr is a terminal and this is no multirun)."""
        if mode == "bar" or (mode == "auto" and sys.stderr.isatty() and not _multirun()):
            return BarProgress(epoch=epoch, epochs=epochs, steps=steps)
        return Progress()

    def step(
        self, step: int, loss_sum: torch.Tensor, correct: torch.Tensor, seen: int, start: float
    ) -> None:
        """Called after every optimizer step with the running sums of the epoch."""

    def close(self) -> None:
        """Called once at the end of the epoch."""


class BarProgress(Progress):
    def __init__(self, *, epoch: int, epochs: int, steps: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=steps,
            desc=f"epoch {epoch}/{epochs}",
            unit="step",
            leave=False,
            dynamic_ncols=True,
        )

    def step(
        self, step: int, loss_sum: torch.Tensor, correct: torch.Tensor, seen: int, start: float
    ) -> None:
        if step % BAR_REFRESH_STEPS:
            return
        self.bar.update(step - self.bar.n)
        rate = seen / max(time.perf_counter() - start, 1e-9)
        self.bar.set_postfix(
            loss=f"{loss_sum.item() / seen:.4f}",
            acc=f"{correct.item() / seen:.4f}",
            samples_s=f"{rate:,.0f}",
        )

    def close(self) -> None:
        self.bar.close()
