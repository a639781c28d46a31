"""What every data pipeline provides to the training loop.

A pipeline yields batches already on the training device: images as float32
(b, c, H, W) in [0, 1] and labels as int64 (b,). All its randomness for an
epoch derives from (seed, epoch), so an epoch replays exactly, also after a
resume from a checkpoint.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from vitbn_sweep.data.mnist import load_mnist

Batch = tuple[torch.Tensor, torch.Tensor]


def epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """A distinct, reproducible seed per (run seed, epoch, stream)."""
    return (seed * 1_000_003 + epoch * 101 + stream) % (2**63)


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each training batch of an epoch of ``n`` samples.

    Batches of ``batch_size`` in order; a lone last sample joins the batch before
    it (a BatchNorm layer cannot normalise one value per channel), so no batch
    holds a single sample unless the whole epoch does.
    """
    bounds = [(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds.pop()
        bounds[-1] = (bounds[-1][0], n)
    return bounds


def subset_indices(n: int, size: int | None, *, how: str, seed: int) -> torch.Tensor | None:
    """Indices of a subset of ``size`` out of ``n`` items (first ones or a seeded draw)."""
    if size is None or size >= n:
        return None
    if how == "first":
        return torch.arange(size)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size].sort().values


def load_split(data: Mapping[str, Any], *, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The (possibly sub-sampled) uint8 images and labels of one split."""
    images, labels = load_mnist(data["root"], train=train, download=data["download"])
    size = data["train_size"] if train else data["test_size"]
    idx = subset_indices(len(labels), size, how=data["subset"], seed=data["subset_seed"])
    if idx is not None:
        images, labels = images[idx], labels[idx]
    return images, labels


class Pipeline(ABC):
    """Train and test batches for one run."""

    num_train: int
    num_test: int

    @abstractmethod
    def train_batches(self, epoch: int) -> Iterable[Batch]:
        """The shuffled (and, if configured, augmented) training set of ``epoch``."""

    @abstractmethod
    def test_batches(self, epoch: int, *, augmented: bool) -> Iterable[Batch]:
        """The test set, augmented or clean, in test-size batches."""
