"""``logger=mlflow`` (extra ``mlflow``): one MLflow run per job, one experiment per sweep.

- tracking URI: ``logger.tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else a local
  SQLite store ``<paths.outputs>/mlflow/mlflow.db`` (artifacts next to it in
  ``<paths.outputs>/mlflow/artifacts``); browse it with ``mlflow ui --backend-store-uri``;
- experiment: ``logger.experiment`` (the sweep name by default);
- params: the flattened config (``model.depth`` = ``3``); tags: sweep, job, model,
  status (running | completed | diverged | failed);
- metrics: every epoch's metrics row with ``step=epoch``;
- at the end the result record goes in as the artifact ``vitbn/record.json``, which is
  what ``analysis.sources.records_from_mlflow`` reads back;
- a resumed job finds its run by the tag ``vitbn.run_key`` (the job identity's id)
  and continues it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vitbn_sweep.tracking import Tracker
from vitbn_sweep.tracking.identity import flatten, job_identity, param_text

log = logging.getLogger(__name__)
RECORD_ARTIFACT = "vitbn/record.json"
RUN_KEY_TAG, JOB_TAG, SWEEP_TAG, STATUS_TAG = "vitbn.run_key", "vitbn.job", "sweep", "status"
JOB_DIR_TAG = "vitbn.job_dir"  # where the job's result files are
TERMINAL = {"completed": "FINISHED", "diverged": "FINISHED", "failed": "FAILED"}
PARAMS_PER_BATCH = 100  # MLflow's limit for one log_batch call


def store_dir(config: Mapping[str, Any]) -> Path:
    return Path(config["paths"]["outputs"]).resolve() / "mlflow"


def resolve_tracking_uri(logger: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """``logger.tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else the local store."""
    if logger.get("tracking_uri"):
        return str(logger["tracking_uri"])
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{store_dir(config) / 'mlflow.db'}"


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


class MlflowTracker(Tracker):
    def __init__(self, logger: Mapping[str, Any], *, job_dir: Path) -> None:
        self.logger, self.job_dir = dict(logger), Path(job_dir)
        self.client: Any = None
        self.run_id: str | None = None

    def start(self, config: Mapping[str, Any]) -> None:
        try:
            from mlflow.entities import Param
            from mlflow.tracking import MlflowClient
        except ImportError as exc:
            raise ImportError(
                f"logger=mlflow needs the mlflow extra: pip install 'vitbn_sweep[mlflow]' ({exc})"
            ) from exc

        identity = job_identity(config, self.job_dir)
        uri = resolve_tracking_uri(self.logger, config)
        if uri.startswith("sqlite:///"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        local_store = uri == f"sqlite:///{store_dir(config) / 'mlflow.db'}"
        artifacts = (store_dir(config) / "artifacts").as_uri() if local_store else None
        client = MlflowClient(tracking_uri=uri)
        exp_id = experiment_id(client, self.logger["experiment"], artifacts)
        tags = {
            RUN_KEY_TAG: identity.run_id,
            JOB_TAG: identity.job,
            JOB_DIR_TAG: str(self.job_dir.resolve()),
            SWEEP_TAG: identity.sweep,
            "model": str(config["model"]["name"]),
            STATUS_TAG: "running",
            **{str(t): "true" for t in self.logger["tags"]},
        }
        previous = client.search_runs(
            [exp_id], filter_string=f"tags.`{RUN_KEY_TAG}` = '{identity.run_id}'", max_results=1
        )
        params = {k: param_text(v) for k, v in flatten(config).items()}
        if previous:
            run = previous[0]
            client.update_run(run.info.run_id, status="RUNNING")
            logged = run.data.params
            changed = sorted(k for k in params if k in logged and logged[k] != params[k])
            if changed:
                log.warning(
                    "mlflow run %s resumed with changed params %s; MLflow keeps the first values",
                    run.info.run_id,
                    ", ".join(changed),
                )
            params = {k: v for k, v in params.items() if k not in logged}
            for key, value in tags.items():
                client.set_tag(run.info.run_id, key, value)
        else:
            run = client.create_run(exp_id, run_name=identity.name, tags=tags)
        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), PARAMS_PER_BATCH):
            client.log_batch(run.info.run_id, params=items[i : i + PARAMS_PER_BATCH])
        self.client, self.run_id = client, run.info.run_id

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        if self.run_id is None:
            return
        from mlflow.entities import Metric

        stamp, step = int(time.time() * 1000), int(row["epoch"])
        metrics = [Metric(k, float(v), stamp, step) for k, v in row.items() if k != "epoch"]
        self.client.log_batch(self.run_id, metrics=metrics)

    def finish(self, record: Mapping[str, Any]) -> None:
        run_id, self.run_id = self.run_id, None
        if run_id is None:
            return
        status = str(record.get("status"))
        try:
            self.client.set_tag(run_id, STATUS_TAG, status)
            plain = json.loads(json.dumps(dict(record), default=str))  # as result.json has it
            self.client.log_dict(run_id, plain, RECORD_ARTIFACT)
        finally:
            self.client.set_terminated(run_id, TERMINAL.get(status, "FAILED"))
