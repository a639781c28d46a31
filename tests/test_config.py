"""Config composition of every group option and experiment; every validation error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

from tests.conftest import REPO, compose_config
from vitbn_sweep.identity import job_identity
from vitbn_sweep.schema import override_errors
from vitbn_sweep.validate import ConfigError, config_errors, validate

CONF = REPO / "conf"
GROUPS = sorted(
    p.name for p in CONF.iterdir() if p.is_dir() and p.name not in {"hydra", "__pycache__"}
)
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))]


def test_groups_the_user_asked_for_exist() -> None:
    assert {"model", "data", "optim", "experiment"} <= set(GROUPS)
    assert {o for g, o in OPTIONS if g == "model"} >= {"vit", "vitbnffn", "vitbn", "dnn", "dnnbn"}
    assert {o for g, o in OPTIONS if g == "experiment"} >= {
        "warmup",
        "grid_a",
        "grid_b",
        "grid_c",
        "article_full",
        "smoke",
    }


@pytest.mark.parametrize(("group", "option"), OPTIONS)
def test_every_option_composes_and_validates(group: str, option: str) -> None:
    cfg = compose_config([f"{group}={option}"])
    assert config_errors(cfg) == []


def test_defaults_are_the_spec() -> None:
    cfg = compose_config([])
    assert cfg["model"]["name"] == "vit" and cfg["data"]["name"] == "mnist"
    assert cfg["optim"]["name"] == "adam" and cfg["optim"]["lr"] == 0.003
    assert cfg["optim"]["weight_decay"] == 0
    expected = {
        "epochs": 10,
        "batch_size": 100,
        "test_batch_size": 5000,
        "seed": 0,
        "device": "auto",
        "threads": None,
    }
    assert {k: cfg["trainer"][k] for k in expected} == expected
    m = cfg["model"]
    assert (m["dim"], m["mlp_dim"], m["heads"], m["dim_head"], m["patch_size"]) == (
        64,
        128,
        8,
        64,
        7,
    )
    dnn = compose_config(["model=dnn"])["model"]
    assert (dnn["hidden"], dnn["depth"]) == (100, 3)
    aug = cfg["data"]["augment"]
    assert aug["train"] and aug["test"] and aug["rotation_degrees"] == 20
    assert aug["translate"] == 0.2 and aug["zoom_out_p"] == 0.2
    assert aug["zoom_out_side_range"] == [2.0, 3.0]


GRIDS = {
    "warmup": ("dnn,dnnbn", "3", "0.01,0.1", 15),
    "grid_a": ("vit,vitbnffn", "4,5,6,7", "0.003", 10),
    "grid_b": ("vit,vitbnffn", "1,2,3,4", "0.005", 10),
    "grid_c": ("vit,vitbnffn", "2,3,4", "0.003,0.005", 10),
    "article_full": ("vit,vitbnffn", "1,2,3,4,5,6,7", "0.003,0.005", 10),
}


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_experiments_carry_the_spec_grids(name: str) -> None:
    with initialize_config_module(config_module="vitbn_sweep.conf", version_base="1.3"):
        cfg = compose(
            config_name="config", overrides=[f"experiment={name}"], return_hydra_config=True
        )
    params = cfg.hydra.sweeper.params
    models, depths, lrs, epochs = GRIDS[name]
    assert (params["model"], str(params["model.depth"]), str(params["optim.lr"])) == (
        models,
        depths,
        lrs,
    )
    assert str(params["trainer.seed"]) == "0,1,2" and cfg.trainer.epochs == epochs
    assert cfg.sweep_name == name


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_experiments_launch_depth_by_depth_with_paired_jobs_together(name: str) -> None:
    """The sweeper launches the product of the params, the first key slowest (a command-line
    override of a key keeps its place): a cut sweep leaves whole depths and pairs."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from vitbn_sweep.grid import grid

    with initialize_config_module(config_module="vitbn_sweep.conf", version_base="1.3"):
        cfg = compose(
            config_name="config", overrides=[f"experiment={name}"], return_hydra_config=True
        )
    params = [f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()]
    assert [p.split("=")[0] for p in params] == ["model.depth", "trainer.seed", "optim.lr", "model"]
    for extra in ([], ["model.depth=6,5"]):
        overrides = OverridesParser.create().parse_overrides([*params, *extra])
        jobs = grid(overrides)
        keys = [dict(o.split("=", 1) for o in job) for job in jobs]
        depths = [k["model.depth"] for k in keys]
        assert depths == sorted(depths, key=depths.index)  # each depth's jobs in one run
        models = GRIDS[name][0].split(",")
        for i in range(0, len(keys), 2):  # both models of a (depth, seed, lr) side by side
            a, b = keys[i], keys[i + 1]
            assert [a["model"], b["model"]] == models
            assert {k: v for k, v in a.items() if k != "model"} == {
                k: v for k, v in b.items() if k != "model"
            }
    assert depths[0] == "6"


