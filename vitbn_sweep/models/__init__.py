"""Model zoo: builds a model from its ``model`` config node.

Every architectural choice lives in ``conf/model/*.yaml``; in particular the
``norms`` mapping says which norm sits where, so ViT, ViTBNFFN and ViTBN are
one ``ViT`` class with three norm plans.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from vitbn_sweep.models.dnn import DNN
from vitbn_sweep.models.vit import NormFactory, TokenBatchNorm, ViT, identity_norm

NORMS: dict[str, NormFactory] = {
    "layer": nn.LayerNorm,
    "batch": TokenBatchNorm,  # statistics over batch and tokens, per feature
    "none": identity_norm,
}
DNN_NORMS: dict[str, NormFactory] = {"batch": nn.BatchNorm1d, "none": identity_norm}


def build_model(
    model: Mapping[str, Any], *, image_size: int, channels: int, num_classes: int
) -> nn.Module:
    """Instantiate the model described by a (validated) ``model`` config node."""
    norms = model["norms"]
    if model["arch"] == "vit":
        return ViT(
            image_size=image_size,
            channels=channels,
            num_classes=num_classes,
            patch_size=model["patch_size"],
            dim=model["dim"],
            depth=model["depth"],
            heads=model["heads"],
            dim_head=model["dim_head"],
            mlp_dim=model["mlp_dim"],
            embed_norm=NORMS[norms["embed"]],
            attn_norm=NORMS[norms["attn"]],
            ffn_pre_norm=NORMS[norms["ffn_pre"]],
            ffn_hidden_norm=NORMS[norms["ffn_hidden"]],
            final_norm=NORMS[norms["final"]],
        )
    return DNN(
        image_size=image_size,
        channels=channels,
        num_classes=num_classes,
        hidden=model["hidden"],
        depth=model["depth"],
        hidden_norm=DNN_NORMS[norms["hidden"]],
    )


__all__ = [
    "DNN",
    "NORMS",
    "DNN_NORMS",
    "TokenBatchNorm",
    "ViT",
    "build_model",
]
