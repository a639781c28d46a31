"""The published study (results/README.md and the README's findings) matches the committed
results: regenerated from them here, it must come out the same."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from analysis.records import AnalysisError
from analysis.render import markdown
from analysis.resolve import resolve
from analysis.settings import Settings
from studies.article import CLAIMS, article_table
from studies.findings import findings
from studies.publish import (
    FINDINGS_END,
    FINDINGS_START,
    STEADY_BASIS,
    cell_provenance,
    compute_by_device,
    critical_markdown,
    publish,
    replace_block,
)
from studies.redact import ABSOLUTE, redact_study, redact_text
from studies.robustness import cross_check_notes, cross_check_table, on_basis
from studies.seeding import disclosure
from studies.study import analyse_study
from vitbn_sweep.store.origin import origin_doc, pin_origin

REPO = Path(__file__).resolve().parents[1]


def committed_results(dest: Path) -> Path:
    """The results as committed (git's tracked files), without what a running study adds."""
    try:
        tracked = (
            subprocess.run(
                ["git", "ls-files", "-z", "results"], cwd=REPO, capture_output=True, check=True
            )
            .stdout.decode()
            .split("\0")
        )
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: the folder as is
        shutil.copytree(REPO / "results", dest / "results")
        return dest / "results"
    for name in filter(None, tracked):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, dest / name)
    return dest / "results"


def block(text: str) -> str:
    return text.split(FINDINGS_START, 1)[1].split(FINDINGS_END, 1)[0].strip()


def without_stamp(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("- generated ")]


@pytest.mark.slow
def test_published_study_is_what_the_committed_results_give(tmp_path: Path) -> None:
    results = committed_results(tmp_path)
    published = (REPO / "results" / "README.md").read_text()
    study = analyse_study(results)
    for p in study:  # every critical-depth table, as the analysis computes it now
        assert critical_markdown(p.analysis) in published, p.name
        steady = on_basis(p.analysis, STEADY_BASIS)  # and the cross-checks beside it
        assert markdown(cross_check_table(p.analysis, steady)) in published, p.name
        for note in [*cross_check_notes(p.analysis, steady), *disclosure(p.analysis)]:
            assert f"- {note}" in published
    assert block(published) == block((REPO / "README.md").read_text()) == findings(study)
    claims = article_table(study)
    assert markdown(claims) in published and len(claims) == len(CLAIMS)
    assert all(c.startswith(("agrees", "differs", "open")) for c in claims["compared"])
    for p in study:
        assert markdown(cell_provenance(p.analysis)) in published
    assert "[docs/study.md](../docs/study.md)" in published and (REPO / "docs/study.md").is_file()
    assert published.count("spans all seeds, min to max") >= 3  # every curve has its caption
    heatmap = "*Mean difference over seeds in percentage points, with each cell's state in words"
    assert heatmap in published
    readme = tmp_path / "README.md"
    shutil.copy2(REPO / "README.md", readme)
    publish(results, readme=readme)  # the whole thing again, figures and CSVs included
    assert without_stamp((results / "README.md").read_text()) == without_stamp(published)
    assert readme.read_text() == (REPO / "README.md").read_text()
    for name in ("results.csv", "summary.csv"):
        assert (results / name).read_text() == (REPO / "results" / name).read_text(), name


def test_findings_say_unresolved_where_cells_are_open() -> None:
    study = analyse_study(REPO / "results")
    text = findings(study)
    for p in study:
        for row in p.analysis.critical.to_dict("records"):
            assert f"**{row['critical_depth']}**: {row['verdict']}" in text
            if row["verdict"] == "unresolved":
                assert "more seeds decide it" in row["detail"]


def test_a_readme_without_the_findings_block_is_named(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match="README.md: no findings block"):
        replace_block("# title\n", "x", where=str(tmp_path / "README.md"))
    text = f"a\n{FINDINGS_START}\nold\n{FINDINGS_END}\nb\n"
    assert replace_block(text, "new", where="R") == f"a\n{FINDINGS_START}\nnew\n{FINDINGS_END}\nb\n"


def test_the_study_size_is_the_experiments_grid_or_more_where_commands_added_jobs(
    tmp_path: Path,
) -> None:
    """A subset command keeps the experiment's grid; seeds added by `make resolve` (every
    command's jobs, grid.json) count too, so "N of M jobs ended" never has N > M."""
    import json

    from analysis.load import sweep_info
    from studies.study import _study_size

    (tmp_path / "multirun.yaml").write_text(
        "hydra:\n  overrides: {task: [model.depth=2]}\n"
        "  sweeper: {params: {model.depth: '1,2', trainer.seed: '0,1'}}\n"
    )
    (tmp_path / "jobs.json").write_text(json.dumps(["a", "b"]))
    info = sweep_info(tmp_path)
    assert info is not None and (info.expected, info.planned, info.not_started) == (2, 2, 2)
    assert _study_size(info) == 4  # the experiment's 2 depths x 2 seeds
    (tmp_path / "grid.json").write_text(json.dumps([*"abcdef"]))  # 2 seeds more, say
    (tmp_path / "a").mkdir()
    info = sweep_info(tmp_path)
    assert info is not None and (info.planned, info.not_started) == (6, 5)
    assert _study_size(info) == 6


