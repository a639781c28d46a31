"""The CUDA path: the same jobs on the GPU as on the CPU. Skipped where CUDA is absent
(CI); ``make bench-gpu`` (benchmarks/gpu.sh) runs them on a GPU machine.

Tolerances: fp32 matrix products on the GPU sum in another order than on the CPU (and
cuBLAS may pick other kernels), so a few steps of Adam drift apart by rounding; over one
tiny epoch the training loss agrees to 1e-3 relative and accuracies to a few images. The
data stream is the same on both: the fast pipeline draws every random number on the CPU.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from vitbn_sweep.engine import train_group
from vitbn_sweep.train import run

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
Config = Callable[..., dict[str, Any]]
LOSS_RTOL, ACC_SAMPLES = 1e-3, 3


def rows(job_dir: Path) -> list[dict[str, str]]:
    with open(job_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def assert_close(a: Path, b: Path, *, n_train: int, n_test: int) -> None:
    ra, rb = rows(a), rows(b)
    assert len(ra) == len(rb) > 0
    for x, y in zip(ra, rb, strict=True):
        assert math.isclose(float(x["train_loss"]), float(y["train_loss"]), rel_tol=LOSS_RTOL)
        assert abs(float(x["train_acc"]) - float(y["train_acc"])) <= ACC_SAMPLES / n_train
        assert abs(float(x["test_acc"]) - float(y["test_acc"])) <= ACC_SAMPLES / n_test


@pytest.mark.parametrize("model", ["vit", "vitbnffn", "dnnbn"])
def test_a_job_on_cuda_matches_the_same_job_on_cpu(
    model: str, tiny_config: Config, tmp_path: Path
) -> None:
    common = (f"model={model}", "model.depth=2", "trainer.epochs=2")
    run(tiny_config(*common, "trainer.device=cpu"), tmp_path / "cpu")
    run(tiny_config(*common, "trainer.device=cuda"), tmp_path / "cuda")
    record = json.loads((tmp_path / "cuda" / "result.json").read_text())
    assert record["status"] == "completed" and record["device"].startswith("cuda")
    assert record["host"]["gpu"] == torch.cuda.get_device_name()  # the machine it ran on
    assert_close(tmp_path / "cuda", tmp_path / "cpu", n_train=200, n_test=100)


@pytest.mark.parametrize("model", ["vit", "vitbnffn"])
def test_a_stacked_group_on_cuda_equals_its_jobs_alone_on_cuda(
    model: str, tiny_config: Config, tmp_path: Path
) -> None:
    common = (f"model={model}", "model.depth=2", "trainer.epochs=2", "trainer.device=cuda")
    members = [("0.003", 0), ("0.005", 1)]
    group = [tiny_config(*common, f"optim.lr={lr}", f"trainer.seed={s}") for lr, s in members]
    outcomes = train_group(group, [tmp_path / f"g{i}" for i in range(len(group))])
    assert all(not isinstance(o, Exception) for o in outcomes), outcomes
    for i, config in enumerate(group):
        run(config, tmp_path / f"a{i}")
        assert_close(tmp_path / f"g{i}", tmp_path / f"a{i}", n_train=200, n_test=100)


def test_bf16_job_on_cuda_completes_and_learns(tiny_config: Config, tmp_path: Path) -> None:
    config = tiny_config("model=vitbnffn", "model.depth=2", "trainer.epochs=3",
                         "trainer.device=cuda", "trainer.precision=bf16")  # fmt: skip
    run(config, tmp_path)
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["status"] == "completed"
    assert float(rows(tmp_path)[-1]["train_loss"]) < float(rows(tmp_path)[0]["train_loss"])
