"""``resolve --gap``: seeds for the lr gap (does the higher lr hurt the baseline more?), gap
by gap, merged with the critical-depth plan, through rounds of a fake launcher."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from analysis import Settings, analyze, records_from_dirs
from analysis.resolve import (
    CAPPED,
    SEED,
    CellPlan,
    gap_settled,
    merge,
    plan_gap_round,
    plan_round,
    resolve,
)
from analysis.stability import BASELINE_MORE, UNRESOLVED, WITHIN_MARGIN
from tests.analysis_synth import write_job
from tests.test_analysis_resolve import REPO, multirun, override_values

LRS = (0.003, 0.005)


def write_cell(
    root: Path, depth: int, losses: dict[str, list[float]], skip=(), candidate: float = 0.0
) -> None:
    """Both models at both lrs at ``depth``: seed s of a model scores 0.80 at lr 0.003 and
    0.80 - ``losses[model][s]`` at lr 0.005, vitbnffn ``candidate`` more at both; (lr,
    model, seed) in ``skip`` is not run."""
    for model, loss in losses.items():
        base = 0.80 + (candidate if model == "vitbnffn" else 0.0)
        for seed, drop in enumerate(loss):
            for lr, acc in zip(LRS, (base, base - drop), strict=True):
                if (lr, model, seed) not in skip:
                    write_job(root / f"d{depth}", model, depth, seed, [0.5, acc], lr=lr)


def launches(plan) -> tuple:
    """(lr, models) of each cell a gap plan seeds."""
    return tuple((dict(cell.condition)["lr"], cell.models) for cell in plan.cells)


def gap_plans(root: Path, max_seeds: int = 6, min_seeds: int = 2):
    records, stats = records_from_dirs([root])
    a = analyze(records, stats, Settings())
    return {p.depth: p for p in plan_gap_round(a, max_seeds, min_seeds=min_seeds)}, a


def test_when_a_gap_is_settled():
    margin = 0.01
    assert gap_settled(0.001, 0.05, margin, short=False)  # excludes 0: the baseline loses more
    assert gap_settled(-0.05, -0.002, margin, short=False)  # the candidate does
    assert gap_settled(-0.009, 0.009, margin, short=False)  # within the margin
    assert not gap_settled(-0.009, 0.011, margin, short=False)  # reaches 0 and the margin
    assert not gap_settled(0.001, 0.05, margin, short=True)  # too few seeds
    assert not gap_settled(float("nan"), float("nan"), margin, short=False)  # no interval


def test_the_gap_plan_depth_by_depth(tmp_path):
    write_cell(tmp_path, 1, {"vit": [0.02, 0.021, 0.019], "vitbnffn": [0.02, 0.0205, 0.0195]})
    write_cell(tmp_path, 2, {"vit": [0.10, 0.101, 0.099], "vitbnffn": [0.01, 0.011, 0.009]})
    write_cell(tmp_path, 3, {"vit": [0.10, 0.0, 0.05], "vitbnffn": [0.0, 0.05, 0.0]})
    # Depth 4: vit never ran seed 1 at lr 0.003, so two seeds count at both rates.
    write_cell(
        tmp_path,
        4,
        {"vit": [0.10, 0.0, 0.05], "vitbnffn": [0.0, 0.05, 0.0]},
        skip={(0.003, "vit", 1)},
    )
    plans, a = gap_plans(tmp_path)
    states = a.stability_gap.set_index("depth")["state"].to_dict()
    assert states == {1: WITHIN_MARGIN, 2: BASELINE_MORE, 3: UNRESOLVED, 4: UNRESOLVED}
    assert set(plans) == {3, 4}  # depths 1 and 2 are settled at the stop level too
    assert (plans[3].action, plans[3].seed) == (SEED, 3)
    assert launches(plans[3]) == ((0.003, ("vit", "vitbnffn")), (0.005, ("vit", "vitbnffn")))
    assert "unresolved: +3.3 points, its 95 % interval" in plans[3].why
    assert "reaches 0 and past the ±1-point margin" in plans[3].why
    assert (plans[4].seed, launches(plans[4])) == (1, ((0.003, ("vit",)),))  # the missing job
    # With min_seeds 4, the settled depths are provisional and get seed 3 as well.
    plans, _ = gap_plans(tmp_path, min_seeds=4)
    assert set(plans) == {1, 2, 3, 4}
    assert "provisional within the margin: 3 seeds, fewer than the 4" in plans[1].why
    # Capped: every one of the four has max_seeds seeds.
    plans, _ = gap_plans(tmp_path, max_seeds=3)
    assert plans[3].action == CAPPED and plans[4].action == SEED


def test_gap_seeds_merge_with_the_critical_plan(tmp_path):
    write_cell(tmp_path, 3, {"vit": [0.10, 0.0, 0.05], "vitbnffn": [0.0, 0.05, 0.0]})
    records, stats = records_from_dirs([tmp_path])
    a = analyze(records, stats, Settings())
    critical = plan_round(a, 6)  # both lrs' depth-3 cells are unresolved: seed 3
    gaps = [cell for gap in plan_gap_round(a, 6) for cell in gap.cells]
    assert {(dict(p.condition)["lr"], p.seed) for p in gaps} == {(0.003, 3), (0.005, 3)}
    merged = merge([*critical, *gaps])
    assert len(merged) == 2 and all(p.models == ("vit", "vitbnffn") for p in merged)
    # Different models asked of one cell are united, and other actions are dropped.
    one = CellPlan(merged[0].condition, 3, UNRESOLVED, SEED, "", 3, ("vit",))
    two = CellPlan(merged[0].condition, 3, UNRESOLVED, SEED, "", 3, ("vitbnffn",))
    capped = CellPlan(merged[0].condition, 5, UNRESOLVED, CAPPED, "")
    assert [p.models for p in merge([one, capped, two])] == [("vit", "vitbnffn")]


def gap_launcher(
    sweep: Path, losses: dict[str, float], calls: list[list[str]], noise: float = 0.002
):
    """Writes the jobs of a sweep command at depth 1: vit scores 0.80 at lr 0.003, vitbnffn
    0.75 (a clear lose at each lr); at lr 0.005 each loses ``losses[model]``, vit's seeds
    ``noise`` apart (0.2 points). Rewrites multirun.yaml, as the sweeper does."""

    def run(argv, cwd=None):
        calls.append(argv)
        given = override_values(argv)
        seed = int(given["trainer.seed"])
        for lr in map(float, given["optim.lr"].split(",")):
            for model in given["model"].split(","):
                acc = 0.80 if model == "vit" else 0.75
                if lr == 0.005:
                    shift = noise * (seed % 3 - 1) if model == "vit" else 0.0
                    acc += shift - losses[model]
                write_job(sweep / "new", model, 1, seed, [0.5, acc], lr=lr)
        multirun(sweep, argv[4:])
        return SimpleNamespace(returncode=0)

    return run


def gap_sweep(tmp_path: Path, losses: dict[str, float], noise: float = 0.002):
    """The user's sweep of ``gap_launcher``'s jobs, seeds 0 and 1 at both lrs: (sweep dir,
    the launcher, the calls it gets from now on)."""
    sweep = tmp_path / "tiny"
    calls: list[list[str]] = []
    run = gap_launcher(sweep, losses, calls, noise)
    user = ["model=vit,vitbnffn", "model.depth=1", "optim.lr=0.003,0.005", "trainer.seed=0"]
    run([sys.executable, "-m", "vitbn_sweep", "-m", *user])
    run([sys.executable, "-m", "vitbn_sweep", "-m", *user[:-1], "trainer.seed=1"])
    multirun(sweep, [*user[:-1], "trainer.seed=0,1"])
    calls.clear()
    return sweep, run, calls


@pytest.mark.parametrize(("losses", "answer"), [
    ({"vit": 0.05, "vitbnffn": 0.049}, WITHIN_MARGIN),
    ({"vit": 0.10, "vitbnffn": 0.02}, BASELINE_MORE),
])  # fmt: skip
def test_resolve_gap_rounds_until_the_gap_is_settled(tmp_path, losses, answer):
    sweep, run, calls = gap_sweep(tmp_path, losses)
    printed: list[str] = []
    kwargs = dict(max_seeds=6, min_seeds=4, run=run, echo=printed.append)
    # Without --gap the critical depth alone decides: no gap seed is planned.
    assert resolve(sweep, Settings(), dry_run=True, **kwargs) == 0
    assert "(--gap)" not in "\n".join(printed)
    printed.clear()
    assert resolve(sweep, Settings(), gap=True, **kwargs) == 0
    out = "\n".join(printed)
    assert "does the higher lr hurt vit more than vitbnffn? (--gap)" in out
    assert "an lr gap is settled once its 98.75 % interval excludes 0 or lies within ±1 " in out
    assert "depth 1: unresolved: 2 seed(s)" not in out  # two seeds give an interval
    assert printed[-1] == "done: resolved"
    records, stats = records_from_dirs([sweep])
    a = analyze(records, stats, Settings())
    gap = a.stability_gap.iloc[0]
    assert gap["state"] == answer and gap["n"] == 4  # settled on min_seeds, not before
    # Each round seeded all four jobs with one command per lr (no job ran twice).
    assert sorted(c[c.index("trainer.seed=2") - 3] for c in calls if "trainer.seed=2" in c) == [
        "optim.lr=0.003",
        "optim.lr=0.005",
    ]
    assert len(list(sweep.rglob("result.json"))) == 16


def test_the_cli_and_make_pass_gap_on(tmp_path, capsys):
    from analysis.cli import main

    # Depth 2 is a settled lose at both lrs, so depth 1 cannot change a critical depth: only
    # its gap (unresolved) gets seeds.
    sweep = tmp_path / "tiny"
    write_cell(sweep, 1, {"vit": [0.10, 0.0, 0.05], "vitbnffn": [0.0, 0.05, 0.0]})
    precise = {"vit": [0.02, 0.0201, 0.0199], "vitbnffn": [0.02, 0.0201, 0.0199]}
    write_cell(sweep, 2, precise, candidate=-0.05)
    multirun(sweep, ["model=vit,vitbnffn", "model.depth=1,2", "optim.lr=0.003,0.005"])
    assert main(["resolve", str(sweep), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "(--gap)" not in out and "job(s) in" not in out and "done: resolved" in out
    assert main(["resolve", str(sweep), "--dry-run", "--gap"]) == 0
    out = capsys.readouterr().out
    assert "lr 0.003 -> 0.005, depth 1: unresolved: +3.3 points" in out
    assert "-> seed 3 for lr 0.003: vit, vitbnffn; lr 0.005: vit, vitbnffn" in out
    assert "4 job(s) in 2 command(s), no timed job in this sweep to price the round by" in out
    for lr in LRS:
        assert f"-m optim.lr={lr} model=vit,vitbnffn model.depth=1 trainer.seed=3" in out
    make = ["make", "-n", "resolve", f"SWEEP={sweep}", "GAP=1"]
    dry = subprocess.run(make, cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "--min-seeds 2 --gap" in dry
    dry = subprocess.run(make[:-1], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "--gap" not in dry


def test_the_report_points_unresolved_gaps_to_make_resolve_gap(tmp_path, capsys):
    from analysis.cli import main

    sweep = tmp_path / "outputs" / "tiny"
    write_cell(sweep, 3, {"vit": [0.10, 0.0, 0.05], "vitbnffn": [0.0, 0.05, 0.0]})
    write_cell(sweep, 4, {"vit": [0.10, 0.101, 0.099], "vitbnffn": [0.01, 0.011, 0.009]})
    assert main(["report", str(sweep)]) == 0
    text = (sweep / "report" / "report.md").read_text()
    assert f"1 depth(s) unresolved: `make resolve SWEEP={sweep} GAP=1` adds seeds" in text
    assert "neither does where it lies within ±1 point (the margin)" in text


def test_a_gap_left_open_at_max_seeds_is_named_when_resolve_stops(tmp_path):
    sweep, run, _ = gap_sweep(tmp_path, {"vit": 0.05, "vitbnffn": 0.05}, noise=0.03)
    printed: list[str] = []
    assert resolve(sweep, Settings(), max_seeds=3, gap=True, run=run, echo=printed.append) == 0
    # vit's seeds at lr 0.005 lie 3 points apart: three seeds leave the gap unresolved.
    assert "depth 1: unresolved: " in printed[-2]
    assert printed[-2].endswith("-> no seed: it has max_seeds already")
    assert printed[-1].endswith(
        "; 1 lr gap(s) not settled at max_seeds (the report's rule decides)"
    )
