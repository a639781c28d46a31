"""Checks a composed config before anything runs or is written.

Imports nothing heavy (no torch): the sweeper calls it on every job of a sweep
before the first one is launched, also on a Slurm login node.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from vitbn_sweep.choices import NORMS, PIPELINES, PRECISIONS, VIT_NORM_SLOTS
from vitbn_sweep.identity import dig
from vitbn_sweep.schema import unknown_key_errors
from vitbn_sweep.tracking.settings import logger_errors

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class ConfigError(ValueError):
    """A config value is invalid; the message names the key and what would be valid."""


def _int_at_least(errors: list[str], cfg: Mapping[str, Any], key: str, low: int) -> None:
    value = dig(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        errors.append(f"{key} must be an integer >= {low}, got {value!r}")


def _positive_number(errors: list[str], cfg: Mapping[str, Any], key: str) -> None:
    value = dig(cfg, key)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or not value > 0:  # inf diverges at step 2
        errors.append(f"{key} must be a finite number > 0, got {value!r}")


def _number_in(
    errors: list[str],
    cfg: Mapping[str, Any],
    key: str,
    low: float,
    high: float | None = None,
    what: str = "a number",
) -> None:
    value = dig(cfg, key)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        errors.append(f"{key} must be {what} {bounds}, got {value!r}")


def _one_of(errors: list[str], cfg: Mapping[str, Any], key: str, choices: tuple) -> None:
    value = dig(cfg, key)
    if value not in choices:
        errors.append(f"{key} must be one of {', '.join(map(str, choices))}, got {value!r}")


def _boolean(errors: list[str], cfg: Mapping[str, Any], key: str) -> None:
    value = dig(cfg, key)
    if not isinstance(value, bool):
        errors.append(f"{key} must be true or false, got {value!r}")


def config_errors(cfg: Mapping[str, Any]) -> list[str]:
    """Every problem with ``cfg`` (a resolved, plain mapping), one line each."""
    errors: list[str] = unknown_key_errors(cfg)
    for key, low in [
        ("trainer.epochs", 1),
        ("trainer.seed", 0),
        ("trainer.test_batch_size", 1),
        ("trainer.eval_chunk", 1),
        ("model.depth", 1),
        ("data.image_size", 1),
        ("data.channels", 1),
        ("data.num_classes", 2),
        ("data.num_workers", 0),
    ]:
        _int_at_least(errors, cfg, key, low)
    _positive_number(errors, cfg, "optim.lr")

    arch = dig(cfg, "model.arch")
    sample_batchnorm = False  # a BatchNorm whose statistics come from one value per sample
    _one_of(errors, cfg, "model.arch", tuple(NORMS))
    if arch == "vit":
        for key in (
            "model.dim",
            "model.mlp_dim",
            "model.heads",
            "model.dim_head",
            "model.patch_size",
        ):
            _int_at_least(errors, cfg, key, 1)
        for slot in VIT_NORM_SLOTS:
            _one_of(errors, cfg, f"model.norms.{slot}", NORMS["vit"])
        patch, size = dig(cfg, "model.patch_size"), dig(cfg, "data.image_size")
        if isinstance(patch, int) and isinstance(size, int) and patch >= 1 and size % patch:
            divisors = [d for d in range(1, size + 1) if size % d == 0]
            errors.append(
                f"model.patch_size must divide data.image_size={size} "
                f"(one of {', '.join(map(str, divisors))}), got {patch}"
            )
    elif arch in NORMS:
        _int_at_least(errors, cfg, "model.hidden", 1)
        _one_of(errors, cfg, "model.norms.hidden", NORMS["dnn"])
        sample_batchnorm = dig(cfg, "model.norms.hidden") == "batch"

    # BatchNorm over one value per channel has no variance: the DNN's BatchNorm1d needs two
    # samples per batch. The ViT's token BatchNorm counts every token (17 per image at
    # 28/7), so a batch of one image is fine. (The last batch never holds one sample alone:
    # vitbn_sweep.data.base.batch_bounds.)
    _int_at_least(errors, cfg, "trainer.batch_size", 2 if sample_batchnorm else 1)

    device = dig(cfg, "trainer.device")
    if not isinstance(device, str) or not DEVICE_PATTERN.match(device):
        errors.append(f"trainer.device must be auto, cpu, cuda, cuda:N or mps, got {device!r}")
    for key in ("trainer.threads", "data.train_size", "data.test_size"):
        if dig(cfg, key) is not None:  # null: every core, the whole split
            _int_at_least(errors, cfg, key, 1)
    _one_of(errors, cfg, "trainer.progress", ("auto", "bar", "log"))
    if dig(cfg, "trainer.cuda_graph") is True and dig(cfg, "trainer.compile") is True:
        errors.append(
            "trainer.cuda_graph=true and trainer.compile=true together are not supported "
            "(the graph replays the eager step): set one of them to false"
        )
    _one_of(errors, cfg, "trainer.precision", PRECISIONS)

    _one_of(errors, cfg, "data.pipeline", PIPELINES)
    _int_at_least(errors, cfg, "data.test_seed", 0)
    _one_of(errors, cfg, "data.subset", ("first", "random"))
    _number_in(errors, cfg, "data.augment.rotation_degrees", 0)
    _number_in(errors, cfg, "data.augment.translate", 0, 1)
    _number_in(errors, cfg, "data.augment.zoom_out_p", 0, 1, "a probability")
    side = dig(cfg, "data.augment.zoom_out_side_range")
    if not (isinstance(side, (list, tuple)) and len(side) == 2 and 1 <= side[0] <= side[1]):
        errors.append(
            "data.augment.zoom_out_side_range must be [low, high] with 1 <= low <= high, "
            f"got {side!r}"
        )
    for key in (
        "trainer.compile",
        "trainer.flush_denormal",
        "trainer.cuda_graph",
        "trainer.diverge_check",
        "data.test_redraw",
        "data.download",
        "data.augment.train",
        "data.augment.test",
        "resume.enabled",
        "resume.checkpoint",
        "resume.keep_checkpoint",
        "resume.rerun_failed",
        "resume.rerun_diverged",
    ):
        _boolean(errors, cfg, key)
    errors.extend(logger_errors(cfg))
    return errors


def validate(cfg: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` listing every invalid value in ``cfg``."""
    errors = config_errors(cfg)
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(errors))
