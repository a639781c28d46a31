"""The report dir, its HTML, and the CLI's output and exit codes."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import types
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import vitbn_sweep.tracking.wandb_report as wandb_report
from analysis import Settings, analyze, figures, records_from_dirs
from analysis.cli import main
from analysis.figures import (
    accuracy_curves,
    diff_by_depth,
    diff_heatmap,
    seed_scores,
    warmup_curves,
)
from analysis.frames import build_frames
from tests.analysis_synth import write_grid, write_job

REPO = Path(__file__).resolve().parents[1]
MULTIRUN = """\
hydra:
  overrides:
    task:
    - model=vit,vitbnffn
    - optim.lr=0.003,0.005
  sweeper:
    params: {model.depth: '1,2,3', trainer.seed: '0,1', model: vit}
trainer: {epochs: 3}
"""


class Page(HTMLParser):
    """Collects embedded images and checks that every opened element is closed."""

    VOID = {"meta", "img", "br", "hr", "link", "input", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.images: list[str] = []
        self.tables = 0

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        elif tag not in self.VOID:
            self.stack.append(tag)
        self.tables += tag == "table"

    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag, f"unbalanced </{tag}>"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("outputs") / "grid"
    write_grid(root, {1: -0.02, 2: 0.03, 3: 0.05}, seeds=2, lr=0.003)
    write_grid(root, {1: 0.04, 2: 0.05, 3: 0.06}, seeds=2, lr=0.005, base=0.7)
    write_job(root, "vit", 3, 2, [0.4], lr=0.005, epochs=3, status="diverged")
    write_job(root, "vit", 3, 3, [0.4], lr=0.005, result=False)
    (root / "multirun.yaml").write_text(MULTIRUN)
    return root


@pytest.fixture(scope="module")
def report(sweep: Path) -> tuple[Path, str]:

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["report", str(sweep)]) == 0
    return sweep / "report", out.getvalue()


def test_report_files(report):
    out, printed = report
    for name in ("report.html", "report.md", "results.csv", "summary.csv"):
        assert (out / name).stat().st_size > 0, name
    pngs = sorted(p.stem for p in (out / "figures").glob("*.png"))
    assert pngs == sorted(p.stem for p in (out / "figures").glob("*.svg"))
    assert pngs == [
        "curves_lr_0.003",
        "curves_lr_0.005",
        "diff_by_depth",
        "diff_heatmap",
        "lr_comparison_all",
        "lr_stability_all_0.005",
        "seed_scores",
    ]
    results, summary = pd.read_csv(out / "results.csv"), pd.read_csv(out / "summary.csv")
    assert len(summary) == 25 and len(results) == 24 * 3 + 1
    assert set(summary["status"]) == {"completed", "diverged"}
    assert "wins from depth 2" in printed
    # lr 0.005: the diverged seed (at chance) leaves depth 3, the largest, unresolved.
    assert "1 or > 3" in printed and f"make resolve SWEEP={out.parent}" in printed
    critical = pd.read_csv(out / "critical_depth.csv").set_index("lr")
    assert critical.loc[0.003, ["critical_depth", "verdict"]].tolist() == ["2", "wins from depth 2"]
    assert critical.loc[0.003, ["critical_depth_low", "critical_depth_high"]].tolist() == [2, 2]
    assert critical.loc[0.005, "verdict"] == "unresolved"
    assert pd.isna(critical.loc[0.005, "critical_depth_high"])
    gap = pd.read_csv(out / "lr_stability_gap.csv")
    assert gap["depth"].tolist() == [1, 2, 3] and set(gap["lr_high"]) == {0.005}
    cells = pd.read_csv(out / "depth_differences.csv")
    assert len(cells) == 6 and {"depth", "diff", "ci_low", "ci_high", "state"} <= set(cells)
    assert set(cells["method"]) == {"paired t", "Welch t"}
    spread = pd.read_csv(out / "seed_spread.csv").set_index(["lr", "model", "depth"])
    assert len(spread) == 12 and spread["n"].max() == 3  # every cell: 2 seeds, one has 3
    # The diverged seed scores chance (10 %) beside two seeds near 70 %: the one wide cell.
    assert spread.index[spread["wide"]].tolist() == [(0.005, "vit", 3)]
    assert "MIN_SEEDS=5" in printed and "some cells' seeds are wide" in printed
    assert f"{out / 'report.html'}" in printed


def test_report_html_is_self_contained(report):
    out, _ = report
    text = (out / "report.html").read_text()
    page = Page()
    page.feed(text)
    page.close()
    assert page.stack == []
    assert page.tables >= 5
    embedded = [base64.b64decode(src.split(",", 1)[1]) for src in page.images]
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    assert sorted(embedded) == sorted(p.read_bytes() for p in (out / "figures").glob("*.png"))
    assert "python -m vitbn_sweep -m model=vit,vitbnffn optim.lr=0.003,0.005" in text
    gap = "Does the higher rate hurt vit more than vitbnffn?"
    expected = ("wins from depth 2", "Learning-rate stability", gap, "diverged", "incomplete")
    for words in (*expected, "Seed spread", "Wide: lr=0.005, batch_size=100: vit depth 3."):
        assert words in text, words
    # The method, the censoring and the cells left open, with what to do about them.
    for words in ("paired by seed", "intersection-union", "&#x27;&lt;= 4&#x27;", "make resolve"):
        assert words in text, words
    assert "can still change the answer: lr=0.005, batch_size=100, depth 3: unresolved" in text


def test_report_counts_and_markdown(report):
    out, _ = report
    md = (out / "report.md").read_text()
    for png in (out / "figures").glob("*.png"):
        assert f"(figures/{png.name})" in md
    # 2 models x 3 depths x 2 seeds x 2 lrs = 24 in the grid; 26 seen (2 extra seeds).
    assert "| not started | 0 |" in md and "| incomplete | 1 |" in md
    assert "| diverged | 1 |" in md
    # The per-depth row of the one wide cell says so in its note.
    row = next(line for line in md.splitlines() if line.startswith("| 0.005 | 100 | 3 | "))
    assert row.endswith("; vit: seeds wide |"), row
    assert sum("seeds wide" in line for line in md.splitlines() if line.startswith("| 0.")) == 1


def test_cli_critical_and_default_sweep(sweep, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VITBN_OUTPUT_DIR", str(sweep.parent))
    assert main(["critical"]) == 0
    printed = capsys.readouterr().out
    assert str(sweep) in printed and "vitbnffn vs vit" in printed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "{empty}"], "no results under"),
        (["report", "{empty}/missing"], "no such directory"),
        (["critical", "{sweep}", "--models", "vitbn", "vit"], "model 'vitbn' not in the results"),
        (["critical", "{sweep}", "--margin", "-1"], "margin must be >= 0"),
        (["critical", "{sweep}", "--spread", "1"], "spread must be > 1 (times the typical"),
        (["report", "--source", "wandb", "--out", "{empty}/r", "proj"], "not available"),
    ],
)
def test_cli_errors(args, message, sweep, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "analysis.sources", None)  # as if not written yet
    argv = [a.format(empty=tmp_path, sweep=sweep) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("analysis: error:") and message in err and "\n" not in err


def test_cli_reads_incompatible_schema_as_error(tmp_path, capsys):
    job = write_job(tmp_path, "vit", 1, 0, [0.5])
    result = json.loads((job / "result.json").read_text())
    (job / "result.json").write_text(json.dumps({**result, "schema_version": 99}))
    assert main(["report", str(tmp_path)]) == 2
    assert "incompatible result schema_version 99" in capsys.readouterr().err


@pytest.mark.slow
def test_entrypoint_exit_codes(tmp_path):
    run = [sys.executable, "-m", "analysis", "critical", str(tmp_path)]
    done = subprocess.run(run, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "no results under" in done.stderr
    bad = subprocess.run([*run, "--metric", "nope"], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2


def test_other_sources_through_analysis_sources(sweep, tmp_path, monkeypatch, capsys):
    records, stats = records_from_dirs([sweep])
    fake = types.ModuleType("analysis.sources")
    seen = {}

    def records_from_mlflow(tracking_uri, experiments):
        seen["mlflow"] = (tracking_uri, experiments)
        return [type(r)(r.result, r.metrics, "mlflow", None) for r in records], stats

    def records_from_wandb(project, group=None):
        seen["wandb"] = (project, group)
        return [], stats

    fake.records_from_mlflow = records_from_mlflow
    fake.records_from_wandb = records_from_wandb
    monkeypatch.setitem(sys.modules, "analysis.sources", fake)
    argv = ["report", "--source", "mlflow", "exp-1", "--tracking-uri", "file:x", "--out"]
    assert main([*argv, str(tmp_path / "r")]) == 0
    assert seen["mlflow"] == ("file:x", ["exp-1"])
    assert "wins from depth 2" in capsys.readouterr().out
    assert (tmp_path / "r" / "report.html").exists()
    assert main(["critical", "--source", "wandb", "me/proj", "--group", "grid_c"]) == 2
    assert seen["wandb"] == ("me/proj", "grid_c")
    assert "no results from wandb for me/proj" in capsys.readouterr().err
    assert main(["critical", "--source", "wandb"]) == 2
    assert "needs a project" in capsys.readouterr().err


def test_a_sweep_of_failed_jobs_gets_a_report_without_figures(tmp_path, capsys):
    for model in ("vit", "vitbnffn"):
        for depth in (1, 2):
            write_job(tmp_path / "jobs", model, depth, 0, [], status="failed", epochs=2)
    assert main(["report", str(tmp_path / "jobs"), "--out", str(tmp_path / "r")]) == 0
    assert "failed: " in (tmp_path / "r" / "report.md").read_text()
    assert not list((tmp_path / "r").glob("figures/*"))


def test_warmup_figure(tmp_path):
    for seed in range(2):
        for lr in (0.01, 0.1):
            write_job(tmp_path / "jobs", "dnn", 3, seed, [0.5, 0.7], lr=lr)
            write_job(tmp_path / "jobs", "dnnbn", 3, seed, [0.6, 0.8], lr=lr)
    tidy, _ = build_frames(records_from_dirs([tmp_path / "jobs"])[0])
    (fig,) = warmup_curves(tidy, Settings(), tmp_path / "figures")
    assert fig.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and fig.svg.stat().st_size > 0


def _data_dir() -> Path:
    return Path(os.environ.get("VITBN_DATA_DIR") or REPO.parent / "shared" / "data")


@pytest.mark.slow
def test_real_tiny_sweep(tmp_path):
    env = {**os.environ, "VITBN_DATA_DIR": str(_data_dir()), "VITBN_OUTPUT_DIR": str(tmp_path)}
    sweep = [
        sys.executable,
        "-m",
        "vitbn_sweep",
        "-m",
        "sweep_name=tiny",
        "model=vit,vitbnffn",
        "model.depth=1,2",
        "trainer.seed=0,1",
        "trainer.epochs=1",
        "data.train_size=200",
        "data.test_size=100",
        "trainer.batch_size=50",
        "trainer.test_batch_size=100",
    ]
    done = subprocess.run(sweep, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = [sys.executable, "-m", "analysis", "report"]
    done = subprocess.run(report, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = tmp_path / "tiny" / "report"
    assert str(out / "report.html") in done.stdout
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 8 and set(summary["status"]) == {"completed"}
    assert set(summary["depth"]) == {1, 2} and set(summary["seed"]) == {0, 1}
    critical = pd.read_csv(out / "critical_depth.csv")
    assert len(critical) == 1 and critical["depths"].iloc[0] == "1,2"
    assert "python -m vitbn_sweep -m sweep_name=tiny" in (out / "report.html").read_text()

    # A later subset command (all its jobs ended before) does not shrink the sweep's grid:
    # grid.json keeps every command's jobs, and a planned job without a dir is not started.
    done = subprocess.run(
        [*sweep, "model.depth=1"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "4 jobs: 0 completed" in done.stderr + done.stdout
    grid, latest = (
        json.loads((tmp_path / "tiny" / f).read_text()) for f in ("grid.json", "jobs.json")
    )
    assert len(grid) == 8 and set(latest) < set(grid) and len(latest) == 4
    gone = next(name for name in grid if "model.depth=2" in name)
    shutil.rmtree(tmp_path / "tiny" / gone)
    done = subprocess.run(report, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    md = (out / "report.md").read_text()
    assert "(8 jobs over every command into it; the latest: 4 jobs" in md
    assert "| completed | 7 |" in md and "| not started | 1 |" in md


@pytest.mark.slow
def test_publish_wandb_puts_the_answer_in_a_report_run(sweep, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "r"
    argv = ["report", str(sweep), "--out", str(out), "--publish-wandb"]
    assert main(argv) == 0
    assert "published to wandb:" in capsys.readouterr().out
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))


def test_failed_publish_keeps_the_report_and_says_so(sweep, tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no route to wandb")

    monkeypatch.setattr(wandb_report, "publish_report", broken)
    out = tmp_path / "r"
    assert main(["report", str(sweep), "--out", str(out), "--publish-wandb"]) == 1
    assert "publishing to wandb failed: no route to wandb" in capsys.readouterr().err
    assert (out / "report.html").is_file()


def test_the_seed_figure_is_the_same_for_the_same_scores(sweep, tmp_path):

    a = analyze(*records_from_dirs([sweep]), Settings())
    drawn = []
    for run in range(2):
        np.random.seed(run)  # whatever the caller's global RNG holds
        seed_scores(a.scores, a.spread, a.conditions, a.settings, tmp_path / str(run))
        drawn.append((tmp_path / str(run) / "seed_scores.png").read_bytes())
        # ... and gets it back: its next draw is the first of its own seed.
        assert np.random.random() == np.random.RandomState(run).random_sample()
    assert drawn[0] == drawn[1]


def test_the_report_leads_with_one_sentence_per_lr(report):
    """The answer comes first, a sentence per learning rate; the method follows it."""
    out, _ = report
    md = (out / "report.md").read_text()
    sections = [line for line in md.splitlines() if line.startswith("## ")]
    assert sections[:2] == ["## The answer", "## Critical depth: table and method"]
    lead = md.split("## The answer")[1].split("## ")[0]
    answers = [line for line in lead.splitlines() if line.startswith("- lr = ")]
    assert answers[0].startswith(
        "- lr = 0.003: critical depth 2: vitbnffn wins from depth 2 on and does not win at depth 1"
    )
    assert answers[1].startswith("- lr = 0.005: critical depth 1 or > 3, unresolved at depth")
    assert len(answers) == 2 and "mean above the margin (1 point)" in lead
    assert "intersection-union" not in lead and "intersection-union" in md  # method below
    html = (out / "report.html").read_text()
    assert html.index(">The answer</h2>") < html.index(">Critical depth: table and method</h2>")
    assert "demo" not in md.splitlines()[0]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """A sweep shaped like the smoke demo (its sweep name), one epoch per job."""
    root = tmp_path_factory.mktemp("outputs") / "smoke"
    write_grid(root, {1: -0.03, 2: 0.0, 3: -0.02}, seeds=2, epochs=1, base=0.25, noise=0.01)
    for path in root.rglob("result.json"):
        record = json.loads(path.read_text())
        record["config"]["sweep_name"] = "smoke"
        path.write_text(json.dumps(record))
    return root


def test_the_smoke_demo_says_it_cannot_answer_the_question(demo, tmp_path, capsys):
    assert main(["report", str(demo), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].startswith("A demo, too small to answer the question: the smoke sweep")
    assert printed[1].endswith("to show that a sweep and its report run end to end.")
    md = (tmp_path / "report.md").read_text().splitlines()
    assert md[0] == "# vitbn_sweep report (a demo: too small to answer the question)"
    first = md[md.index("## The answer") + 2]
    assert first.startswith("A demo, too small to answer the question: the smoke sweep")
    assert "1 epoch on 200 training images with 2 seeds" in first


class Drawn:
    """The figures a figure function made, kept open instead of saved."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:

        self.figures: dict[str, object] = {}
        monkeypatch.setattr(figures, "_save", self.keep)

    def keep(self, fig, out, name, title, caption):
        self.figures[name] = fig


