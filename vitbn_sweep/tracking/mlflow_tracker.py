"""``logger=mlflow`` (extra ``mlflow``): one MLflow run per job, one experiment per sweep.

- tracking URI: ``logger.tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else a local
  SQLite store ``<paths.outputs>/mlflow/mlflow.db`` (artifacts next to it in
  ``<paths.outputs>/mlflow/artifacts``); browse it with ``make mlflow-ui``;
- experiment: ``logger.experiment`` (the sweep name by default);
- run name: ``run.run_name`` (``vitbnffn-d4-lr0.005-s2``, then other overrides);
- params: the flattened config (``model.depth`` = ``3``); tags: sweep, job, model,
  depth, lr, seed, status (running | completed | diverged | failed), and at the end
  the device the job ran on;
- metrics: every epoch's metrics row with ``step=epoch``; at the end the result's
  summary (``best_test_acc``, ``best_epoch``, ``epochs_run``, ``total_seconds``, ...);
- at the end the result record goes in as the artifact ``vitbn/record.json``, which is
  what ``analysis.sources.records_from_mlflow`` reads back;
- a resumed job finds its run by the tag ``vitbn.run_key`` (the job identity's id)
  and continues it.

``python -m analysis export`` writes the runs of finished jobs with the same
functions (``open_experiment``, ``open_run``, ``end_run``), so a run reads the same
whether it was logged live or after the fact.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vitbn_sweep.identity import dig, flatten
from vitbn_sweep.tracking.run import Tracker, TrackerRun, tracker_run

log = logging.getLogger(__name__)
RECORD_ARTIFACT = "vitbn/record.json"
RUN_KEY_TAG, JOB_TAG, STATUS_TAG = "vitbn.run_key", "vitbn.job", "status"
JOB_DIR_TAG = "vitbn.job_dir"  # where the job's result files are
ENDED_TAG = "vitbn.ended_at"  # the result's ended_at: which result the run holds
TERMINAL = {"completed": "FINISHED", "diverged": "FINISHED", "failed": "FAILED"}
PARAMS_PER_BATCH = 100  # MLflow's limit for one log_batch call
METRICS_PER_BATCH = 1000  # MLflow's limit for one log_batch call
# summary metrics (a run table's sortable columns) <- their dotted keys in the result
SUMMARY_METRICS = {
    "best_test_acc": "best.test_acc",
    "best_test_acc_clean": "best.test_acc_clean",
    "best_epoch": "best.epoch",
    "epochs_run": "epochs_run",
    "total_seconds": "total_seconds",
}


def store_dir(config: Mapping[str, Any]) -> Path:
    return Path(config["paths"]["outputs"]).resolve() / "mlflow"


def local_uri(config: Mapping[str, Any]) -> str:
    """The local SQLite store under ``paths.outputs`` (what ``make mlflow-ui`` opens)."""
    return f"sqlite:///{store_dir(config) / 'mlflow.db'}"


def resolve_tracking_uri(logger: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """``logger.tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else the local store."""
    if logger.get("tracking_uri"):
        return str(logger["tracking_uri"])
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return local_uri(config)


def experiment_id(client: Any, name: str, artifact_location: str | None) -> str:
    """The id of experiment ``name``, created (race-safe) when missing."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:  # another job of the sweep created it first
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def open_experiment(logger: Mapping[str, Any], config: Mapping[str, Any]) -> tuple[Any, str]:
    """(client, experiment id) of ``logger.experiment`` at the resolved tracking URI."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise ImportError(
            f"logger=mlflow needs the mlflow extra: pip install 'vitbn_sweep[mlflow]' ({exc})"
        ) from exc

    uri = resolve_tracking_uri(logger, config)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    artifacts = (store_dir(config) / "artifacts").as_uri() if uri == local_uri(config) else None
    client = MlflowClient(tracking_uri=uri)
    return client, experiment_id(client, logger["experiment"], artifacts)


def param_text(value: Any) -> str:
    """A config leaf as an MLflow param string: strings as is, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def find_run(client: Any, exp_id: str, identity: TrackerRun) -> Any:
    """The run of this job in the experiment (by its ``vitbn.run_key`` tag), or None."""
    found = client.search_runs(
        [exp_id], filter_string=f"tags.`{RUN_KEY_TAG}` = '{identity.run_id}'", max_results=1
    )
    return found[0] if found else None


def mlflow_tags(identity: TrackerRun, extra: list[str]) -> dict[str, str]:
    """A new or resumed run's tags: its id, job, job dir and labels, status running."""
    return {
        RUN_KEY_TAG: identity.run_id,
        JOB_TAG: identity.job,
        JOB_DIR_TAG: str(identity.job_dir),
        **identity.labels,
        STATUS_TAG: "running",
        **{str(t): "true" for t in extra},
    }


