"""``studies.simulate`` (``make simulate``): its fast rounds follow ``resolve``'s own plan,
its slow mode moves no mean, and its command line prints the tables docs/statistics.md
quotes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import Settings
from analysis.compare import depth_differences
from analysis.resolve import SEED, default_stop_level, plan_seeds, with_stop_intervals
from studies.seeding import false_win_rate
from studies.simulate import (
    DEPTHS,
    Intervals,
    Noise,
    Strategy,
    answer,
    compare_strategies,
    draw_studies,
    main,
)


@pytest.mark.parametrize("min_seeds", [2, 4])
def test_the_simulated_studies_follow_the_plan(min_seeds):
    """``studies.simulate``'s fast rounds (arrays of intervals) spend the seeds that
    ``plan_seeds`` spends on the same results, round by round, and end in the same states."""
    pair, stop_level = ("vitbnffn", "vit"), default_stop_level(0.95, 6)
    _, paired = draw_studies(np.random.default_rng(3), 10, Noise(), 6)
    report, stop = Intervals(paired, 0.95), Intervals(paired, stop_level)
    strategy = Strategy("now", stop_level=stop_level, min_seeds=min_seeds)
    provisional = 0
    for study in range(len(paired)):
        n_fast, rounds_fast, states_fast = answer(strategy, study, report, stop, 6, 0.01)
        n, rounds = dict.fromkeys(DEPTHS, 2), 0
        while True:
            rows = [
                {"model": model, "depth": depth, "seed": seed, "score": score}
                for depth, k in n.items()
                for seed in range(k)
                for model, score in zip(
                    pair, (0.9 + paired[study, depth - 1, seed], 0.9), strict=True
                )
            ]
            scores = pd.DataFrame(rows).assign(lr=0.003, batch_size=100, epoch=10)
            diffs = depth_differences(scores, pair, Settings())
            cells = with_stop_intervals(diffs, scores, pair, Settings(), stop_level)
            plans = plan_seeds(cells, scores, ["lr", "batch_size"], 6, 0.01, stop_level, min_seeds)
            seeded = [p.depth for p in plans if p.action == SEED]
            provisional += sum(p.why.startswith("provisional") for p in plans if p.action == SEED)
            if not seeded:
                break
            rounds += 1
            for depth in seeded:
                n[depth] += 1
        assert (list(n.values()), rounds) == (n_fast, rounds_fast), study
        assert diffs.sort_values("depth")["state"].tolist() == states_fast, study
    assert provisional > 0  # the studies exercise the stop rule


def test_a_slow_mode_keeps_its_mean_and_min_seeds_pays_off_there():
    """The slow mode moves no mean; where seeds fall into one (chance 0.1 for the candidate,
    0.3 for the baseline, 10-30 points lost), settling on 2-3 seeds errs more often than 6
    seeds everywhere, and ``min_seeds`` 5 takes most of that excess back, on the same
    studies (docs/statistics.md: 4,000 studies give +3.5 and +0.7 points)."""
    noise = Noise(slow=(0.1, 0.3))
    rng = np.random.default_rng(0)
    assert abs(float(np.mean(noise.slow_term(rng, 1, (200_000,))))) < 0.001
    assert Noise().slow_term(rng, 0, (3,)) == 0.0
    plain = draw_studies(np.random.default_rng(5), 20, Noise(), 6)[1]
    same = draw_studies(np.random.default_rng(5), 20, Noise(slow=(0.0, 0.0)), 6)[1]
    np.testing.assert_array_equal(plain, same)
    stop = default_stop_level(0.95, 6)
    plan = [
        Strategy("everywhere", adaptive=False),
        Strategy("now", stop_level=stop),
        Strategy("min 5", stop_level=stop, min_seeds=5),
    ]
    rows = compare_strategies(plan, 1500, 6, noise).set_index("strategy")
    excess, se = rows["wrong_vs_first"], rows["wrong_vs_first_se"]
    assert excess["now"] > 3 * se["now"] > 0  # early stops err more under a slow mode
    assert excess["min 5"] < excess["now"] / 2
    assert rows.loc["min 5", "jobs"] > rows.loc["now", "jobs"]  # and cost jobs


def test_the_simulation_cli_with_a_slow_mode(capsys):
    """``python -m studies.simulate --slow-mode ... --min-seeds ...``: docs/statistics.md's table
    comes from this command; bad chances or drops are refused, naming the option."""
    argv = ["--experiments", "200", "--studies", "100", "--seed-sd", "0.01"]
    main([*argv, "--slow-mode", "0.1", "0.3", "--min-seeds", "5"])
    out = capsys.readouterr().out
    assert "a slow mode: chance 0.1 (candidate) and 0.3 (baseline) per job, losing 10-30" in out
    assert "| resolve, now, --min-seeds 5 | " in out and "| 6 seeds everywhere | " in out
    for bad, message in (
        (["--slow-mode", "1.0", "0"], "--slow-mode: each chance must be in [0, 1), got 1.0"),
        (["--slow-drop", "0.3", "0.1"], "--slow-drop: need 0 <= LOW <= HIGH <= 1, got 0.3 0.1"),
    ):
        with pytest.raises(SystemExit):
            main([*argv, *bad])
        assert message in capsys.readouterr().err


def test_the_cli_prices_a_design(capsys):
    main(["--false-wins", "3", "4", "5", "6", "--studies", "2000"])
    out = capsys.readouterr().out
    assert "looks at [3, 4, 5, 6] seeds, 2000 cells" in out
    assert f"fixed 6 seeds: {false_win_rate([6], 2000):.2%}" in out
