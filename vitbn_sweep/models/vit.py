"""Vision Transformer with injectable norm layers: ViT, ViTBNFFN and ViTBN.

One transformer block serves all three models; they differ only in which norm
sits where (the ``norms`` mapping of ``conf/model/*.yaml``, built by ``vitbn_sweep.models``):

    patch embedding  Rearrange -> norm(p*p*c) -> Linear(p*p*c -> dim) -> norm(dim)
    tokens           [CLS; patches] + pos_embedding              (b, N = 1 + (H/p)*(W/p), dim)
    encoder block    x = x + Attention(x);  x = x + FeedForward(x)
      Attention      attn_norm(dim) -> Linear(dim -> 3*heads*dim_head, no bias)
                     -> softmax(q k^T / sqrt(dim_head)) v -> Linear(heads*dim_head -> dim)
      FeedForward    ffn_pre_norm(dim) -> Linear(dim -> mlp_dim) -> ffn_hidden_norm(mlp_dim)
                     -> GELU -> Linear(mlp_dim -> dim)
    head             final_norm(dim) -> CLS token -> Linear(dim -> num_classes)

ViT      : every norm a LayerNorm, no ffn_hidden_norm.
ViTBNFFN : as ViT, but no ffn_pre_norm and a TokenBatchNorm as ffn_hidden_norm.
ViTBN    : every norm a TokenBatchNorm, no ffn_pre_norm.

Layout: tokens stay (b, N, dim) and contiguous throughout; the attention runs
fused through ``scaled_dot_product_attention`` and the BatchNorm normalises a
(b*N, features) view, so no permute or chunk copies sit on the hot path. Under bf16
autocast on the CPU (``trainer.precision=bf16``), ``attention`` takes the explicit
path instead: the fused CPU kernel's bf16 backward is slower than fp32 altogether.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

NormFactory = Callable[[int], nn.Module]


class TokenBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the batch *and* token dimensions, one statistic per feature.

    Input (b, N, C). Identical to ``BatchNorm1d(C)`` applied to the permuted
    (b, C, N) tensor, but computed on the contiguous (b*N, C) view.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (b, N, C) -> (b, N, C)
        return super().forward(x.reshape(-1, x.shape[-1])).view_as(x)


def identity_norm(_: int) -> nn.Module:
    """The absence of a norm, as a factory with the same signature as the others."""
    return nn.Identity()


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v on (..., N, d) tensors. Fused, except under CPU autocast:
    there two bf16 matrix products around a float32 softmax (``make bench``: about 2x an
    fp32 step on a CPU with bf16 matrix instructions; the fused kernel in bf16 is slower)."""
    if q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5  # (..., N, N)
        return scores.float().softmax(dim=-1).to(v.dtype) @ v
    return F.scaled_dot_product_attention(q, k, v)


class Attention(nn.Module):
    """Multi-head self-attention with a pre-norm, fused q/k/v projection."""

    def __init__(self, *, dim: int, heads: int, dim_head: int, norm: NormFactory) -> None:
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        self.norm = norm(dim)
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.to_out = nn.Linear(heads * dim_head, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (b, N, dim) -> (b, N, dim)
        b, n, _ = x.shape
        qkv = self.to_qkv(self.norm(x)).view(b, n, 3, self.heads, self.dim_head)  # (b, N, 3, h, d)
        # Views, no copies; split on dim 2 so that backward stacks the q, k, v gradients
        # straight into the (b, N, 3, h, d) layout of the projection's output.
        q, k, v = (t.transpose(1, 2) for t in qkv.unbind(2))  # (b, h, N, d)
        out = attention(q, k, v)  # softmax(q k^T / sqrt(d)) v: (b, h, N, d)
        return self.to_out(out.transpose(1, 2).reshape(b, n, self.heads * self.dim_head))


class FeedForward(nn.Module):
    """pre_norm -> Linear -> hidden_norm -> GELU -> Linear."""

    def __init__(
        self, *, dim: int, mlp_dim: int, pre_norm: NormFactory, hidden_norm: NormFactory
    ) -> None:
        super().__init__()
        self.pre_norm = pre_norm(dim)
        self.fc1 = nn.Linear(dim, mlp_dim)
        self.hidden_norm = hidden_norm(mlp_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(mlp_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (b, N, dim) -> (b, N, dim)
        return self.fc2(self.act(self.hidden_norm(self.fc1(self.pre_norm(x)))))


class Block(nn.Module):
    """One encoder layer: x = x + Attention(x); x = x + FeedForward(x)."""

    def __init__(
        self,
        *,
        dim: int,
        heads: int,
        dim_head: int,
        mlp_dim: int,
        attn_norm: NormFactory,
        ffn_pre_norm: NormFactory,
        ffn_hidden_norm: NormFactory,
    ) -> None:
        super().__init__()
        self.attn = Attention(dim=dim, heads=heads, dim_head=dim_head, norm=attn_norm)
        self.ffn = FeedForward(
            dim=dim, mlp_dim=mlp_dim, pre_norm=ffn_pre_norm, hidden_norm=ffn_hidden_norm
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (b, N, dim) -> (b, N, dim)
        x = x + self.attn(x)
        return x + self.ffn(x)


class ViT(nn.Module):
    """Patch embedding, CLS token, ``depth`` blocks, final norm, linear head on CLS."""

    def __init__(
        self,
        *,
        image_size: int,
        channels: int,
        patch_size: int,
        num_classes: int,
        dim: int,
        depth: int,
        heads: int,
        dim_head: int,
        mlp_dim: int,
        embed_norm: NormFactory,
        attn_norm: NormFactory,
        ffn_pre_norm: NormFactory,
        ffn_hidden_norm: NormFactory,
        final_norm: NormFactory,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        num_patches = (image_size // patch_size) ** 2
        patch_dim = channels * patch_size * patch_size
        self.patch_norm = embed_norm(patch_dim)
        self.patch_proj = nn.Linear(patch_dim, dim)
        self.embed_norm = embed_norm(dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, num_patches + 1, dim))
        self.blocks = nn.ModuleList(
            Block(
                dim=dim,
                heads=heads,
                dim_head=dim_head,
                mlp_dim=mlp_dim,
                attn_norm=attn_norm,
                ffn_pre_norm=ffn_pre_norm,
                ffn_hidden_norm=ffn_hidden_norm,
            )
            for _ in range(depth)
        )
        self.final_norm = final_norm(dim)
        self.head = nn.Linear(dim, num_classes)

    def patchify(self, img: torch.Tensor) -> torch.Tensor:
        """(b, c, H, W) -> (b, (H/p)*(W/p), p*p*c), patches row-major, pixels (p1 p2 c)."""
        b, c, h, w = img.shape
        p = self.patch_size
        x = img.reshape(b, c, h // p, p, w // p, p)  # b c h p1 w p2
        return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // p) * (w // p), p * p * c)

    def forward(self, img: torch.Tensor) -> torch.Tensor:  # (b, c, H, W) -> (b, num_classes)
        x = self.embed_norm(self.patch_proj(self.patch_norm(self.patchify(img))))  # (b, P, dim)
        cls = self.cls_token.expand(x.shape[0], -1, -1)  # (b, 1, dim)
        x = torch.cat((cls, x), dim=1) + self.pos_embedding  # (b, N, dim)
        for block in self.blocks:
            x = block(x)
        return self.head(self.final_norm(x)[:, 0])  # (b, num_classes)
