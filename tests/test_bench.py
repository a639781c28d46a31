"""The benchmark's arithmetic and report, the accelerator options, and the packed launcher."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from benchmarks import bench, bench_report
from tests.conftest import compose_config
from vitbn_sweep.accel import autocast_factory, prepare_model
from vitbn_sweep.validate import ConfigError


def figures(train: float, evals: float) -> dict:
    """Rates for every measured case: per-sample time ``1 / rate * depth``."""
    return {
        f"{m}_d{d}": {"fast": train / d, "torchvision": train / d, "eval": evals / d}
        for m in bench.MODELS
        for d in bench.DEPTHS
    }


def test_per_depth_is_a_line_through_the_measured_depths() -> None:
    line = bench.per_depth({1: 1 / 1.0, 4: 1 / 4.0, 7: 1 / 7.0})  # 1 s per sample per layer
    assert [round(line(d), 9) for d in range(1, 8)] == list(range(1, 8))


def test_grid_epochs_per_hour_adds_up() -> None:
    # per sample: train d/1000 s, eval d/4000 s; 100 train, 10 test images, no test augmentation
    rate = bench.grid_epochs_per_hour(figures(1000, 4000), "fast", num_train=100, num_test=10,
                                      test_aug_s=0.0)  # fmt: skip
    epoch_s = [100 * d / 1000 + 20 * d / 4000 for d in range(1, 8)]
    seconds = 2 * 2 * 10 * sum(epoch_s)  # 2 models x 2 learning rates x 10 epochs
    assert rate == pytest.approx(280 / (seconds / 3600))
    packed = bench.grid_epochs_per_hour(figures(1000, 4000), "fast", num_train=100, num_test=10,
                                        test_aug_s=0.0, jobs=2)  # fmt: skip
    assert packed == pytest.approx(2 * rate)
    redrawn = bench.grid_epochs_per_hour(figures(1000, 4000), "fast", num_train=100, num_test=10,
                                         test_aug_s=1.0)  # fmt: skip
    assert redrawn == pytest.approx(280 / ((seconds + 280) / 3600))


REPORT = {
    "device": "cpu", "torch": torch.__version__, "threads": 2, "cores": 2,
    "packed": {"jobs": 2, "threads_per_job": 1}, "repeats": 5, "seconds": 1.5,
    "cases": [bench.case("augment", "images/s", 50_000.0, 10_000.0)],
    "data_share_d1_fast": 0.05, "peak_rss_mb_depth7": 900.0,
    "grid": {"torchvision_sequential": 60.0, "fast_sequential": 100.0, "fast_packed": 160.0,
             "packing_gain": 1.6},
    "ratios": {"augment": 5.0, "train_d1": 2.5, "train_d4": 1.6, "train_d7": 1.6,
               "grid": 2.67},
    "peak_gflops": {"fp32": 200.0},
    "limit": {"vit_d4": {"train_flops_per_sample": 67_569_408, "gflops_single": 50.0,
                         "share_single_fp32": 0.25, "gflops_stacked": 60.0,
                         "share_stacked_fp32": 0.3, "step_ms_stacked": 10.0,
                         "arithmetic_ms_fp32": 0.2}},
    "stacked": {"members": 6, "per_model": {"vit_d4": {"stacked": 60_000.0,
                                                       "kernels_per_step": 412,
                                                       "engine": 150_000.0}}},
}  # fmt: skip


def test_markdown_report_flags_missed_targets() -> None:
    assert REPORT["cases"][0]["ratio"] == 5.0
    text = bench_report.markdown(REPORT)
    assert "| augment | images/s | 50000 | 10000 | 5.00x |" in text
    assert "| augment | 5.00x | >= 10.0x | NO |" in text
    assert "| grid | 2.67x | >= 2.5x | yes |" in text
    assert "| peak RSS depth 7 | 900 MB | <= 2048 MB | yes |" in text
    assert "(fp32 200 GFLOP/s)" in text and "| vit_d4 | 0.068 | 50.0 | 25% | 60.0 | 30% |" in text
    assert "| vit_d4 | 10.00 | 0.200 | 50x | 412 | 150000 |" in text


def test_distance_to_limit_is_rate_times_flops_over_peak() -> None:
    from benchmarks.flops import train_flops

    vit = compose_config(["model=vit"])["model"]
    sizes = {"image_size": 28, "channels": 1, "num_classes": 10}
    figures = {"vit_d1": {"fast": 1000.0}, "vit_d7": {"fast": 200.0}}
    stacked = {"vit_d1": {"stacked": 3000.0}, "vit_d7": {"stacked": 400.0}}
    limit = bench.distance_to_limit(figures, stacked, {"vit": vit}, sizes,
                                    {"fp32": 1e11, "bf16": 4e11}, samples_per_step=600)  # fmt: skip
    d7 = train_flops({**vit, "depth": 7}, **sizes)
    assert limit["vit_d7"]["train_flops_per_sample"] == d7 == 118_017_792
    assert limit["vit_d7"]["gflops_single"] == pytest.approx(200 * d7 / 1e9)
    assert limit["vit_d7"]["share_single_fp32"] == pytest.approx(200 * d7 / 1e11)
    assert limit["vit_d7"]["share_stacked_bf16"] == pytest.approx(400 * d7 / 4e11)
    assert limit["vit_d1"]["gflops_stacked"] == pytest.approx(3000 * 17_121_024 / 1e9)
    # a stack of 6 x 100 samples at 400 samples/s: 1.5 s a step; its arithmetic at 1e11 FLOP/s
    assert limit["vit_d7"]["step_ms_stacked"] == pytest.approx(1500.0)
    assert limit["vit_d7"]["arithmetic_ms_fp32"] == pytest.approx(1e3 * 600 * d7 / 1e11)


def test_bf16_on_cpu_only_with_bf16_units_and_fp32_is_a_no_op(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr("vitbn_sweep.accel.cpu_bf16_flags", lambda: [])
    with pytest.raises(ConfigError, match=r"amx_bf16 or avx512_bf16 in /proc/cpuinfo"):
        autocast_factory("bf16", cpu)
    with pytest.raises(ConfigError, match="precision"):
        autocast_factory("fp16", cpu)
    assert autocast_factory("fp32", cpu) is contextlib.nullcontext
    monkeypatch.setattr("vitbn_sweep.accel.cpu_bf16_flags", lambda: ["avx512_bf16"])
    with autocast_factory("bf16", cpu)():
        assert nn.Linear(4, 4)(torch.ones(2, 4)).dtype == torch.bfloat16


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_autocast_on_cuda() -> None:
    linear = nn.Linear(4, 4).cuda()
    with autocast_factory("bf16", torch.device("cuda"))():
        assert linear(torch.ones(2, 4, device="cuda")).dtype == torch.bfloat16


def test_prepare_model_keeps_the_module_and_its_state_names() -> None:
    model = nn.Sequential(nn.Linear(4, 4))
    keys = list(model.state_dict())
    prepared = prepare_model(model, compile=True, device=torch.device("cpu"))
    assert prepared is model and list(prepared.state_dict()) == keys
    assert model._compiled_call_impl is not None  # compiled lazily, at the first call
    plain = prepare_model(nn.Linear(2, 2), compile=False, device=torch.device("cpu"))
    assert plain._compiled_call_impl is None


@pytest.mark.slow
def test_midtrain_times_a_trained_model_with_subnormals_flushed_and_kept(
    data_dir, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = ["data.train_size=200", "data.test_size=100", "trainer.test_batch_size=100"]
    monkeypatch.setattr(bench, "study_config", lambda *o: compose_config([*o, *tiny]))
    b = bench.Bench(torch.device("cpu"), seconds=0.0)
    assert torch.set_flush_denormal(True) and b.flush_denormal  # the config's default
    mid = bench.measure_midtrain(b, repeats=1, steps=3)
    assert mid["steps"] == 3 and mid["lr"] == 0.005 and mid["depth"] == 3
    assert mid["flush_on"] > 0 and mid["flush_off"] > 0 and mid["fresh"] > 0
    assert mid["flush_gain"] == pytest.approx(mid["flush_on"] / mid["flush_off"])
    assert torch.tensor(1e-39).item() == 0.0  # flushing is back on after the figures
    text = bench_report.markdown(REPORT | {"midtrain": mid})
    assert f"Mid-training (vit depth 3 after 3 steps at lr 0.005, loss {mid['loss']:.2f})" in text


def test_bench_measures_stacked_training_per_member_sample(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = ["data.train_size=200", "data.test_size=100", "trainer.test_batch_size=100"]
    monkeypatch.setattr(bench, "study_config", lambda *o: compose_config([*o, *tiny]))
    b = bench.Bench(torch.device("cpu"), seconds=0.0)
    model, optimizer = b.stacked("vitbnffn", 1, 3)
    assert b.stacked_train_rate(model, optimizer) > 0 and optimizer.steps == [2, 2, 2]
    assert b.stacked_eval_rate(model, 3) > 0
    # rates count the samples of all members: 3 members at 300 samples/s train a job's
    # epoch of 100 samples in 1/3 s of the shared process (no eval, no test set here)
    figures = {f"{m}_d{d}": {"stacked": 300.0, "eval": math.inf}
               for m in bench.MODELS for d in bench.DEPTHS}  # fmt: skip
    rate = bench.grid_epochs_per_hour(figures, "stacked", num_train=100, num_test=0,
                                      test_aug_s=0.0)  # fmt: skip
    assert rate == pytest.approx(3 * 3600)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_kernels_per_step_and_engine_rate(data_dir: Path) -> None:
    b = bench.Bench(torch.device("cuda"), seconds=0.2)
    model, optimizer = b.stacked("vitbnffn", 2, 3)
    kernels = b.kernels_per_step(model, optimizer)
    assert 50 < kernels < 5000  # forward, backward and Adam of a 2-block ViT: hundreds
    assert b.engine_train_rate("vitbnffn", 2, 3, groups=2) > 0