def open_run(
    client: Any,
    exp_id: str,
    config: Mapping[str, Any],
    *,
    identity: TrackerRun,
    extra_tags: list[str],
    previous: Any = None,
    start_ms: int | None = None,
) -> str:
    """Create the job's run, or continue ``previous`` (its earlier run); its id.

    Params go in once: a continued run keeps the values it has (MLflow cannot change
    a param) with a warning naming the changed ones, and gets the new keys.
    """
    from mlflow.entities import Param

    tags = mlflow_tags(identity, extra_tags)
    params = {k: param_text(v) for k, v in flatten(config).items()}
    if previous is not None:
        run_id = previous.info.run_id
        client.update_run(run_id, status="RUNNING", name=identity.name)
        logged = previous.data.params
        changed = sorted(k for k in params if k in logged and logged[k] != params[k])
        if changed:
            log.warning(
                "mlflow run %s resumed with changed params %s; MLflow keeps the first values",
                run_id,
                ", ".join(changed),
            )
        params = {k: v for k, v in params.items() if k not in logged}
        for key, value in tags.items():
            client.set_tag(run_id, key, value)
    else:
        run_id = client.create_run(
            exp_id, start_time=start_ms, run_name=identity.name, tags=tags
        ).info.run_id
    items = [Param(k, v) for k, v in params.items()]
    for i in range(0, len(items), PARAMS_PER_BATCH):
        client.log_batch(run_id, params=items[i : i + PARAMS_PER_BATCH])
    return run_id


def epoch_metrics(row: Mapping[str, Any], stamp_ms: int) -> list[Any]:
    """One metrics row as MLflow metrics at ``step=epoch`` (missing values left out)."""
    from mlflow.entities import Metric

    step = int(row["epoch"])
    return [
        Metric(k, float(v), stamp_ms, step)
        for k, v in row.items()
        if k != "epoch" and v is not None and v == v  # v == v: not NaN
    ]


def log_metrics(client: Any, run_id: str, metrics: list[Any]) -> None:
    for i in range(0, len(metrics), METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=metrics[i : i + METRICS_PER_BATCH])


def summary_metrics(record: Mapping[str, Any], stamp_ms: int) -> list[Any]:
    """The result's headline numbers (``SUMMARY_METRICS``) as metrics at its last epoch."""
    from mlflow.entities import Metric

    step = int(record.get("epochs_run") or 0)
    metrics = []
    for key, dotted in SUMMARY_METRICS.items():
        value = dig(record, dotted)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics.append(Metric(key, float(value), stamp_ms, step))
    return metrics


def end_run(client: Any, run_id: str, record: Mapping[str, Any], end_ms: int | None = None) -> None:
    """Record the job's result in its run (tags, summary metrics, ``record.json``), end it."""
    status = str(record.get("status"))
    try:
        client.set_tag(run_id, STATUS_TAG, status)
        if record.get("device"):
            client.set_tag(run_id, "device", str(record["device"]))
        log_metrics(client, run_id, summary_metrics(record, end_ms or int(time.time() * 1000)))
        plain = json.loads(json.dumps(dict(record), default=str))  # as result.json has it
        client.log_dict(run_id, plain, RECORD_ARTIFACT)
        client.set_tag(run_id, ENDED_TAG, str(record.get("ended_at")))
    finally:
        client.set_terminated(run_id, TERMINAL.get(status, "FAILED"), end_time=end_ms)


class MlflowTracker(Tracker):
    def __init__(self, logger: Mapping[str, Any], *, job_dir: Path) -> None:
        self.logger, self.job_dir = dict(logger), Path(job_dir)
        self.client: Any = None
        self.run_id: str | None = None

    def start(self, config: Mapping[str, Any]) -> None:
        identity = tracker_run(config, self.job_dir)
        client, exp_id = open_experiment(self.logger, config)
        run_id = open_run(
            client,
            exp_id,
            config,
            identity=identity,
            extra_tags=list(self.logger["tags"]),
            previous=find_run(client, exp_id, identity),
        )
        self.client, self.run_id = client, run_id

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        if self.run_id is not None:
            log_metrics(self.client, self.run_id, epoch_metrics(row, int(time.time() * 1000)))

    def finish(self, record: Mapping[str, Any]) -> None:
        run_id, self.run_id = self.run_id, None
        if run_id is not None:
            end_run(self.client, run_id, record)
