"""The study's models: shapes, where each norm sits, parameter counts, gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.conftest import compose_config
from vitbn_sweep.models import DNN, TokenBatchNorm, ViT, build_model

MODELS = ["vit", "vitbnffn", "vitbn", "dnn", "dnnbn"]


def make(name: str, depth: int | None = None) -> nn.Module:
    overrides = [f"model={name}"] + ([f"model.depth={depth}"] if depth else [])
    cfg = compose_config(overrides)
    torch.manual_seed(0)
    return build_model(cfg["model"], image_size=28, channels=1, num_classes=10)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("batch", [2, 7])
def test_output_shape(name: str, batch: int) -> None:
    model = make(name)
    assert model(torch.rand(batch, 1, 28, 28)).shape == (batch, 10)
    model.eval()
    assert model(torch.rand(1, 1, 28, 28)).shape == (1, 10)


def test_vit_token_shapes() -> None:
    vit = make("vit", depth=1)
    img = torch.rand(3, 1, 28, 28)
    patches = vit.patchify(img)
    assert patches.shape == (3, 16, 49)
    # patch 1 (row 0, column 1) is the 7x7 block at rows 0-6, columns 7-13, flattened row-major
    assert torch.equal(patches[0, 1], img[0, 0, 0:7, 7:14].reshape(49))
    assert vit.pos_embedding.shape == (1, 17, 64) and vit.cls_token.shape == (1, 1, 64)


@pytest.mark.parametrize(
    ("name", "depth", "count"),
    [
        # embedding 4,578 + head 778 + per block (attn 131,264 + FFN 16,704 = 147,968)
        ("vit", 1, 5_356 + 147_968),
        ("vit", 7, 5_356 + 7 * 147_968),
        # FFN: no LayerNorm(64) (-128), BatchNorm(128) (+256)
        ("vitbnffn", 4, 5_356 + 4 * 148_096),
        # every LayerNorm -> BatchNorm of the same width: same parameter count as ViTBNFFN
        ("vitbn", 4, 5_356 + 4 * 148_096),
        # 784*100+100 + 2*(100*100+100) + 100*10+10
        ("dnn", None, 99_710),
        ("dnnbn", None, 99_710 + 3 * 200),
    ],
)
def test_parameter_counts(name: str, depth: int | None, count: int) -> None:
    assert n_params(make(name, depth)) == count


def norm_types(block: nn.Module) -> dict[str, type]:
    return {
        "attn": type(block.attn.norm),
        "ffn_pre": type(block.ffn.pre_norm),
        "ffn_hidden": type(block.ffn.hidden_norm),
    }


def test_norm_placement_vit() -> None:
    vit = make("vit", depth=2)
    for block in vit.blocks:
        assert norm_types(block) == {
            "attn": nn.LayerNorm,
            "ffn_pre": nn.LayerNorm,
            "ffn_hidden": nn.Identity,
        }
    assert type(vit.patch_norm) is nn.LayerNorm and vit.patch_norm.normalized_shape == (49,)
    assert type(vit.embed_norm) is nn.LayerNorm and type(vit.final_norm) is nn.LayerNorm


def test_norm_placement_vitbnffn() -> None:
    model = make("vitbnffn", depth=2)
    for block in model.blocks:
        # no LayerNorm before the FFN; BatchNorm right after its first Linear, before GELU
        assert norm_types(block) == {
            "attn": nn.LayerNorm,
            "ffn_pre": nn.Identity,
            "ffn_hidden": TokenBatchNorm,
        }
        assert block.ffn.hidden_norm.num_features == 128
        order = [type(m) for m in block.ffn.children()]
        assert order == [nn.Identity, nn.Linear, TokenBatchNorm, nn.GELU, nn.Linear]
    assert type(model.patch_norm) is nn.LayerNorm and type(model.final_norm) is nn.LayerNorm


def test_norm_placement_vitbn() -> None:
    model = make("vitbn", depth=2)
    for block in model.blocks:
        assert norm_types(block) == {
            "attn": TokenBatchNorm,
            "ffn_pre": nn.Identity,
            "ffn_hidden": TokenBatchNorm,
        }
    assert not any(isinstance(m, nn.LayerNorm) for m in model.modules())
    assert model.patch_norm.num_features == 49 and model.embed_norm.num_features == 64


def test_dnnbn_batchnorm_before_every_sigmoid() -> None:
    layers = list(make("dnnbn").net)
    sigmoids = [i for i, m in enumerate(layers) if isinstance(m, nn.Sigmoid)]
    assert len(sigmoids) == 3
    assert all(isinstance(layers[i - 1], nn.BatchNorm1d) for i in sigmoids)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in make("dnn").modules())
    assert isinstance(make("dnn"), DNN)


def test_token_batchnorm_statistics_over_batch_and_tokens() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 17, 128) * 3 + 1
    ours, ref = TokenBatchNorm(128), nn.BatchNorm1d(128)
    out = ours(x)
    expected = ref(x.transpose(1, 2)).transpose(1, 2)  # BatchNorm1d on (b, C, N)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(ours.running_mean, ref.running_mean)
    torch.testing.assert_close(ours.running_var, ref.running_var)
    flat = out.reshape(-1, 128)  # per feature: zero mean, unit variance over b*N values
    torch.testing.assert_close(flat.mean(0), torch.zeros(128), atol=1e-5, rtol=0)
    torch.testing.assert_close(flat.var(0, unbiased=False), torch.ones(128), atol=1e-3, rtol=0)


@pytest.mark.parametrize("name", MODELS)
def test_every_parameter_gets_a_gradient(name: str) -> None:
    model = make(name, depth=2 if name.startswith("vit") else None)
    loss = nn.functional.cross_entropy(model(torch.rand(4, 1, 28, 28)), torch.arange(4))
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


def test_vit_and_vitbnffn_differ_only_in_the_ffn() -> None:
    vit, bnffn = make("vit", depth=3), make("vitbnffn", depth=3)
    vit_params = {k: v.shape for k, v in vit.named_parameters()}
    bn_params = {k: v.shape for k, v in bnffn.named_parameters()}
    only_vit = {k for k in vit_params.keys() - bn_params.keys()}
    only_bn = {k for k in bn_params.keys() - vit_params.keys()}
    assert only_vit == {
        f"blocks.{i}.ffn.pre_norm.{w}" for i in range(3) for w in ("weight", "bias")
    }
    assert only_bn == {
        f"blocks.{i}.ffn.hidden_norm.{w}" for i in range(3) for w in ("weight", "bias")
    }
    shared = vit_params.keys() & bn_params.keys()
    assert all(vit_params[k] == bn_params[k] for k in shared)
    # same seed, same construction order: the shared weights are identical
    vit_state, bn_state = vit.state_dict(), bnffn.state_dict()
    assert all(torch.equal(vit_state[k], bn_state[k]) for k in shared if "ffn" not in k)


def test_vit_is_one_class_for_three_models() -> None:
    assert all(isinstance(make(name, depth=1), ViT) for name in ("vit", "vitbnffn", "vitbn"))


def test_attention_explicit_path_under_cpu_autocast_is_the_fused_one() -> None:
    from vitbn_sweep.models.vit import attention

    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 8, 17, 64) for _ in range(3))
    fused = attention(q, k, v)  # no autocast: scaled_dot_product_attention
    assert torch.allclose(fused, torch.nn.functional.scaled_dot_product_attention(q, k, v))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        explicit = attention(q, k, v)
    assert explicit.dtype == torch.bfloat16
    assert torch.allclose(explicit.float(), fused, atol=0.03), (
        (explicit.float() - fused).abs().max()
    )


@pytest.mark.parametrize("name", ["vit", "vitbnffn"])
def test_bf16_autocast_on_cpu_follows_fp32_and_reaches_every_parameter(name: str) -> None:
    model = make(name, depth=2)
    images = torch.rand(6, 1, 28, 28)
    reference = model(images)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(images)
    assert torch.allclose(logits.float(), reference, atol=0.1, rtol=0.05)
    logits.float().sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters())