def test_one_epoch_curves_have_whole_epoch_ticks_and_seed_bars(demo, monkeypatch, tmp_path):

    a = analyze(*records_from_dirs([demo]), Settings())
    drawn = Drawn(monkeypatch)
    accuracy_curves(a.tidy, a.conditions, a.settings, tmp_path)
    (fig,) = drawn.figures.values()
    for ax in fig.axes:
        if not ax.has_data():
            continue
        assert list(ax.get_xticks()) == [1] and ax.get_xlim() == (0.5, 1.5)
        assert ax.get_title().startswith("depth ")
        assert ax.lines and ax.collections  # markers and the seeds' error bars
        means = [y for line in ax.lines for y in line.get_ydata() if len(line.get_ydata()) == 1]
        assert means and all(20 <= y <= 30 for y in means)  # in %, as the tables


def test_difference_panels_have_their_own_y_axis_and_plain_titles(sweep, monkeypatch, tmp_path):

    a = analyze(*records_from_dirs([sweep]), Settings())
    drawn = Drawn(monkeypatch)
    diff_by_depth(a.diffs, a.critical, a.conditions, a.settings, tmp_path)
    diff_heatmap(a.diffs, a.critical, a.conditions, tmp_path)
    panels = drawn.figures["diff_by_depth"].axes
    assert [ax.get_title() for ax in panels] == ["lr = 0.003", "lr = 0.005"]
    assert not panels[0].get_shared_y_axes().joined(panels[0], panels[1])
    (heatmap,) = drawn.figures["diff_heatmap"].axes
    texts = [t.get_text() for t in heatmap.texts]
    # Every cell names its state in words, the lost and the unresolved ones too.
    assert len(texts) == len(a.diffs)
    shown = a.diffs["label"] if "label" in a.diffs else a.diffs["state"]
    assert sorted(t.split("\n")[1] for t in texts) == sorted(shown)
    ticks = [t.get_text() for t in heatmap.get_xticklabels()]
    assert ticks[0].startswith("lr = 0.003\n(scale ±") and "lr=" not in "".join(ticks)


