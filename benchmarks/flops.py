"""The distance to the limit: a model's training FLOPs per sample, and the machine's
measured matrix-multiply peak.

FLOPs count the matrix products (2 per multiply-add), which is where nearly all of a
ViT's arithmetic is; norms, softmax, GELU and the optimiser are left out, as is usual.
A training step costs three forward passes: the forward, and a backward that computes
the gradients of both the inputs and the weights of every product.

    tokens N = 1 + (H/p)(W/p); inner = heads * dim_head
    patch embedding   2 (N-1) (p p c) dim
    per block         2 N dim 3 inner              q, k, v
                      2 heads N N dim_head  x 2    q k^T, then (softmax) v
                      2 N inner dim                output projection
                      2 N dim mlp  x 2             FFN, both Linears
    head              2 dim classes
DNN: 2 (in hidden + (depth-1) hidden hidden + hidden classes).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import torch

TRAIN_PER_FORWARD = 3  # forward + backward (input and weight gradients)


def forward_flops(
    model: Mapping[str, Any], *, image_size: int, channels: int, num_classes: int
) -> int:
    """Matrix-product FLOPs of one sample's forward pass through the model ``model``."""
    if model["arch"] == "dnn":
        hidden, depth = model["hidden"], model["depth"]
        inputs = channels * image_size * image_size
        return 2 * (inputs * hidden + (depth - 1) * hidden * hidden + hidden * num_classes)
    if model["arch"] != "vit":
        raise ValueError(f"model.arch={model['arch']!r}: FLOPs are counted for vit and dnn")
    p, dim, mlp = model["patch_size"], model["dim"], model["mlp_dim"]
    heads, dim_head = model["heads"], model["dim_head"]
    patches = (image_size // p) ** 2
    n, inner = patches + 1, heads * dim_head
    embed = 2 * patches * p * p * channels * dim
    block = (
        2 * n * dim * 3 * inner
        + 2 * 2 * heads * n * n * dim_head
        + 2 * n * inner * dim
        + 2 * 2 * n * dim * mlp
    )
    return embed + model["depth"] * block + 2 * dim * num_classes


def train_flops(model: Mapping[str, Any], **sizes: int) -> int:
    """FLOPs of one training sample: forward and backward."""
    return TRAIN_PER_FORWARD * forward_flops(model, **sizes)


def matmul_peak(
    device: torch.device, dtype: torch.dtype, *, n: int | None = None, seconds: float = 1.0
) -> float:
    """Measured FLOP/s of an n x n x n matrix product (n: 8192 on CUDA, 2048 on the CPU),
    the best of the timed products after two warm-ups."""
    n = n or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    for _ in range(2):
        a @ b
    best = float("inf")
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or best == float("inf"):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best