@pytest.mark.parametrize(
    ("low_lr", "high_lr", "answer"),
    [
        ((5, 5), (2, 2), "yes"),
        ((5, None), (2, 4), "yes"),  # "> 4" at the lower lr, "2 to 4" at the higher
        ((3, 3), (3, 3), "no"),  # the same depth
        ((2, 3), (3, None), "no"),
        ((4, None), (1, None), "not settled"),  # the study's "4 to > 6" and "1 to > 6"
        ((4, 5), (4, 4), "not settled"),
        ((8, None), (8, None), "not settled"),  # both "> 7": beyond the swept depths
    ],
)
def test_whether_the_critical_depth_shrinks_follows_from_both_ranges(
    low_lr: tuple[int, int | None], high_lr: tuple[int, int | None], answer: str
) -> None:
    from studies.findings import shrinks

    assert shrinks(low_lr, high_lr) == answer


def test_the_findings_ask_each_question_of_the_study() -> None:
    study = analyse_study(REPO / "results")
    text = findings(study)
    assert "does the critical depth shrink from lr 0.003 to 0.005? **" in text
    assert "does lr 0.005 hurt vit more than vitbnffn? **" in text
    assert "does lr 0.1 hurt dnn more than dnnbn? **" in text
    assert "shrink from lr 0.01" not in text  # the warm-up sweeps one depth only


def test_provenance_says_where_the_compute_ran_and_which_records_lack_the_cpu() -> None:
    old_cpu = {"device": "cpu", "host": {"hostname": "vm"}, "total_seconds": 1800}
    new_cpu = {
        "device": "cpu",
        "host": {"hostname": "vm", "cpu": "AMD EPYC", "cpu_capability": "AVX512"},
        "total_seconds": 3600,
    }
    chip = "AuthenticAMD family 25 model 17 stepping 1"
    chipped = {**new_cpu, "host": {**new_cpu["host"], "cpu_id": chip}}
    old_gpu = {"device": "cuda", "host": {"hostname": "node1"}, "total_seconds": 360}
    gpu = {"device": "cuda", "host": {"hostname": "node1", "gpu": "NVIDIA H200"}}
    assert compute_by_device([new_cpu, old_cpu, old_gpu, new_cpu, chipped, gpu]) == (
        "cpu (vm, AMD EPYC, AVX512): 2 jobs, 2.0 h; "
        f"cpu (vm, AMD EPYC, AVX512, {chip}): 1 job, 1.0 h; "
        "cpu (vm, CPU model not recorded): 1 job, 0.5 h; "
        "cuda (node1): 1 job, 0.1 h; "
        "cuda (node1, NVIDIA H200): 1 job, 0.0 h"
    )


def test_the_findings_open_with_whether_the_study_has_ended() -> None:
    from studies.findings import status_line

    assert status_line(178, 178).startswith("**Ended**: all 178 planned jobs")
    assert status_line(176, 178).startswith("**In progress**: 176 of 178 planned jobs")
    assert "of a plan of unknown size" in status_line(5, None)
    study = analyse_study(REPO / "results")
    text = findings(study)
    assert text.splitlines()[0].startswith(("**Ended**", "**In progress**"))
    assert ("ended so far" in text) == text.startswith("**In progress**")


def test_no_published_file_holds_an_absolute_path() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "results"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    texts = [n for n in tracked if n.endswith((".json", ".jsonl", ".yaml", ".md", ".csv"))]
    assert len(texts) > 200
    for name in texts:
        found = ABSOLUTE.findall((REPO / name).read_text())
        assert not found, f"{name}: {found[:3]}"


def test_redaction_keeps_what_reproduction_needs(tmp_path: Path) -> None:
    assert redact_text('"root": "/home/me/shared/data", "cwd": "/home/me/repo"') == (
        '"root": "<data>", "cwd": "<local>"'
    )
    argv = "hydra.sweep.dir=/w/main/results/warmup /w/main/vitbn_sweep/__main__.py"
    assert redact_text(argv) == "hydra.sweep.dir=results/warmup vitbn_sweep/__main__.py"
    kept = "hydra/launcher=packed ${paths.outputs}/runs https://hydra.cc 1/num_classes"
    assert redact_text(kept) == kept
    # resolve finds the user's command through the pin, which follows the redacted file
    sweep = tmp_path / "results" / "demo"
    sweep.mkdir(parents=True)
    doc = {"hydra": {"overrides": {"task": ["paths.outputs=/w/main/results"]},
                     "runtime": {"cwd": "/w/main"}}}  # fmt: skip
    (sweep / "multirun.yaml").write_text(yaml.safe_dump(doc))
    pin_origin(sweep, doc)
    (sweep / "job").mkdir()
    (sweep / "job" / "result.json").write_text('{"config": {"data": {"root": "/w/data"}}}')
    assert len(redact_study(tmp_path / "results")) == 3 and not redact_study(tmp_path / "results")
    origin = origin_doc(sweep)
    assert origin == {"hydra": {"overrides": {"task": ["paths.outputs=results"]},
                                "runtime": {"cwd": "<local>"}}}  # fmt: skip
    assert origin == yaml.safe_load((sweep / "multirun.yaml").read_text())
    assert '"<data>"' in (sweep / "job" / "result.json").read_text()


def test_resolve_still_plans_from_the_redacted_records(tmp_path: Path) -> None:
    """``make resolve`` reads the published records back: the user's command (through the
    pin in resolve.json) and the sweep's place, wherever the study dir now is."""
    sweep = committed_results(tmp_path) / "article_full"
    said: list[str] = []
    launched: list[list[str]] = []
    code = resolve(sweep, Settings(), max_seeds=12, dry_run=True, echo=said.append,
                   run=lambda argv, **_: launched.append(argv))  # fmt: skip
    assert code == 0 and not launched
    commands = [line for line in "\n".join(said).splitlines() if "python -m vitbn_sweep" in line]
    assert commands and all("experiment=article_full" in c for c in commands)
    assert all(f"hydra.sweep.dir={sweep}" in c and "paths.outputs=/" in c for c in commands)
