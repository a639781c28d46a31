"""Stacked training: a group of jobs as one stacked model equals the jobs run one at a time.

Layers and optimiser against their single counterparts; then whole groups against
``train.run`` on tiny data over several epochs (metrics, result records, checkpoints),
divergence of one member, interrupt and resume per member (also across the single and
the stacked layout), the skip of completed members, the grouping of a sweep's jobs.
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
from torch import nn

import vitbn_sweep.stacked_train as stacked_train
from tests.conftest import compose_config
from vitbn_sweep.engine import train_group
from vitbn_sweep.lifecycle import Job
from vitbn_sweep.models import build_model
from vitbn_sweep.models.stacked import (
    build_stacked_model,
    keep_members,
    member_state,
    stack_states,
)
from vitbn_sweep.stacked import group_jobs, group_key
from vitbn_sweep.stacked_adam import StackedAdam
from vitbn_sweep.store import claims, resume
from vitbn_sweep.train import run

Config = Callable[..., dict[str, Any]]
TIMINGS = {"epoch_seconds", "samples_per_s"}
# Floating-point tolerance. The stacked model's matrix products and BatchNorm round
# differently from the single model's (float32 sums in another order). Adam turns rounding
# noise into whole steps where a gradient is 0 up to rounding (a Linear's bias right
# before a BatchNorm), which moves eval-mode outputs a little while the running statistics
# lag: measured over 90 member-epochs (ViT, ViTBNFFN, DNN-BN, 6 members, 5 epochs), train
# loss within 4.6e-6 relative, and one test image of 100 scored differently, once.
LOSS_RTOL = 5e-5
ACC_SAMPLES = 1  # accuracies: at most this many samples scored differently
SIZES = {"image_size": 28, "channels": 1, "num_classes": 10}
# (lr, seed) of the members of the groups below
MEMBERS = (("0.003", 0), ("0.005", 1), ("0.01", 2))


def metrics(job_dir: Path) -> list[dict[str, str]]:
    with open(job_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def assert_same_metrics(stacked: Path, single: Path) -> None:
    """Equal metrics rows, to floating-point tolerance (see LOSS_RTOL, ACC_SAMPLES)."""
    a, b = metrics(stacked), metrics(single)
    assert a and list(a[0]) == list(b[0]) and [r["epoch"] for r in a] == [r["epoch"] for r in b]
    config = json.loads((single / "result.json").read_text())["config"]
    samples = {"train_acc": config["data"]["train_size"], "test_acc": config["data"]["test_size"],
               "test_acc_clean": config["data"]["test_size"]}  # fmt: skip
    for ra, rb in zip(a, b, strict=True):
        where = (stacked, ra["epoch"])
        assert math.isclose(float(ra["train_loss"]), float(rb["train_loss"]), rel_tol=LOSS_RTOL)
        for key, n in samples.items():
            assert abs(float(ra[key]) - float(rb[key])) <= ACC_SAMPLES / n + 1e-12, (where, key)


def layout(state: dict[str, Any]) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    return {k: (tuple(v.shape), v.dtype) for k, v in state.items()}


def member_overrides(lr: str, seed: int) -> list[str]:
    return [f"optim.lr={lr}", f"trainer.seed={seed}"]


def configs(tiny_config: Config, *common: str, members=MEMBERS) -> list[dict[str, Any]]:
    return [tiny_config(*common, *member_overrides(lr, seed)) for lr, seed in members]


# -- the stacked layers and optimiser -------------------------------------------------


def singles_and_stack(name: str, members: int) -> tuple[list[nn.Module], nn.Module]:
    model_cfg = compose_config([f"model={name}", "model.depth=2"])["model"]
    singles = []
    for seed in range(members):
        torch.manual_seed(seed)
        singles.append(build_model(model_cfg, **SIZES))
    stacked = build_stacked_model(model_cfg, members=members, **SIZES)
    stacked.load_state_dict(stack_states([m.state_dict() for m in singles]))
    return singles, stacked


@pytest.mark.parametrize("name", ["vit", "vitbnffn", "vitbn", "dnn", "dnnbn"])
def test_stacked_model_is_its_members_side_by_side(name: str) -> None:
    torch.manual_seed(10)
    singles, stacked = singles_and_stack(name, 3)
    images = torch.rand(3, 6, 1, 28, 28)  # a batch of 6 per member
    out = stacked(images)
    out.square().sum().backward()
    grads = dict(stacked.named_parameters())
    for m, single in enumerate(singles):
        assert list(single.state_dict()) == list(member_state(stacked, m))
        ref = single(images[m])
        ref.square().sum().backward()
        torch.testing.assert_close(out[m], ref, rtol=1e-5, atol=1e-5)
        # relative to the model's largest gradient: some gradients are 0 up to rounding (a
        # Linear's bias right before a BatchNorm), and rounding differs between the two
        scale = max(p.grad.abs().max().item() for p in single.parameters())
        for pname, p in single.named_parameters():
            torch.testing.assert_close(grads[pname].grad[m], p.grad, rtol=1e-4, atol=1e-6 * scale)
        for key, value in single.state_dict().items():  # incl. BatchNorm running statistics
            torch.testing.assert_close(member_state(stacked, m)[key], value, rtol=1e-5, atol=1e-6)
    stacked.eval()
    evaluated = stacked(images)
    for m, single in enumerate(singles):
        torch.testing.assert_close(evaluated[m], single.eval()(images[m]), rtol=1e-5, atol=1e-5)


def test_keep_members_indexes_every_parameter_and_buffer() -> None:
    singles, stacked = singles_and_stack("vitbn", 3)
    params = list(stacked.parameters())
    keep_members(stacked, torch.tensor([2, 0]))
    assert list(stacked.parameters()) == params  # the same objects (the optimiser keeps them)
    for k, m in enumerate([2, 0]):
        for key, value in singles[m].state_dict().items():
            assert torch.equal(member_state(stacked, k)[key], value), key
    assert stacked(torch.rand(2, 4, 1, 28, 28)).shape == (2, 4, 10)


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_stacked_adam_is_torch_adam_per_member(weight_decay: float) -> None:
    torch.manual_seed(0)
    lrs, shapes = [0.003, 0.005, 0.1], [(5, 7), (7,)]
    singles = [[nn.Parameter(torch.randn(s)) for s in shapes] for _ in lrs]
    adams = [
        torch.optim.Adam(p, lr=lr, weight_decay=weight_decay)
        for p, lr in zip(singles, lrs, strict=True)
    ]

    def step(members: list[int], grads: list[torch.Tensor]) -> None:
        for m in members:
            for p, g in zip(singles[m], grads, strict=True):
                p.grad = g[m].clone()
            adams[m].step()

    step([1], [torch.randn(3, *s) for s in shapes])  # member 1 is three steps ahead
    step([1], [torch.randn(3, *s) for s in shapes])
    step([1], [torch.randn(3, *s) for s in shapes])
    stacked = [nn.Parameter(torch.stack([p[i].detach() for p in singles])) for i in range(2)]
    adam = StackedAdam(stacked, lr=lrs, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)
    state = [adams[1].state[p] for p in singles[1]]
    adam.load_member(1, int(state[0]["step"]), [s["exp_avg"] for s in state],
                     [s["exp_avg_sq"] for s in state])  # fmt: skip
    for t in range(12):
        grads = [torch.randn(3, *s) * 10.0 ** (t % 4 - 2) for s in shapes]
        step([0, 1, 2], grads)
        for p, g in zip(stacked, grads, strict=True):
            p.grad = g.clone()
        adam.step()
    assert adam.steps == [12, 15, 12]
    for m in range(3):
        for i in range(2):
            torch.testing.assert_close(stacked[i][m], singles[m][i], rtol=1e-6, atol=1e-8)
            torch.testing.assert_close(adam.member_state(m)[1][i], adams[m].state[singles[m][i]]
                                       ["exp_avg"], rtol=1e-6, atol=1e-9)  # fmt: skip


# -- groups against jobs run one at a time --------------------------------------------


@pytest.mark.parametrize("model", ["vit", "vitbnffn", "dnnbn"])
def test_group_equals_its_jobs_run_one_at_a_time(
    model: str, tiny_config: Config, single: Callable[..., Path], tmp_path: Path
) -> None:
    common = ("trainer.epochs=3", f"model={model}", "model.depth=1", "resume.keep_checkpoint=true")
    group = configs(tiny_config, *common)
    dirs = [tmp_path / str(i) for i in range(len(group))]
    outcomes = train_group(group, dirs)
    for (lr, seed), config, job_dir, outcome in zip(MEMBERS, group, dirs, outcomes, strict=True):
        alone = single(config, *common, *member_overrides(lr, seed))
        assert_same_metrics(job_dir, alone)
        record = json.loads((job_dir / "result.json").read_text())
        reference = json.loads((alone / "result.json").read_text())
        assert json.loads(json.dumps(outcome, default=str)) == record
        assert record.keys() == reference.keys()
        for key in ("status", "config", "epochs_run", "diverged_at", "resumed_from_epoch"):
            assert record[key] == reference[key], key
        assert record["best"]["epoch"] == reference["best"]["epoch"]
        # The checkpoint has the single job's layout. (Its weights are not compared element
        # by element: Adam turns gradients that are 0 up to rounding into full steps, in
        # both, for weights that do not change the output, such as a bias before a BatchNorm;
        # the metrics above and the resume tests below compare what the weights compute.)
        mine = torch.load(job_dir / "checkpoint.pt", weights_only=True)
        theirs = torch.load(alone / "checkpoint.pt", weights_only=True)
        assert mine.keys() == theirs.keys() and mine["identity"] == theirs["identity"]
        assert [r["epoch"] for r in mine["rows"]] == [1, 2, 3]
        assert layout(mine["model"]) == layout(theirs["model"])
        assert mine["optimizer"]["param_groups"] == theirs["optimizer"]["param_groups"]
        assert mine["optimizer"]["state"].keys() == theirs["optimizer"]["state"].keys()
        for i, state in theirs["optimizer"]["state"].items():
            assert layout(mine["optimizer"]["state"][i]) == layout(state)
            assert mine["optimizer"]["state"][i]["step"] == state["step"]


def test_a_torchvision_pipeline_job_is_a_group_of_its_own(
    tiny_config: Config, single: Callable[..., Path], tmp_path: Path
) -> None:
    common = ("trainer.epochs=2", "model=dnnbn", "data.pipeline=torchvision")
    (config,) = configs(tiny_config, *common, members=MEMBERS[:1])
    assert group_jobs(configs(tiny_config, *common), max_members=8) == [[0], [1], [2]]
    train_group([config], [tmp_path])
    assert_same_metrics(tmp_path, single(config, *common, *member_overrides(*MEMBERS[0])))


def test_diverging_member_is_recorded_and_leaves_the_stack(
    tiny_config: Config,
    single: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    members = (("1e30", 0), ("0.003", 1))
    common = ("trainer.epochs=2", "model=vitbnffn", "model.depth=1")
    stack_sizes: list[int] = []
    build = stacked_train.build_stacked_model

    def recording(*args: Any, **kwargs: Any) -> nn.Module:
        model = build(*args, **kwargs)
        model.register_forward_pre_hook(lambda _, inputs: stack_sizes.append(len(inputs[0])))
        return model

    monkeypatch.setattr(stacked_train, "build_stacked_model", recording)
    group = configs(tiny_config, *common, members=members)
    dirs = [tmp_path / "diverges", tmp_path / "goes_on"]
    outcomes = train_group(group, dirs)
    assert [o["status"] for o in outcomes] == ["diverged", "completed"]
    alone = [single(c, *common, *member_overrides(*m)) for c, m in zip(group, members, strict=True)]
    diverged = json.loads((alone[0] / "result.json").read_text())
    assert diverged["status"] == "diverged"
    assert outcomes[0]["diverged_at"] == diverged["diverged_at"] == {"epoch": 1, "step": 4}
    assert_same_metrics(dirs[1], alone[1])
    # 4 steps of both, 2 test sets scored by the survivor alone, then its second epoch
    assert stack_sizes[:5] == [2, 2, 2, 2, 1] and set(stack_sizes[4:]) == {1}


class Interrupt(KeyboardInterrupt):
    pass


def interrupt_after(monkeypatch: pytest.MonkeyPatch, job_dir: Path, epoch: int) -> None:
    """Interrupt the process right after ``job_dir``'s checkpoint of ``epoch`` is written."""
    save = resume.save_checkpoint

    def save_then_stop(where: Path, state: dict[str, Any]) -> None:
        save(where, state)
        if where == job_dir and state["epoch"] == epoch:
            raise Interrupt

    monkeypatch.setattr(resume, "save_checkpoint", save_then_stop)


