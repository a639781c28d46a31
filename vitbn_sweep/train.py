"""One training job: ``run(cfg)`` trains the configured model and writes the results contract.

Importable and picklable (a plain module-level function), so Hydra's launchers,
joblib and submitit can all ship it to wherever the job runs. Randomness: the
model's initial weights come from ``trainer.seed``; the data pipeline draws each
epoch's shuffle and augmentation from (seed, epoch). A checkpoint after every
epoch (model, optimizer, metrics) therefore lets a cut job continue to exactly
the metrics of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from vitbn_sweep import claims, results, resume, store
from vitbn_sweep.accel import Autocast, autocast_factory, prepare_model
from vitbn_sweep.data import Batch, build_pipeline
from vitbn_sweep.identity import job_identity, job_name
from vitbn_sweep.models import build_model
from vitbn_sweep.progress import Progress
from vitbn_sweep.tracking import build_tracker
from vitbn_sweep.validate import ConfigError, validate

log = logging.getLogger(__name__)
DIVERGENCE_CHECK_EVERY = 20  # steps between finite-loss checks (each one syncs the device)


class Diverged(Exception):
    """The train loss became NaN or infinite."""

    def __init__(self, epoch: int, step: int) -> None:
        super().__init__(f"train loss not finite at epoch {epoch}, step {step}")
        self.epoch, self.step = epoch, step


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when present, else CPU; an unavailable device is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device={name}: CUDA is not available here; use auto or cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"trainer.device={name}: MPS is not available here; use auto or cpu")
    return device


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Batch],
    *,
    epoch: int,
    check_divergence: bool,
    progress: Progress,
    autocast: Autocast = contextlib.nullcontext,
) -> dict[str, float]:
    """One pass over ``batches``; returns mean loss, accuracy and throughput."""
    model.train()
    start = time.perf_counter()
    loss_sum = correct = torch.zeros(())
    seen = step = 0
    for step, (images, labels) in enumerate(batches, start=1):
        with autocast():  # forward and loss only; weights and gradients stay fp32
            logits = model(images)
            loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum = loss_sum + loss.detach() * len(labels)  # running sums stay on the device
        correct = correct + (logits.argmax(1) == labels).sum()
        seen += len(labels)
        if check_divergence and step % DIVERGENCE_CHECK_EVERY == 0 and not loss_sum.isfinite():
            raise Diverged(epoch, step)
        progress.step(step, loss_sum, correct, seen, start)
    if seen == 0:
        raise RuntimeError("the training set yielded no batch")
    if check_divergence and not loss_sum.isfinite():
        raise Diverged(epoch, step)
    seconds = time.perf_counter() - start
    return {
        "train_loss": loss_sum.item() / seen,
        "train_acc": correct.item() / seen,
        "samples_per_s": seen / seconds,
    }


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Iterable[Batch],
    autocast: Autocast = contextlib.nullcontext,
    *,
    chunk: int | None = None,
) -> float:
    """Top-1 accuracy with the model in eval mode (BatchNorm on running statistics).

    ``chunk``: forward each test batch in pieces of this many images. In eval mode
    every sample is scored on its own, so this bounds memory without changing the
    result (a 5,000-image batch of a depth-7 ViT holds ~0.5 GB of q/k/v at once).
    """
    model.eval()
    correct, total = 0, 0
    for images, labels in batches:
        for part, part_labels in zip(
            images.split(chunk or len(images)), labels.split(chunk or len(images)), strict=True
        ):
            with autocast():
                logits = model(part)
            correct += (logits.argmax(1) == part_labels).sum().item()
        total += len(labels)
    return correct / total


def summarize(rows: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(final, best) of the metrics rows: the last epoch, and the epoch of best test_acc."""
    if not rows:
        return None, None
    best = max(rows, key=lambda r: (r["test_acc"], -r["epoch"]))
    return dict(rows[-1]), {
        "test_acc": best["test_acc"],
        "epoch": best["epoch"],
        "test_acc_clean": max(r["test_acc_clean"] for r in rows),
    }


def start_record(
    config: dict[str, Any], device: torch.device, ckpt: Mapping[str, Any]
) -> dict[str, Any]:
    """The result record of a job that starts now, or continues from ``ckpt``."""
    return {
        "schema_version": results.SCHEMA_VERSION,
        "status": None,
        "config": config,
        "final": None,
        "best": None,
        "epochs_run": 0,
        "total_seconds": None,
        "diverged_at": None,
        "error": None,
        "resumed_from_epoch": ckpt.get("epoch"),
        "versions": results.versions(),
        "host": results.host(device),
        "where": results.where(),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "started_at": ckpt.get("started_at", results.now()),
        "ended_at": None,
    }


