"""run(cfg): the results contract, determinism, divergence, failure, resume."""

from __future__ import annotations

import csv
import json
import logging
import math
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import vitbn_sweep.train as train
from vitbn_sweep.results import cpu_id
from vitbn_sweep.store import METRIC_COLUMNS, resume
from vitbn_sweep.train import run

TIMINGS = {"epoch_seconds", "samples_per_s"}
Config = Callable[..., dict[str, Any]]


def metrics(job_dir: Path) -> list[dict[str, str]]:
    with open(job_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def without_timings(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in TIMINGS} for r in rows]


def test_results_contract(tiny_config: Config, tmp_path: Path) -> None:
    record = run(tiny_config("trainer.epochs=2", "model=vitbnffn", "model.depth=1"), tmp_path)
    rows = metrics(tmp_path)
    assert list(rows[0]) == list(METRIC_COLUMNS) and [r["epoch"] for r in rows] == ["1", "2"]
    for row in rows:
        assert 0 <= float(row["test_acc"]) <= 1 and 0 <= float(row["test_acc_clean"]) <= 1
        assert float(row["train_loss"]) > 0 and float(row["samples_per_s"]) > 0
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert on_disk == json.loads(json.dumps(record, default=str))
    assert on_disk["status"] == "completed" and on_disk["epochs_run"] == 2
    assert on_disk["config"]["model"]["name"] == "vitbnffn"
    assert on_disk["final"]["epoch"] == 2
    assert on_disk["best"]["test_acc"] == max(float(r["test_acc"]) for r in rows)
    assert set(on_disk["versions"]) >= {"python", "torch", "git_commit"}
    assert on_disk["where"]["scheduler"] == "local"
    assert on_disk["host"]["cpu"] and on_disk["host"]["cpu"] != "unknown"
    assert on_disk["host"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert on_disk["host"]["cpu_id"] == cpu_id() and "gpu" not in on_disk["host"]
    assert on_disk["started_at"] <= on_disk["ended_at"] and on_disk["total_seconds"] > 0
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary files left
    assert not (tmp_path / "checkpoint.pt").exists()  # dropped once completed


def test_same_seed_repeats_exactly(tiny_config: Config, tmp_path: Path) -> None:
    cfg = tiny_config("trainer.epochs=2", "model=vitbnffn", "model.depth=2")
    run(cfg, tmp_path / "a")
    run(cfg, tmp_path / "b")
    assert without_timings(metrics(tmp_path / "a")) == without_timings(metrics(tmp_path / "b"))
    run(
        tiny_config("trainer.epochs=2", "model=vitbnffn", "model.depth=2", "trainer.seed=1"),
        tmp_path / "c",
    )
    assert without_timings(metrics(tmp_path / "a")) != without_timings(metrics(tmp_path / "c"))


def test_absurd_lr_is_recorded_as_diverged(tiny_config: Config, tmp_path: Path) -> None:
    record = run(tiny_config("optim.lr=1e30", "trainer.epochs=3"), tmp_path)
    assert record["status"] == "diverged" and record["diverged_at"]["epoch"] == 1
    assert record["epochs_run"] == 0 and metrics_rows_or_none(tmp_path) is None
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "diverged"


def metrics_rows_or_none(job_dir: Path) -> list[dict[str, str]] | None:
    return metrics(job_dir) if (job_dir / "metrics.csv").exists() else None


def test_exception_writes_failed_then_reraises(
    tiny_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> float:
        raise RuntimeError("evaluation exploded")

    monkeypatch.setattr(train, "evaluate", broken)
    with pytest.raises(RuntimeError, match="evaluation exploded"):
        run(tiny_config(), tmp_path)
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["status"] == "failed" and record["error"]["type"] == "RuntimeError"
    assert "evaluation exploded" in record["error"]["traceback"]


def test_bad_config_writes_nothing(tiny_config: Config, tmp_path: Path) -> None:
    with pytest.raises(train.ConfigError, match="model.depth"):
        run(tiny_config("model.depth=0"), tmp_path / "job")
    assert not (tmp_path / "job").exists()


def test_run_is_picklable() -> None:
    assert pickle.loads(pickle.dumps(run)) is run


class Interrupt(KeyboardInterrupt):
    pass


def interrupt_after_epoch(monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    save = resume.save_checkpoint

    def save_then_stop(job_dir: Path, state: dict[str, Any]) -> None:
        save(job_dir, state)
        if state["epoch"] == epoch:
            raise Interrupt

    monkeypatch.setattr(resume, "save_checkpoint", save_then_stop)


def test_interrupted_job_resumes_to_the_same_metrics(
    tiny_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny_config("trainer.epochs=3", "model=vitbnffn", "model.depth=1")
    run(cfg, tmp_path / "straight")
    with monkeypatch.context() as m:
        interrupt_after_epoch(m, 2)
        with pytest.raises(Interrupt):
            run(cfg, tmp_path / "cut")
    assert not (tmp_path / "cut" / "result.json").exists()  # interrupted is not "failed"
    assert len(metrics(tmp_path / "cut")) == 1  # epoch 2's row comes after its checkpoint
    record = run(cfg, tmp_path / "cut")
    assert record["resumed_from_epoch"] == 2 and record["status"] == "completed"
    assert without_timings(metrics(tmp_path / "cut")) == without_timings(
        metrics(tmp_path / "straight")
    )


@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_corrupt_checkpoint_warns_and_starts_over(
    tiny_config: Config,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    damage: str,
) -> None:
    cfg = tiny_config("trainer.epochs=2")
    run(cfg, tmp_path / "straight")
    with monkeypatch.context() as m:
        interrupt_after_epoch(m, 1)
        with pytest.raises(Interrupt):
            run(cfg, tmp_path / "cut")
    ckpt = tmp_path / "cut" / "checkpoint.pt"
    ckpt.write_bytes(b"" if damage == "empty" else ckpt.read_bytes()[:1000])
    with caplog.at_level(logging.WARNING):
        record = run(cfg, tmp_path / "cut")
    assert "checkpoint.pt is unreadable" in caplog.text and "starting over" in caplog.text
    assert record["resumed_from_epoch"] is None and record["status"] == "completed"
    assert without_timings(metrics(tmp_path / "cut")) == without_timings(
        metrics(tmp_path / "straight")
    )


def test_completed_job_is_skipped_without_loading_data(
    tiny_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny_config()
    first = run(cfg, tmp_path)

    def no_data(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a completed job loaded its data")

    monkeypatch.setattr(train, "build_pipeline", no_data)
    assert run(cfg, tmp_path) == json.loads((tmp_path / "result.json").read_text())
    assert (
        first["ended_at"]
        == run({**cfg, "trainer": {**cfg["trainer"], "threads": 1}}, tmp_path)["ended_at"]
    )  # where it runs is not identity


def test_diverged_job_is_not_rerun_unless_asked(tiny_config: Config, tmp_path: Path) -> None:
    cfg = tiny_config("optim.lr=1e30")
    first = run(cfg, tmp_path)
    assert run(cfg, tmp_path)["ended_at"] == first["ended_at"]
    again = run(tiny_config("optim.lr=1e30", "resume.rerun_diverged=true"), tmp_path)
    assert again["status"] == "diverged" and again["ended_at"] >= first["ended_at"]
    assert again["started_at"] >= first["ended_at"]


def test_job_dir_of_another_config_is_refused(tiny_config: Config, tmp_path: Path) -> None:
    run(tiny_config(), tmp_path)
    with pytest.raises(resume.JobDirConflict, match=r"optim.lr: 0.003 there, 0.001 now"):
        run(tiny_config("optim.lr=0.001"), tmp_path)


def test_progress_bar_shows_epoch_step_loss_accuracy_and_rate(
    tiny_config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(
        tiny_config("trainer.progress=bar", "data.train_size=1000", "trainer.batch_size=50"),
        tmp_path,
    )
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "step" in err
    assert "loss=" in err and "acc=" in err and "samples_s=" in err


def test_log_mode_writes_one_line_per_epoch(
    tiny_config: Config,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with caplog.at_level(logging.INFO, logger="vitbn_sweep"):
        run(tiny_config("trainer.progress=log", "trainer.epochs=2"), tmp_path)
    lines = [r.getMessage() for r in caplog.records if ": epoch" in r.getMessage()]
    assert len(lines) == 2 and "epoch 2/2" in lines[1] and "samples/s" in lines[1]
    assert "step" not in capsys.readouterr().err


def test_bf16_on_a_cpu_without_bf16_units_is_refused_before_anything_is_written(
    tiny_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("vitbn_sweep.accel.cpu_bf16_flags", lambda: [])
    with pytest.raises(train.ConfigError, match="trainer.precision=bf16 on the CPU needs bf16"):
        run(tiny_config("trainer.precision=bf16", "trainer.device=cpu"), tmp_path / "job")
    assert not (tmp_path / "job").exists()


def test_evaluating_in_chunks_scores_the_same() -> None:
    import torch

    from tests.test_models import make

    model = make("vitbnffn", depth=2)
    images, labels = torch.rand(50, 1, 28, 28), torch.randint(0, 10, (50,))
    model.train()
    model(images)  # running statistics away from their initial values
    whole = train.evaluate(model, [(images, labels)])
    assert train.evaluate(model, [(images, labels)], chunk=7) == whole
    assert not model.training


@pytest.mark.parametrize("pipeline", ["fast", "torchvision"])
def test_a_lone_last_sample_joins_the_batch_before_it(
    tiny_config: Config, tmp_path: Path, pipeline: str
) -> None:
    # 501 = 5 x 100 + 1: a batch of one would crash BatchNorm1d after an epoch of work.
    cfg = tiny_config(
        "model=dnnbn", "data.train_size=501", "trainer.batch_size=100", f"data.pipeline={pipeline}"
    )
    record = run(cfg, tmp_path)
    assert record["status"] == "completed" and record["epochs_run"] == 1


@pytest.mark.slow
def test_training_learns(tiny_config: Config, tmp_path: Path) -> None:
    # Chance is 10 %: a depth-1 ViT on 3,000 augmented images reaches ~40 % in 3 epochs.
    cfg = tiny_config(
        "model=vit",
        "model.depth=1",
        "data.train_size=3000",
        "data.test_size=500",
        "trainer.batch_size=100",
        "trainer.epochs=3",
    )
    record = run(cfg, tmp_path)
    assert record["final"]["test_acc"] > 0.3, record["final"]
    assert record["final"]["train_loss"] < 0.9 * math.log(10), record["final"]


def test_the_record_says_how_many_threads_trained(tiny_config: Config, tmp_path: Path) -> None:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)  # the process's count until the job sets its own
    try:
        record = run(tiny_config("trainer.threads=1"), tmp_path)
    finally:
        torch.set_num_threads(before)
    assert record["threads"] == 1
