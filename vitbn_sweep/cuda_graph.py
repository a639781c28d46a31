"""The stacked training step, eager or replayed from a CUDA graph (``trainer.cuda_graph``).

On a GPU these small models are bound by kernel launches, not arithmetic: a step of a
stacked depth-7 ViT runs about 1,100 (ViTBNFFN 1,300) compute ops, among 4,000-4,600
dispatcher calls (torch's profiler, 6 members; Adam's 9 ops per parameter tensor are
most of them), each costing microseconds of host time, while the GPU computes the step
in a fraction of that (benchmarks/gpu-h200-2026-11-30: 2-5 % of the fp32 peak).
A CUDA graph records the step's kernels once and replays them with one launch.

One step, for a stack of M members (``vitbn_sweep.stacked_train``):

    images (M, b, c, H, W), labels (M, b)
      -> logits (M, b, classes), losses (M,): each member's mean cross-entropy
      -> backward of losses.sum() (member m's gradient is its own loss's)
      -> StackedAdam: advance() on the host (step counts, bias corrections: (2, M)),
                      apply(factors) on the device

``GraphedStep`` captures everything from the forward to ``apply`` and leaves outside the
graph what needs the host: the data pipeline (its random numbers come from the CPU),
``StackedAdam.advance`` (its factors are copied into a static buffer before each
replay, so the arithmetic is the eager step's), and the loss sums and divergence checks
of the caller. It follows torch's whole-network capture recipe: a few real steps on a
side stream first (lazy initialisation: cuBLAS, autograd's buffers), then the capture on
that same stream (cuBLAS caches its handles per stream). The gradients then live in the
graph's memory pool, and every replay overwrites them. A graph holds the addresses of
the parameters and the optimiser state, so a stack that changes (a member leaves) needs
a new ``GraphedStep``; a batch of another shape (a short last batch) runs eagerly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vitbn_sweep.accel import Autocast
from vitbn_sweep.stacked_adam import StackedAdam

WARMUP_STEPS = 3  # eager steps on a side stream before the capture (torch's recipe)


def member_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(M, b, classes), (M, b) -> (M,): each member's mean cross-entropy over its batch."""
    return (
        F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none")
        .view(labels.shape)
        .mean(1)
    )


def eager_step(
    model: nn.Module,
    optimizer: StackedAdam,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    autocast: Autocast,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One training step of every member; returns (logits, losses)."""
    with autocast():  # forward and loss only; weights and gradients stay fp32
        logits = model(images)  # (M, b, classes)
        losses = member_losses(logits, labels)  # (M,)
    optimizer.zero_grad()
    losses.sum().backward()  # member m's gradient is that of its own loss
    optimizer.step()
    return logits, losses


def graph_body(
    model: nn.Module,
    optimizer: StackedAdam,
    images: torch.Tensor,
    labels: torch.Tensor,
    factors: torch.Tensor,
    *,
    autocast: Autocast,
) -> tuple[torch.Tensor, torch.Tensor]:
    """What a graph records: ``eager_step`` without the host's share (``advance``), run
    with every gradient None (so the captured backward writes them afresh, and each
    replay overwrites them). No host sync: a test runs it under a dispatch mode that
    refuses reading values back or making tensors from Python data."""
    with autocast():
        logits = model(images)
        losses = member_losses(logits, labels)
    losses.sum().backward()
    optimizer.apply(factors)
    return logits.detach(), losses.detach()


class GraphedStep:
    """``eager_step`` of one stack, replayed from a CUDA graph after ``WARMUP_STEPS``.

    ``autocast`` must keep no weight cache (``accel.autocast_factory(..., cache=False)``).
    The returned (logits, losses) of a replay are the graph's static outputs: read them
    before the next step.
    """

    def __init__(self, model: nn.Module, optimizer: StackedAdam, *, autocast: Autocast) -> None:
        self.model, self.optimizer, self.autocast = model, optimizer, autocast
        self.device = next(model.parameters()).device
        if self.device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device; this stack is on {self.device}")
        self.warmup_left = WARMUP_STEPS
        self.side = torch.cuda.Stream(self.device)
        self.graph: torch.cuda.CUDAGraph | None = None

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.graph is None:
            if self.warmup_left > 0:
                self.warmup_left -= 1
                return self._on_side_stream(images, labels)
            self._capture(images, labels)
        if images.shape != self.images.shape or labels.shape != self.labels.shape:
            out = eager_step(self.model, self.optimizer, images, labels, autocast=self.autocast)
            for p, grad in zip(self.optimizer.params, self.grads, strict=True):
                p.grad = grad  # the graph's gradient buffers, which its Adam reads
            return out
        self.images.copy_(images)
        self.labels.copy_(labels)
        self.factors.copy_(self.optimizer.advance(), non_blocking=True)
        assert self.graph is not None
        self.graph.replay()
        return self.logits, self.losses

    def _on_side_stream(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        current = torch.cuda.current_stream(self.device)
        self.side.wait_stream(current)
        with torch.cuda.stream(self.side):
            out = eager_step(self.model, self.optimizer, images, labels, autocast=self.autocast)
        current.wait_stream(self.side)
        return out

    def _capture(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Record forward, loss, backward and Adam's device share on static inputs."""
        self.images, self.labels = torch.empty_like(images), torch.empty_like(labels)
        self.factors = torch.empty(
            2, self.optimizer.members, dtype=self.optimizer.params[0].dtype, device=self.device
        )
        self.optimizer.zero_grad()  # the capture allocates the gradients in the graph's pool
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, stream=self.side):  # the warm-up's stream
            self.logits, self.losses = graph_body(
                self.model,
                self.optimizer,
                self.images,
                self.labels,
                self.factors,
                autocast=self.autocast,
            )
        self.grads = [p.grad for p in self.optimizer.params]
