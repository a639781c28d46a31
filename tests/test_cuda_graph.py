"""``trainer.cuda_graph``: the stacked step replayed from a CUDA graph.

On any machine: the key is refused, naming it, wherever it cannot apply (a CPU device, a
job run alone, a launcher that does not stack, together with ``trainer.compile``), before
anything is written. On a CUDA machine (``make bench-gpu``): a graphed group equals the
same group trained eagerly, through warm-up, capture, replays, a short last batch (run
eagerly) and a member that diverges (the stack changes: a new capture).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tests.conftest import TINY, compose_config, run_cli
from tests.test_cuda import assert_close, rows
from vitbn_sweep import cuda_graph
from vitbn_sweep.engine import train_group
from vitbn_sweep.models.stacked import build_stacked_model
from vitbn_sweep.stacked_adam import StackedAdam
from vitbn_sweep.train import run
from vitbn_sweep.validate import ConfigError, config_errors

Config = Callable[..., dict[str, Any]]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_a_cpu_group_with_cuda_graph_is_refused_before_anything_is_written(
    tiny_config: Config, tmp_path: Path
) -> None:
    group = [tiny_config("trainer.device=cpu", "trainer.cuda_graph=true", f"trainer.seed={s}")
             for s in (0, 1)]  # fmt: skip
    refused = train_group(group, [tmp_path / "a", tmp_path / "b"])  # every member fails
    assert [type(o) for o in refused] == [ConfigError, ConfigError]
    assert "trainer.cuda_graph=true needs a CUDA device" in str(refused[0])
    assert list(tmp_path.iterdir()) == []


def test_a_job_run_alone_with_cuda_graph_is_refused(tiny_config: Config, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"trainer\.cuda_graph=true.*hydra/launcher=stacked"):
        run(tiny_config("trainer.cuda_graph=true"), tmp_path / "job")
    assert not (tmp_path / "job").exists()


def test_cuda_graph_and_compile_together_are_refused(tiny_config: Config) -> None:
    config = tiny_config("trainer.cuda_graph=true", "trainer.compile=true")
    assert any("trainer.cuda_graph=true and trainer.compile=true" in e
               for e in config_errors(config))  # fmt: skip
    assert config_errors(tiny_config("trainer.cuda_graph=true")) == []


@pytest.mark.slow
def test_a_sweep_with_cuda_graph_on_a_launcher_that_does_not_stack_launches_nothing(
    data_dir: Path, tmp_path: Path
) -> None:
    proc = run_cli(["-m", "trainer.seed=0,1", "trainer.cuda_graph=true", *TINY], cwd=tmp_path)
    assert proc.returncode == 2
    assert "2 of 2 jobs cannot run; nothing was launched" in proc.stderr
    assert "use hydra/launcher=stacked or stacked_slurm" in proc.stderr
    assert "BasicLauncher" in proc.stderr
    assert not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_a_stacked_sweep_with_cuda_graph_on_a_cpu_fails_and_leaves_nothing_behind(
    data_dir: Path, tmp_path: Path
) -> None:
    """Every group refuses before it writes: each job counts as failed (exit 1, so a
    script can tell), its reason is logged, and no job directory is left half-made."""
    proc = run_cli(["-m", "hydra/launcher=stacked", "model=vit,dnnbn", "optim.lr=0.003,0.005",
                    "trainer.cuda_graph=true", "trainer.device=cpu", *TINY],
                   cwd=tmp_path)  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "4 jobs: 0 completed, 0 diverged, 4 failed, 0 not ended" in out
    assert out.count("trainer.cuda_graph=true needs a CUDA device") == 4
    assert out.count("(before it wrote anything)") == 4
    sweep = tmp_path / "outputs" / "default"
    assert sorted(p.name for p in sweep.iterdir()) == ["commands.jsonl", "grid.json",
                                                         "jobs.json", "multirun.yaml"]  # fmt: skip
    end = json.loads((sweep / "commands.jsonl").read_text().splitlines()[-1])
    assert end["counts"]["failed"] == 4 and len(end["errors"]) == 4


def test_graphed_step_needs_a_cuda_device() -> None:
    weight = torch.nn.Parameter(torch.zeros(2, 3))
    optimizer = StackedAdam([weight], lr=[0.1, 0.1], betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.0)  # fmt: skip
    model = torch.nn.Linear(3, 3)
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        cuda_graph.GraphedStep(model, optimizer, autocast=lambda: torch.autocast("cpu"))


def test_stacked_adam_step_is_advance_then_apply() -> None:
    """The split a graph replays (advance on the host, apply on the device) is one step."""
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(3, 4, 5))
    b = torch.nn.Parameter(a.detach().clone())
    kwargs = {"lr": [0.1, 0.01, 0.001], "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01}
    stepped, split = StackedAdam([a], **kwargs), StackedAdam([b], **kwargs)
    for _ in range(3):
        grad = torch.randn(3, 4, 5)
        a.grad, b.grad = grad.clone(), grad.clone()
        stepped.step()
        factors = split.advance()
        assert factors.shape == (2, 3) and factors.device.type == "cpu"
        split.apply(factors)
    assert torch.equal(a, b) and split.steps == stepped.steps == [3, 3, 3]


# -- on a GPU ---------------------------------------------------------------------------


@needs_cuda
@pytest.mark.parametrize("model", ["vit", "vitbnffn", "dnnbn"])
def test_a_graphed_group_equals_the_same_group_eager(
    model: str, tiny_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1,990 images in batches of 50: 39 full steps (3 warm-up, then a capture and
    # replays) and a short last batch of 40, run eagerly, in each of 2 epochs.
    common = (f"model={model}", "model.depth=2", "trainer.epochs=2", "trainer.device=cuda",
              "data.train_size=1990")  # fmt: skip
    members = [("0.003", 0), ("0.005", 1), ("0.01", 2)]
    captures, replays = count_graph_use(monkeypatch)

    def group(*extra: str) -> list[dict[str, Any]]:
        return [tiny_config(*common, *extra, f"optim.lr={lr}", f"trainer.seed={s}")
                for lr, s in members]  # fmt: skip

    eager = train_group(group(), [tmp_path / f"eager{i}" for i in range(3)])
    assert captures == [] and replays == [0]
    graphed = train_group(group("trainer.cuda_graph=true"),
                          [tmp_path / f"graph{i}" for i in range(3)])  # fmt: skip
    assert [o["status"] for o in eager] == [o["status"] for o in graphed] == ["completed"] * 3
    assert captures == [3] and replays == [2 * 39 - cuda_graph.WARMUP_STEPS]
    for i in range(3):
        assert_close(tmp_path / f"graph{i}", tmp_path / f"eager{i}", n_train=1990, n_test=100)


@needs_cuda
def test_a_member_that_diverges_leaves_a_graphed_stack_which_is_captured_again(
    tiny_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    common = ("model=vitbnffn", "model.depth=1", "trainer.epochs=2", "trainer.device=cuda",
              "data.train_size=2000", "trainer.cuda_graph=true")  # fmt: skip
    members = [("1e30", 0), ("0.003", 1)]
    captures, _ = count_graph_use(monkeypatch)
    group = [tiny_config(*common, f"optim.lr={lr}", f"trainer.seed={s}") for lr, s in members]
    outcomes = train_group(group, [tmp_path / "diverges", tmp_path / "goes_on"])
    assert [o["status"] for o in outcomes] == ["diverged", "completed"]
    assert outcomes[0]["diverged_at"]["epoch"] == 1
    assert captures == [2, 1]  # the pair, then the survivor alone
    alone = tiny_config(*common[:-1], "optim.lr=0.003", "trainer.seed=1")
    run(alone, tmp_path / "alone")
    assert_close(tmp_path / "goes_on", tmp_path / "alone", n_train=2000, n_test=100)
    assert math.isfinite(float(rows(tmp_path / "goes_on")[-1]["train_loss"]))
    record = json.loads((tmp_path / "goes_on" / "result.json").read_text())
    assert record["config"]["trainer"]["cuda_graph"] is True


def count_graph_use(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[int]]:
    """(members of each capture, [replays]) of every GraphedStep from now on."""
    captures: list[int] = []
    replays = [0]
    capture = cuda_graph.GraphedStep._capture
    replay = torch.cuda.CUDAGraph.replay

    def counting_capture(self: cuda_graph.GraphedStep, *args: Any) -> None:
        captures.append(self.optimizer.members)
        capture(self, *args)

    def counting_replay(self: torch.cuda.CUDAGraph) -> None:
        replays[0] += 1
        replay(self)

    monkeypatch.setattr(cuda_graph.GraphedStep, "_capture", counting_capture)
    monkeypatch.setattr(torch.cuda.CUDAGraph, "replay", counting_replay)
    return captures, replays


class RecordOps(TorchDispatchMode):
    """Every aten op run while active, by name (``aten::add_.Tensor`` -> ``add_``)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        self.ops.add(func._schema.name.removeprefix("aten::"))
        return func(*args, **(kwargs or {}))


