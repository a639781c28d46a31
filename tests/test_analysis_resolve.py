"""``resolve``: which cells get a seed and why, the commands it runs, and its rounds.

The decision logic runs on synthetic job dirs; the rounds on a fake launcher that writes
job dirs with a known truth; ``test_resolve_a_real_sweep`` runs the real CLI end to end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import yaml

from analysis import Settings, analyze, records_from_dirs
from analysis.load import read_sweep
from analysis.resolve import CAPPED, NO_EFFECT, SEED, commands, plan_round, resolve
from tests.analysis_synth import write_grid, write_job

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


def plans_by_cell(root: Path, max_seeds: int = 6):
    records, stats = records_from_dirs([root])
    a = analyze(records, stats, Settings())
    return {(dict(p.condition)["lr"], p.depth): p for p in plan_round(a, max_seeds)}, a


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
    argvs = commands(plan_round(a, 6), read_sweep(sweep), {"lr"}, ["trainer.device=cpu"])
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


def fake_launcher(sweep: Path, truth: dict[int, float], calls: list[list[str]]):
    """Runs a sweep command by writing its jobs' dirs: accuracy = truth +- a seed's noise,
    and rewrites multirun.yaml with the command's overrides, as the real sweeper does."""

    def run(argv, cwd=None):
        calls.append(argv)
        given = dict(o.split("=", 1) for o in argv[4:] if "=" in o and not o.startswith("hydra"))
        for model in given["model"].split(","):
            for depth in map(int, given["model.depth"].split(",")):
                seed = int(given["trainer.seed"])
                noise = 0.004 * (1 if seed % 2 else -1) * (1 if model == "vit" else -1)
                acc = 0.80 + (truth[depth] if model == "vitbnffn" else 0.0) + noise
                write_job(sweep / "new", model, depth, seed, [0.5, 0.6, acc])
        multirun(sweep, argv[4:])
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
    printed: list[str] = []
    assert resolve(sweep, Settings(), max_seeds=4, run=run, echo=printed.append) == 0
    out = "\n".join(printed)
    # Two seeds (paired, 1 degree of freedom): no cell is decided, so every one gets seed 2.
    # Three: depths 1, 2 lose, 4 wins, 3 stays open and alone gets seed 3, which decides it.
    round_2 = out[out.index("resolve round 2") :]
    assert out.count("-> seed 2 for vit, vitbnffn") == 4
    assert round_2.count("-> seed") == 1 and "depth 3: unresolved" in round_2
    assert len(calls) == 2 and {"model.depth=3", "trainer.seed=3"} <= set(calls[1])
    assert printed[-1] == "done: resolved"
    records, stats = records_from_dirs([sweep])
    a = analyze(records, stats, Settings())
    assert a.critical.iloc[0]["critical_depth"] == "3"
    assert a.scores.groupby("depth")["seed"].nunique().to_dict() == {1: 3, 2: 3, 3: 4, 4: 3}
    # The user's command is still the sweep's command, though resolve rewrote multirun.yaml.
    assert read_sweep(sweep).task == user
    calls.clear()
    printed.clear()
    assert resolve(sweep, Settings(), max_seeds=4, run=run, echo=printed.append) == 0
    assert calls == [] and printed[-1] == "done: resolved"


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


def _data_dir() -> Path:
    return Path(os.environ.get("VITBN_DATA_DIR") or REPO.parent / "shared" / "data")


def test_resolve_a_real_sweep(tmp_path):
    """The user's sweep, then ``make resolve``'s command, twice: seeds only where unresolved."""
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
    open_before = {int(d) for d in before.critical.iloc[0]["open_depths"].split(",") if d}
    resolve_cmd = [sys.executable, "-m", "analysis", "resolve", str(root), "--max-seeds", "3"]
    done = subprocess.run(resolve_cmd, cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    records, stats = records_from_dirs([root])
    after = analyze(records, stats, Settings())
    seeds = after.scores.groupby(["model", "depth"])["seed"].nunique()
    for (model, depth), n in seeds.items():  # new seeds exactly at the open cells
        assert n == (3 if depth in open_before else 2), (model, depth, done.stdout)
    row = after.critical.iloc[0]
    open_after = {int(d) for d in row["open_depths"].split(",") if d}
    for depth in open_after:  # still open: only because the cap was reached
        assert seeds[("vit", depth)] == 3
    assert "resolve round 1" in done.stdout and "done:" in done.stdout
    # New jobs landed beside the old ones, named like them, and the sweep's command is kept.
    names = sorted(p.parent.name for p in root.glob("*/result.json"))
    assert all(n.startswith("data.test_size=100,") for n in names), names
    assert read_sweep(root).task == sweep[4:]
    again = subprocess.run(resolve_cmd, cwd=REPO, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "job(s) in" not in again.stdout, again.stdout
    assert len(list(root.glob("*/result.json"))) == len(names)
