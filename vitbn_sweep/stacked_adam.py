"""Adam on stacked parameters: each member with its own learning rate and its own step count.

For every member the arithmetic is that of ``torch.optim.Adam`` (the single-tensor path
it takes on CPU, L2 weight decay, no amsgrad), operation for operation:

    g     = grad (+ weight_decay * param)
    m     = lerp(m, g, 1 - beta1)                        (first moment)
    v     = beta2 * v + (1 - beta2) * g * g               (second moment)
    param = param + (-lr_m / (1 - beta1^t_m)) * m / (sqrt(v) / sqrt(1 - beta2^t_m) + eps)

with the bias corrections computed in double precision per member from its step count
t_m, as torch does from its step. Members may be at different steps (a group whose
members resume from checkpoints of different epochs). ``member_state`` and
``load_member`` move one member's moments and step in and out, so that a member's
optimiser state is checkpointed in ``torch.optim.Adam``'s own layout (see
``vitbn_sweep.stacked_train``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class StackedAdam:
    """Adam over parameters of shape (M, ...): member m uses ``lr[m]``."""

    def __init__(
        self,
        params: Sequence[nn.Parameter],
        *,
        lr: Sequence[float],
        betas: tuple[float, float],
        eps: float,
        weight_decay: float,
    ) -> None:
        self.params = list(params)
        if any(p.shape[0] != len(lr) for p in self.params):
            raise ValueError(f"every parameter needs a leading member dimension of {len(lr)}")
        self.lr = [float(x) for x in lr]
        self.steps = [0] * len(self.lr)
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])
        self.eps, self.weight_decay = float(eps), float(weight_decay)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    @property
    def members(self) -> int:
        return len(self.lr)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """One Adam step of every member: ``apply(advance())``, the factors on the device."""
        first = self.params[0]  # one copy of the (M,) factors to the device per step
        self.apply(self.advance().to(first.device, non_blocking=True))

    def advance(self) -> torch.Tensor:
        """Count one step of every member; returns their step factors, (2, M) on the CPU:
        row 0 ``-lr_m / (1 - beta1^t_m)``, row 1 ``sqrt(1 - beta2^t_m)``.

        The host's share of a step (Python floats, as torch.optim.Adam computes them from
        its float step), apart from ``apply`` so that a CUDA graph can replay ``apply``
        with the factors copied into a static buffer (``vitbn_sweep.cuda_graph``).
        """
        self.steps = [t + 1 for t in self.steps]
        beta1, beta2 = self.beta1, self.beta2
        neg_step_size = [
            -(lr / (1 - beta1 ** float(t))) for lr, t in zip(self.lr, self.steps, strict=True)
        ]
        bias2_sqrt = [(1 - beta2 ** float(t)) ** 0.5 for t in self.steps]
        return torch.tensor([neg_step_size, bias2_sqrt], dtype=self.params[0].dtype)

    @torch.no_grad()
    def apply(self, factors: torch.Tensor) -> None:
        """The device's share of a step: every parameter moved by its gradient, given the
        members' factors from ``advance`` (on the parameters' device). No host sync."""
        beta1, beta2 = self.beta1, self.beta2
        neg_step_size_t, bias2_sqrt_t = factors
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq, strict=True):
            per_member = (-1,) + (1,) * (p.dim() - 1)  # (M, 1, ..., 1): broadcasts over p
            grad = p.grad
            if grad is None:
                raise RuntimeError("StackedAdam.step: a parameter has no gradient")
            if self.weight_decay != 0:
                grad = grad.add(p, alpha=self.weight_decay)
            m.lerp_(grad, 1 - beta1)
            v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (v.sqrt() / bias2_sqrt_t.view(per_member)).add_(self.eps)
            # param.addcdiv_(m, denom, value=-step_size): param + (value * m) / denom
            p.add_(m.mul(neg_step_size_t.view(per_member)).div_(denom))

    def keep(self, index: Sequence[int]) -> None:
        """Keep only the members ``index`` (in that order); the parameters must have been
        indexed the same way (``models.stacked.keep_members``)."""
        rows = torch.tensor(list(index), dtype=torch.long)
        self.lr = [self.lr[i] for i in index]
        self.steps = [self.steps[i] for i in index]
        self.exp_avg = [m[rows.to(m.device)] for m in self.exp_avg]
        self.exp_avg_sq = [v[rows.to(v.device)] for v in self.exp_avg_sq]

    def member_state(self, member: int) -> tuple[int, list[torch.Tensor], list[torch.Tensor]]:
        """(step count, first moments, second moments) of ``member``, per parameter (views)."""
        return (
            self.steps[member],
            [m[member] for m in self.exp_avg],
            [v[member] for v in self.exp_avg_sq],
        )

    @torch.no_grad()
    def load_member(
        self,
        member: int,
        step: int,
        exp_avg: Sequence[torch.Tensor],
        exp_avg_sq: Sequence[torch.Tensor],
    ) -> None:
        """Set ``member``'s step count and moments (one tensor per parameter, single shapes)."""
        self.steps[member] = int(step)
        for dst, src in zip(self.exp_avg, exp_avg, strict=True):
            dst[member].copy_(src)
        for dst, src in zip(self.exp_avg_sq, exp_avg_sq, strict=True):
            dst[member].copy_(src)
