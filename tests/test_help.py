"""``python -m vitbn_sweep --help``: the project's own page (conf/hydra/help/vitbn_sweep.yaml),
not Hydra's stock one, naming every option a user can choose."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from tests.conftest import REPO, compose_config, run_cli

CONF = REPO / "conf"
CHOICES = {
    group: sorted(p.stem for p in (CONF / group).glob("*.yaml"))
    for group in ("model", "experiment", "logger", "data", "optim", "hydra/launcher")
}


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    done: subprocess.CompletedProcess[str] = run_cli(
        ["--help"], cwd=tmp_path_factory.mktemp("help"), timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_page_says_what_it_runs_first(page: str) -> None:
    first = page.splitlines()[0]
    assert first.startswith("vitbn_sweep: Hydra sweeps of small Vision Transformers")
    assert "powered by Hydra" not in page  # Hydra's stock header is gone


@pytest.mark.parametrize("group", sorted(CHOICES))
def test_every_option_of_every_group_is_named(page: str, group: str) -> None:
    missing = [option for option in CHOICES[group] if option not in page]
    assert not missing, f"{group}: {missing} not on the help page (conf/hydra/help/)"


def test_internal_groups_stay_off_the_page(page: str) -> None:
    assert "vitbn_sweep_stacked" not in page and "members" not in page


def test_three_examples_that_compose(page: str) -> None:
    """Each example's config overrides compose, a swept key at its first value (hydra/ and
    -m are Hydra's, left out)."""
    examples = [
        line.split("#")[0] for line in page.splitlines() if "python -m vitbn_sweep " in line
    ]
    assert len(examples) >= 3
    for example in examples:
        args = shlex.split(example)[3:]
        overrides = [a.split(",")[0] for a in args if "=" in a and not a.startswith("hydra")]
        assert compose_config(overrides)["model"]["name"]
