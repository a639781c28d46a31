"""The config schema: the keys that ``conf/`` defines, and no others.

``conf/`` is the single source of truth, so the schema is read from it: the
primary config's keys, and for each config group the keys of its options
(following an option's ``defaults`` within its group, so ``vitbnffn`` has every
key of ``vit``). A key that no config file defines (``+trainer.foo=1``, or the
typo ``trainer.epoch=3``) is refused before anything runs, naming the nearest
valid key. Values are checked in ``vitbn_sweep.validate``.

Imports nothing heavy: the sweeper and the command line call it first.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

import yaml

GROUPS = ("model", "data", "optim", "logger")  # option nodes live under the group's key
SELECTORS = {"model": "arch", "logger": "name"}  # options that share this value share keys
ROOT_GROUPS = ("experiment",)  # `@package _global_` options: they set keys, define none
SKIP = ("defaults", "hydra")


def _load(*parts: str) -> dict[str, Any]:
    node = resources.files("vitbn_sweep.conf")
    for part in parts:
        node = node / part
    return yaml.safe_load(node.read_text()) or {}


def _leaves(node: Mapping[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in node.items():
        if not prefix and key in SKIP:
            continue
        if isinstance(value, Mapping) and value:
            keys |= _leaves(value, f"{prefix}{key}.")
        else:
            keys.add(f"{prefix}{key}")
    return keys


@functools.cache
def options(group: str) -> tuple[str, ...]:
    """The option names of a config group (``model`` -> vit, vitbnffn, ...)."""
    folder = resources.files("vitbn_sweep.conf") / group
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml")))


@functools.cache
def option_node(group: str, option: str) -> dict[str, Any]:
    """An option's node with its in-group ``defaults`` merged in (theirs first)."""
    raw = _load(group, f"{option}.yaml")
    merged: dict[str, Any] = {}
    for entry in raw.get("defaults", []):
        if isinstance(entry, str) and entry != "_self_":
            _merge(merged, option_node(group, entry))
    _merge(merged, {k: v for k, v in raw.items() if k != "defaults"})
    return merged


def _merge(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


@functools.cache
def _primary_keys() -> frozenset[str]:
    return frozenset(_leaves(_load("config.yaml")))


@functools.cache
def _option_keys(group: str, option: str) -> frozenset[str]:
    return frozenset(_leaves(option_node(group, option), f"{group}."))


@functools.cache
def all_keys() -> frozenset[str]:
    """Every dotted key any config file defines (for the command line, before composing)."""
    keys = set(_primary_keys())
    for group in GROUPS:
        for option in options(group):
            keys |= _option_keys(group, option)
    return frozenset(keys)


def _valid_keys(cfg: Mapping[str, Any]) -> set[str]:
    """The keys valid for ``cfg``: the primary config's, and those of the chosen options."""
    keys = set(_primary_keys())
    for group in GROUPS:
        node = cfg.get(group)
        selector = SELECTORS.get(group)
        chosen = node.get(selector) if isinstance(node, Mapping) and selector else None
        for option in options(group):
            if chosen is None or option_node(group, option).get(selector) == chosen:
                keys |= _option_keys(group, option)
    return keys


def nearest(key: str, keys: Iterable[str]) -> str | None:
    """The valid key closest to ``key`` (a typo's likely intent), if any is close."""
    match = difflib.get_close_matches(key, sorted(keys), n=1, cutoff=0.6)
    if match:
        return match[0]
    parent = key.rsplit(".", 1)[0]
    siblings = sorted(k for k in keys if k.startswith(f"{parent}."))
    return siblings[0] if siblings else None


def unknown_key_message(key: str, keys: Iterable[str]) -> str:
    guess = nearest(key, keys)
    hint = f"did you mean {guess}?" if guess else "no config file defines it"
    return (
        f"{key} is not a config key ({hint}); every key lives in conf/, "
        "`python -m vitbn_sweep --cfg job` prints them"
    )


def override_key(override: str) -> str:
    """``+trainer.foo=1`` -> ``trainer.foo``; ``model=vit`` -> ``model`` (a group)."""
    key = override.split("=", 1)[0].lstrip("+~")
    return key.split("@", 1)[0]


def unknown_key_errors(cfg: Mapping[str, Any]) -> list[str]:
    """One line per key of the composed ``cfg`` that no config file defines."""
    valid = _valid_keys(cfg)
    prefixes = {k.rsplit(".", i)[0] for k in valid for i in range(1, k.count(".") + 1)}
    return [
        unknown_key_message(key, valid)
        for key in sorted(_leaves(cfg))
        if key not in valid and key not in prefixes
    ]


def override_errors(overrides: Iterable[str]) -> list[str]:
    """Problems with command-line overrides, before Hydra composes anything.

    Checks that each key exists in some config file and that each group choice
    names an existing option; values are checked once the config is composed.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    errors: list[str] = []
    keys = all_keys()
    groups = {*GROUPS, *ROOT_GROUPS}
    parser = OverridesParser.create()
    for text in overrides:
        if "=" not in text or text.startswith("-"):
            continue
        try:
            parser.parse_override(text)
        except HydraException:  # the lexer raises it for a non-ASCII letter unquoted
            key, value = text.split("=", 1)
            errors.append(
                f"{text}: Hydra cannot parse this value; quote it (spaces, non-ASCII letters "
                f"and most symbols need quotes): {key}='{value}'"
            )
            continue
        key, value = override_key(text), text.split("=", 1)[1]
        if key.startswith("hydra") or not key:
            continue
        if key in groups:
            choices = options(key)
            for choice in value.split(","):
                if "(" in value or choice in choices or choice == "null":
                    continue
                guess = nearest(choice, choices)
                hint = f"did you mean {guess}? " if guess else ""
                errors.append(
                    f"{key}={choice} is not an option of {key} ({hint}one of {', '.join(choices)})"
                )
        elif key not in keys and not any(k.startswith(f"{key}.") for k in keys):
            errors.append(unknown_key_message(key, keys))
    return errors
