"""A job's identity: the one definition of "the same job".

A job is what it computes: its config without the keys that only say where or
how it runs (``HOW_KEYS``, declared in ``conf/how_keys.yaml``). Everything that
decides whether two jobs are the same derives from this module:

- the job's directory in a sweep, ``<paths.outputs>/<sweep_name>/<job_dirname>``:
  its command-line overrides, sorted, without the how-keys (the resolver
  ``${vitbn.job_dirname:${hydra.overrides.task}}`` in ``conf/config.yaml``);
- the resume check (``vitbn_sweep.store.resume``): a directory whose result or
  checkpoint has another identity is refused, never mixed;
- the plan check (``vitbn_sweep.store.claims``): a job whose identity changed between
  the sweep's plan and its start (``conf/`` edited meanwhile) is refused;
- the analysis (``analysis``): jobs of equal identity are duplicates, and only
  identity keys can split the results into conditions.

So a rerun that changes only how-keys (``logger=none``, ``resume.rerun_failed=true``,
``trainer.device=cuda``, ``trainer.eval_chunk=500`` ...) addresses the same directories.

Deliberate choices (the reasons stand beside the keys in ``conf/how_keys.yaml``):
``trainer.compile`` and ``trainer.cuda_graph`` are how-keys, ``trainer.precision`` is
not. The fast pipeline draws its random numbers on the CPU, so ``trainer.device`` does
not change the data stream.

Imports nothing heavy: the sweeper calls it on a Slurm login node.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

import yaml
from omegaconf import OmegaConf

from vitbn_sweep import schema

HOW_KEYS_FILE = "how_keys.yaml"  # in conf/: the declaration of the how-keys
DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
NOT_IN_SCHEMA = ("hydra", *schema.ROOT_GROUPS)  # how-keys that no key of conf/ lies below


def covers(keys: Iterable[str], key: str) -> bool:
    """True if the dotted ``key`` is one of ``keys`` or lies below one."""
    return any(key == k or key.startswith(f"{k}.") for k in keys)


class HowKeysError(ValueError):
    """``conf/how_keys.yaml`` is not what ``how_keys`` expects: nothing can be identified."""


def how_keys(text: str, where: str = HOW_KEYS_FILE) -> dict[str, tuple[str, ...]]:
    """The how-keys that the YAML ``text`` declares: ``{"own": (...), "process": (...)}``.

    Refuses (naming ``where``) anything but two lists of distinct config keys (or nodes,
    ``hydra`` and the ``experiment`` group included): a typo here would silently move
    every job to another directory and identity.
    """
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise HowKeysError(f"{where}: not YAML: {exc}") from None
    declared = raw.get("how_keys") if isinstance(raw, dict) else None
    if not isinstance(declared, dict) or set(declared) != {"own", "process"}:
        raise HowKeysError(f"{where}: expected `how_keys:` with the lists `own:` and `process:`")
    keys: dict[str, tuple[str, ...]] = {}
    for kind, listed in declared.items():
        bad = [k for k in listed or [] if not (isinstance(k, str) and DOTTED.fullmatch(k))]
        if not isinstance(listed, list) or not listed or bad:
            raise HowKeysError(f"{where}: how_keys.{kind} must list dotted keys; bad: {bad}")
        keys[kind] = tuple(listed)
    twice = [k for k, n in Counter(keys["own"] + keys["process"]).items() if n > 1]
    if twice:
        raise HowKeysError(f"{where}: how-keys declared twice: {twice}")
    defined = schema.all_keys()
    for key in keys["own"] + keys["process"]:
        if key not in NOT_IN_SCHEMA and not any(covers([key], d) for d in defined):
            raise HowKeysError(f"{where}: {schema.unknown_key_message(key, defined)}")
    return keys


_declared = resources.files("vitbn_sweep.conf") / HOW_KEYS_FILE
_HOW = how_keys(_declared.read_text(), str(_declared))
# Dotted keys that say where or how a job runs, not what it computes; those of them that
# one training process has (stacked members share them: ``vitbn_sweep.stacked``).
PROCESS_KEYS: tuple[str, ...] = _HOW["process"]
HOW_KEYS: tuple[str, ...] = _HOW["own"] + PROCESS_KEYS
BRACKETS = {"[": "]", "{": "}", "(": ")"}  # a comma inside them is part of a value
DIRNAME_SEP = ","  # between the overrides of a job directory name, as Hydra's
# The keys a study compares, by the short label that names them in log lines, tracker
# run names and tags: every place that names a job leads with these (``job_lead``).
LEAD_KEYS: dict[str, str] = {
    "model": "model.name",
    "depth": "model.depth",
    "lr": "optim.lr",
    "seed": "trainer.seed",
}


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"depth": 3}}`` -> ``{"model.depth": 3}``: every leaf by its dotted key
    (lists are leaves; an empty node has none), the keys ``dig`` reads."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def dig(config: Any, dotted: str) -> Any:
    """The value at ``dotted`` (``trainer.seed``) in a nested config; None where absent."""
    for key in dotted.split("."):
        if not isinstance(config, Mapping):
            return None
        config = config.get(key)
    return config


def is_how_key(key: str) -> bool:
    """True if the dotted ``key`` (or a key above it) says where/how a job runs."""
    return covers(HOW_KEYS, key)


def without(config: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """A copy of the nested ``config`` without the dotted ``keys`` (and all below them)."""
    keys = tuple(keys)

    def strip(node: Mapping[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            if covers(keys, dotted):
                continue
            if isinstance(value, Mapping):
                out[key] = strip(value, f"{dotted}.")
            else:
                out[key] = copy.deepcopy(value)  # a list leaf: the caller's stays its own
        return out

    return strip(config, "")


def job_identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """The nested ``config`` without the how-keys: what the job computes."""
    return without(config, HOW_KEYS)


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


def job_dirname(overrides: Iterable[str]) -> str:
    """A job's directory name in its sweep: its identity overrides, sorted, joined by commas.

    The same format as Hydra's ``override_dirname`` (``model.depth=3,model=vit``),
    with every how-key left out, whatever form it takes on the command line.
    """
    items = sorted(str(o) for o in overrides if not is_how_key(schema.override_key(str(o))))
    return DIRNAME_SEP.join(items)


def split_overrides(dirname: str) -> list[str]:
    """A job directory name back into its overrides (``job_dirname`` joined them):
    ``a=1,b=[2,3]`` -> ``["a=1", "b=[2,3]"]``, split at the commas outside brackets."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(dirname):
        if char in BRACKETS:
            depth += 1
        elif char in BRACKETS.values():
            depth = max(depth - 1, 0)
        elif char == DIRNAME_SEP and depth == 0:
            items.append(dirname[start:i])
            start = i + 1
    items.append(dirname[start:])
    return [item for item in items if item]


OmegaConf.register_new_resolver("vitbn.job_dirname", job_dirname, replace=True)
