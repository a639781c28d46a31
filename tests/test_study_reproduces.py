"""The committed study still reproduces at this commit: its jobs ran across many commits
and sessions, so the code of today must compute what they computed.

For each model, the first epoch of the oldest committed CPU job of ``article_full`` is run
again here (fp32, one thread, as it ran: Adam has no schedule, so one epoch of a 10-epoch job
is a 1-epoch job), from the experiment's config as it composes now. Its identity must be the
recorded one (bar ``trainer.epochs``) and its epoch-1 numbers those in the committed
``metrics.csv`` (to 1e-6: bit for bit on the same CPU; a job that recorded another CPU model
or kernel set is skipped, saying so). Slow (a full-MNIST epoch per model): ``make test-slow``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from tests.conftest import compose_config
from vitbn_sweep.identity import identity_differences, job_identity
from vitbn_sweep.results import cpu_model
from vitbn_sweep.train import run

REPO = Path(__file__).resolve().parents[1]
SWEEP = REPO / "results" / "article_full"
NUMBERS = ("train_loss", "train_acc", "test_acc", "test_acc_clean")


def oldest_cpu_job(model: str) -> Path:
    jobs = []
    for path in SWEEP.glob(f"*model={model},*/result.json"):
        record = json.loads(path.read_text())
        if record["status"] == "completed" and str(record.get("device")) == "cpu":
            jobs.append((record["started_at"], path.parent))
    if not jobs:
        pytest.skip(f"no completed CPU job of {model} in {SWEEP}")
    return min(jobs)[1]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["vit", "vitbnffn"])
def test_the_first_epoch_of_a_committed_job_comes_out_the_same_today(
    model: str, data_dir: Path, tmp_path: Path
) -> None:
    job = oldest_cpu_job(model)
    record = json.loads((job / "result.json").read_text())
    assert record["threads"] == 1 and record["config"]["trainer"]["precision"] == "fp32"
    here = {"cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    there = {k: record["host"].get(k) for k in here}
    if any(there[k] is not None and there[k] != here[k] for k in here):
        pytest.skip(f"{job.name} ran on {there}, this is {here}: fp32 sums may differ")
    overrides = ["experiment=article_full", *job.name.split(","), "trainer.epochs=1"]
    overrides += ["trainer.threads=1", "logger=none", f"data.root={data_dir}"]
    config = compose_config(overrides)
    recorded = job_identity(record["config"])
    recorded["trainer"]["epochs"] = 1
    assert identity_differences(job_identity(config), recorded) == []

    result = run(config, tmp_path / "job")

    assert result["status"] == "completed"
    with open(job / "metrics.csv", newline="") as f:
        then = next(csv.DictReader(f))
    with open(tmp_path / "job" / "metrics.csv", newline="") as f:
        now = next(csv.DictReader(f))
    for key in NUMBERS:
        assert float(now[key]) == pytest.approx(float(then[key]), rel=1e-6, abs=1e-9), (
            f"{job.name} ({record['versions'].get('git_commit')}): {key} {then[key]} then, "
            f"{now[key]} now (jobs recorded before result.json named the CPU may have run on "
            "another one, whose fp32 kernels can differ in the last bits)"
        )
