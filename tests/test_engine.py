"""The engine (vitbn_sweep/engine.py): several stacked groups trained at once in one process.

On the CPU the engine's loop is serial, step by step across groups; each group must end
exactly as the same jobs run alone (the stacked tests' tolerance), whatever the groups
around it do: diverge, fail to start, or get cut by an interrupt and resume.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.test_stacked import (
    MEMBERS,
    Config,
    Interrupt,
    assert_same_metrics,
    configs,
    interrupt_after,
    member_overrides,
)
from vitbn_sweep import engine
from vitbn_sweep.store import claims, resume


@pytest.mark.parametrize("model", ["vit", "vitbnffn", "dnnbn"])
def test_engine_groups_equal_their_jobs_run_alone(
    model: str, tiny_config: Config, single: Callable[..., Path], tmp_path: Path
) -> None:
    shallow = ("trainer.epochs=2", f"model={model}", "model.depth=1")
    deep = ("trainer.epochs=3", f"model={model}", "model.depth=2")  # ends one epoch later
    groups = [configs(tiny_config, *shallow, members=MEMBERS[:2]),
              configs(tiny_config, *deep, members=MEMBERS[1:])]  # fmt: skip
    dirs = [[tmp_path / f"g{g}m{m}" for m in range(2)] for g in range(2)]
    outcomes = engine.train_groups(list(zip(groups, dirs, strict=True)))
    assert [[o["status"] for o in group] for group in outcomes] == [["completed"] * 2] * 2
    for common, members, group, group_dirs, group_outcomes in zip(
        (shallow, deep), (MEMBERS[:2], MEMBERS[1:]), groups, dirs, outcomes, strict=True
    ):
        for (lr, seed), config, job_dir, outcome in zip(
            members, group, group_dirs, group_outcomes, strict=True
        ):
            assert_same_metrics(job_dir, single(config, *common, *member_overrides(lr, seed)))
            assert json.loads((job_dir / "result.json").read_text()) == json.loads(
                json.dumps(outcome, default=str)
            )


def test_a_diverging_member_and_a_group_that_cannot_start_leave_the_others_alone(
    tiny_config: Config, single: Callable[..., Path], tmp_path: Path
) -> None:
    common = ("trainer.epochs=2", "model=vitbnffn", "model.depth=1")
    members = (("1e30", 0), ("0.003", 1))
    diverging = configs(tiny_config, *common, members=members)
    refused = [tiny_config("model.depth=1"), tiny_config("model.depth=2")]  # not one stack
    other = configs(tiny_config, "trainer.epochs=2", "model=dnnbn", members=MEMBERS[2:])
    dirs = [[tmp_path / "diverges", tmp_path / "goes_on"],
            [tmp_path / "r1", tmp_path / "r2"], [tmp_path / "other"]]  # fmt: skip
    outcomes = engine.train_groups(list(zip([diverging, refused, other], dirs, strict=True)))
    assert [o["status"] for o in outcomes[0]] == ["diverged", "completed"]
    alone = [
        single(c, *common, *member_overrides(*m)) for c, m in zip(diverging, members, strict=True)
    ]
    assert (
        outcomes[0][0]["diverged_at"]
        == json.loads((alone[0] / "result.json").read_text())["diverged_at"]
    )
    assert_same_metrics(dirs[0][1], alone[1])
    assert all(isinstance(o, ValueError) for o in outcomes[1])
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()
    assert outcomes[2][0]["status"] == "completed"
    assert_same_metrics(
        dirs[2][0],
        single(other[0], "trainer.epochs=2", "model=dnnbn", *member_overrides(*MEMBERS[2])),
    )


def test_an_interrupt_cuts_every_group_and_a_rerun_resumes_each(
    tiny_config: Config,
    single: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(claims.TOKEN_ENV, "one-sweep")  # the cut runs' claims are ours
    common = ("trainer.epochs=3", "model=vitbnffn", "model.depth=1")
    a, b, c = configs(tiny_config, *common)
    dirs = {name: tmp_path / name for name in "abc"}
    groups = [([a, b], [dirs["a"], dirs["b"]]), ([c], [dirs["c"]])]
    with monkeypatch.context() as m:  # cut right after a's checkpoint of epoch 2
        interrupt_after(m, dirs["a"], 2)
        with pytest.raises(Interrupt):
            engine.train_groups(groups)
    saved = {n: resume.load_checkpoint(dirs[n] / "checkpoint.pt") for n in "abc"}
    assert saved["a"]["epoch"] == 2 and saved["b"]["epoch"] == 1  # a stack ends its epoch together
    assert saved["c"]["epoch"] in (1, 2)  # the other group was cut where it stood
    assert not any((d / "result.json").exists() for d in dirs.values())
    assert not any((d / claims.CLAIM_FILE).exists() for d in dirs.values())  # claims released

    outcomes = engine.train_groups(groups)
    resumed = [o["resumed_from_epoch"] for group in outcomes for o in group]
    assert resumed == [2, 1, saved["c"]["epoch"]]
    for name, config, (lr, seed) in zip("abc", (a, b, c), MEMBERS, strict=True):
        assert_same_metrics(dirs[name], single(config, *common, *member_overrides(lr, seed)))


# -- planning: devices, balance, threads ------------------------------------------------


def test_assign_balances_predicted_cost_largest_first() -> None:
    assert engine.assign([7, 1, 6, 2, 5, 3], 2) == [[0, 3, 5], [1, 2, 4]]  # 12 against 12
    assert engine.assign([1, 1, 1], 1) == [[0, 1, 2]]
    assert engine.assign([4], 3) == [[0], [], []]
    with pytest.raises(ValueError, match="devices=0"):
        engine.assign([1.0], 0)


def test_plan_prices_groups_by_depth_and_uses_only_devices_with_work() -> None:
    def group(depth: int, members: int, epochs: int = 10) -> list[dict[str, Any]]:
        return [{"model": {"depth": depth}, "trainer": {"epochs": epochs}}] * members

    groups = [group(7, 6), group(1, 6), group(6, 6), group(2, 6), group(5, 6), group(3, 6)]
    plan = engine.plan(groups, ["cuda:0", "cuda:1"])
    assert plan == [("cuda:0", [0, 3, 5]), ("cuda:1", [1, 2, 4])]  # depths 7+2+3 vs 1+6+5
    measured = engine.plan(groups, ["cuda:0", "cuda:1"], known={1: 3.0, 7: 9.0})  # 2 + depth
    assert sorted(len(idx) for _, idx in measured) == [3, 3]
    assert engine.plan(groups[:1], ["cuda:0", "cuda:1"]) == [("cuda:0", [0])]


def test_devices_and_threads() -> None:
    assert engine.visible_devices("cpu") == ["cpu"]
    assert engine.visible_devices("cuda:0, cuda:1") == ["cuda:0", "cuda:1"]
    assert engine.visible_devices(["cuda:2"]) == ["cuda:2"]
    for bad in ("gpu0", "cuda:x", ""):
        with pytest.raises(ValueError, match="hydra.launcher.devices"):
            engine.visible_devices(bad)
    auto = engine.visible_devices("auto")
    assert auto == ["cpu"] or all(d.startswith("cuda:") for d in auto)
    assert engine.available_cores({"SLURM_CPUS_PER_TASK": "12"}) == 12
    assert engine.available_cores({}) >= 1
    assert engine.threads_per_engine(4, cores=16) == 4
    assert engine.threads_per_engine(3, cores=16) == 5
    assert engine.threads_per_engine(8, cores=2) == 1


def test_the_engine_launcher_composes_and_refuses_bad_threads() -> None:
    from hydra import compose, initialize_config_module

    from hydra_plugins.vitbn_sweep_stacked.launcher import EngineLauncher

    with initialize_config_module(config_module="vitbn_sweep.conf", version_base="1.3"):
        config = compose("config", ["hydra/launcher=engine"], return_hydra_config=True)
    launcher = config.hydra.launcher
    assert launcher["_target_"].endswith("EngineLauncher")
    assert (launcher["devices"], launcher["threads"], launcher["max_members"]) == (
        "auto",
        "auto",
        8,
    )
    with pytest.raises(ValueError, match="hydra.launcher.threads"):
        EngineLauncher(threads=0)


@pytest.mark.slow
def test_bench_gpu_study_step_records_the_whole_study_on_cpu(
    data_dir: Path, tmp_path: Path
) -> None:
    """gpu.sh's study step end to end apart from the GPU: both sweeps through the engine,
    and study.json says how many of the planned jobs ended."""
    import os
    import subprocess

    root = Path(__file__).resolve().parents[1]
    tiny = "trainer.epochs=1 data.train_size=300 data.test_size=200 model.depth=1 trainer.seed=0"
    env = {**os.environ, "STEPS": "3", "ALLOW_CPU": "1", "GRAPH": "false",
           "PY": sys.executable, "STUDY_ARGS": f"{tiny} trainer.device=cpu"}  # fmt: skip
    proc = subprocess.run(["bash", "benchmarks/gpu.sh", str(tmp_path / "out")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads((tmp_path / "out" / "study.json").read_text())
    assert record["jobs_planned"] == record["jobs_ended"] == 8  # 2 models x 2 lrs, per sweep
    assert record["launcher"] == "engine" and record["study_wall_s"] > 0
    assert len(record["commit"].split("+")[0]) == 40 and record["sweeps_missing"] == []
