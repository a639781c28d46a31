"""``logger=wandb``: one wandb run per job, grouped by sweep, offline when no credentials.

- run id: derived from the job's directory (``run.tracker_run``) with
  ``resume="allow"``, so a restarted or resumed job continues the same run;
- group = ``logger.group`` (the sweep), job_type = the model, name =
  ``run.run_name`` (``vitbnffn-d4-lr0.005-s2``, then other overrides);
- config = the resolved config (nested), per-epoch metrics with ``step=epoch``,
  summary = the result record (status, final, best, ...) without the config, and
  ``job_dir``; tags: model, depth, lr, seed, sweep, and at the end the device;
- the run's files live in ``<job_dir>/wandb/`` (``python -m analysis export`` puts
  them elsewhere: ``run_dir``);
- mode: ``WANDB_MODE`` when set, else ``logger.mode``; ``auto`` is online when
  credentials exist (``WANDB_API_KEY``, ``WANDB_IDENTITY_TOKEN_FILE`` or a netrc
  entry from ``wandb login``), else offline with one warning per process that
  says how to upload the runs (``wandb sync``);
- fail fast: before going online, the server is probed once with a short timeout
  (``logger.probe_timeout_s``). An unreachable server means offline, with one
  warning, and a marker in the sweep directory (``.wandb_unreachable``) so the
  sweep's other jobs, in any process, go offline at once: one short timeout per
  sweep, not wandb's own retries (about 90 s) per job.
"""

from __future__ import annotations

import logging
import netrc
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from vitbn_sweep import store
from vitbn_sweep.tracking.run import Tracker, TrackerRun, run_tags, tracker_run

log = logging.getLogger(__name__)
DEFAULT_BASE_URL = "https://api.wandb.ai"
JOB_DIR_KEY = "job_dir"  # summary key: where the job's result files are
REPORT_JOB_TYPE = "report"  # job_type of the analysis' report runs (not jobs)
UNREACHABLE_FOR_S = 3600  # a marker this old no longer counts: the network may be back
_offline_warned = False
_unreachable: dict[str, str] = {}  # base url -> why, for this process


def server_unreachable(base_url: str, timeout_s: float) -> str | None:
    """Why ``base_url`` cannot be reached within ``timeout_s`` (any HTTP answer counts), or None."""
    try:
        urllib.request.urlopen(base_url, timeout=timeout_s).close()
    except urllib.error.HTTPError:
        return None  # it answered
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
    return None


def check_server(identity: TrackerRun, timeout_s: float) -> str | None:
    """None if the wandb server answers, else why not (probed at most once per sweep)."""
    url = os.environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL
    sweep_dir = identity.sweep_dir
    if url in _unreachable:
        return _unreachable[url]
    noted = None if sweep_dir is None else store.wandb_unreachable(sweep_dir, UNREACHABLE_FOR_S)
    if noted is not None:
        _unreachable[url] = noted
        return noted
    why = server_unreachable(url, timeout_s)
    if why is not None:
        _unreachable[url] = f"{url} unreachable within {timeout_s:g} s ({why})"
        if sweep_dir is not None:
            store.note_wandb_unreachable(sweep_dir, _unreachable[url])
    return _unreachable.get(url)


def netrc_paths(env: Mapping[str, str]) -> list[Path]:
    """Where ``wandb login`` keeps the API key: ``$NETRC``, else ``~/.netrc`` / ``~/_netrc``."""
    if env.get("NETRC"):
        return [Path(env["NETRC"]).expanduser()]
    return [Path("~/.netrc").expanduser(), Path("~/_netrc").expanduser()]


def has_credentials(env: Mapping[str, str]) -> bool:
    """Whether wandb would find credentials without prompting (no network call)."""
    if env.get("WANDB_API_KEY") or env.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(env.get("WANDB_BASE_URL") or DEFAULT_BASE_URL).hostname
    for path in netrc_paths(env):
        if not path.is_file():
            continue
        try:
            if netrc.netrc(path).authenticators(host or ""):
                return True
        except (OSError, netrc.NetrcParseError) as exc:
            log.warning("wandb: cannot read %s (%s); treating it as no credentials", path, exc)
    return False


