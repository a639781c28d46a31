"""The sweeper's grid (launch order, batches) and its data check before launch."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

import hydra_plugins.vitbn_sweep_sweeper.sweeper as sweeper
from tests.conftest import TINY, run_cli
from vitbn_sweep.data.home import FILES


def jobs(*args: str) -> list[dict[str, str]]:
    return [
        dict(o.split("=", 1) for o in job)
        for job in sweeper.grid(OverridesParser.create().parse_overrides(list(args)))
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
    [first, *_] = sweeper.grid(
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
