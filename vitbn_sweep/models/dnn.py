"""The study's warm-up network: a sigmoid MLP, with or without BatchNorm.

    flatten (b, c*H*W) -> depth x [Linear(-> hidden) -> hidden_norm(hidden) -> Sigmoid]
    -> Linear(hidden -> num_classes)

DNN   : no hidden_norm.
DNNBN : ``BatchNorm1d(hidden)`` before every Sigmoid.
"""

from __future__ import annotations

import torch
from torch import nn

from vitbn_sweep.models.vit import NormFactory


class DNN(nn.Module):
    def __init__(
        self,
        *,
        image_size: int,
        channels: int,
        num_classes: int,
        hidden: int,
        depth: int,
        hidden_norm: NormFactory,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = channels * image_size * image_size
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), hidden_norm(hidden), nn.Sigmoid()]
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, img: torch.Tensor) -> torch.Tensor:  # (b, c, H, W) -> (b, num_classes)
        return self.net(img)
