"""``resolve``: which cells get a seed and why, the commands it runs, and its rounds.

The decision logic runs on synthetic job dirs; the rounds on a fake launcher that writes
job dirs with a known truth; ``test_resolve_a_real_sweep`` runs the real CLI end to end.
The simulation that measures the stop rule is checked in ``test_studies_simulate.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from analysis import Settings, analyze, records_from_dirs
from analysis.load import sweep_info
from analysis.records import AnalysisError
from analysis.resolve import (
    CAPPED,
    NO_EFFECT,
    SEED,
    CellPlan,
    commands,
    deciding_depths,
    default_stop_level,
    failed_jobs,
    plan_round,
    resolve,
)
from tests.analysis_synth import write_grid, write_job
from vitbn_sweep.store.origin import origin_doc, pin_origin, task_overrides

REPO = Path(__file__).resolve().parents[1]


def multirun(sweep: Path, task: list[str], hydra: list[str] | None = None, name="tiny") -> None:
    doc = {
        "hydra": {
            "overrides": {"hydra": hydra or ["hydra.mode=MULTIRUN"], "task": task},
            "runtime": {"cwd": str(REPO), "choices": {"hydra/launcher": "local"}},
            "sweeper": {"params": None},
        },
        "sweep_name": name,
    }
    (sweep / "multirun.yaml").write_text(yaml.safe_dump(doc))


def override_values(argv: list[str]) -> dict[str, str]:
    """A launched sweep command's overrides (but Hydra's own), key to value."""
    return dict(o.split("=", 1) for o in argv[4:] if "=" in o and not o.startswith("hydra"))


def plans_by_cell(root: Path, max_seeds: int = 6, min_seeds: int = 2):
    records, stats = records_from_dirs([root])
    a = analyze(records, stats, Settings())
    plans = plan_round(a, max_seeds, min_seeds=min_seeds)
    return {(dict(p.condition)["lr"], p.depth): p for p in plans}, a


def noisy_cell(root: Path, depth: int, seeds: int, lr: float = 0.003, spread: float = 0.1):
    """A cell whose per-seed differences swing by +-spread: unresolved at a few seeds."""
    for seed in range(seeds):
        bn = 0.80 + (spread if seed % 2 else -spread)
        write_job(root / f"d{depth}", "vitbnffn", depth, seed, [0.5, 0.6, bn], lr=lr)
        write_job(root / f"d{depth}", "vit", depth, seed, [0.5, 0.6, 0.80], lr=lr)


def test_the_plan_cell_by_cell(tmp_path):
    # lr 0.003: depth 1 unresolved but below a lost depth 2; depth 3 unresolved (2 seeds);
    # depth 4 won; depth 5 unresolved at 3 seeds: capped when max_seeds is 3.
    write_grid(tmp_path, {2: -0.05, 4: 0.05})
    noisy_cell(tmp_path, 1, 2)
    noisy_cell(tmp_path, 3, 2)
    noisy_cell(tmp_path, 5, 3)
    plans, a = plans_by_cell(tmp_path, max_seeds=3)
    states = a.diffs.set_index("depth")["state"].to_dict()
    assert states == {1: "unresolved", 2: "lose", 3: "unresolved", 4: "win", 5: "unresolved"}
    assert set(plans) == {(0.003, 1), (0.003, 3), (0.003, 5)}  # decided cells: no plan
    assert plans[(0.003, 1)].action == NO_EFFECT
    assert (plans[(0.003, 3)].action, plans[(0.003, 3)].seed) == (SEED, 2)
    assert plans[(0.003, 3)].models == ("vit", "vitbnffn")
    assert plans[(0.003, 5)].action == CAPPED
    assert plans_by_cell(tmp_path, max_seeds=4)[0][(0.003, 5)].seed == 3


def paired_cell(root: Path, depth: int, diffs: list[float], lr: float = 0.003) -> None:
    """Seed s of both models at ``depth``: the candidate ``diffs[s]`` above the baseline."""
    for seed, diff in enumerate(diffs):
        write_job(root / f"d{depth}", "vitbnffn", depth, seed, [0.5, 0.80 + diff], lr=lr)
        write_job(root / f"d{depth}", "vit", depth, seed, [0.5, 0.80], lr=lr)


def test_provisional_wins_and_loses_cell_by_cell(tmp_path):
    # Paired differences chosen so that each cell's 95 % interval (the report's state) and
    # 98.75 % interval (the stop level for 6 seeds) fall where the comment says, margin 1 pt.
    lr_a = {
        1: [0.0, 0.02, -0.01],  # unresolved, below a settled lose: no effect
        2: [-0.05, -0.051, -0.049],  # lose, settled (stop interval below the margin)
        3: [0.02, 0.03, 0.025],  # win (95 %: 1.3-3.7 pt), provisional (98.75 %: -0.1-5.1)
        4: [0.05, 0.051, 0.049],  # win, settled (98.75 %: 4.5-5.5 pt)
        5: [0.0, 0.05, 0.02],  # unresolved (interval reaches 0)
        6: [0.06, 0.061, 0.059],  # win, settled
        7: [0.01, 0.04] * 3,  # win at 6 seeds (95 %: 0.8-4.2), provisional: capped
    }
    lr_b = {
        1: [0.0, 0.02, -0.01],  # unresolved, below a provisional lose: waits for it
        2: [-0.01, 0.0, -0.005],  # lose (95 %: high 0.7 pt), provisional (98.75 %: 2.1)
        3: [0.05, 0.051, 0.049],  # win, settled
    }
    for lr, cells in ((0.003, lr_a), (0.005, lr_b)):
        for depth, diffs in cells.items():
            paired_cell(tmp_path / f"lr{lr}", depth, diffs, lr=lr)
    plans, a = plans_by_cell(tmp_path, max_seeds=6)
    states = a.diffs.set_index(["lr", "depth"])["state"].to_dict()
    win, lose, unresolved = "win", "lose", "unresolved"
    assert states == {  # the report's states, as the issue defines them
        **{(0.003, d): s for d, s in enumerate([unresolved, lose, win, win, unresolved], 1)},
        **{(0.003, 6): win, (0.003, 7): win},
        **{(0.005, 1): unresolved, (0.005, 2): lose, (0.005, 3): win},
    }
    expected = {
        (0.003, 1): (NO_EFFECT, None),
        (0.003, 3): (SEED, 3),  # a provisional win gets a seed
        (0.003, 5): (SEED, 3),
        (0.003, 7): (CAPPED, None),
        (0.005, 1): (NO_EFFECT, None),
        (0.005, 2): (SEED, 3),  # a provisional lose at the largest lost depth too
    }  # (0.003, 4) and (0.003, 6), settled wins, get nothing, as do settled loses
    assert {cell: (p.action, p.seed) for cell, p in plans.items()} == expected
    assert plans[(0.003, 3)].why.startswith("provisional win: its 98.75 % interval (-0.1 to")
    assert "still reaches below the margin (1 point)" in plans[(0.003, 3)].why
    assert plans[(0.005, 2)].why.startswith("provisional lose: its 98.75 % interval")
    assert plans[(0.003, 5)].why == "unresolved: interval reaches 0"
    assert plans[(0.003, 7)].state == win
    # At a stop level equal to the report's (a win settles once its own 95 % interval
    # clears the margin), depths 3 and 2 are settled; depth 7 is not (95 %: 0.8-4.2 pt).
    at_95 = {(dict(p.condition)["lr"], p.depth): p for p in plan_round(a, 6, stop_level=0.95)}
    assert {cell: p.action for cell, p in at_95.items()} == {
        (0.003, 1): NO_EFFECT,
        (0.003, 5): SEED,
        (0.003, 7): CAPPED,
        (0.005, 1): NO_EFFECT,
    }


def test_min_seeds_keeps_a_clear_win_open_until_it_has_them(tmp_path):
    """Three seeds that agree (a win whose 98.75 % interval clears the margin) settle the
    cell by default; with ``min_seeds`` 4 it is provisional, says why, and gets seed 3."""
    paired_cell(tmp_path, 1, [-0.05, -0.051, -0.049])  # lose, settled
    paired_cell(tmp_path, 2, [0.05, 0.051, 0.049])  # win, settled on 3 seeds
    plans, a = plans_by_cell(tmp_path)
    assert a.diffs.set_index("depth")["state"].to_dict() == {1: "lose", 2: "win"}
    assert plans == {}
    plans, _ = plans_by_cell(tmp_path, min_seeds=4)
    assert {depth: (p.action, p.seed) for (_, depth), p in plans.items()} == {
        1: (SEED, 3),  # the largest lost depth: its lose is provisional too
        2: (SEED, 3),
    }
    assert plans[(0.003, 2)].why == (
        "provisional win: 3 seeds, fewer than the 4 a cell needs to settle (--min-seeds)"
    )
    assert plans_by_cell(tmp_path, min_seeds=3)[0] == {}  # 3 seeds are enough for 3


def test_min_seeds_outside_its_range_is_refused(tmp_path):
    sweep = tmp_path / "tiny"
    noisy_cell(sweep, 1, 2)
    multirun(sweep, ["model=vit,vitbnffn", "model.depth=1", "trainer.seed=0,1"])
    for bad in (1, 7):
        with pytest.raises(
            AnalysisError, match=rf"min_seeds must be in \[2, max_seeds=6\] \(got {bad}\)"
        ):
            resolve(sweep, Settings(), max_seeds=6, min_seeds=bad, run=None, echo=print)


def test_which_depths_decide():
    depths = [1, 2, 3, 4, 5]
    w, lo, u = "win", "lose", "unresolved"
    # A provisional win above the largest lost depth decides; one below it does not.
    assert deciding_depths(depths, [w, lo, w, w, w], [False, True, False, True, True]) == (3,)
    # A provisional lose at the largest lost depth decides; cells below wait for it.
    assert deciding_depths(depths, [u, lo, lo, u, w], [False, False, False, False, True]) == (3, 4)
    # Every cell settled: nothing to do.
    assert deciding_depths(depths, [lo, lo, w, w, w], [True] * 5) == ()
    assert default_stop_level(0.95, 6) == 1 - 0.05 / 4
    assert default_stop_level(0.95, 3) == 0.95


def test_the_plan_fills_seed_gaps_and_cells_without_data(tmp_path):
    write_grid(tmp_path, {1: -0.05})
    # Depth 2: the baseline lacks seed 1 (seeds 0, 2): the gap is filled first, for it alone.
    for seed in (0, 1, 2):
        write_job(tmp_path / "d2", "vitbnffn", 2, seed, [0.5, 0.6, 0.80 + 0.05 * (seed == 1)])
    for seed in (0, 2):
        write_job(tmp_path / "d2", "vit", 2, seed, [0.5, 0.6, 0.80 - 0.01 * seed])
    # Depth 3: the candidate's only job failed: no data; it gets seed 1 (both have 0).
    write_job(tmp_path / "d3", "vitbnffn", 3, 0, [0.5], epochs=3, status="failed")
    write_job(tmp_path / "d3", "vit", 3, 0, [0.5, 0.6, 0.8])
    plans, a = plans_by_cell(tmp_path)
    assert a.diffs.set_index("depth").loc[2, "method"] == "Welch t"
    assert (plans[(0.003, 2)].seed, plans[(0.003, 2)].models) == (1, ("vit",))
    assert (plans[(0.003, 3)].seed, plans[(0.003, 3)].models) == (1, ("vit", "vitbnffn"))
    assert "no data" in plans[(0.003, 3)].why


def test_one_command_per_condition_seed_and_models(tmp_path):
    sweep = tmp_path / "outputs" / "tiny"
    write_grid(sweep, {2: -0.05}, lr=0.003)
    write_grid(sweep, {2: -0.05}, lr=0.005)
    for lr in (0.003, 0.005):
        for depth in (3, 4):
            noisy_cell(sweep / f"lr{lr}", depth, 2, lr=lr)
    task = [
        "sweep_name=tiny",
        "model=vit,vitbnffn",
        "model.depth=2,3,4",
        "optim.lr=0.003,0.005",
        "trainer.seed=0,1",
        "data.train_size=200",
    ]
    hydra = ["hydra.mode=MULTIRUN", "hydra/launcher=packed", "hydra.launcher.n_jobs=2"]
    multirun(sweep, task, hydra)
    records, stats = records_from_dirs([sweep])
    a = analyze(records, stats, Settings())
    argvs = commands(plan_round(a, 6), sweep_info(sweep), {"lr"}, ["trainer.device=cpu"])
    assert len(argvs) == 2  # one per learning rate: seed 2 at depths 3 and 4 for both models
    head = [sys.executable, "-m", "vitbn_sweep", "-m", "data.train_size=200"]
    assert argvs[0][:5] == head == argvs[1][:5]
    first = argvs[0][5:]
    assert first == [
        "optim.lr=0.003",
        "model=vit,vitbnffn",
        "model.depth=3,4",
        "trainer.seed=2",
        f"hydra.sweep.dir={sweep.resolve()}",
        "sweep_name=tiny",
        f"paths.outputs={sweep.resolve().parent}",
        "hydra.mode=MULTIRUN",
        "hydra/launcher=packed",
        "hydra.launcher.n_jobs=2",
        "trainer.device=cpu",
    ]
    assert argvs[1][5] == "optim.lr=0.005"


def test_commands_run_the_lowest_seed_first(tmp_path):
    """A round that tops up some cells with seed 4 and others with seed 5 runs seed 4 first,
    whatever the order of the conditions: a cut round leaves the cells furthest behind done."""
    sweep = tmp_path / "outputs" / "tiny"
    for lr in (0.003, 0.005):
        write_grid(sweep, {2: -0.05}, lr=lr)
    task = ["sweep_name=tiny", "model=vit,vitbnffn", "model.depth=2", "optim.lr=0.003,0.005"]
    multirun(sweep, task, ["hydra.mode=MULTIRUN"])
    plan = CellPlan(condition=(("lr", 0.003),), depth=5, state="unresolved", action=SEED,
                    why="", seed=5, models=("vit", "vitbnffn"))  # fmt: skip
    plans = [plan, replace(plan, depth=6), replace(plan, condition=(("lr", 0.005),), seed=4)]
    argvs = commands(plans, sweep_info(sweep), {"lr"})

    def key(argv: list[str], name: str) -> str:
        return next(x for x in argv if x.startswith(name + "="))

    seeds = [(key(a, "trainer.seed"), key(a, "optim.lr")) for a in argvs]
    assert seeds == [("trainer.seed=4", "optim.lr=0.005"), ("trainer.seed=5", "optim.lr=0.003")]
    assert "model.depth=5,6" in argvs[1]


def fake_launcher(
    sweep: Path, truth: dict[int, float], calls: list[list[str]], user: list[str] | None = None
):
    """Runs a sweep command by writing its jobs' dirs: accuracy = truth +- a seed's noise,
    and rewrites multirun.yaml with the command's overrides, as the real sweeper does."""

    def run(argv, cwd=None):
        calls.append(argv)
        given = override_values(argv)
        for model in given["model"].split(","):
            for depth in map(int, given["model.depth"].split(",")):
                seed = int(given["trainer.seed"])
                noise = 0.004 * (1 if seed % 2 else -1) * (1 if model == "vit" else -1)
                acc = 0.80 + (truth[depth] if model == "vitbnffn" else 0.0) + noise
                write_job(sweep / "new", model, depth, seed, [0.5, 0.6, acc])
        overrides = argv[4:]
        multirun(sweep, task_overrides(overrides), [o for o in overrides if o.startswith("hydra")])
        if user is not None:  # resolve pinned the user's command before this one rewrote it
            assert sweep_info(sweep).task == user
        return SimpleNamespace(returncode=0)

    return run


