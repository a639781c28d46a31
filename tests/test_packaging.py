"""The wheel holds every module and every config file (packages are found, not listed),
and nothing of benchmarks/, studies/ or tests/."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO


def _sources() -> set[str]:
    files = {
        p.relative_to(REPO).as_posix()
        for top in ("vitbn_sweep", "analysis", "hydra_plugins")
        for p in (REPO / top).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    conf = REPO / "conf"
    files |= {
        f"vitbn_sweep/conf/{p.relative_to(conf).as_posix()}"
        for pattern in ("*.yaml", "*.py")
        for p in conf.rglob(pattern)
        if "__pycache__" not in p.parts
    }
    return files


BUILD_LEFTOVERS = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "outputs")


@pytest.mark.slow
def test_the_wheel_holds_every_module_and_config_file(tmp_path: Path) -> None:
    # From a copy: setuptools builds in <source>/build, whose leftovers a wheel may pick up.
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*BUILD_LEFTOVERS, "results"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", str(tmp_path), str(source)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("vitbn_sweep-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _sources()
    assert {"vitbn_sweep/tracking/wandb_tracker.py", "vitbn_sweep/conf/model/vit.yaml"} <= expected
    assert expected - names == set(), "missing from the wheel"
    stray = {n for n in names if not n.startswith("vitbn_sweep-")} - expected
    assert stray == set(), "in the wheel but not in the source tree"
    assert not any(n.startswith(("benchmarks/", "studies/", "tests/")) for n in names), (
        "not the library"
    )