# Ops a CUDA graph cannot hold: reading a value back to the host (item, bool(t), tolist,
# data-dependent shapes) or making a tensor from Python data (a host-to-device copy).
SYNC_OPS = {"_local_scalar_dense", "item", "nonzero", "masked_select", "lift_fresh",
            "lift_fresh_copy", "unique", "_unique2"}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("model", ["vit", "vitbnffn", "dnnbn"])
def test_the_graph_body_is_sync_free_and_is_the_eager_step(model: str) -> None:
    """What GraphedStep captures, run on the CPU: none of SYNC_OPS, and the eager step's
    maths exactly (Adam's host share apart)."""
    model_cfg = compose_config([f"model={model}", "model.depth=2"])["model"]
    sizes = {"image_size": 28, "channels": 1, "num_classes": 10}
    stacks = []
    for _ in range(2):
        torch.manual_seed(0)
        stacked = build_stacked_model(model_cfg, members=3, **sizes)
        for p in stacked.parameters():  # the stacked model is built uninitialised
            torch.nn.init.normal_(p, std=0.05)
        adam = StackedAdam(list(stacked.parameters()), lr=[0.003, 0.005, 0.01],
                           betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)  # fmt: skip
        stacks.append((stacked, adam))
    no_autocast = contextlib.nullcontext
    for step in range(3):
        gen = torch.Generator().manual_seed(step)
        images = torch.rand(3, 8, 1, 28, 28, generator=gen)
        labels = torch.randint(0, 10, (3, 8), generator=gen)
        (eager_model, eager_adam), (body_model, body_adam) = stacks
        logits, losses = cuda_graph.eager_step(
            eager_model, eager_adam, images, labels, autocast=no_autocast
        )
        factors = body_adam.advance()
        body_adam.zero_grad()  # as at capture
        with RecordOps() as recorded:
            body_logits, body_losses = cuda_graph.graph_body(
                body_model, body_adam, images, labels, factors, autocast=no_autocast
            )
        assert recorded.ops.isdisjoint(SYNC_OPS), recorded.ops & SYNC_OPS
        assert {"bmm", "mean"} <= recorded.ops or {"baddbmm"} <= recorded.ops
        assert torch.equal(body_logits, logits) and torch.equal(body_losses, losses)
        for a, b in zip(eager_model.parameters(), body_model.parameters(), strict=True):
            assert torch.equal(a, b)
