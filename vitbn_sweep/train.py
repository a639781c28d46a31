"""One training job: ``run(cfg)`` trains the configured model and writes the results contract.

Importable and picklable (a plain module-level function), so Hydra's launchers,
joblib and submitit can all ship it to wherever the job runs.
"""

from __future__ import annotations

import logging
import math
import socket
import time
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn

from vitbn_sweep import results
from vitbn_sweep.data import Batch, build_pipeline
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
) -> dict[str, float]:
    """One pass over ``batches``; returns mean loss, accuracy, samples and seconds."""
    model.train()
    start = time.perf_counter()
    loss_sum = correct = None
    seen = 0
    for step, (images, labels) in enumerate(batches, start=1):
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        batch_loss = loss.detach() * len(labels)
        batch_correct = (logits.argmax(1) == labels).sum()
        loss_sum = batch_loss if loss_sum is None else loss_sum + batch_loss
        correct = batch_correct if correct is None else correct + batch_correct
        seen += len(labels)
        if check_divergence and step % DIVERGENCE_CHECK_EVERY == 0 and not torch.isfinite(loss_sum):
            raise Diverged(epoch, step)
        progress.step(step, loss_sum, correct, seen, start)
    if seen == 0:
        raise RuntimeError("the training set yielded no batch")
    if check_divergence and not torch.isfinite(loss_sum):
        raise Diverged(epoch, step)
    seconds = time.perf_counter() - start
    return {
        "train_loss": loss_sum.item() / seen,
        "train_acc": correct.item() / seen,
        "train_seconds": seconds,
        "samples_per_s": seen / seconds,
    }


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[Batch]) -> float:
    """Top-1 accuracy with the model in eval mode (BatchNorm on running statistics)."""
    model.eval()
    correct, total = 0, 0
    for images, labels in batches:
        correct += (model(images).argmax(1) == labels).sum().item()
        total += len(labels)
    return correct / total


def _summary(rows: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    if not rows:
        return None, None
    best = max(rows, key=lambda r: (r["test_acc"], -r["epoch"]))
    return dict(rows[-1]), {
        "test_acc": best["test_acc"],
        "epoch": best["epoch"],
        "test_acc_clean": max(r["test_acc_clean"] for r in rows),
    }


def run(cfg: DictConfig | Mapping[str, Any], job_dir: str | Path | None = None) -> dict[str, Any]:
    """Train one configured model; write ``metrics.csv`` and ``result.json`` to ``job_dir``.

    ``job_dir`` defaults to Hydra's output directory of the current job. Invalid
    config values raise ``ConfigError`` before anything is written. Returns the
    result record (also written as ``result.json``).
    """
    config = cfg if isinstance(cfg, dict) else OmegaConf.to_container(cfg, resolve=True)
    config = {k: v for k, v in config.items() if k != "hydra"}
    validate(config)
    trainer = config["trainer"]
    device = resolve_device(trainer["device"])
    job_dir = Path(job_dir) if job_dir is not None else _hydra_output_dir()
    if trainer["threads"] is not None:
        torch.set_num_threads(trainer["threads"])

    tracker = build_tracker(config["logger"], job_dir=job_dir)
    started, t0 = results.now(), time.perf_counter()
    rows: list[dict[str, Any]] = []
    record: dict[str, Any] = {
        "schema_version": results.SCHEMA_VERSION,
        "status": None,
        "config": config,
        "final": None,
        "best": None,
        "epochs_run": 0,
        "total_seconds": None,
        "diverged_at": None,
        "error": None,
        "versions": results.versions(),
        "host": results.host(),
        "where": results.where(),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "started_at": started,
        "ended_at": None,
    }

    def finish(status: str) -> dict[str, Any]:
        record["final"], record["best"] = _summary(rows)
        record.update(
            status=status,
            epochs_run=len(rows),
            ended_at=results.now(),
            total_seconds=time.perf_counter() - t0,
        )
        results.write_result(job_dir, record)
        tracker.finish(record)
        return record

    model_cfg = config["model"]
    name = (
        f"{model_cfg['name']} depth={model_cfg['depth']} "
        f"lr={config['optim']['lr']} seed={trainer['seed']}"
    )
    log.info(
        "job %s on %s (%s), %d threads -> %s",
        name,
        device,
        socket.gethostname(),
        torch.get_num_threads(),
        job_dir,
    )
    try:
        job_dir.mkdir(parents=True, exist_ok=True)
        tracker.start(config)
        torch.manual_seed(trainer["seed"])
        data = config["data"]
        pipeline = build_pipeline(
            data,
            batch_size=trainer["batch_size"],
            test_batch_size=trainer["test_batch_size"],
            seed=trainer["seed"],
            device=device,
        )
        model = build_model(
            config["model"],
            image_size=data["image_size"],
            channels=data["channels"],
            num_classes=data["num_classes"],
        ).to(device)
        optim = config["optim"]
        optimizer = torch.optim.Adam(
            model.parameters(),
            lr=optim["lr"],
            betas=tuple(optim["betas"]),
            eps=optim["eps"],
            weight_decay=optim["weight_decay"],
        )
        steps = math.ceil(pipeline.num_train / trainer["batch_size"])
        for epoch in range(1, trainer["epochs"] + 1):
            progress = Progress.create(
                trainer["progress"], epoch=epoch, epochs=trainer["epochs"], steps=steps
            )
            epoch_start = time.perf_counter()
            try:
                stats = train_epoch(
                    model,
                    optimizer,
                    pipeline.train_batches(epoch),
                    epoch=epoch,
                    check_divergence=trainer["diverge_check"],
                    progress=progress,
                )
            finally:
                progress.close()
            test_acc = evaluate(model, pipeline.test_batches(epoch, augmented=True))
            test_acc_clean = evaluate(model, pipeline.test_batches(epoch, augmented=False))
            rows.append(
                {
                    "epoch": epoch,
                    "train_loss": stats["train_loss"],
                    "train_acc": stats["train_acc"],
                    "test_acc": test_acc,
                    "test_acc_clean": test_acc_clean,
                    "epoch_seconds": time.perf_counter() - epoch_start,
                    "samples_per_s": stats["samples_per_s"],
                }
            )
            results.write_metrics(job_dir, rows)
            tracker.log_epoch(rows[-1])
            log.info(
                "%s | epoch %d/%d train_loss %.4f train_acc %.4f test_acc %.4f clean %.4f "
                "| %.1fs %.0f samples/s",
                name,
                epoch,
                trainer["epochs"],
                stats["train_loss"],
                stats["train_acc"],
                test_acc,
                test_acc_clean,
                rows[-1]["epoch_seconds"],
                stats["samples_per_s"],
            )
    except Diverged as exc:
        log.warning("%s: %s; recorded as diverged", name, exc)
        record["diverged_at"] = {"epoch": exc.epoch, "step": exc.step}
        return finish("diverged")
    except BaseException as exc:
        record["error"] = {
            "type": type(exc).__name__,
            "message": str(exc),
            "traceback": traceback.format_exc(),
        }
        finish("failed")
        raise
    return finish("completed")


def _hydra_output_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        raise ValueError("run(cfg) outside a Hydra job needs an explicit job_dir")
    return Path(HydraConfig.get().runtime.output_dir)
