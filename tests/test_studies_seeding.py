"""The seeding design read off the committed study, its looks replayed, and its price in
false wins by simulation."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.resolve import default_stop_level
from studies.seeding import Design, design, false_win_rate, flips
from studies.study import analyse_study

REPO = Path(__file__).resolve().parents[1]


def test_looking_until_a_win_wins_more_often_than_a_fixed_design():
    fixed = false_win_rate([6], 4000)
    first = false_win_rate(list(range(3, 7)), 4000)
    settling = false_win_rate(list(range(3, 7)), 4000, stop_level=default_stop_level(0.95, 6))
    assert fixed < 0.025  # one-sided 2.5 %, and the margin on top
    assert first > 2 * fixed  # each look is one more chance for noise to cross the rule
    assert settling == pytest.approx(fixed, abs=0.01)  # resolve seeds provisional wins on


@pytest.fixture(scope="module")
def study():
    return {p.name: p.analysis for p in analyse_study(REPO / "results")}


def seeds_per_cell(sweep: Path) -> list[int]:
    """Ended seeds per (model, lr, depth), counted from the job directories' names alone."""
    cells: dict[tuple[str, ...], int] = {}
    for result in sweep.glob("*/result.json"):
        keys = dict(part.split("=", 1) for part in result.parent.name.split(","))
        cell = tuple(v for k, v in sorted(keys.items()) if k != "trainer.seed")
        cells[cell] = cells.get(cell, 0) + 1
    return sorted(cells.values())


def test_the_design_and_the_flips_are_read_off_the_results(study):
    for name in ("article_full", "warmup"):
        counts = seeds_per_cell(REPO / "results" / name)
        assert design(study[name]) == Design(grid=3, fewest=counts[0], most=counts[-1])
    changed = flips(study["article_full"], 3)
    # as an independent recomputation found them at 3-6 seeds (issue 29); resolve's later
    # seeds may extend a line, never change its start
    for start in (
        "lr 0.003 depth 6: win at 3, unresolved at 4-5, win at 6",
        "lr 0.005 depth 3: unresolved at 3, win at 4, unresolved at 5, win at 6",
        "lr 0.005 depth 2: win at 3, unresolved at 4-",
    ):
        assert any(line.startswith(start) for line in changed), (start, changed)
    # lr 0.003 depth 4 stayed unresolved from 3 to 6 seeds (more seeds may settle it)
    assert all(
        line.startswith("lr 0.003 depth 4: unresolved at 3-")
        for line in changed
        if line.startswith("lr 0.003 depth 4:")
    )
