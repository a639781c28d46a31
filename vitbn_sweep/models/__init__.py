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


VIT_SIZES = ("patch_size", "dim", "depth", "heads", "dim_head", "mlp_dim")


def architecture(model: Mapping[str, Any], norms: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor arguments of the (validated) ``model`` config node, norms from ``norms``.

    Shared by ``build_model`` and the stacked models, which take the same arguments.
    """
    kinds = model["norms"]
    if model["arch"] == "vit":
        return {
            **{key: model[key] for key in VIT_SIZES},
            **{f"{slot}_norm": norms[kind] for slot, kind in kinds.items()},
        }
    return {
        "hidden": model["hidden"],
        "depth": model["depth"],
        "hidden_norm": norms[kinds["hidden"]],
    }


def build_model(
    model: Mapping[str, Any], *, image_size: int, channels: int, num_classes: int
) -> nn.Module:
    """Instantiate the model described by a (validated) ``model`` config node."""
    sizes = {"image_size": image_size, "channels": channels, "num_classes": num_classes}
    if model["arch"] == "vit":
        return ViT(**sizes, **architecture(model, NORMS))
    return DNN(**sizes, **architecture(model, DNN_NORMS))


__all__ = [
    "architecture",
    "DNN",
    "NORMS",
    "DNN_NORMS",
    "TokenBatchNorm",
    "ViT",
    "build_model",
]