def test_rounds_until_resolved_or_capped_then_nothing(tmp_path):
    sweep = tmp_path / "tiny"
    truth = {1: -0.05, 2: -0.02, 3: 0.02, 4: 0.05}
    calls: list[list[str]] = []
    run = fake_launcher(sweep, truth, calls)
    run(
        [sys.executable, "-m", "vitbn_sweep", "-m", "model=vit,vitbnffn", "model.depth=1,2,3,4"]
        + ["trainer.seed=0"]
    )
    run([*calls[0][:-1], "trainer.seed=1"])
    user = ["model=vit,vitbnffn", "model.depth=1,2,3,4", "trainer.seed=0,1"]
    multirun(sweep, user)
    calls.clear()
    run = fake_launcher(sweep, truth, calls, user)
    printed: list[str] = []
    assert resolve(sweep, Settings(), max_seeds=4, run=run, echo=printed.append) == 0
    out = "\n".join(printed)
    # Two seeds (paired, 1 degree of freedom): no cell is decided, so every one gets seed 2.
    # Three (the stop level for 4 seeds is 97.5 %): depths 1 and 4 are settled, depth 2 is a
    # provisional lose (97.5 %: -5.0 to 1.6 points), depth 3 unresolved: both get seed 3.
    # Four: depth 3 wins, provisionally (97.5 %: 0.1 to 3.9), but has max_seeds.
    round_2 = out[out.index("resolve round 2") : out.index("resolve round 3")]
    assert out.count("-> seed 2 for vit, vitbnffn") == 4
    assert round_2.count("-> seed 3") == 2 and "depth 3: unresolved" in round_2
    assert "depth 2: provisional lose: its 97.5 % interval (-5.0 to 1.6 points)" in round_2
    assert len(calls) == 2 and {"model.depth=2,3", "trainer.seed=3"} <= set(calls[1])
    assert "depth 3: provisional win" in printed[-2] and "stays a win" in printed[-2]
    assert printed[-1].startswith("done: resolved")
    records, stats = records_from_dirs([sweep])
    a = analyze(records, stats, Settings())
    assert a.critical.iloc[0]["critical_depth"] == "3"
    assert a.scores.groupby("depth")["seed"].nunique().to_dict() == {1: 3, 2: 4, 3: 4, 4: 3}
    # The user's command is still the sweep's command, though resolve rewrote multirun.yaml.
    assert sweep_info(sweep).task == user
    calls.clear()
    printed.clear()
    assert resolve(sweep, Settings(), max_seeds=4, run=run, echo=printed.append) == 0
    assert calls == [] and printed[-1].startswith("done: resolved")


