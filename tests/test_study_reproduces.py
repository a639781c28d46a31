"""The committed study still reproduces at this commit: its jobs ran across many commits
and sessions, so the code of today must compute what they computed.

For each model, the first epoch of the oldest committed CPU job of ``article_full`` is run
again here (fp32, one thread, as it ran: Adam has no schedule, so one epoch of a 10-epoch job
is a 1-epoch job), from the experiment's config as it composes now. Its identity must be the
recorded one (bar ``trainer.epochs``) and its epoch-1 numbers those in the committed
``metrics.csv`` (to 1e-6: bit for bit on the same CPU). fp32 sums differ in the last bits
between CPU models and kernel sets, so only jobs that recorded this machine's CPU model and
kernel set are candidates (the oldest of them); where none did, the test skips and says so.
Slow (a full-MNIST epoch per model): ``make test-slow``.
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


def this_cpu() -> dict[str, str]:
    return {"cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def oldest_job_on_this_cpu(model: str) -> Path:
    """The oldest completed CPU job of ``model`` that recorded this CPU model and kernel set
    (a job recorded before ``host`` named the CPU is no candidate: its chip is unknown)."""
    here, jobs, elsewhere = this_cpu(), [], set()
    for path in SWEEP.glob(f"*model={model},*/result.json"):
        record = json.loads(path.read_text())
        if record["status"] != "completed" or str(record.get("device")) != "cpu":
            continue
        there = {k: record.get("host", {}).get(k) for k in here}
        if there == here:
            jobs.append((record["started_at"], path.parent))
        else:
            elsewhere.add(f"{there['cpu']} / {there['cpu_capability']}")
    if not jobs:
        pytest.skip(
            f"no completed CPU job of {model} in {SWEEP} ran on this CPU ({here}); "
            f"they ran on: {', '.join(sorted(elsewhere))}"
        )
    return min(jobs)[1]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["vit", "vitbnffn"])
def test_the_first_epoch_of_a_committed_job_comes_out_the_same_today(
    model: str, data_dir: Path, tmp_path: Path
) -> None:
    job = oldest_job_on_this_cpu(model)
    record = json.loads((job / "result.json").read_text())
    assert record["threads"] == 1 and record["config"]["trainer"]["precision"] == "fp32"
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
            f"{now[key]} now, on the same CPU model and kernel set"
        )