def end_epoch(
    job_dir: Path,
    config: Mapping[str, Any],
    rows: list[dict[str, Any]],
    row: dict[str, Any],
    *,
    state: Callable[[], tuple[dict[str, Any], dict[str, Any]]],
    t0: float,
    started_at: str,
    tracker: Any,
) -> None:
    """Record a finished epoch: the checkpoint (``state()`` gives the model's and the
    optimizer's state dicts), then ``row`` into metrics.csv (never ahead of the checkpoint a
    rerun continues from), then the tracker."""
    rows.append(row)
    if config["resume"]["checkpoint"]:
        model_state, optimizer_state = state()
        resume.save_checkpoint(
            job_dir,
            {
                "identity": job_identity(config),
                "epoch": row["epoch"],
                "rows": rows,
                "model": model_state,
                "optimizer": optimizer_state,
                "seconds": time.perf_counter() - t0,
                "started_at": started_at,
            },
        )
    store.write_metrics(job_dir, rows)
    tracker.log_epoch(row)


def epoch_line(row: Mapping[str, Any], epochs: int) -> str:
    """The per-epoch log line of a metrics row."""
    return (
        f"epoch {row['epoch']}/{epochs} train_loss {row['train_loss']:.4f} "
        f"train_acc {row['train_acc']:.4f} test_acc {row['test_acc']:.4f} "
        f"clean {row['test_acc_clean']:.4f} | {row['epoch_seconds']:.1f}s "
        f"{row['samples_per_s']:.0f} samples/s"
    )


def finish_job(
    job_dir: Path,
    record: dict[str, Any],
    rows: list[dict[str, Any]],
    *,
    status: str,
    t0: float,
    owner: Mapping[str, Any],
    tracker: Any,
) -> dict[str, Any]:
    """End a job with ``status``: complete ``record`` and write result.json, release the
    claim, drop a completed job's checkpoint (unless kept), close the tracker run.

    A result.json that cannot be written (a full disk) raises ``store.WriteError``: the job
    then counts as failed in its sweep's summary, and a rerun continues it."""
    record["final"], record["best"] = summarize(rows)
    record.update(
        status=status,
        epochs_run=len(rows),
        ended_at=results.now(),
        total_seconds=time.perf_counter() - t0,
    )
    try:
        store.write_result(job_dir, record)
    finally:
        claims.release(job_dir, owner)
    if status == "completed" and not record["config"]["resume"]["keep_checkpoint"]:
        (job_dir / store.CHECKPOINT_FILE).unlink(missing_ok=True)
    tracker.finish(record)
    return record


def error_record(exc: BaseException) -> dict[str, Any]:
    """A failed job's ``error``: its type, message (a write's names the file) and traceback."""
    return {"type": type(exc).__name__, "message": str(exc), "traceback": traceback.format_exc()}


