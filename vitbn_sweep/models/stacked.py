"""M models of one architecture as one module: every parameter gains a leading member dimension.

Member m of a stacked model computes what the single model of ``vitbn_sweep.models``
with member m's weights computes, for all members in one pass:

    images (M, b, c, H, W) -> logits (M, b, num_classes)

Every parameter and buffer has the single model's name and shape, with M in front
(a Linear's weight (out, in) becomes (M, out, in), a BatchNorm's running_mean (C,)
becomes (M, C)), so ``stack_states`` / ``member_state`` convert between M single
models and one stacked model by stacking and indexing; nothing else is renamed.

Layers (R = rows: every position that is not a member or a feature):

    StackedLinear      (M, ..., in) -> (M, ..., out): one batched matrix product over members
    StackedLayerNorm   per row over the features, then member m's scale and shift
    StackedBatchNorm   per member and feature over the batch (and tokens): statistics of
                       the (M, R, C) view reduced over R; running statistics (M, C)
    attention          ``models.vit.attention`` on (M*b, heads, N, dim_head): members
                       are just more samples of the batch

No operation mixes members, so a member whose activations turn NaN leaves the others
untouched, and the gradient of the sum of the members' losses is each member's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vitbn_sweep.models import architecture
from vitbn_sweep.models.vit import attention

StackedNormFactory = Callable[..., nn.Module]  # (*, members, features) -> module


class StackedLinear(nn.Module):
    """M independent ``nn.Linear(in_features, out_features)``.

    weight (M, out, in) and bias (M, out): row m holds member m's Linear.
    """

    def __init__(self, *, members: int, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(members, out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (M, ..., in) -> (M, ..., out)
        rows = x.reshape(x.shape[0], -1, x.shape[-1])  # (M, R, in)
        w = self.weight.transpose(1, 2)  # (M, in, out)
        out = (
            torch.bmm(rows, w) if self.bias is None else torch.baddbmm(self.bias[:, None], rows, w)
        )
        return out.view(*x.shape[:-1], -1)


class StackedLayerNorm(nn.Module):
    """M independent ``nn.LayerNorm(features)``: weight and bias (M, features)."""

    def __init__(self, *, members: int, features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.features, self.eps = features, eps
        self.weight = nn.Parameter(torch.ones(members, features))
        self.bias = nn.Parameter(torch.zeros(members, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (M, ..., C) -> (M, ..., C)
        shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (self.features,)  # (M, 1, ..., C)
        normed = F.layer_norm(x, (self.features,), eps=self.eps)
        return torch.addcmul(self.bias.view(shape), normed, self.weight.view(shape))


class StackedBatchNorm(nn.Module):
    """M independent BatchNorms over every row of their member: ``BatchNorm1d(features)`` of
    (b, C) inputs and ``TokenBatchNorm(features)`` of (b, N, C) inputs alike.

    Training: per member and feature the mean and biased variance over the R rows of the
    (M, R, C) view normalise; the running statistics (M, C) move towards the mean and the
    unbiased variance by ``momentum``. Evaluation: the running statistics normalise.
    """

    def __init__(
        self, *, members: int, features: int, eps: float = 1e-5, momentum: float = 0.1
    ) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(members, features))
        self.bias = nn.Parameter(torch.zeros(members, features))
        self.register_buffer("running_mean", torch.zeros(members, features))
        self.register_buffer("running_var", torch.ones(members, features))
        self.register_buffer("num_batches_tracked", torch.zeros(members, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (M, ..., C) -> (M, ..., C)
        rows = x.reshape(x.shape[0], -1, x.shape[-1])  # (M, R, C)
        if self.training:
            n = rows.shape[1]
            if n < 2:
                raise ValueError(f"Expected more than 1 value per channel when training, got {n}")
            # (M, C) each; in float32 also under bf16 autocast, as BatchNorm takes them
            var, mean = torch.var_mean(rows.float(), dim=1, correction=0)
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(mean, alpha=m)
                self.running_var.mul_(1 - m).add_(var * (n / (n - 1)), alpha=m)
                self.num_batches_tracked.add_(1)
        else:
            var, mean = self.running_var, self.running_mean
        scale = self.weight * torch.rsqrt(var + self.eps)  # (M, C)
        shift = self.bias - mean * scale  # (M, C)
        return torch.addcmul(shift[:, None], rows, scale[:, None]).view_as(x)


def no_norm(*, members: int, features: int) -> nn.Module:
    """The absence of a norm, as a factory with the same signature as the others."""
    return nn.Identity()


STACKED_NORMS: dict[str, StackedNormFactory] = {
    "layer": StackedLayerNorm,
    "batch": StackedBatchNorm,  # per member: over batch (and tokens), per feature
    "none": no_norm,
}


class StackedAttention(nn.Module):
    """M independent ``models.vit.Attention`` modules."""

    def __init__(
        self, *, members: int, dim: int, heads: int, dim_head: int, norm: StackedNormFactory
    ) -> None:
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        inner = heads * dim_head
        self.norm = norm(members=members, features=dim)
        self.to_qkv = StackedLinear(members=members, in_features=dim, out_features=3 * inner,
                                    bias=False)  # fmt: skip
        self.to_out = StackedLinear(members=members, in_features=inner, out_features=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (M, b, N, dim) -> (M, b, N, dim)
        m, b, n, _ = x.shape
        qkv = self.to_qkv(self.norm(x)).view(m * b, n, 3, self.heads, self.dim_head)
        q, k, v = (t.transpose(1, 2) for t in qkv.unbind(2))  # (M*b, h, N, d)
        out = attention(q, k, v)  # (M*b, h, N, d)
        return self.to_out(out.transpose(1, 2).reshape(m, b, n, self.heads * self.dim_head))


class StackedFeedForward(nn.Module):
    """M independent ``models.vit.FeedForward`` modules."""

    def __init__(
        self,
        *,
        members: int,
        dim: int,
        mlp_dim: int,
        pre_norm: StackedNormFactory,
        hidden_norm: StackedNormFactory,
    ) -> None:
        super().__init__()
        self.pre_norm = pre_norm(members=members, features=dim)
        self.fc1 = StackedLinear(members=members, in_features=dim, out_features=mlp_dim)
        self.hidden_norm = hidden_norm(members=members, features=mlp_dim)
        self.act = nn.GELU()
        self.fc2 = StackedLinear(members=members, in_features=mlp_dim, out_features=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (M, b, N, dim) -> (M, b, N, dim)
        return self.fc2(self.act(self.hidden_norm(self.fc1(self.pre_norm(x)))))


class StackedBlock(nn.Module):
    """M independent encoder layers: x = x + Attention(x); x = x + FeedForward(x)."""

    def __init__(
        self,
        *,
        members: int,
        dim: int,
        heads: int,
        dim_head: int,
        mlp_dim: int,
        attn_norm: StackedNormFactory,
        ffn_pre_norm: StackedNormFactory,
        ffn_hidden_norm: StackedNormFactory,
    ) -> None:
        super().__init__()
        self.attn = StackedAttention(
            members=members, dim=dim, heads=heads, dim_head=dim_head, norm=attn_norm
        )
        self.ffn = StackedFeedForward(
            members=members,
            dim=dim,
            mlp_dim=mlp_dim,
            pre_norm=ffn_pre_norm,
            hidden_norm=ffn_hidden_norm,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (M, b, N, dim) -> (M, b, N, dim)
        x = x + self.attn(x)
        return x + self.ffn(x)


class StackedViT(nn.Module):
    """M independent ``models.vit.ViT`` models (the same names, M in front of every shape)."""

    def __init__(
        self,
        *,
        members: int,
        image_size: int,
        channels: int,
        patch_size: int,
        num_classes: int,
        dim: int,
        depth: int,
        heads: int,
        dim_head: int,
        mlp_dim: int,
        embed_norm: StackedNormFactory,
        attn_norm: StackedNormFactory,
        ffn_pre_norm: StackedNormFactory,
        ffn_hidden_norm: StackedNormFactory,
        final_norm: StackedNormFactory,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        num_patches = (image_size // patch_size) ** 2
        patch_dim = channels * patch_size * patch_size
        self.patch_norm = embed_norm(members=members, features=patch_dim)
        self.patch_proj = StackedLinear(members=members, in_features=patch_dim, out_features=dim)
        self.embed_norm = embed_norm(members=members, features=dim)
        self.cls_token = nn.Parameter(torch.empty(members, 1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.empty(members, 1, num_patches + 1, dim))
        self.blocks = nn.ModuleList(
            StackedBlock(
                members=members,
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
        self.final_norm = final_norm(members=members, features=dim)
        self.head = StackedLinear(members=members, in_features=dim, out_features=num_classes)

    def patchify(self, img: torch.Tensor) -> torch.Tensor:
        """(M, b, c, H, W) -> (M, b, (H/p)*(W/p), p*p*c), as ``ViT.patchify`` per member."""
        m, b, c, h, w = img.shape
        p = self.patch_size
        x = img.reshape(m * b, c, h // p, p, w // p, p)  # (M*b) c h p1 w p2
        return x.permute(0, 2, 4, 3, 5, 1).reshape(m, b, (h // p) * (w // p), p * p * c)

    def forward(self, img: torch.Tensor) -> torch.Tensor:  # (M, b, c, H, W) -> (M, b, classes)
        x = self.embed_norm(self.patch_proj(self.patch_norm(self.patchify(img))))  # (M, b, P, dim)
        m, b = x.shape[:2]
        cls = self.cls_token.expand(m, b, 1, -1)  # (M, b, 1, dim)
        x = torch.cat((cls, x), dim=2) + self.pos_embedding  # (M, b, N, dim)
        for block in self.blocks:
            x = block(x)
        return self.head(self.final_norm(x)[:, :, 0])  # (M, b, num_classes)


class StackedDNN(nn.Module):
    """M independent ``models.dnn.DNN`` models."""

    def __init__(
        self,
        *,
        members: int,
        image_size: int,
        channels: int,
        num_classes: int,
        hidden: int,
        depth: int,
        hidden_norm: StackedNormFactory,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten(start_dim=2)]  # (M, b, c*H*W)
        width = channels * image_size * image_size
        for _ in range(depth):
            layers += [
                StackedLinear(members=members, in_features=width, out_features=hidden),
                hidden_norm(members=members, features=hidden),
                nn.Sigmoid(),
            ]
            width = hidden
        layers.append(StackedLinear(members=members, in_features=width, out_features=num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, img: torch.Tensor) -> torch.Tensor:  # (M, b, c, H, W) -> (M, b, classes)
        return self.net(img)


def build_stacked_model(
    model: Mapping[str, Any], *, members: int, image_size: int, channels: int, num_classes: int
) -> nn.Module:
    """The stacked counterpart of ``models.build_model``, uninitialised: load member states."""
    sizes = {"image_size": image_size, "channels": channels, "num_classes": num_classes}
    stacked = StackedViT if model["arch"] == "vit" else StackedDNN
    return stacked(members=members, **sizes, **architecture(model, STACKED_NORMS))


def stack_states(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """One stacked state dict from the state dicts of M single models (M in front)."""
    keys = list(states[0])
    if any(list(s) != keys for s in states):
        raise ValueError("the members' state dicts differ in their keys")
    return {k: torch.stack([s[k] for s in states]) for k in keys}


def member_state(stacked: nn.Module, member: int) -> dict[str, torch.Tensor]:
    """Member ``member``'s state dict in the single model's layout (views, not copies)."""
    return {k: v[member] for k, v in stacked.state_dict().items()}


def keep_members(stacked: nn.Module, index: torch.Tensor) -> None:
    """Keep only the members ``index`` (in that order), in place: every parameter and buffer
    is indexed along its member dimension; parameters stay the same objects."""
    for param in stacked.parameters():
        param.data = param.data[index]
    for name, buf in list(stacked.named_buffers()):
        owner, _, attr = name.rpartition(".")
        setattr(stacked.get_submodule(owner), attr, buf[index])
