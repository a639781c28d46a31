"""The lean models compute exactly what straightforward implementations of the SPEC compute.

The references (``benchmarks.reference_models``, also the benchmark's baseline) are
written the plain way (separate q, k, v chunks, heads split and merged with permute, an
explicit softmax(q k^T / sqrt(d)) v, the CLS token concatenated, BatchNorm1d on the
permuted (b, C, N) tensor), as the study's code was. Each model is built from its
conf/model/*.yaml, its weights are copied into the reference, and outputs, every
gradient and the BatchNorm running statistics must agree to 1e-5, in train and in eval
mode.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from torch import nn

from benchmarks.reference_models import build_reference_model
from vitbn_sweep.models import build_model

TOL = {"atol": 1e-5, "rtol": 1e-5}
BATCH = 6


def model_config(name: str, depth: int) -> dict[str, Any]:
    with initialize_config_module(config_module="vitbn_sweep.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"model={name}", f"model.depth={depth}"])
    return OmegaConf.to_container(cfg.model, resolve=True)  # type: ignore[return-value]


def copy_state(src: nn.Module, dst: nn.Module) -> None:
    """Copy every parameter and buffer, paired in registration order, shapes checked."""
    src_state, dst_state = src.state_dict(), dst.state_dict()
    assert len(src_state) == len(dst_state), (list(src_state), list(dst_state))
    for (src_key, value), (dst_key, target) in zip(
        src_state.items(), dst_state.items(), strict=True
    ):
        assert value.shape == target.shape, (src_key, dst_key, value.shape, target.shape)
        target.copy_(value)


def randomise_norms(model: nn.Module, generator: torch.Generator) -> None:
    """Non-trivial affine weights and running statistics, so every term is exercised."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.LayerNorm, nn.modules.batchnorm._BatchNorm)):
                m.weight.copy_(1 + 0.3 * torch.randn(m.weight.shape, generator=generator))
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=generator))
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(0.5 * torch.randn(m.running_mean.shape, generator=generator))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=generator))


def pair(name: str, depth: int) -> tuple[nn.Module, nn.Module]:
    cfg = model_config(name, depth)
    torch.manual_seed(0)
    model = build_model(cfg, image_size=28, channels=1, num_classes=10)
    randomise_norms(model, torch.Generator().manual_seed(1))
    reference = build_reference_model(cfg)
    copy_state(model, reference)
    return model, reference


def forward_backward(model: nn.Module, images: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    out = model(images)
    (out * weights).sum().backward()
    return out.detach()


CASES = [("vit", 2), ("vitbnffn", 2), ("vitbn", 2), ("vit", 1), ("dnn", 3), ("dnnbn", 3)]


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize(("name", "depth"), CASES)
def test_outputs_and_gradients_match_reference(name: str, depth: int, mode: str) -> None:
    model, reference = pair(name, depth)
    model.train(mode == "train")
    reference.train(mode == "train")
    generator = torch.Generator().manual_seed(2)
    images = torch.rand(BATCH, 1, 28, 28, generator=generator)
    weights = torch.randn(BATCH, 10, generator=generator)

    out = forward_backward(model, images, weights)
    expected = forward_backward(reference, images, weights)

    torch.testing.assert_close(out, expected, **TOL)
    params, ref_params = dict(model.named_parameters()), list(reference.parameters())
    assert len(params) == len(ref_params)
    for (key, p), q in zip(params.items(), ref_params, strict=True):
        assert p.grad is not None and q.grad is not None, key
        torch.testing.assert_close(p.grad, q.grad, **TOL, msg=lambda m, k=key: f"{k}: {m}")
    # Train mode updates the running statistics the same way (eval mode leaves them).
    for (key, b), c in zip(model.named_buffers(), reference.buffers(), strict=True):
        torch.testing.assert_close(b, c, **TOL, msg=lambda m, k=key: f"{k}: {m}")


def test_reference_differs_when_a_weight_differs() -> None:
    """The comparison has teeth: one perturbed weight shows in the output."""
    model, reference = pair("vitbnffn", 2)
    with torch.no_grad():
        reference.blocks[1].ffn.fc1.weight[0, 0] += 1e-2
    images = torch.rand(BATCH, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    assert not torch.allclose(model(images), reference(images), **TOL)
