"""MLflow as its users see it: `mlflow server` on a store written by a real two-job sweep,
read back through the server's REST API (the same calls the MLflow UI makes)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.conftest import TINY, run_cli
from vitbn_sweep.store import METRIC_COLUMNS
from vitbn_sweep.tracking.mlflow_tracker import JOB_DIR_TAG

pytestmark = [
    pytest.mark.slow,  # a real sweep, then an MLflow server
    pytest.mark.skipif(
        importlib.util.find_spec("mlflow") is None,
        reason="mlflow is not installed (pip install -e '.[mlflow]')",
    ),
]
TWO_EPOCHS = [o for o in TINY if not o.startswith(("trainer.epochs", "logger"))]
SWEEP = ["-m", "model=vit,vitbnffn", "model.depth=1", *TWO_EPOCHS, "trainer.epochs=2"]
START_TIMEOUT_S, STOP_TIMEOUT_S = 90, 15


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    return json.loads(text) if path.startswith("/api/") else text


def wait_until_up(base: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow server exited {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if call(base, "/health").strip() == "OK":
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    pytest.fail(f"mlflow server not up after {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(server: subprocess.Popen) -> None:
    """The server and all it started (its own process group): TERM, then KILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        server.poll()  # reaps the server itself; its orphaned workers are reaped by init
        if not group_alive(server.pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait(STOP_TIMEOUT_S)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("mlflow_ui")
    done = run_cli([*SWEEP, "logger=mlflow", "sweep_name=mf"], cwd=cwd, env={})
    assert done.returncode == 0, done.stderr[-3000:]
    return cwd / "outputs"


@pytest.fixture(scope="module")
def server(outputs: Path) -> Iterator[str]:
    """``mlflow server`` on the sweep's local store, bound to 127.0.0.1 on a free port."""
    store = f"sqlite:///{outputs.resolve() / 'mlflow' / 'mlflow.db'}"
    port = free_port()
    log = outputs / "mlflow-server.log"
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no GenAI job workers
    with log.open("w") as sink:
        proc = subprocess.Popen(
            cmd, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, proc, log)
        yield base
    finally:
        stop(proc)
    assert proc.poll() is not None and not group_alive(proc.pid)


def test_the_server_serves_both_runs_with_every_epoch(server: str) -> None:
    name = urllib.request.quote("mf")
    experiment = call(server, f"/api/2.0/mlflow/experiments/get-by-name?experiment_name={name}")
    exp_id = experiment["experiment"]["experiment_id"]
    runs = call(server, "/api/2.0/mlflow/runs/search", {"experiment_ids": [exp_id]})["runs"]
    assert len(runs) == 2
    models = set()
    for found in runs:
        tags = {t["key"]: t["value"] for t in found["data"]["tags"]}
        params = {p["key"]: p["value"] for p in found["data"]["params"]}
        assert found["info"]["status"] == "FINISHED" and tags["status"] == "completed"
        models.add(params["model.name"])
        expected = pd.read_csv(Path(tags[JOB_DIR_TAG]) / "metrics.csv")
        run_id = found["info"]["run_id"]
        for key in METRIC_COLUMNS[1:]:
            path = f"/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key={key}"
            history = call(server, path)["metrics"]
            got = sorted((m["step"], m["value"]) for m in history)
            want = list(zip(expected["epoch"], expected[key], strict=True))
            assert got == want, key
    assert models == {"vit", "vitbnffn"}


def test_the_server_serves_the_ui(server: str) -> None:
    page = call(server, "/")
    assert "<html" in page.lower() and "mlflow" in page.lower()