HOW_OVERRIDES = [
    "logger=none",
    "logger=wandb",
    "logger.mode=offline",
    "resume.rerun_failed=true",
    "resume.rerun_diverged=true",
    "data.download=false",
    "data.num_workers=2",
    "data.root=/elsewhere",
    "trainer.device=cpu",
    "trainer.threads=1",
    "trainer.progress=log",
    "trainer.eval_chunk=500",
    "trainer.compile=true",
    "trainer.flush_denormal=false",
    "trainer.cuda_graph=true",
    "paths.outputs=/tmp/x",
    "sweep_name=mine",
]


def _subdir(overrides: list[str]) -> str:
    with initialize_config_module(config_module="vitbn_sweep.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    return str(cfg.hydra.sweep.subdir)


def test_job_dir_is_a_readable_function_of_the_overrides() -> None:
    assert _subdir(["model=vitbnffn", "model.depth=3"]) == "model.depth=3,model=vitbnffn"
    assert _subdir(["model.depth=3", "model=vitbnffn", "trainer.precision=bf16"]) == (
        "model.depth=3,model=vitbnffn,trainer.precision=bf16"
    )


@pytest.mark.parametrize("how", HOW_OVERRIDES)
def test_where_and_how_keys_leave_the_job_dir_and_identity_alone(how: str) -> None:
    base = ["model=vitbnffn", "model.depth=3"]
    assert _subdir([*base, how]) == "model.depth=3,model=vitbnffn"
    if not how.startswith(("logger=", "paths.", "sweep_name")):
        assert job_identity(compose_config([*base, how])) == job_identity(compose_config(base))


def test_identity_keeps_every_key_that_changes_the_maths() -> None:
    base = job_identity(compose_config(["model=vit"]))
    for what in ["trainer.precision=bf16", "data.test_seed=1", "trainer.diverge_check=false"]:
        assert job_identity(compose_config(["model=vit", what])) != base, what


HOW_KEYS_YAML = (CONF / "how_keys.yaml").read_text()


@pytest.mark.parametrize(
    "text, message",
    [
        (
            HOW_KEYS_YAML.replace("- trainer.device", "- trainer.devce"),
            "did you mean trainer.device?",
        ),
        (HOW_KEYS_YAML.replace("process:", "shared:"), "with the lists `own:` and `process:`"),
        (HOW_KEYS_YAML.replace("- logger", "- 3"), "how_keys.own must list dotted keys; bad: [3]"),
        (HOW_KEYS_YAML + "    - paths\n", "how-keys declared twice: ['paths']"),
        ("how_keys: [", "not YAML"),
    ],
)
def test_a_wrong_how_keys_declaration_is_refused_naming_the_file(text: str, message: str) -> None:
    from vitbn_sweep.identity import HowKeysError, how_keys

    with pytest.raises(HowKeysError, match=re.escape("conf/how_keys.yaml: ")) as caught:
        how_keys(text, "conf/how_keys.yaml")
    assert message in str(caught.value)


def test_how_keys_are_declared_in_conf_and_cover_every_how_override() -> None:
    from vitbn_sweep.identity import HOW_KEYS, PROCESS_KEYS, how_keys, is_how_key
    from vitbn_sweep.schema import override_key

    assert how_keys(HOW_KEYS_YAML) == {
        "own": HOW_KEYS[: -len(PROCESS_KEYS)],
        "process": PROCESS_KEYS,
    }
    assert all(is_how_key(override_key(how)) for how in HOW_OVERRIDES)


BAD = [
    ("model.depth=0", "model.depth must be an integer >= 1, got 0"),
    ("model.depth=2.5", "model.depth must be an integer >= 1, got 2.5"),
    ("optim.lr=0", "optim.lr must be a finite number > 0, got 0"),
    ("optim.lr=-0.1", "optim.lr must be a finite number > 0, got -0.1"),
    ("optim.lr=inf", "optim.lr must be a finite number > 0, got inf"),
    (
        "model.patch_size=5",
        "model.patch_size must divide data.image_size=28 (one of 1, 2, 4, 7, 14, 28), got 5",
    ),
    ("model.heads=0", "model.heads must be an integer >= 1, got 0"),
    ("trainer.batch_size=0", "trainer.batch_size must be an integer >= 1, got 0"),
    ("trainer.test_batch_size=0", "trainer.test_batch_size must be an integer >= 1, got 0"),
    ("trainer.epochs=0", "trainer.epochs must be an integer >= 1, got 0"),
    ("trainer.device=gpu", "trainer.device must be auto, cpu, cuda, cuda:N or mps, got 'gpu'"),
    ("data.pipeline=pil", "data.pipeline must be one of"),
    ("data.train_size=0", "data.train_size must be an integer >= 1, got 0"),
    ("data.augment.zoom_out_p=1.5", "data.augment.zoom_out_p must be a probability in [0, 1]"),
    ("model.norms.ffn_hidden=group", "model.norms.ffn_hidden must be one of layer, batch, none"),
]


@pytest.mark.parametrize(("override", "message"), BAD)
def test_bad_values_name_the_key_and_the_valid_range(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate(compose_config([override]))
    assert message in str(err.value)


# The in-process half of tests/test_reruns.py's CLI test (slow): the same typos, their messages.
TYPOS = [
    (["+trainer.foo=1"], "trainer.foo is not a config key"),
    (["+trainer.epoch=3"], "trainer.epoch is not a config key (did you mean trainer.epochs?)"),
    (["trainer.epoch=3"], "trainer.epoch is not a config key (did you mean trainer.epochs?)"),
    (
        ["-m", "model=vit,vitbnfn"],
        "model=vitbnfn is not an option of model (did you mean vitbnffn?",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), TYPOS)
def test_typos_are_named_before_hydra_composes(overrides: list[str], message: str) -> None:
    (error,) = override_errors(overrides)
    assert message in error


def test_a_key_the_chosen_option_lacks_is_named_once_composed() -> None:
    assert override_errors(["model=dnn", "+model.dim=64"]) == []  # vit has model.dim
    errors = config_errors(compose_config(["model=dnn", "+model.dim=64"]))
    assert any("model.dim is not a config key" in e for e in errors), errors


def test_per_sample_batchnorm_needs_batches_of_two() -> None:
    errors = config_errors(compose_config(["model=dnnbn", "trainer.batch_size=1"]))
    assert errors == ["trainer.batch_size must be an integer >= 2, got 1"]
    assert config_errors(compose_config(["model=dnn", "trainer.batch_size=1"])) == []


@pytest.mark.parametrize("model", ["vit", "vitbnffn", "vitbn"])
def test_token_batchnorm_trains_on_one_image_per_batch(model: str) -> None:
    # 17 tokens per image: BatchNorm over batch and tokens is well defined for b = 1.
    assert config_errors(compose_config([f"model={model}", "trainer.batch_size=1"])) == []


def test_conf_ships_inside_the_package() -> None:
    import importlib.resources

    files = importlib.resources.files("vitbn_sweep.conf")
    assert (files / "config.yaml").is_file() and (files / "model" / "vitbnffn.yaml").is_file()
    assert Path(str(files / "config.yaml")).resolve() == (CONF / "config.yaml").resolve()


def test_every_name_a_config_may_take_is_acted_on() -> None:
    from vitbn_sweep import choices
    from vitbn_sweep.models import DNN_NORMS, NORMS

    assert tuple(NORMS) == choices.NORMS["vit"] and tuple(DNN_NORMS) == choices.NORMS["dnn"]
    assert tuple(compose_config(["model=vit"])["model"]["norms"]) == choices.VIT_NORM_SLOTS
    assert tuple(compose_config(["model=dnn"])["model"]["norms"]) == ("hidden",)
    options = {g: {o for gg, o in OPTIONS if gg == g} for g in ("logger", "model")}
    assert options["logger"] == set(choices.LOGGERS)
    assert {compose_config([f"model={m}"])["model"]["arch"] for m in options["model"]} == set(
        choices.NORMS
    )