def run(cfg: DictConfig | Mapping[str, Any], job_dir: str | Path | None = None) -> dict[str, Any]:
    """Train one configured model; write ``metrics.csv`` and ``result.json`` to ``job_dir``.

    ``job_dir`` defaults to Hydra's output directory of the current job. Invalid
    config values raise ``ConfigError`` before anything is written. A job found
    completed in ``job_dir`` is skipped, one found cut short continues from its
    checkpoint (see ``vitbn_sweep.resume``). Returns the result record.
    """
    config = store.plain_config(cfg)
    validate(config)
    trainer = config["trainer"]
    device = resolve_device(trainer["device"])
    autocast_factory(trainer["precision"], device)  # bf16 off CUDA: ConfigError, nothing written
    if trainer["cuda_graph"]:
        raise ConfigError(
            "trainer.cuda_graph=true: CUDA graphs replay the stacked training step, so they "
            "need hydra/launcher=stacked (or stacked_slurm) in a multirun (-m); "
            "a job run alone: trainer.cuda_graph=false"
        )
    job_dir = Path(job_dir) if job_dir is not None else _hydra_output_dir()
    name = job_name(config)
    todo = resume.plan(job_dir, config)
    if todo.action == "skip":
        log.info("%s: already %s in %s; skipped", name, todo.previous["status"], job_dir)
        return todo.previous
    token = claims.job_token()
    claims.check_planned(job_dir, token, job_identity(config))  # conf/ edited since the plan?
    other = claims.foreign_live_owner(job_dir, token)
    if other is not None:
        log.warning("%s: %s is training %s; not training it twice", name, other, job_dir)
        return {"status": "claimed", "owner": other}
    owner = claims.this_owner(token)
    claims.claim(job_dir, owner)

    if trainer["threads"] is not None:
        torch.set_num_threads(trainer["threads"])
    if device.type == "cpu":
        torch.set_flush_denormal(trainer["flush_denormal"])
    ckpt = todo.checkpoint or {}
    rows: list[dict[str, Any]] = ckpt.get("rows", [])
    t0 = time.perf_counter() - ckpt.get("seconds", 0.0)
    record = start_record(config, device, ckpt)
    tracker = build_tracker(config["logger"], job_dir=job_dir)

    def finish(status: str) -> dict[str, Any]:
        return finish_job(job_dir, record, rows, status=status, t0=t0, owner=owner, tracker=tracker)

    log.info(
        "%s on %s (%s), %d threads -> %s%s",
        name,
        device,
        socket.gethostname(),
        torch.get_num_threads(),
        job_dir,
        f" (resuming after epoch {ckpt['epoch']})" if ckpt else "",
    )
    try:
        job_dir.mkdir(parents=True, exist_ok=True)
        tracker.start(config)
        _train(
            config,
            device,
            job_dir,
            rows,
            ckpt,
            tracker=tracker,
            name=name,
            t0=t0,
            started_at=record["started_at"],
        )
    except Diverged as exc:
        log.warning("%s: %s; recorded as diverged", name, exc)
        record["diverged_at"] = {"epoch": exc.epoch, "step": exc.step}
        return finish("diverged")
    except (KeyboardInterrupt, SystemExit):
        # Cut short from outside (Ctrl-C, SIGTERM, a scheduler's signal): no result.json,
        # the claim released, so the same command continues from the last checkpoint.
        claims.release(job_dir, owner)
        raise
    except Exception as exc:
        record["error"] = error_record(exc)
        finish("failed")
        raise
    return finish("completed")


def _train(
    config: dict[str, Any],
    device: torch.device,
    job_dir: Path,
    rows: list[dict[str, Any]],
    ckpt: Mapping[str, Any],
    *,
    tracker: Any,
    name: str,
    t0: float,
    started_at: str,
) -> None:
    """The epoch loop, from the epoch after ``ckpt`` (or the first) to the last."""
    trainer, data, optim = config["trainer"], config["data"], config["optim"]
    torch.manual_seed(trainer["seed"])
    autocast = autocast_factory(trainer["precision"], device)
    model = prepare_model(
        build_model(
            config["model"],
            image_size=data["image_size"],
            channels=data["channels"],
            num_classes=data["num_classes"],
        ),
        compile=trainer["compile"],
        device=device,
    )
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=optim["lr"],
        betas=tuple(optim["betas"]),
        eps=optim["eps"],
        weight_decay=optim["weight_decay"],
    )
    if ckpt:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
    pipeline = build_pipeline(
        data,
        batch_size=trainer["batch_size"],
        test_batch_size=trainer["test_batch_size"],
        seed=trainer["seed"],
        device=device,
    )
    steps = math.ceil(pipeline.num_train / trainer["batch_size"])
    epochs, eval_chunk = trainer["epochs"], trainer["eval_chunk"]
    for epoch in range(len(rows) + 1, epochs + 1):
        progress = Progress.create(trainer["progress"], epoch=epoch, epochs=epochs, steps=steps)
        epoch_start = time.perf_counter()
        try:
            stats = train_epoch(
                model,
                optimizer,
                pipeline.train_batches(epoch),
                epoch=epoch,
                check_divergence=trainer["diverge_check"],
                progress=progress,
                autocast=autocast,
            )
        finally:
            progress.close()
        row = {
            "epoch": epoch,
            "train_loss": stats["train_loss"],
            "train_acc": stats["train_acc"],
            "test_acc": evaluate(
                model, pipeline.test_batches(epoch, augmented=True), autocast, chunk=eval_chunk
            ),
            "test_acc_clean": evaluate(
                model, pipeline.test_batches(epoch, augmented=False), autocast, chunk=eval_chunk
            ),
            "epoch_seconds": time.perf_counter() - epoch_start,
            "samples_per_s": stats["samples_per_s"],
        }
        end_epoch(
            job_dir,
            config,
            rows,
            row,
            state=lambda: (model.state_dict(), optimizer.state_dict()),
            t0=t0,
            started_at=started_at,
            tracker=tracker,
        )
        log.info("%s | %s", name, epoch_line(row, epochs))


def _hydra_output_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        raise ValueError("run(cfg) outside a Hydra job needs an explicit job_dir")
    return Path(HydraConfig.get().runtime.output_dir)