def test_warmup_facets_are_titled_once(tmp_path, monkeypatch):
    for seed in range(2):
        for lr in (0.01, 0.1):
            write_job(tmp_path / "jobs", "dnn", 3, seed, [0.5], lr=lr)
            write_job(tmp_path / "jobs", "dnnbn", 3, seed, [0.6], lr=lr)
    tidy, _ = build_frames(records_from_dirs([tmp_path / "jobs"])[0])
    drawn = Drawn(monkeypatch)
    warmup_curves(tidy, Settings(), tmp_path / "figures")
    titles = {ax.get_title() for ax in drawn.figures["warmup_curves"].axes}
    assert "lr = 0.01" in "".join(titles) and "lr = lr=" not in "".join(titles)


def test_the_printed_resolve_command_works_for_a_sweep_dir_with_a_space(tmp_path: Path) -> None:
    """``sweep_name='my sweep'``: the ``make resolve`` commands the CLI prints and the report
    holds, pasted into a shell, hand ``analysis resolve`` the whole dir as one argument."""

    sweep = tmp_path / "my sweep"
    write_grid(sweep, {1: -0.02, 2: 0.01, 3: 0.05}, seeds=2, noise=0.02)
    (sweep / "multirun.yaml").write_text(MULTIRUN)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["report", str(sweep)]) == 0
    page = (sweep / "report" / "report.md").read_text()
    commands = re.findall(r"`(make resolve [^`]*)`", out.getvalue() + page)
    assert len(commands) >= 2, commands  # the CLI's and the report's
    for command in commands:
        dry = subprocess.run(
            ["bash", "-c", command.replace("make", "make -n", 1)],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        recipe = next(line for line in dry.splitlines() if "-m analysis resolve" in line)
        assert shlex.split(recipe)[4] == str(sweep), recipe
