"""A Hydra callback for tests: ``conf/`` is edited while a sweep runs.

Once the first job has ended, it replaces ``old`` by ``new`` in the config file at
``path`` (a copy of ``conf/``, given to the sweep with ``-cp``), as a user editing
``conf/`` between two jobs of a running sweep would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback


class EditConfigOnJobEnd(Callback):
    def __init__(self, path: str, old: str, new: str) -> None:
        self.path, self.old, self.new = Path(path), old, new

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        text = self.path.read_text()
        if self.old in text:
            self.path.write_text(text.replace(self.old, self.new, 1))
