"""Shared test fixtures: where MNIST is, config composition, tiny job settings."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("VITBN_DATA_DIR", REPO.parent / "shared" / "data")).resolve()
os.environ["VITBN_DATA_DIR"] = str(DATA_DIR)
os.environ.setdefault("WANDB_MODE", "disabled")  # tests that track set "offline"
os.environ.setdefault("WANDB_SILENT", "true")

# Small enough for seconds per job on 2 cores, large enough to exercise every code path.
TINY = [
    "trainer.epochs=1",
    "trainer.batch_size=50",
    "trainer.test_batch_size=100",
    "data.train_size=200",
    "data.test_size=100",
    "logger=none",
    "trainer.threads=1",
    "sweep_name=default",  # a sweep test finds its jobs in outputs/default
]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        pytest.fail(f"MNIST not found under {DATA_DIR}; set VITBN_DATA_DIR")
    return DATA_DIR


def compose_config(overrides: list[str]) -> dict[str, Any]:
    """The job config that ``python -m vitbn_sweep <overrides>`` would run, as a plain dict."""
    with initialize_config_module(config_module="vitbn_sweep.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


@pytest.fixture
def tiny_config(data_dir: Path) -> Callable[..., dict[str, Any]]:
    def make(*overrides: str) -> dict[str, Any]:
        return compose_config([*TINY, *overrides])

    return make


def run_cli(
    args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m vitbn_sweep ARGS`` in a subprocess, outputs under ``cwd``."""
    full_env = {**os.environ, "VITBN_OUTPUT_DIR": str(cwd / "outputs"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "vitbn_sweep", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def single(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """The job dir of ``overrides`` run alone through train.run (each config run once)."""
    done: dict[tuple[str, ...], Path] = {}
    root = tmp_path_factory.mktemp("single")

    def get(config: dict[str, Any], *overrides: str) -> Path:
        from vitbn_sweep.train import run

        if overrides not in done:
            done[overrides] = root / str(len(done))
            run(config, done[overrides])
        return done[overrides]

    return get