def test_the_users_command_outlives_a_resolve_killed_mid_command(tmp_path):
    """resolve pins the user's multirun.yaml and the command it launches before launching;
    a kill (no clean-up) leaves the launched command's multirun.yaml, still read as resolve's,
    and only a command of the user's own replaces the user's."""
    sweep = tmp_path / "tiny"
    sweep.mkdir()
    user = ["model=vit,vitbnffn", "model.depth=1,2", "trainer.seed=0,1"]
    multirun(sweep, user)
    cell = ["model=vit,vitbnffn", "model.depth=2", "trainer.seed=2", "sweep_name=tiny"]
    pin_origin(sweep, origin_doc(sweep), launching=[*cell, f"hydra.sweep.dir={sweep}"])
    multirun(sweep, cell, [f"hydra.sweep.dir={sweep}", "hydra.mode=MULTIRUN"])  # then killed
    assert sweep_info(sweep).task == user
    # the next resolve pins its next command: the launched ones accumulate
    later = [*cell[:2], "trainer.seed=3", "sweep_name=tiny"]
    pin_origin(sweep, origin_doc(sweep), launching=later)
    multirun(sweep, later)
    assert sweep_info(sweep).task == user
    multirun(sweep, cell)
    assert sweep_info(sweep).task == user
    mine = ["model=vit,vitbnffn", "model.depth=1,2,3", "trainer.seed=0"]
    multirun(sweep, mine)  # the user's own new command
    assert sweep_info(sweep).task == mine
    assert task_overrides(["a=1", "hydra.run.dir=x", "+hydra/launcher=packed", "b@p=2"]) == [
        "a=1",
        "b@p=2",
    ]


