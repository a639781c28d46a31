"""`analysis dashboard`: the study's wandb view and report, checked through wandb-workspaces.

A real two-job sweep logs to wandb offline; the dashboard is built for it without network,
read back from its JSON specification with wandb-workspaces' own models, and every key it
uses (history metrics, config paths, summary keys, group, job type) is looked up in what
the tracker really logged, so renaming a metric or a config key breaks these tests.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
import wandb_workspaces.reports.v2 as wr
import wandb_workspaces.workspaces as ws

from analysis import Settings, analyze, dashboard, records_from_dirs
from analysis.cli import main
from tests.analysis_synth import write_grid
from tests.conftest import TINY, run_cli
from tests.test_tracking import history, inspect_run, offline_runs, run_record
from vitbn_sweep.tracking.wandb_report import FIGURES_KEY
from vitbn_sweep.tracking.wandb_tracker import REPORT_JOB_TYPE

TWO_EPOCHS = [o for o in TINY if not o.startswith(("trainer.epochs", "logger"))]
SWEEP = ["-m", "model=vit,vitbnffn", "model.depth=1", *TWO_EPOCHS, "trainer.epochs=2"]
UNREACHABLE = dashboard.server_unreachable


def no_credentials(mp: pytest.MonkeyPatch, tmp: Path) -> None:
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE"):
        mp.delenv(var, raising=False)
    mp.setenv("NETRC", str(tmp / "no-netrc"))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("dashboard")
    args = [*SWEEP, "logger=wandb", "sweep_name=dash"]
    done = run_cli(args, cwd=cwd, env={"WANDB_MODE": "offline"})
    assert done.returncode == 0, done.stderr[-3000:]
    return cwd / "outputs" / "dash"


@pytest.fixture(scope="module")
def logged(sweep: Path) -> SimpleNamespace:
    """What the tracker logged, read back by wandb's own reader from the offline runs."""
    jobs = sorted(p.parent for p in sweep.glob("*/result.json"))
    assert len(jobs) == 2
    (run_dir,) = offline_runs(jobs[0])  # both runs log the same keys: one is enough
    records, summary = inspect_run(run_dir)
    meta = run_record(records)
    return SimpleNamespace(
        history={k for row in history(records) for k in row if not k.startswith("_")},
        config=summary["config"],
        summary=summary["summary"],
        group=meta["run_group"],
        job_type=meta["job_type"],
    )


