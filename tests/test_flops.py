"""The FLOP count of make bench's "distance to the limit", against torch's own counter."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.flops import forward_flops, matmul_peak, train_flops
from tests.conftest import compose_config
from vitbn_sweep.models import build_model

SIZES = {"image_size": 28, "channels": 1, "num_classes": 10}


@pytest.mark.parametrize("name", ["vit", "vitbnffn", "dnn", "dnnbn"])
@pytest.mark.parametrize("depth", [1, 3, 7])
def test_train_flops_equal_torchs_count_of_a_training_step(name: str, depth: int) -> None:
    cfg = compose_config([f"model={name}", f"model.depth={depth}"])["model"]
    model = build_model(cfg, **SIZES)
    images = torch.randn(4, 1, 28, 28, requires_grad=True)  # every layer's input gradient
    # the math attention is made of counted matrix products (the fused kernel is not counted)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(images).sum().backward()
    assert train_flops(cfg, **SIZES) * 4 == counter.get_total_flops()
    assert train_flops(cfg, **SIZES) == 3 * forward_flops(cfg, **SIZES)


def test_an_unknown_architecture_is_named() -> None:
    with pytest.raises(ValueError, match="model.arch='resnet'"):
        forward_flops({"arch": "resnet"}, **SIZES)


def test_matmul_peak_is_a_rate() -> None:
    peak = matmul_peak(torch.device("cpu"), torch.float32, n=256, seconds=0.05)
    assert 1e8 < peak < 1e14  # FLOP/s: between 0.1 GFLOP/s and 100 TFLOP/s on any CPU
