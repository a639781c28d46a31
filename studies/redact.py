"""No machine's private paths in the published study: ``make publish`` rewrites them first.

A sweep's records hold the absolute paths of the machine that ran it: the data dir
(``data.root`` in each ``result.json``'s config), the working dir (``cwd``), the entry
point and the output dir (``argv``, ``paths.outputs``, ``hydra.sweep.dir`` in
``commands.jsonl``, ``multirun.yaml`` and ``resolve.json``). None of them changes what a
job computes (``vitbn_sweep.identity.HOW_KEYS``), and reproduction needs none of them: a
rerun names its own data dir (``VITBN_DATA_DIR``) and output dir. ``redact_path`` keeps
what is portable:

- a path through the study dir (``RESULTS_DIR``'s name, ``results``) or the package
  (``vitbn_sweep``): relative, from that component on (``results/article_full``);
- a path through a ``data`` dir: ``<data>`` and what follows it (``<data>/MNIST/raw``);
- anything else (a working dir, a home): ``<local>``.

``resolve.json`` pins the user's ``multirun.yaml`` by its SHA-256; where the pin matched,
it is moved to the redacted file, so ``make resolve`` still finds the user's command.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path, PurePosixPath

from vitbn_sweep import store
from vitbn_sweep.store import MULTIRUN_FILE, ORIGIN_FILE, atomic_write_text

# An absolute POSIX path: a '/' not inside a word, a URL (://) or a ${...}/ interpolation.
ABSOLUTE = re.compile(r"(?<![\w.:/}~-])/[\w.+@-]+(?:/[\w.+@-]+)*/?")
KEEP_FROM = ("vitbn_sweep",)  # with the study dir's own name: relative from there
DATA, LOCAL = "<data>", "<local>"
RECORDS = (".json", ".jsonl", ".yaml")  # a sweep's records; report/ is regenerated from them


def redact_path(path: str, study: str = "results") -> str:
    """The portable form of one absolute ``path`` (see the module docstring)."""
    parts = PurePosixPath(path).parts[1:]
    for i in range(len(parts) - 1, -1, -1):  # the innermost study dir or package
        if parts[i] in (study, *KEEP_FROM):
            return "/".join(parts[i:])
    if "data" in parts:
        return "/".join((DATA, *parts[parts.index("data") + 1 :]))
    return LOCAL


def redact_text(text: str, study: str = "results") -> str:
    """``text`` with every absolute path replaced by ``redact_path``'s form."""
    return ABSOLUTE.sub(lambda m: redact_path(m.group(0), study), text)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def redact_study(results: Path) -> list[Path]:
    """Rewrite every sweep record under ``results`` without absolute paths (those that hold
    none are left alone); returns the files rewritten."""
    written = []
    for sweep in sorted(store.sweep_dirs(results)):
        pin = sweep / ORIGIN_FILE
        before = _digest(sweep / MULTIRUN_FILE)
        for path in sorted(p for p in sweep.rglob("*") if p.suffix in RECORDS):
            if "report" in path.relative_to(sweep).parts or path == pin:
                continue
            text = path.read_text()
            redacted = redact_text(text, results.name)
            if redacted != text:
                atomic_write_text(path, redacted)
                written.append(path)
        if pin.is_file():
            record = json.loads(pin.read_text())
            redacted = json.loads(redact_text(json.dumps(record), results.name))
            if record.get("multirun_sha256") == before:
                redacted["multirun_sha256"] = _digest(sweep / MULTIRUN_FILE)
            if redacted != record:
                atomic_write_text(pin, json.dumps(redacted, indent=1, default=str))
                written.append(pin)
    return written
