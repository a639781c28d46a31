"""The user's command of a sweep: its ``multirun.yaml``, and ``resolve.json`` that keeps it.

Every sweep command rewrites ``multirun.yaml``, ``resolve``'s own included, so the
store pins the user's version in ``resolve.json`` (``pin_origin``) together with the
task overrides of each command ``resolve`` launched; ``origin_doc`` returns the user's
version for as long as ``multirun.yaml`` is the pinned one or one ``resolve`` launched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vitbn_sweep import store
from vitbn_sweep.schema import override_key
from vitbn_sweep.store import MULTIRUN_FILE, ORIGIN_FILE


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def task_overrides(overrides: Sequence[str]) -> list[str]:
    """The overrides Hydra records as the task's (``hydra.overrides.task``): all but
    ``hydra.*`` and ``hydra/...`` (with any ``+``/``~`` prefix or ``@package``)."""
    return [o for o in overrides if not override_key(o).startswith(("hydra.", "hydra/"))]


def doc_task(doc: Mapping[str, Any]) -> list[str]:
    """The command line's config overrides a ``multirun.yaml`` document recorded."""
    overrides = (doc.get("hydra") or {}).get("overrides") or {}
    return [str(o) for o in (overrides.get("task") or [])]


def _pinned(sweep_dir: Path) -> dict[str, Any]:
    pinned = store.read_json(sweep_dir / ORIGIN_FILE)
    return pinned if isinstance(pinned, dict) else {}


def origin_doc(sweep_dir: str | Path) -> dict[str, Any] | None:
    """The user's multirun.yaml of ``sweep_dir`` as a dict, or None when unreadable.

    Every sweep command rewrites multirun.yaml, ``resolve``'s own included. ``resolve``
    pins the user's version (``pin_origin``) and, before each launch, the task overrides
    of the command it launches; the pinned version is used while multirun.yaml is the
    one it pinned or one that ``resolve`` launched, also after a ``resolve`` killed
    mid-command, so a later command of the user's own is the only thing that replaces it.
    """
    path = Path(sweep_dir) / MULTIRUN_FILE
    doc = store.read_yaml(path)
    if not path.is_file() or (doc is None and path.stat().st_size):
        return None  # none, or damaged (an empty one is an empty config)
    doc = doc or {}
    pinned = _pinned(Path(sweep_dir))
    if pinned and isinstance(doc, dict):
        ours = doc_task(doc) in pinned.get("launched", [])
        if ours or pinned.get("multirun_sha256") == _digest(path):
            doc = pinned.get("origin")
    return doc if isinstance(doc, dict) else None


def _canonical(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, default=str)


def pin_origin(
    sweep_dir: str | Path, doc: Mapping[str, Any], launching: Sequence[str] | None = None
) -> None:
    """Record ``doc`` as the user's multirun.yaml, valid while multirun.yaml stays as it is
    or is one that ``resolve`` launched: ``launching``, the overrides of a command about to
    run, joins the launched ones (kept for as long as ``doc`` stays the user's)."""
    sweep_dir = Path(sweep_dir)
    before = _pinned(sweep_dir)
    same = _canonical(before.get("origin")) == _canonical(doc)
    launched = before.get("launched", []) if same else []
    task = None if launching is None else task_overrides(launching)
    if task is not None and task not in launched:
        launched = [*launched, task]
    record = {
        "multirun_sha256": _digest(sweep_dir / MULTIRUN_FILE),
        "origin": doc,
        "launched": launched,
    }
    store.write_json(sweep_dir / ORIGIN_FILE, record)
