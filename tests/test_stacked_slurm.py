"""Stacked groups on a real Slurm cluster (``hydra/launcher=stacked_slurm``): one array task
per group. Runs when a cluster answers, as tests/test_slurm.py does; skips otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TINY, run_cli
from tests.test_slurm import slurm_cluster  # noqa: F401 (autouse: skips without a cluster)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
STACKED_SLURM_CPU = [
    "hydra/launcher=stacked_slurm",
    "hydra.launcher.gpus_per_node=null",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=2",
    "hydra.launcher.timeout_min=10",
]


def test_each_group_is_one_slurm_array_task(data_dir: Path, tmp_path: Path) -> None:
    tiny = [o for o in TINY if not o.startswith("trainer.threads")]  # Slurm's cpus_per_task
    args = ["-m", *STACKED_SLURM_CPU, "hydra.launcher.max_members=2", "model=dnnbn",
            "trainer.seed=0,1,2", *tiny]  # fmt: skip
    proc = run_cli(args, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Launching 3 jobs in 2 stacked groups (at most 2 members each)" in proc.stdout
    sweep = tmp_path / "outputs" / "default"
    records = {
        r["config"]["trainer"]["seed"]: r
        for r in (json.loads(p.read_text()) for p in sweep.glob("*/result.json"))
    }
    assert sorted(records) == [0, 1, 2]
    assert all(r["status"] == "completed" and r["epochs_run"] == 1 for r in records.values())
    tasks = {seed: (r["where"]["scheduler"], r["where"]["slurm_array_task_id"])
             for seed, r in records.items()}  # fmt: skip
    assert {scheduler for scheduler, _ in tasks.values()} == {"slurm"}
    assert tasks[0] == tasks[1] != tasks[2]  # seeds 0 and 1 trained in one task
    assert not list(sweep.glob("*/.claim.json"))


def test_engine_slurm_carries_several_groups_per_array_task(data_dir: Path, tmp_path: Path) -> None:
    tiny = [o for o in TINY if not o.startswith("trainer.threads")]
    cpu = [o.replace("stacked_slurm", "engine_slurm") for o in STACKED_SLURM_CPU]
    args = ["-m", *cpu, "hydra.launcher.engines=2", "hydra.launcher.max_members=1",
            "model=dnnbn", "model.depth=1,2", "trainer.seed=0,1", *tiny]  # fmt: skip
    proc = run_cli(args, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    sweep = tmp_path / "outputs" / "default"
    records = [json.loads(p.read_text()) for p in sweep.glob("*/result.json")]
    assert len(records) == 4 and {r["status"] for r in records} == {"completed"}
    tasks = {r["where"]["slurm_array_task_id"] for r in records}
    assert len(tasks) == 2  # 4 groups of one member over 2 engines: 2 array tasks
    assert not list(sweep.glob("*/.claim.json"))
