"""A job's identity: the one definition of "the same job".

A job is what it computes: its config without the keys that only say where or
how it runs (``HOW_KEYS``). Everything that decides whether two jobs are the
same derives from this module:

- the job's directory in a sweep, ``<paths.outputs>/<sweep_name>/<job_dirname>``:
  its command-line overrides, sorted, without the how-keys (the resolver
  ``${vitbn.job_dirname:${hydra.overrides.task}}`` in ``conf/config.yaml``);
- the resume check (``vitbn_sweep.resume``): a directory whose result or
  checkpoint has another identity is refused, never mixed;
- the plan check (``vitbn_sweep.claims``): a job whose identity changed between
  the sweep's plan and its start (``conf/`` edited meanwhile) is refused;
- the analysis (``analysis``): jobs of equal identity are duplicates, and only
  identity keys can split the results into conditions.

So a rerun that changes only how-keys (``logger=none``, ``resume.rerun_failed=true``,
``trainer.device=cuda``, ``trainer.eval_chunk=500`` ...) addresses the same directories.

Deliberate choices: ``trainer.compile`` and ``trainer.cuda_graph`` are how-keys (the
same maths, fused or replayed; results agree to float rounding), ``trainer.precision``
is not (bf16 changes the numbers beyond rounding: a bf16 job is another job). The
fast pipeline draws its random numbers on the CPU, so ``trainer.device`` does not
change the data stream.

Imports nothing heavy: the sweeper calls it on a Slurm login node.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from omegaconf import OmegaConf

# Dotted keys (a key also covers everything below it) that say where or how a job
# runs, not what it computes.
HOW_KEYS: tuple[str, ...] = (
    "sweep_name",
    "experiment",
    "paths",
    "logger",
    "resume",
    "hydra",
    "data.root",
    "data.download",
    "data.num_workers",
    "trainer.device",
    "trainer.threads",
    "trainer.progress",
    "trainer.eval_chunk",
    "trainer.compile",
    "trainer.flush_denormal",
    "trainer.cuda_graph",
)
DIRNAME_SEP = ","  # between the overrides of a job directory name, as Hydra's
# The keys a study compares, by the short label that names them in log lines, tracker
# run names and tags: every place that names a job leads with these (``job_lead``).
LEAD_KEYS: dict[str, str] = {
    "model": "model.name",
    "depth": "model.depth",
    "lr": "optim.lr",
    "seed": "trainer.seed",
}


def dig(config: Any, dotted: str) -> Any:
    """The value at ``dotted`` (``trainer.seed``) in a nested config; None where absent."""
    for key in dotted.split("."):
        if not isinstance(config, Mapping):
            return None
        config = config.get(key)
    return config


def is_how_key(key: str) -> bool:
    """True if the dotted ``key`` (or a key above it) says where/how a job runs."""
    return any(key == how or key.startswith(f"{how}.") for how in HOW_KEYS)


def job_identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """The nested ``config`` without the how-keys: what the job computes."""

    def strip(node: Mapping[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            if is_how_key(dotted):
                continue
            if isinstance(value, Mapping):
                out[key] = strip(value, f"{dotted}.")
            else:
                out[key] = copy.deepcopy(value)  # a list leaf: the caller's stays its own
        return out

    return strip(config, "")


def identity_differences(now: Any, there: Any, *, there_word: str = "there") -> list[str]:
    """Where identity ``now`` differs from ``there``: ``["optim.lr: 0.003 there, 0.001 now"]``."""

    def walk(a: Any, b: Any, prefix: str) -> list[str]:
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out: list[str] = []
            for key in sorted(set(a) | set(b)):
                out += walk(a.get(key), b.get(key), f"{prefix}{key}.")
            return out
        return [] if a == b else [f"{prefix[:-1]}: {b!r} {there_word}, {a!r} now"]

    return walk(now, there, "")


def job_lead(config: Mapping[str, Any]) -> dict[str, Any]:
    """The job's values of ``LEAD_KEYS``: e.g. ``{"model": "vit", "depth": 3, ...}``
    (from a resolved config)."""
    return {label: dig(config, dotted) for label, dotted in LEAD_KEYS.items()}


def job_labels(config: Mapping[str, Any]) -> list[str]:
    """The job's lead as words: ``["vit", "depth=3", "lr=0.001", "seed=0"]`` (tracker tags)."""
    model, *rest = job_lead(config).items()
    return [str(model[1]), *(f"{label}={value}" for label, value in rest)]


def job_name(config: Mapping[str, Any]) -> str:
    """A job's name in log lines: ``vit depth=3 lr=0.001 seed=0``."""
    return " ".join(job_labels(config))


def override_key(override: str) -> str:
    """``+trainer.foo=1`` -> ``trainer.foo``; ``model=vit`` -> ``model`` (a group)."""
    key = override.split("=", 1)[0].lstrip("+~")
    return key.split("@", 1)[0]


def job_dirname(overrides: Iterable[str]) -> str:
    """A job's directory name in its sweep: its identity overrides, sorted, joined by commas.

    The same format as Hydra's ``override_dirname`` (``model.depth=3,model=vit``),
    with every how-key left out, whatever form it takes on the command line.
    """
    items = sorted(str(o) for o in overrides if not is_how_key(override_key(str(o))))
    return DIRNAME_SEP.join(items)


OmegaConf.register_new_resolver("vitbn.job_dirname", job_dirname, replace=True)
