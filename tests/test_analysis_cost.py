"""What a resolve round costs: the sweep's own job times, on the machine it ran on last."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest

from analysis import Settings, analyze, records_from_dirs
from analysis.cost import Cost, round_cost
from tests.analysis_synth import write_job


def summary(rows: list[tuple[str, int, str, float, str, str]]) -> pd.DataFrame:
    """(model, depth, machine, total_seconds, ended_at, status) per job."""
    columns = ["model", "depth", "machine", "total_seconds", "ended_at", "status"]
    return pd.DataFrame(rows, columns=columns)


JOBS = summary([
    ("vit", 1, "cuda", 20.0, "2026-01-01T00:00", "completed"),
    ("vit", 3, "cpu", 290.0, "2026-01-02T00:00", "completed"),
    ("vit", 3, "cpu", 310.0, "2026-01-02T01:00", "completed"),
    ("vit", 3, "cpu", 9000.0, "2026-01-02T01:30", "failed"),  # not a job's time
    ("vit", 4, "cpu", 400.0, "2026-01-02T02:00", "completed"),
    ("vit", 5, "cpu", 500.0, "2026-01-02T03:00", "completed"),
    ("vitbnffn", 3, "cpu", 330.0, "2026-01-02T04:00", "completed"),
])  # fmt: skip


def test_a_round_is_priced_at_the_last_machines_medians_and_a_line_in_depth():
    jobs = [("vit", 3), ("vit", 5), ("vit", 1), ("vitbnffn", 3), ("vitbnffn", 1), ("dnn", 1)]
    cost = round_cost(jobs, JOBS)
    # on cpu, the last completed job's machine: vit 300 (median) + 500 + 100 (depth 1 from
    # the line, 100 s per depth through 3-5, not the 20 s it took on cuda); vitbnffn 330, and
    # depth 1 in proportion to its one timed depth: 110; dnn was never timed: unpriced.
    assert cost == Cost(1340.0, 6, 2, 1, "cpu")
    assert cost.text() == (
        "about 22m20s of job time at this sweep's cpu times (median per model and depth); "
        "2 job(s) at depths not timed there, from a line in depth; 1 job(s) not priced: "
        "no machine of this device timed their model"
    )


def test_without_a_timed_job_nothing_is_guessed():
    cost = round_cost([("vit", 3)], JOBS.assign(machine=None))
    assert cost == Cost(0.0, 1, 0, 1, None)
    assert cost.text() == "no timed job in this sweep to price the round by"


def test_the_summary_carries_each_jobs_machine_and_a_new_chip_prices_the_round(tmp_path):
    chips = [("cuda", None), ("cpu", "zen4"), ("cpu", "zen3")]  # in the order they ended
    for seed, (device, chip) in enumerate(chips):
        job = write_job(tmp_path, "vit", 2, seed, [0.5, 0.6])
        record = json.loads((job / "result.json").read_text())
        host = {"hostname": "vm", "cpu": "AMD EPYC", "cpu_id": chip}
        ended = f"2026-01-0{seed + 1}T00:00:00+00:00"
        seconds = 10.0 * (seed + 1)
        record |= {"device": device, "host": host, "ended_at": ended, "total_seconds": seconds}
        (job / "result.json").write_text(json.dumps(record))
    a = analyze(*records_from_dirs([tmp_path]), Settings())
    assert sorted(a.summary["device"]) == ["cpu", "cpu", "cuda"]
    assert sorted(a.summary["machine"]) == [
        "cpu (AMD EPYC, zen3)", "cpu (AMD EPYC, zen4)", "cuda",
    ]  # fmt: skip
    cost = round_cost([("vit", 2)], a.summary)
    assert (cost.seconds, cost.machine) == (30.0, "cpu (AMD EPYC, zen3)")  # not zen4's 20 s


def test_jobs_a_new_chip_cannot_price_are_priced_at_another_of_its_device_and_named():
    zen3, zen5, h200 = "cpu (EPYC, zen3)", "cpu (EPYC, zen5)", "cuda (H200)"
    jobs = summary([
        ("vit", 3, zen3, 300.0, "2026-01-01T00:00", "completed"),
        ("vit", 5, zen3, 500.0, "2026-01-01T01:00", "completed"),
        ("vitbnffn", 3, zen3, 330.0, "2026-01-01T02:00", "completed"),
        ("vitbnffn", 5, zen3, 530.0, "2026-01-01T03:00", "completed"),
        ("dnn", 2, h200, 10.0, "2026-01-02T00:00", "completed"),
        ("dnn", 4, h200, 20.0, "2026-01-02T01:00", "completed"),
        ("vit", 6, zen5, 700.0, "2026-01-03T00:00", "completed"),  # the sweep moved here
    ])  # fmt: skip
    cost = round_cost([("vit", 6), ("vit", 4), ("vitbnffn", 4), ("dnn", 3)], jobs)
    # vit 6: zen5's own 700 s; vit 4 and vitbnffn 4: zen3's lines (400, 430 s), zen5 has one
    # timed depth; dnn 3: only the GPU timed dnn, and a CPU job is never priced at its times.
    assert cost.seconds == pytest.approx(1530.0)
    assert replace(cost, seconds=1530.0) == Cost(1530.0, 4, 0, 1, zen5, ((zen3, 2),))
    assert cost.text() == (
        f"about 25m30s of job time at this sweep's {zen5} times (median per model and depth); "
        f"2 job(s) at {zen3} times: another machine, as this one has too few timed depths for "
        "them (its speed may differ); 1 job(s) not priced: no machine of this device timed their "
        "model"
    )
