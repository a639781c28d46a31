"""Checks of the ``logger.*`` config keys (imports nothing heavy: ``validate`` calls it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vitbn_sweep.choices import LOGGERS, WANDB_MODES


def _text(errors: list[str], logger: Mapping[str, Any], key: str, *, optional: bool) -> None:
    value = logger.get(key)
    if optional and value is None:
        return
    if not isinstance(value, str) or not value.strip():
        what = "null or a non-empty string" if optional else "a non-empty string"
        errors.append(f"logger.{key} must be {what}, got {value!r}")


def _tags(errors: list[str], logger: Mapping[str, Any]) -> None:
    tags = logger.get("tags")
    if not isinstance(tags, (list, tuple)) or not all(
        isinstance(t, str) and 0 < len(t) <= 64 for t in tags
    ):
        errors.append(f"logger.tags must be a list of strings of 1 to 64 characters, got {tags!r}")


def logger_errors(cfg: Mapping[str, Any]) -> list[str]:
    """Every problem with ``cfg["logger"]``, one line each."""
    logger = cfg.get("logger")
    name = logger.get("name") if isinstance(logger, Mapping) else None
    if name not in LOGGERS:
        return [f"logger.name must be one of {', '.join(LOGGERS)}, got {name!r}"]
    errors: list[str] = []
    if name == "wandb":
        _text(errors, logger, "project", optional=False)
        _text(errors, logger, "entity", optional=True)
        _text(errors, logger, "group", optional=False)
        if logger.get("mode") not in WANDB_MODES:
            errors.append(
                f"logger.mode must be one of {', '.join(WANDB_MODES)}, got {logger.get('mode')!r}"
            )
        _tags(errors, logger)
        timeout = logger.get("probe_timeout_s")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            errors.append(f"logger.probe_timeout_s must be a number > 0, got {timeout!r}")
        if not isinstance(logger.get("quiet"), bool):
            errors.append(f"logger.quiet must be true or false, got {logger.get('quiet')!r}")
    elif name == "mlflow":
        _text(errors, logger, "tracking_uri", optional=True)
        _text(errors, logger, "experiment", optional=False)
        _tags(errors, logger)
    return errors
