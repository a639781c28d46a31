"""The study's models written the straightforward way: the baseline the lean models match.

As the study's code (after vit-pytorch) computes them: separate q, k, v chunks, heads
split and merged with permute, an explicit softmax(q k^T / sqrt(d)) v, the CLS token
concatenated every step, BatchNorm1d on the permuted (b, C, N) token tensor. The
equivalence tests hold the models of ``vitbn_sweep.models.vit`` to these to 1e-5, and
``make bench`` times them as the study's training set-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


class PermutedBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d(C) on the (b, C, N) permutation of a (b, N, C) token tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 1)).permute(0, 2, 1)


def reference_norm(kind: str, dim: int) -> nn.Module:
    return {"layer": nn.LayerNorm, "batch": PermutedBatchNorm, "none": lambda _: nn.Identity()}[
        kind
    ](dim)


class RefAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int, norm: str) -> None:
        super().__init__()
        self.heads, self.scale = heads, dim_head**-0.5
        self.norm = reference_norm(norm, dim)
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.to_out = nn.Linear(heads * dim_head, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.to_qkv(self.norm(x)).chunk(3, dim=-1)
        q, k, v = (t.reshape(b, n, self.heads, -1).permute(0, 2, 1, 3) for t in (q, k, v))
        attn = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * self.scale, dim=-1)
        out = torch.matmul(attn, v).permute(0, 2, 1, 3).reshape(b, n, -1)
        return self.to_out(out)


class RefFeedForward(nn.Module):
    def __init__(self, dim: int, mlp_dim: int, pre: str, hidden: str) -> None:
        super().__init__()
        self.pre_norm = reference_norm(pre, dim)
        self.fc1 = nn.Linear(dim, mlp_dim)
        self.hidden_norm = reference_norm(hidden, mlp_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(mlp_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.hidden_norm(self.fc1(self.pre_norm(x)))))


class RefBlock(nn.Module):
    def __init__(self, cfg: Mapping[str, Any]) -> None:
        super().__init__()
        norms = cfg["norms"]
        self.attn = RefAttention(cfg["dim"], cfg["heads"], cfg["dim_head"], norms["attn"])
        self.ffn = RefFeedForward(cfg["dim"], cfg["mlp_dim"], norms["ffn_pre"], norms["ffn_hidden"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attn(x) + x
        return self.ffn(x) + x


class RefViT(nn.Module):
    def __init__(self, cfg: Mapping[str, Any]) -> None:
        super().__init__()
        p, dim, norms = cfg["patch_size"], cfg["dim"], cfg["norms"]
        self.p = p
        num_patches = (28 // p) ** 2
        self.patch_norm = reference_norm(norms["embed"], p * p)
        self.patch_proj = nn.Linear(p * p, dim)
        self.embed_norm = reference_norm(norms["embed"], dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, num_patches + 1, dim))
        self.blocks = nn.ModuleList(RefBlock(cfg) for _ in range(cfg["depth"]))
        self.final_norm = reference_norm(norms["final"], dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        b, c, h, w = img.shape
        p = self.p
        # einops: 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)'
        x = img.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
        x = x.reshape(b, (h // p) * (w // p), p * p * c)
        x = self.embed_norm(self.patch_proj(self.patch_norm(x)))
        x = torch.cat((self.cls_token.repeat(b, 1, 1), x), dim=1)
        x = x + self.pos_embedding[:, : x.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.final_norm(x)[:, 0])


def reference_dnn(cfg: Mapping[str, Any]) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    width = 28 * 28
    for _ in range(cfg["depth"]):
        layers.append(nn.Linear(width, cfg["hidden"]))
        if cfg["norms"]["hidden"] == "batch":
            layers.append(nn.BatchNorm1d(cfg["hidden"]))
        layers.append(nn.Sigmoid())
        width = cfg["hidden"]
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def build_reference_model(cfg: Mapping[str, Any]) -> nn.Module:
    """The straightforward model for a ``model`` config node (28x28x1 images, 10 classes)."""
    return RefViT(cfg) if cfg["arch"] == "vit" else reference_dnn(cfg)