def resolve_mode(configured: str, env: Mapping[str, str]) -> tuple[str, str]:
    """(mode, why): ``WANDB_MODE`` wins, then ``logger.mode``; auto = credentials or offline."""
    if env.get("WANDB_MODE"):
        return env["WANDB_MODE"], "WANDB_MODE"
    if configured != "auto":
        return configured, "logger.mode"
    if has_credentials(env):
        return "online", "credentials"
    return "offline", "no credentials"


def sync_hint(identity: TrackerRun) -> str:
    """The ``wandb sync`` command that uploads this job's (and its sweep's) offline runs."""
    if identity.sweep_dir is not None:
        return f"wandb sync {identity.sweep_dir}/*/wandb/offline-run-*"
    return f"wandb sync {identity.job_dir}/wandb/offline-run-*"


def _warn_offline_once(identity: TrackerRun, why: str) -> None:
    global _offline_warned
    if _offline_warned:
        return
    _offline_warned = True
    log.warning(
        "wandb: %s: logging offline into each job's wandb/ folder. Upload the runs later "
        "with:  %s   (set WANDB_MODE or logger.mode to choose the mode yourself)",
        why,
        sync_hint(identity),
    )


class WandbTracker(Tracker):
    def __init__(
        self,
        logger: Mapping[str, Any],
        *,
        job_dir: Path,
        side_by_side: bool = False,
        run_dir: Path | None = None,
    ) -> None:
        self.logger, self.job_dir = dict(logger), Path(job_dir)
        self.side_by_side = side_by_side  # other jobs' runs are open in this process too
        self.run_dir = Path(run_dir) if run_dir is not None else self.job_dir  # holds wandb/
        self.run: Any = None

    def start(self, config: Mapping[str, Any]) -> None:
        import wandb

        identity = tracker_run(config, self.job_dir)
        mode, why = resolve_mode(self.logger["mode"], os.environ)
        if why == "no credentials":
            _warn_offline_once(identity, "no credentials found (WANDB_API_KEY, or `wandb login`)")
        elif mode == "online":
            unreachable = check_server(identity, self.logger["probe_timeout_s"])
            if unreachable is not None:
                mode, why = "offline", "server unreachable"
                _warn_offline_once(identity, unreachable)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=self.logger["project"],
            entity=self.logger["entity"],
            group=self.logger["group"],
            job_type=str(config["model"]["name"]),
            name=identity.name,
            id=identity.run_id,
            resume="allow",
            tags=run_tags(identity, self.logger["tags"]),
            config=dict(config),
            dir=str(self.run_dir),
            mode=None if why == "WANDB_MODE" else mode,  # None: wandb reads WANDB_MODE itself
            # finish a run left open by an earlier job in this process; side by side (a
            # stacked group) every member's run stays open, each tracker holding its own
            reinit="create_new" if self.side_by_side else "finish_previous",
            # quiet: no run banner and summary from wandb per job (a sweep's log stays
            # readable); our own warnings, e.g. how to sync offline runs, still show.
            settings=wandb.Settings(silent=bool(self.logger["quiet"])),
        )

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        if self.run is not None:
            self.run.log(dict(row), step=int(row["epoch"]))

    def finish(self, record: Mapping[str, Any]) -> None:
        run, self.run = self.run, None
        if run is None:
            return
        try:
            summary = {k: v for k, v in record.items() if k != "config"}
            run.summary.update({**summary, JOB_DIR_KEY: str(self.job_dir.resolve())})
            if record.get("device"):
                run.tags = (*run.tags, f"device={record['device']}"[:64])
        finally:
            run.finish(exit_code=1 if record.get("status") == "failed" else 0)