def test_a_round_without_new_results_stops(tmp_path):
    sweep = tmp_path / "tiny"
    noisy_cell(sweep, 1, 2)
    multirun(sweep, ["model=vit,vitbnffn", "model.depth=1", "trainer.seed=0,1"])
    printed: list[str] = []

    def lost(argv, cwd=None):
        return SimpleNamespace(returncode=1)

    assert resolve(sweep, Settings(), run=lost, echo=printed.append) == 1
    assert "no new result appeared" in printed[-1]


def test_dry_run_launches_nothing(tmp_path, capsys):
    from analysis.cli import main

    sweep = tmp_path / "tiny"
    noisy_cell(sweep, 1, 2)
    multirun(sweep, ["model=vit,vitbnffn", "model.depth=1", "trainer.seed=0,1"])
    assert main(["resolve", str(sweep), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "depth 1: unresolved" in out and "python -m vitbn_sweep -m" in out
    assert len(list(sweep.rglob("result.json"))) == 4
    assert main(["resolve", str(sweep), "--dry-run", "--min-seeds", "4"]) == 0
    assert "clears the margin, on at least 4 seeds;" in capsys.readouterr().out
    assert main(["resolve", str(sweep), "--min-seeds", "9"]) == 2
    assert "min_seeds must be in [2, max_seeds=6] (got 9)" in capsys.readouterr().err


def _data_dir() -> Path:
    return Path(os.environ.get("VITBN_DATA_DIR") or REPO.parent / "shared" / "data")


@pytest.mark.slow
def test_resolve_a_real_sweep(tmp_path):
    """The user's sweep, then ``make resolve``'s command, twice: seeds only where the plan says."""
    env = {**os.environ, "VITBN_DATA_DIR": str(_data_dir()), "VITBN_OUTPUT_DIR": str(tmp_path)}
    env["WANDB_MODE"] = "disabled"
    sweep = [sys.executable, "-m", "vitbn_sweep", "-m", "sweep_name=tiny", "logger=none"]
    sweep += ["model=vit,vitbnffn", "model.depth=1,2", "trainer.seed=0,1", "trainer.epochs=1"]
    sweep += ["data.train_size=200", "data.test_size=100", "trainer.batch_size=50"]
    sweep += ["trainer.test_batch_size=100"]
    done = subprocess.run(sweep, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    root = tmp_path / "tiny"
    records, stats = records_from_dirs([root])
    before = analyze(records, stats, Settings())
    seeded = {p.depth for p in plan_round(before, 3) if p.action == SEED}
    open_before = {int(d) for d in before.critical.iloc[0]["open_depths"].split(",") if d}
    assert open_before <= seeded  # and provisional wins or loses, if any
    resolve_cmd = [sys.executable, "-m", "analysis", "resolve", str(root), "--max-seeds", "3"]
    done = subprocess.run(resolve_cmd, cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    records, stats = records_from_dirs([root])
    after = analyze(records, stats, Settings())
    seeds = after.scores.groupby(["model", "depth"])["seed"].nunique()
    for (model, depth), n in seeds.items():  # new seeds exactly where the plan said
        assert n == (3 if depth in seeded else 2), (model, depth, done.stdout)
    row = after.critical.iloc[0]
    open_after = {int(d) for d in row["open_depths"].split(",") if d}
    for depth in open_after:  # still open: only because the cap was reached
        assert seeds[("vit", depth)] == 3
    assert "resolve round 1" in done.stdout and "done:" in done.stdout
    # New jobs landed beside the old ones, named like them, and the sweep's command is kept.
    names = sorted(p.parent.name for p in root.glob("*/result.json"))
    assert all(n.startswith("data.test_size=100,") for n in names), names
    assert sweep_info(root).task == sweep[4:]
    again = subprocess.run(resolve_cmd, cwd=REPO, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "job(s) in" not in again.stdout, again.stdout
    assert len(list(root.glob("*/result.json"))) == len(names)


def test_resolve_warns_where_seeds_are_wide_unless_min_seeds_is_raised(tmp_path):
    sweep = tmp_path / "tiny"
    for depth in (1, 2, 3):
        paired_cell(sweep, depth, [0.05, 0.051, 0.049])
    paired_cell(sweep, 4, [0.0, 0.2, 0.1])  # the candidate's seeds: sd 10 points
    multirun(sweep, ["model=vit,vitbnffn", "model.depth=1,2,3,4", "trainer.seed=0,1,2"])
    printed: list[str] = []
    assert resolve(sweep, Settings(), dry_run=True, echo=printed.append) == 0
    warning = [line for line in printed if line.startswith("resolve: warning:")]
    assert warning == [
        "resolve: warning: seeds are wide at lr=0.003, batch_size=100: vitbnffn depth 4 (see "
        "the report's Seed spread): a few seeds can all miss a slow run there, and a cell may "
        "settle on 2; --min-seeds 5 (make resolve MIN_SEEDS=5) settles none on fewer"
    ]
    printed.clear()
    assert resolve(sweep, Settings(), dry_run=True, min_seeds=5, echo=printed.append) == 0
    assert not any(line.startswith("resolve: warning:") for line in printed)


def test_resolve_runs_failed_jobs_again_once_and_says_so(tmp_path):
    """A failed seed leaves its cell unpaired (2 seeds against 3): resolve runs it again,
    says so in its plan, and does not run a job that fails again a third time."""
    sweep = tmp_path / "tiny"
    for seed in range(3):
        for model, acc in (("vit", 0.80), ("vitbnffn", 0.85)):
            status = "failed" if (model, seed) == ("vitbnffn", 2) else "completed"
            write_job(sweep / "new", model, 1, seed, [0.5, acc + 0.001 * seed], status=status)
    multirun(sweep, ["model=vit,vitbnffn", "model.depth=1", "trainer.seed=0,1,2"])
    calls: list[list[str]] = []

    def launcher(outcome: str):
        def run(argv, cwd=None):  # the sweeper reruns a failed job in place
            calls.append(argv)
            given = override_values(argv)
            seed = int(given["trainer.seed"])
            for model in given["model"].split(","):
                job = sweep / "new" / f"model={model},depth=1,lr=0.003,seed={seed}"
                shutil.rmtree(job, ignore_errors=True)
                write_job(sweep / "new", model, 1, seed, [0.5, 0.85], status=outcome)
            return SimpleNamespace(returncode=0)

        return run

    printed: list[str] = []
    kwargs = dict(max_seeds=3, echo=printed.append)
    assert resolve(sweep, Settings(), run=launcher("failed"), **kwargs) == 0
    out = "\n".join(printed)
    assert "  1 failed job(s), run again in this round (a failed seed leaves its cell " in out
    assert "    lr=0.003, batch_size=100, depth 1: seed 2 for vitbnffn (it failed: boom)" in out
    assert len(calls) == 1 and {"model=vitbnffn", "trainer.seed=2"} <= set(calls[0])
    assert "1 job(s) failed again after this resolve ran them again: left failed" in out
    assert printed[-1].endswith("; 1 job(s) failed again when run again")

    printed.clear()
    assert resolve(sweep, Settings(), run=launcher("completed"), **kwargs) == 0
    assert len(calls) == 2 and printed[-1].startswith("done: resolved")
    records, stats = records_from_dirs([sweep])
    cell = analyze(records, stats, Settings()).diffs.iloc[0]
    assert (cell["n_a"], cell["n_b"]) == (3, 3)  # paired again


def test_the_failed_jobs_of_a_cell_and_seed_run_again_in_one_plan(tmp_path):
    """Both models failed at seed 1: one rerun plan for both (``merge``), with the error;
    a job ``skip`` names (run again already) is left out."""
    for model in ("vit", "vitbnffn"):
        for seed in (0, 1):
            status = "failed" if seed == 1 else "completed"
            write_job(tmp_path, model, 1, seed, [0.5, 0.8], status=status)
    records, stats = records_from_dirs([tmp_path])
    a = analyze(records, stats, Settings())
    plans, keys = failed_jobs(a)
    assert [(p.depth, p.seed, p.models, p.why) for p in plans] == [
        (1, 1, ("vit", "vitbnffn"), "boom")
    ]
    assert [key[1:] for key in keys] == [(1, 1, "vit"), (1, 1, "vitbnffn")]
    assert [p.models for p in failed_jobs(a, skip=keys[:1])[0]] == [("vitbnffn",)]
