"""Synthetic job dirs in the results contract, with accuracies chosen by the test."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from vitbn_sweep.store import METRIC_COLUMNS


def config(model: str, depth: int, seed: int, lr: float, epochs: int, batch_size: int = 100):
    return {
        "model": {"name": model, "depth": depth, "norms": {"ffn_hidden": model}},
        "data": {
            "name": "mnist",
            "root": "/somewhere",
            "num_classes": 10,
            "pipeline": "torchvision",
            "train_size": 200,
            "test_size": 100,
            "augment": {"train": True, "test": True, "zoom_out_side_range": [2.0, 3.0]},
        },
        "optim": {"name": "adam", "lr": lr},
        "trainer": {"epochs": epochs, "batch_size": batch_size, "seed": seed, "device": "cpu"},
        "logger": {"name": "none"},
        "sweep_name": "synthetic",
    }


def write_job(
    root: Path,
    model: str,
    depth: int,
    seed: int,
    accs: Sequence[float],
    *,
    lr: float = 0.003,
    epochs: int | None = None,
    clean: Sequence[float] | None = None,
    status: str = "completed",
    result: bool = True,
    schema_version: int = 1,
    ended_at: str = "2026-01-01T00:00:00+00:00",
    name: str | None = None,
) -> Path:
    """A job dir whose test_acc by epoch is ``accs`` (clean accuracy: ``clean`` or accs + 0.05).

    ``epochs`` is the configured count (default ``len(accs)``; more for a diverged job);
    ``result=False`` leaves out result.json, as for a running or cut job.
    """
    job = root / (name or f"model={model},depth={depth},lr={lr},seed={seed}")
    job.mkdir(parents=True)
    clean = list(clean) if clean is not None else [a + 0.05 for a in accs]
    rows = [
        dict(zip(METRIC_COLUMNS, (e, 2.0 - a, a, a, c, 1.0, 200.0), strict=True))
        for e, (a, c) in enumerate(zip(accs, clean, strict=True), start=1)
    ]
    lines = [",".join(METRIC_COLUMNS)] + [",".join(str(r[k]) for k in METRIC_COLUMNS) for r in rows]
    (job / "metrics.csv").write_text("\n".join(lines) + "\n")
    if not result:
        return job
    best = max(rows, key=lambda r: r["test_acc"]) if rows else None
    record = {
        "schema_version": schema_version,
        "status": status,
        "config": config(model, depth, seed, lr, epochs or len(accs)),
        "final": rows[-1] if rows else None,
        "best": {"test_acc": best["test_acc"], "epoch": best["epoch"], "test_acc_clean": max(clean)}
        if best
        else None,
        "epochs_run": len(rows),
        "total_seconds": 1.0 * len(rows),
        "diverged_at": {"epoch": len(rows) + 1, "step": 3} if status == "diverged" else None,
        "error": {"type": "RuntimeError", "message": "boom"} if status == "failed" else None,
        "versions": {"python": "3.11", "vitbn_sweep": "0.1.0"},
        "host": {"hostname": "test"},
        "where": {"scheduler": "local"},
        "started_at": "2026-01-01T00:00:00+00:00",
        "ended_at": ended_at,
    }
    (job / "result.json").write_text(json.dumps(record))
    return job


def write_grid(
    root: Path,
    diffs: dict[int, float],
    *,
    seeds: int = 3,
    lr: float = 0.003,
    base: float = 0.80,
    noise: float = 0.001,
    models: tuple[str, str] = ("vitbnffn", "vit"),
    epochs: int = 3,
) -> None:
    """Both models at every depth in ``diffs``; the candidate's mean last-epoch accuracy is
    the baseline's plus ``diffs[depth]``; seeds spread evenly by +-``noise`` around each mean,
    in opposite order for the two models (so the per-seed differences spread too)."""
    offsets = [noise * (2 * s / (seeds - 1) - 1) if seeds > 1 else 0.0 for s in range(seeds)]
    candidate, baseline = models
    for depth, diff in diffs.items():
        for seed, offset in enumerate(offsets):
            for model, final in ((baseline, base + offset), (candidate, base + diff - offset)):
                accs = [final * (e + 1) / epochs for e in range(epochs)]
                accs[-1] = final
                write_job(root / f"lr{lr}", model, depth, seed, accs, lr=lr)