def test_interrupted_members_resume_stacked_or_alone(
    tiny_config: Config,
    single: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One sweep command throughout: the interrupted runs' claims (this live process) are ours.
    monkeypatch.setenv(claims.TOKEN_ENV, "one-sweep")
    common = ("trainer.epochs=3", "model=vitbnffn", "model.depth=1")
    a, b, c = configs(tiny_config, *common)
    dirs = {name: tmp_path / name for name in "abc"}
    with monkeypatch.context() as m:  # A and B stacked, cut after A's epoch 2: B has epoch 1
        interrupt_after(m, dirs["a"], 2)
        with pytest.raises(Interrupt):
            train_group([a, b], [dirs["a"], dirs["b"]])
    with monkeypatch.context() as m:  # C alone, cut after its epoch 1
        interrupt_after(m, dirs["c"], 1)
        with pytest.raises(Interrupt):
            run(c, dirs["c"])
    saved = [resume.load_checkpoint(dirs[n] / "checkpoint.pt") for n in "abc"]
    assert [state["epoch"] for state in saved] == [2, 1, 1]  # its rows follow (the cut's not)
    assert not any((d / "result.json").exists() for d in dirs.values())

    # A (stacked checkpoint, epoch 3 to go) and C (single checkpoint, 2 to go) side by side
    outcomes = train_group([a, c], [dirs["a"], dirs["c"]])
    assert [o["resumed_from_epoch"] for o in outcomes] == [2, 1]
    record = run(b, dirs["b"])  # B alone, from the stacked group's checkpoint
    assert record["status"] == "completed" and record["resumed_from_epoch"] == 1
    for name, config, (lr, seed) in zip("abc", (a, b, c), MEMBERS, strict=True):
        assert_same_metrics(dirs[name], single(config, *common, *member_overrides(lr, seed)))


def test_completed_members_are_skipped(
    tiny_config: Config, single: Callable[..., Path], tmp_path: Path
) -> None:
    common = ("trainer.epochs=2", "model=dnnbn")
    group = configs(tiny_config, *common)
    dirs = [tmp_path / str(i) for i in range(3)]
    train_group(group[:2], dirs[:2])
    before = [(d / "result.json").read_text() for d in dirs[:2]]
    outcomes = train_group(group, dirs)
    assert [(d / "result.json").read_text() for d in dirs[:2]] == before  # not trained again
    assert outcomes[:2] == [json.loads(text) for text in before]
    assert outcomes[2]["status"] == "completed" and outcomes[2]["resumed_from_epoch"] is None
    assert_same_metrics(dirs[2], single(group[2], *common, *member_overrides(*MEMBERS[2])))


def test_a_failure_fails_every_member_still_training(
    tiny_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> list[float]:
        raise RuntimeError("evaluation exploded")

    monkeypatch.setattr(stacked_train, "evaluate", broken)
    dirs = [tmp_path / "a", tmp_path / "b"]
    outcomes = train_group(configs(tiny_config, "model=dnn", members=MEMBERS[:2]), dirs)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    for d in dirs:
        record = json.loads((d / "result.json").read_text())
        assert (
            record["status"] == "failed" and "evaluation exploded" in record["error"]["traceback"]
        )


def test_a_failure_leaves_members_that_ended_before_it_as_they_ended(
    tiny_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    end_epoch = Job.end_epoch

    def end_epoch_but_b(job: Job, *args: Any, **kwargs: Any) -> None:
        if job.job_dir == dirs[1]:  # after member a has completed
            raise OSError("disk full")
        end_epoch(job, *args, **kwargs)

    monkeypatch.setattr(Job, "end_epoch", end_epoch_but_b)
    outcomes = train_group(configs(tiny_config, "model=dnn", members=MEMBERS[:2]), dirs)
    assert outcomes[0]["status"] == "completed" and isinstance(outcomes[1], OSError)
    statuses = [json.loads((d / "result.json").read_text())["status"] for d in dirs]
    assert statuses == ["completed", "failed"]


def test_jobs_that_differ_in_more_than_lr_and_seed_are_refused(
    tiny_config: Config, tmp_path: Path
) -> None:
    refused = train_group(  # every member fails with the refusal
        [tiny_config("model.depth=1"), tiny_config("model.depth=2")],
        [tmp_path / "a", tmp_path / "b"],
    )
    assert [type(o) for o in refused] == [ValueError, ValueError]
    assert "differ in more than" in str(refused[0])
    assert not any(tmp_path.iterdir())


# -- grouping a sweep's jobs ----------------------------------------------------------


def test_groups_share_everything_but_lr_and_seed() -> None:
    def key(*overrides: str) -> str:
        return group_key(compose_config(list(overrides)))

    base = key("model=vit", "model.depth=3")
    assert key("model=vit", "model.depth=3", "optim.lr=0.005", "trainer.seed=2") == base
    assert key("model=vit", "model.depth=3", "logger=none", "sweep_name=x") == base  # own
    assert key("model=vit", "model.depth=4") != base
    assert key("model=vitbnffn", "model.depth=3") != base
    assert key("model=vit", "model.depth=3", "trainer.batch_size=50") != base
    assert key("model=vit", "model.depth=3", "trainer.device=cpu") != base  # one process
    assert key("model=vit", "model.depth=3", "trainer.threads=1") != base
    # the torchvision pipeline draws from the process-wide RNG: every job alone
    tv = "data.pipeline=torchvision"
    assert key("model=vit", tv, "trainer.seed=1") != key("model=vit", tv, "trainer.seed=2")


def test_group_jobs_splits_large_groups_evenly() -> None:
    configs_ = [compose_config([f"model={m}", f"trainer.seed={s}"])
                for m in ("vit", "dnn") for s in range(7)]  # fmt: skip
    groups = group_jobs(configs_, max_members=4)
    assert groups == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9, 10], [11, 12, 13]]
    assert group_jobs(configs_, max_members=1) == [[i] for i in range(14)]
    with pytest.raises(ValueError, match="max_members"):
        group_jobs(configs_, max_members=0)


@pytest.mark.slow
def test_every_member_has_its_own_wandb_run(
    tiny_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_tracking import history, inspect_run, offline_runs, run_record

    monkeypatch.setenv("WANDB_MODE", "offline")
    common = ("model=dnn", "logger=wandb", "sweep_name=wb", f"paths.outputs={tmp_path}")
    dirs = [tmp_path / "wb" / "a", tmp_path / "wb" / "b"]
    train_group(configs(tiny_config, *common, members=MEMBERS[:2]), dirs)
    run_ids = set()
    for job_dir in dirs:
        (run_dir,) = offline_runs(job_dir)  # the runs were open side by side
        records, summary = inspect_run(run_dir)
        run_ids.add(run_record(records)["run_id"])
        epochs = [(r["_step"], r["test_acc"]) for r in history(records)]
        assert epochs == [(int(r["epoch"]), float(r["test_acc"])) for r in metrics(job_dir)]
        assert summary["summary"]["status"] == "completed" and summary["state"] == "finished"
    assert len(run_ids) == 2


# -- the launcher ---------------------------------------------------------------------


@pytest.mark.slow
def test_launcher_trains_each_group_as_one_picklable_task(data_dir: Path, tmp_path: Path) -> None:
    import cloudpickle
    from hydra import initialize_config_module
    from hydra._internal.callbacks import Callbacks
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.utils import JobStatus
    from hydra.types import HydraContext, RunMode

    from hydra_plugins.vitbn_sweep_stacked.launcher import StackedLauncher
    from tests.conftest import TINY
    from vitbn_sweep.__main__ import main
    from vitbn_sweep.identity import job_dirname

    common = [*TINY, f"paths.outputs={tmp_path}"]
    jobs = [
        [*common, f"model={m}", f"trainer.seed={s}"] for m in ("dnn", "dnnbn") for s in (0, 1, 2)
    ]
    with initialize_config_module(config_module="vitbn_sweep.conf", version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        config = loader.load_configuration(
            "config", [*common, "hydra/launcher=stacked"], run_mode=RunMode.MULTIRUN
        )
        launcher = StackedLauncher(max_members=2)
        context = HydraContext(config_loader=loader, callbacks=Callbacks(config))
        launcher.setup(hydra_context=context, task_function=main, config=config)
        members, tasks = launcher.tasks(jobs, initial_job_idx=0)
        assert members == [[0, 1], [2], [3, 4], [5]]  # a task per group
        returns = [ret for task in tasks for ret in cloudpickle.loads(cloudpickle.dumps(task))()]
        again = launcher.launch(jobs, initial_job_idx=0)  # every job found completed
    assert [r.status for r in returns + list(again)] == [JobStatus.COMPLETED] * 12
    for job, ret, skipped in zip(jobs, returns, again, strict=True):
        job_dir = tmp_path / "default" / job_dirname(job)
        assert ret.return_value == json.loads((job_dir / "result.json").read_text())
        assert skipped.return_value == ret.return_value and ret.overrides == job
        assert (job_dir / ".hydra" / "overrides.yaml").is_file()
        log_lines = (job_dir / "vitbn_sweep.log").read_text().splitlines()
        name = f"lr=0.003 {job[-1].replace('trainer.', '')}:"
        assert any("epoch 1/1" in line for line in log_lines)
        assert all(name in line for line in log_lines), log_lines  # its own lines only


@pytest.mark.slow
@pytest.mark.parametrize(
    ("launcher", "says"),
    [("stacked", "Launching 8 jobs in 4 stacked groups (at most 3 members each)"),
     ("engine", "engine on cpu: 4 groups (0, 1, 2, 3)")],
)  # fmt: skip
def test_stacked_multirun_from_the_command_line(
    launcher: str, says: str, data_dir: Path, tmp_path: Path
) -> None:
    from tests.conftest import TINY, run_cli

    args = ["-m", f"hydra/launcher={launcher}", "hydra.launcher.max_members=3", "model=vit,dnnbn",
            "model.depth=1", "optim.lr=0.003,0.005", "trainer.seed=0,1", *TINY]  # fmt: skip
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert says in proc.stdout + proc.stderr
    jobs = sorted(p for p in (tmp_path / "outputs" / "default").iterdir() if p.is_dir())
    assert len(jobs) == 8
    for job in jobs:
        record = json.loads((job / "result.json").read_text())
        assert record["status"] == "completed" and len(metrics(job)) == 1
        assert f"model={record['config']['model']['name']}," in job.name
        assert f"optim.lr={record['config']['optim']['lr']}," in job.name
        assert (job / ".hydra" / "config.yaml").is_file() and (job / "vitbn_sweep.log").is_file()
        assert not (job / ".claim.json").exists()
    ended = [(job / "result.json").read_text() for job in jobs]
    again = run_cli(args, cwd=tmp_path)  # every job found ended: nothing trained again
    assert again.returncode == 0, again.stderr
    assert [(job / "result.json").read_text() for job in jobs] == ended


@pytest.mark.slow
def test_groups_side_by_side_in_worker_processes_equal_groups_one_after_another(
    data_dir: Path, tmp_path: Path
) -> None:
    from tests.conftest import TINY, run_cli

    args = ["-m", "hydra/launcher=stacked", "hydra.launcher.max_members=2", "model=vit,dnnbn",
            "model.depth=1", "optim.lr=0.003,0.005", "trainer.threads=1", *TINY]  # fmt: skip
    (tmp_path / "side").mkdir()
    (tmp_path / "serial").mkdir()
    side = run_cli([*args, "hydra.launcher.n_jobs=2"], cwd=tmp_path / "side")
    assert side.returncode == 0, side.stderr
    assert "Running 2 tasks, 2 at a time (worker processes)" in side.stdout + side.stderr
    serial = run_cli(args, cwd=tmp_path / "serial")
    assert serial.returncode == 0, serial.stderr
    jobs = sorted(p.name for p in (tmp_path / "side" / "outputs" / "default").iterdir()
                  if p.is_dir())  # fmt: skip
    assert len(jobs) == 4
    for name in jobs:
        assert_same_metrics(tmp_path / "side" / "outputs" / "default" / name,
                            tmp_path / "serial" / "outputs" / "default" / name)  # fmt: skip
