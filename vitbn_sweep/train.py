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
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from vitbn_sweep import store
from vitbn_sweep.accel import Autocast, autocast_factory, prepare_model
from vitbn_sweep.data import Batch, Pipeline, build_pipeline
from vitbn_sweep.lifecycle import Job, open_jobs, training
from vitbn_sweep.models import build_model
from vitbn_sweep.progress import Progress
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


def run(cfg: DictConfig | Mapping[str, Any], job_dir: str | Path | None = None) -> dict[str, Any]:
    """Train one configured model; write ``metrics.csv`` and ``result.json`` to ``job_dir``.

    ``job_dir`` defaults to Hydra's output directory of the current job. Invalid
    config values raise ``ConfigError`` before anything is written. A job found
    completed in ``job_dir`` is skipped, one found cut short continues from its
    checkpoint (see ``vitbn_sweep.store.resume``). Returns the result record.
    """
    config = store.plain_config(cfg)
    validate(config)
    trainer = config["trainer"]
    device = resolve_device(trainer["device"])
    autocast = autocast_factory(trainer["precision"], device)  # bf16 off CUDA: ConfigError
    if trainer["cuda_graph"]:
        raise ConfigError(
            "trainer.cuda_graph=true: CUDA graphs replay the stacked training step, so they "
            "need hydra/launcher=stacked (or stacked_slurm) in a multirun (-m); "
            "a job run alone: trainer.cuda_graph=false"
        )
    job_dir = Path(job_dir) if job_dir is not None else _hydra_output_dir()
    (job,) = open_jobs([config], [job_dir], device)
    if not isinstance(job, Job):
        return job  # ended before (skipped), or another live run trains it
    ckpt = job.checkpoint
    job.log(
        logging.INFO,
        "on %s (%s), %d threads -> %s%s",
        device,
        socket.gethostname(),
        torch.get_num_threads(),
        job_dir,
        f" (resuming after epoch {ckpt['epoch']})" if ckpt else "",
    )
    with training([job]):  # an interrupt cuts the job: the same command continues it
        _train(job, device, autocast)
    if isinstance(job.outcome, Exception):
        raise job.outcome  # its result.json says failed
    return job.outcome  # type: ignore[return-value]  # training ended it


def _train(job: Job, device: torch.device, autocast: Autocast) -> None:
    """The epoch loop, from the epoch after the job's checkpoint (or the first) to the last;
    ends the job as completed, or diverged."""
    config, ckpt = job.config, job.checkpoint
    trainer = config["trainer"]
    model, optimizer, pipeline = build(config, device, checkpoint=ckpt)
    model = prepare_model(model, compile=trainer["compile"], device=device)
    steps = math.ceil(pipeline.num_train / trainer["batch_size"])
    epochs, eval_chunk = trainer["epochs"], trainer["eval_chunk"]
    for epoch in range(job.epoch, epochs + 1):
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
        except Diverged as exc:
            job.diverged(exc.epoch, exc.step)
            return
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
        job.end_epoch(row, state=lambda: (model.state_dict(), optimizer.state_dict()))
    job.finish(store.COMPLETED)


def build(
    config: Mapping[str, Any], device: torch.device, *, checkpoint: Mapping[str, Any]
) -> tuple[nn.Module, torch.optim.Adam, Pipeline]:
    """The job's model (on ``device``, not compiled), Adam and data pipeline, continued from
    ``checkpoint`` where it has one ({}: a fresh start).

    The initial weights come from ``torch.manual_seed(trainer.seed)``, so a stacked group
    (``stacked_train``) builds each member here exactly as the job alone is built.
    """
    trainer, data, optim = config["trainer"], config["data"], config["optim"]
    torch.manual_seed(trainer["seed"])
    model = build_model(
        config["model"],
        image_size=data["image_size"],
        channels=data["channels"],
        num_classes=data["num_classes"],
    ).to(device)
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=optim["lr"],
        betas=tuple(optim["betas"]),
        eps=optim["eps"],
        weight_decay=optim["weight_decay"],
    )
    if checkpoint:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
    pipeline = build_pipeline(
        data,
        batch_size=trainer["batch_size"],
        test_batch_size=trainer["test_batch_size"],
        seed=trainer["seed"],
        device=device,
    )
    return model, optimizer, pipeline


def _hydra_output_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        raise ValueError("run(cfg) outside a Hydra job needs an explicit job_dir")
    return Path(HydraConfig.get().runtime.output_dir)