@pytest.fixture(scope="module")
def spec(sweep: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        no_credentials(mp, tmp_path_factory.mktemp("home"))
        code = main(["dashboard", str(sweep)])
    path = sweep / "report" / dashboard.SPEC_FILE
    doc = json.loads(path.read_text())
    return SimpleNamespace(code=code, stdout=out.getvalue(), doc=doc, path=path)


def has(tree: Any, dotted: str) -> bool:
    for key in dotted.split("."):
        if not isinstance(tree, dict) or key not in tree:
            return False
        tree = tree[key]
    return True


def workspace_of(doc: dict[str, Any]) -> Any:
    from wandb_workspaces.workspaces import internal

    return ws.Workspace._from_model(internal.View.model_validate(doc["workspace"]))


def report_of(doc: dict[str, Any]) -> Any:
    from wandb_workspaces.reports.v2 import internal

    return wr.Report._from_model(internal.ReportViewspec.model_validate(doc["report"]))


def check_keys(panels: list[Any], logged: SimpleNamespace) -> None:
    """Every metric a panel plots is a key the tracker logged, of the right kind."""
    for panel in panels:
        for metric in _metrics(panel):
            if isinstance(metric, wr.Config):
                assert has(logged.config, metric.name), f"config {metric.name} never logged"
            elif isinstance(metric, wr.SummaryMetric):
                assert has(logged.summary, metric.name), f"summary {metric.name} never logged"
            else:
                assert metric.name in logged.history, f"metric {metric.name} never logged"


def _metrics(panel: Any) -> list[Any]:
    if isinstance(panel, wr.LinePlot):
        return [panel.x, *panel.y]
    if isinstance(panel, wr.ScatterPlot):
        return [panel.x, panel.y]
    if isinstance(panel, wr.ParallelCoordinatesPlot):
        return [c.metric for c in panel.columns]
    return []


@pytest.mark.slow
def test_without_credentials_the_spec_is_written_and_publishing_explained(
    spec: SimpleNamespace, sweep: Path
) -> None:
    assert spec.code == 0
    assert "not published: wandb mode offline (no credentials)" in spec.stdout
    assert "wandb login" in spec.stdout and f"python -m analysis dashboard {sweep}" in spec.stdout
    assert f"wandb sync {sweep}/*/wandb/offline-run-*" in spec.stdout
    assert spec.doc["target"] == {"entity": "", "project": "vitbn-sweep", "group": "dash"}
    assert spec.doc["published"] == {}
    assert (sweep / "report" / "report.html").is_file()


@pytest.mark.slow
def test_the_view_plots_logged_metrics_by_epoch_for_the_sweeps_runs(
    spec: SimpleNamespace, logged: SimpleNamespace
) -> None:
    view = workspace_of(spec.doc)
    panels = [p for section in view.sections for p in section.panels]
    lines = [p for p in panels if isinstance(p, wr.LinePlot)]
    assert {p.x.name for p in lines} == {"epoch"}
    assert sorted(y.name for p in lines for y in p.y) == [
        "test_acc",
        "test_acc_clean",
        "train_loss",
    ]
    (scatter,) = [p for p in panels if isinstance(p, wr.ScatterPlot)]
    assert (scatter.x, scatter.y) == (wr.Config("model.depth"), wr.SummaryMetric("final.test_acc"))
    (parallel,) = [p for p in panels if isinstance(p, wr.ParallelCoordinatesPlot)]
    assert [c.metric.name for c in parallel.columns] == [
        "model.depth",
        "optim.lr",
        "trainer.seed",
        "final.test_acc",
    ]
    check_keys(panels, logged)
    # the runs: the sweep's group, without the report run; grouped by model and depth
    assert logged.job_type != REPORT_JOB_TYPE
    assert view.runset_settings.filters == (
        f"Metric(\"Group\") == '{logged.group}' and Metric(\"JobType\") != '{REPORT_JOB_TYPE}'"
    )
    assert view.runset_settings.groupby == [ws.Config("model.name"), ws.Config("model.depth")]
    assert all(has(logged.config, g.name) for g in view.runset_settings.groupby)
    assert set(view.runset_settings.group_colors) == {"vit", "vitbnffn"}


@pytest.mark.slow
def test_the_runs_table_pins_logged_columns(spec: SimpleNamespace, logged: SimpleNamespace) -> None:
    pinned = workspace_of(spec.doc).runset_settings.pinned_columns
    assert "config:model.value.depth" in pinned and "summary:final.test_acc" in pinned
    for column in pinned:
        section, key = column.split(":", 1)
        if section == "config":  # nested config: model.value.depth is model.depth
            first, _, rest = key.partition(".value")
            assert has(logged.config, first + rest), column
        elif section == "summary":
            assert has(logged.summary, key), column


@pytest.mark.slow
def test_the_report_states_the_verdict_with_tables_panels_and_figures(
    spec: SimpleNamespace, sweep: Path, logged: SimpleNamespace
) -> None:
    report = report_of(spec.doc)
    text = "\n".join(b.text for b in report.blocks if isinstance(b, wr.MarkdownBlock))
    critical = pd.read_csv(sweep / "report" / "critical_depth.csv")
    (depth,) = critical["critical_depth"]
    assert f"- lr = 0.003: critical depth {depth}" in text  # the report's own sentence
    assert "| critical depth |" in text and "| interval |" in text  # the two tables
    grids = [b for b in report.blocks if isinstance(b, wr.PanelGrid)]
    runs, figures = grids
    (runset,) = runs.runsets
    assert runset.groupby == ["config.model.value.name", "config.model.value.depth"]
    assert runset.filters == workspace_of(spec.doc).runset_settings.filters
    check_keys(runs.panels, logged)
    assert sum(isinstance(p, wr.LinePlot) for p in runs.panels) == 3
    (report_runs,) = figures.runsets
    assert f"Metric(\"JobType\") == '{REPORT_JOB_TYPE}'" in report_runs.filters
    stems = sorted(p.stem for p in (sweep / "report" / "figures").glob("*.png"))
    assert stems and sorted(k for p in figures.panels for k in p.media_keys) == sorted(
        FIGURES_KEY.format(s) for s in stems
    )


def test_lr_joins_the_grouping_when_several_were_swept(tmp_path: Path) -> None:
    write_grid(tmp_path / "one", {1: 0.0, 2: 0.02}, seeds=2, lr=0.003)
    write_grid(tmp_path / "two", {1: 0.0, 2: 0.02}, seeds=2, lr=0.003)
    write_grid(tmp_path / "two", {1: 0.0, 2: 0.02}, seeds=2, lr=0.005)
    keys = {}
    for name in ("one", "two"):
        records, stats = records_from_dirs([tmp_path / name])
        keys[name] = dashboard.grouping(analyze(records, stats, Settings()))
    assert keys == {"one": ["model.name", "model.depth"], "two": [*keys["one"], "optim.lr"]}
    target = dashboard.Target("me", "vitbn-sweep", "two")
    view = dashboard.build_workspace(target, keys["two"], ["vit", "vitbnffn"])
    round_trip = workspace_of(dashboard.specification(view, wr.Report(project="p", entity="e")))
    assert round_trip.runset_settings.groupby[-1] == ws.Config("optim.lr")


# --- publishing, without network: wandb-workspaces' save and load are stood in for --------


class Saved:
    """Stands in for wandb's server: records saves, serves saved views back by URL."""

    def __init__(self) -> None:
        self.saves: list[tuple[str, Any]] = []
        self.by_url: dict[str, Any] = {}
        self.fail = False

    def install(self, mp: pytest.MonkeyPatch) -> None:
        for cls, kind in ((ws.Workspace, "view"), (wr.Report, "report")):
            mp.setattr(cls, "save", self._save(kind), raising=True)
            mp.setattr(cls, "from_url", classmethod(lambda _cls, url: self.by_url[url]))
            mp.setattr(cls, "url", property(lambda obj, k=kind: f"https://wandb.test/{k}"))

    def _save(self, kind: str) -> Any:
        def save(obj: Any, *args: Any, **kwargs: Any) -> Any:
            if self.fail:
                raise RuntimeError("403 permission denied")
            self.saves.append((kind, obj))
            self.by_url[f"https://wandb.test/{kind}"] = obj
            return obj

        return save


@pytest.fixture
def online(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A small sweep, credentials, a reachable server; report files and the report run faked."""
    write_grid(tmp_path / "grid", {1: 0.0, 2: 0.02}, seeds=2, lr=0.003)
    no_credentials(monkeypatch, tmp_path)
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.setattr(dashboard, "server_unreachable", lambda url, timeout_s: None)
    out = tmp_path / "grid" / "report"
    files = SimpleNamespace(out=out, html=out / "report.html", figures=[])
    monkeypatch.setattr(dashboard, "write_report", lambda a, o: out.mkdir(exist_ok=True) or files)
    targets = []

    def go_online(target: Any, a: Any, files: Any) -> Any:
        """The report run is published; the target comes back (entity "": no API lookups)."""
        targets.append(target)
        return dashboard.Target("", "resolved-project", target.group)

    monkeypatch.setattr(dashboard, "_go_online", go_online)
    server = Saved()
    server.install(monkeypatch)
    return SimpleNamespace(sweep=tmp_path / "grid", server=server, targets=targets)


def test_publishing_creates_the_views_then_updates_them_in_place(
    online: SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    server, sweep = online.server, str(online.sweep)
    assert main(["dashboard", sweep]) == 0
    first = [obj for _, obj in server.saves]
    assert [kind for kind, _ in server.saves] == ["view", "report"]
    assert first[0].project == first[1].project == "resolved-project"  # _go_online's target
    doc = json.loads((online.sweep / "report" / dashboard.SPEC_FILE).read_text())
    urls = {"workspace_url": "https://wandb.test/view", "report_url": "https://wandb.test/report"}
    assert doc["published"] == urls and doc["target"]["project"] == "resolved-project"
    assert "wandb view: https://wandb.test/view" in capsys.readouterr().out
    assert main(["dashboard", sweep]) == 0  # again: the same objects are updated, not new ones
    assert [obj for _, obj in server.saves[2:]] == first
    again = json.loads((online.sweep / "report" / dashboard.SPEC_FILE).read_text())
    assert again["published"] == urls


def test_a_failed_publish_is_an_error_but_the_spec_is_written(
    online: SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    online.server.fail = True
    assert main(["dashboard", str(online.sweep)]) == 1
    assert "publishing to wandb failed: 403 permission denied" in capsys.readouterr().err
    assert (online.sweep / "report" / dashboard.SPEC_FILE).is_file()


def test_an_unreachable_server_is_no_failure(
    online: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(dashboard, "server_unreachable", UNREACHABLE)  # the real probe
    assert main(["dashboard", str(online.sweep)]) == 0
    out = capsys.readouterr().out
    assert f"not published: http://127.0.0.1:{port} is not reachable (URLError: " in out
    assert online.server.saves == [] and online.targets == []
