"""The sweeper's grid (launch order, batches) and its data check before launch."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

import hydra_plugins.vitbn_sweep_sweeper.sweeper as sweeper
from tests.conftest import TINY, compose_config, run_cli
from vitbn_sweep import grid
from vitbn_sweep.data.home import FILES


def jobs(*args: str) -> list[dict[str, str]]:
    return [
        dict(o.split("=", 1) for o in job)
        for job in grid.grid(OverridesParser.create().parse_overrides(list(args)))
    ]


def test_an_adhoc_grid_runs_both_models_of_a_cell_side_by_side() -> None:
    order = jobs("model=vit,vitbnffn", "model.depth=1,2,3,4,5,6,7", "optim.lr=0.003,0.005")
    assert len(order) == 28
    assert [(j["model"], j["model.depth"], j["optim.lr"]) for j in order[:4]] == [
        ("vit", "1", "0.003"),
        ("vitbnffn", "1", "0.003"),
        ("vit", "1", "0.005"),
        ("vitbnffn", "1", "0.005"),
    ]
    depths = [j["model.depth"] for j in order]
    assert depths == sorted(depths)  # the first other key stays the slowest
    for a, b in zip(order[::2], order[1::2], strict=True):  # every pair: one cell, two models
        assert (a["model"], b["model"]) == ("vit", "vitbnffn")
        assert {k: v for k, v in a.items() if k != "model"} == {
            k: v for k, v in b.items() if k != "model"
        }


def test_a_norm_axis_is_compared_side_by_side_too() -> None:
    order = jobs("model.norms.ffn_hidden=layer,batch", "trainer.seed=0,1")
    assert [(j["trainer.seed"], j["model.norms.ffn_hidden"]) for j in order] == [
        ("0", "layer"),
        ("0", "batch"),
        ("1", "layer"),
        ("1", "batch"),
    ]


def test_each_job_keeps_the_commands_key_order_and_all_its_overrides() -> None:
    [first, *_] = grid.grid(
        OverridesParser.create().parse_overrides(
            ["model=vit,vitbnffn", "+trainer.foo=1", "model.depth=range(1,3)"]
        )
    )
    assert first == ["model=vit", "+trainer.foo=1", "model.depth=1"]
    assert len(jobs("model.depth=range(1,4)", "optim.lr=0.1,0.2")) == 6


def test_the_sweeper_uses_hydras_public_api_only() -> None:
    assert "hydra._internal" not in Path(sweeper.__file__).read_text()  # issue 26


def damage_one_file(data_dir: Path, root: Path) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in FILES:
        (raw / name).symlink_to(data_dir / "MNIST" / "raw" / name)
    (raw / "t10k-labels-idx1-ubyte").unlink()
    (raw / "t10k-labels-idx1-ubyte").write_bytes(bytes(FILES["t10k-labels-idx1-ubyte"][0]))


@pytest.mark.slow
@pytest.mark.parametrize("state", ["missing", "corrupt"])
def test_missing_or_corrupt_data_stops_a_sweep_before_any_job(
    data_dir: Path, tmp_path: Path, state: str
) -> None:
    root = tmp_path / "data"
    if state == "corrupt":
        damage_one_file(data_dir, root)
    proc = run_cli(
        ["-m", "model=vit,vitbnffn", "model.depth=1,2,3", *TINY, "data.download=false"],
        cwd=tmp_path,
        env={"VITBN_DATA_DIR": str(root)},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out  # as a failed sweep
    assert len(out.splitlines()) < 10, out
    assert "nothing was launched" in out and "Traceback" not in out
    expected = {"missing": "not found in", "corrupt": "t10k-labels-idx1-ubyte: md5 "}[state]
    assert expected in out and str(root / "MNIST" / "raw") in out
    assert not (tmp_path / "outputs").exists()  # no sweep dir, no job dir
    assert root.exists() == (state == "corrupt")  # no empty data/MNIST/raw left behind


def name(*args: str) -> str:
    return grid.grid_name(OverridesParser.create().parse_overrides(list(args)))


def test_an_unnamed_sweep_is_named_from_its_command() -> None:
    main = name("model=vit,vitbnffn", "model.depth=1,2,3,4,5,6,7", "optim.lr=0.003,0.005")
    assert main == "model.depth=1-7,model=vit+vitbnffn,optim.lr=0.003+0.005"
    # the same grid in any order, with any how-keys: the same sweep
    assert main == name("optim.lr=0.005,0.003", "model.depth=range(7,0,-1)", "model=vitbnffn,vit",
                        "logger=wandb", "trainer.device=cpu", "data.root=/elsewhere")  # fmt: skip
    # another grid is another sweep: other values, or another key held fixed
    assert name("model=vit,vitbnffn", "model.depth=1,2,3,4,5,6", "optim.lr=0.003,0.005") != main
    epochs = name(
        "model=vit,vitbnffn",
        "model.depth=1,2,3,4,5,6,7",
        "optim.lr=0.003,0.005",
        "trainer.epochs=1",
    )
    assert epochs.endswith(",trainer.epochs=1") and epochs != main
    assert name("logger=none") == "default"  # nothing asked: the config's defaults
    assert name("+trainer.foo=a/b", "model.depth=1,3") == "model.depth=1+3,trainer.foo=a_b"


def test_a_long_sweep_name_keeps_whole_overrides_and_a_hash() -> None:
    args = ["trainer.seed=range(0,40,2)", "data.train_size=100,200,300,400,500,600,700,800",
            "optim.lr=0.001,0.002,0.003,0.004,0.005,0.006", "trainer.epochs=1"]  # fmt: skip
    long = name(*args)
    assert len(long) <= grid.NAME_MAX and long.startswith("data.train_size=100+200+")
    head, digest = long.rsplit(",", 1)
    assert len(digest) == 8 and all(part.count("=") == 1 for part in head.split(","))
    assert long == name(*reversed(args)) and long != name(*args[:-1])


def test_experiments_keep_their_name_and_adhoc_sweeps_are_named() -> None:
    assert compose_config([])["sweep_name"] == grid.AUTO_NAME
    assert compose_config(["experiment=grid_c"])["sweep_name"] == "grid_c"


@pytest.mark.slow
def test_the_same_adhoc_command_finds_its_sweep_again(data_dir: Path, tmp_path: Path) -> None:
    tiny = [o for o in TINY if not o.startswith("sweep_name")]
    first = run_cli(["-m", "model=vit,vitbnffn", "trainer.seed=0,1", *tiny], cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    [sweep] = (tmp_path / "outputs").iterdir()
    assert sweep.name.startswith("model=vit+vitbnffn,trainer.seed=0+1,data.test_size=100,")
    again = run_cli(["-m", "trainer.seed=1,0", "model=vitbnffn,vit", *tiny], cwd=tmp_path)
    out = again.stdout + again.stderr
    assert "4 jobs, 4 already ended (skipped), 0 running elsewhere, 0 to launch" in out
    other = run_cli(["-m", "model=vit,vitbnffn", "trainer.seed=0", *tiny], cwd=tmp_path)
    assert other.returncode == 0, other.stderr
    assert len(list((tmp_path / "outputs").iterdir())) == 2  # another grid: its own sweep
