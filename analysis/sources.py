"""Job records from the trackers: wandb (public API) and MLflow (a tracking store).

Both give the same ``JobRecord``s as ``analysis.load.records_from_dirs``: ``result``
in the ``result.json`` shape (schema_version, status, config nested, final, best,
epochs_run, ...), ``metrics`` with the ``metrics.csv`` columns, ``path`` = the job
dir where the job ran. A run that has not ended (no result recorded yet) is
counted as incomplete, as a job dir without ``result.json`` is.

wandb and mlflow are imported only when their function is called.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.records import (
    AnalysisError,
    JobRecord,
    LoadStats,
    check_schema,
    metrics_frame,
)
from vitbn_sweep.store import METRIC_COLUMNS, outputs_dir
from vitbn_sweep.tracking.mlflow_tracker import JOB_DIR_TAG, RECORD_ARTIFACT, RUN_KEY_TAG
from vitbn_sweep.tracking.wandb_tracker import JOB_DIR_KEY, REPORT_JOB_TYPE

VALUE_COLUMNS = [c for c in METRIC_COLUMNS if c != "epoch"]
# result.json keys that may be null: a wandb summary drops null values, so they are restored.
NULLABLE_KEYS = ("final", "best", "total_seconds", "diverged_at", "error", "ended_at")


# --- wandb -------------------------------------------------------------------------------


def wandb_result(config: Mapping[str, Any], summary: Mapping[str, Any]) -> dict[str, Any] | None:
    """The result record of a job run from its config and summary; None if it has not ended.

    The tracker writes the record (without its config) into the summary; the summary
    also holds the last metric values and wandb's own ``_``-keys, which are left out.
    """
    if "schema_version" not in summary or "status" not in summary:
        return None
    skip = {*METRIC_COLUMNS, JOB_DIR_KEY}
    result = {k: v for k, v in summary.items() if not k.startswith("_") and k not in skip}
    result.update({k: None for k in NULLABLE_KEYS if k not in result})
    result["config"] = {k: v for k, v in config.items() if not k.startswith("_")}
    return json.loads(json.dumps(result, default=str))  # plain dicts/lists, as result.json


def records_from_wandb(
    project: str,
    entity: str | None = None,
    group: str | None = None,
    *,
    api: Any = None,
) -> tuple[list[JobRecord], LoadStats]:
    """Every finished job run of ``entity/project`` (of sweep ``group`` if given).

    ``project`` may itself be ``ENTITY/PROJECT`` (then leave ``entity`` out).
    Reads through wandb's public API (``wandb.Api()``, which needs credentials);
    ``api`` is an object with the same ``runs(path, filters=...)`` method.
    Report runs (job_type ``report``) are skipped.
    """
    if entity and "/" in project:
        raise AnalysisError(f"wandb project {project!r} already names an entity; drop {entity!r}")
    if api is None:
        import wandb

        api = wandb.Api()
    path = f"{entity}/{project}" if entity else project
    stats = LoadStats(
        roots=[f"wandb:{path}" + (f"?group={group}" if group else "")], source="wandb"
    )
    records: list[JobRecord] = []
    for run in api.runs(path, filters={"group": group} if group else {}):
        if run.job_type == REPORT_JOB_TYPE:
            continue
        summary = dict(run.summary_metrics)
        result = wandb_result(run.config, summary)
        if result is None:
            stats.incomplete.append(f"wandb:{path}/{run.id}")
            continue
        check_schema(result, f"wandb run {path}/{run.id}")
        metrics = metrics_frame(run.scan_history(keys=list(METRIC_COLUMNS)))
        records.append(JobRecord(result, metrics, source="wandb", path=summary.get(JOB_DIR_KEY)))
    return stats.found(records, f"no finished job runs in wandb project {path}", "runs not ended")


# --- MLflow ------------------------------------------------------------------------------


def default_mlflow_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else the local store the tracker writes under the outputs
    (the live tracker's own rule)."""
    from vitbn_sweep.tracking.mlflow_tracker import resolve_tracking_uri

    return resolve_tracking_uri({}, {"paths": {"outputs": str(outputs_dir())}})


def _mlflow_metrics(client: Any, run_id: str) -> pd.DataFrame:
    by_epoch: dict[int, dict[str, Any]] = {}
    for key in VALUE_COLUMNS:
        history = sorted(client.get_metric_history(run_id, key), key=lambda m: m.timestamp)
        for metric in history:
            by_epoch.setdefault(metric.step, {"epoch": metric.step})[key] = metric.value
    return metrics_frame(by_epoch[epoch] for epoch in sorted(by_epoch))


def _mlflow_record(client: Any, run_id: str, tmp: str) -> dict[str, Any] | None:
    names = {a.path for a in client.list_artifacts(run_id, Path(RECORD_ARTIFACT).parent.name)}
    if RECORD_ARTIFACT not in names:
        return None
    local = client.download_artifacts(run_id, RECORD_ARTIFACT, dst_path=tmp)
    return json.loads(Path(local).read_text())


def records_from_mlflow(
    tracking_uri: str | None = None,
    experiments: str | Sequence[str] | None = None,
) -> tuple[list[JobRecord], LoadStats]:
    """Every finished job run in the MLflow ``experiments`` (sweep names; None: all).

    ``tracking_uri`` defaults to ``default_mlflow_uri()``. Runs not written by the
    ``mlflow`` logger (without the ``vitbn.run_key`` tag) are ignored.
    """
    try:
        from mlflow.entities import ViewType
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise AnalysisError("reading MLflow runs needs mlflow: pip install -e '.[mlflow]'") from exc

    uri = tracking_uri or default_mlflow_uri()
    client = MlflowClient(tracking_uri=uri)
    if isinstance(experiments, str):
        experiments = [experiments]
    if experiments is None:
        found = client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
    else:
        found = [client.get_experiment_by_name(name) for name in experiments]
        missing = [n for n, e in zip(experiments, found, strict=True) if e is None]
        if missing:
            raise AnalysisError(f"no MLflow experiment {', '.join(missing)} in {uri}")
    stats = LoadStats(roots=[f"{uri} ({', '.join(e.name for e in found)})"], source="mlflow")
    records: list[JobRecord] = []
    runs, token = [], None
    while True:
        page = client.search_runs(
            [e.experiment_id for e in found], max_results=1000, page_token=token
        )
        runs.extend(run for run in page if RUN_KEY_TAG in run.data.tags)
        token = page.token
        if not token:
            break
    with tempfile.TemporaryDirectory() as tmp:
        for run in sorted(runs, key=lambda r: r.info.start_time):
            run_id = run.info.run_id
            result = _mlflow_record(client, run_id, tmp)
            if result is None:
                stats.incomplete.append(f"mlflow:{run_id}")
                continue
            check_schema(result, f"mlflow run {run_id}")
            path = run.data.tags.get(JOB_DIR_TAG)
            records.append(JobRecord(result, _mlflow_metrics(client, run_id), "mlflow", path))
    return stats.found(records, f"no finished job runs in {uri}", "runs not ended")
