# vitbn_sweep: set-up, run, test. `make run` and `make test` install on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install data run report publish resolve status dashboard mlflow-ui export bench simulate test test-slow test-all test-slurm wheel-check bench-gpu device-bundle lint format clean

# MNIST lives in one place per machine, its data home (vitbn_sweep/data/home.py):
# $VITBN_DATA_DIR if set, else ~/.cache/vitbn_sweep/data. The first sweep or run fills it
# (from ../shared/data beside the checkout, else a download); `make data` does it ahead.
DATA_HOME = $$($(PY) -c 'from vitbn_sweep.data import data_home; print(data_home())')

$(STAMP): pyproject.toml setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project (editable) with its dev extra

FROM ?=
data: $(STAMP)  ## MNIST into its data home, size and md5 checked: make data [FROM=dir holding MNIST/raw/]
	$(PY) -m vitbn_sweep.data $(if $(FROM),--from $(FROM))

run: $(STAMP)  ## the demo: the smoke sweep (ViT vs ViTBNFFN, depths 1-3, 2 seeds, a subset), then its report
	$(PY) -m vitbn_sweep -m experiment=smoke
	$(PY) -m analysis report $${VITBN_OUTPUT_DIR:-outputs}/smoke

SWEEP ?=
# quoted: a sweep dir may hold spaces (sweep_name='my sweep')
SWEEP_ARG = $(if $(SWEEP),'$(SWEEP)')
report: $(STAMP)  ## report of a sweep: make report SWEEP=outputs/grid_c (default: the newest sweep); REPORT_ARGS="--basis auc"
	$(PY) -m analysis report $(SWEEP_ARG) $(REPORT_ARGS)

publish: $(STAMP)  ## the study: results/README.md, results/*.csv, each sweep's report, the README's findings
	$(PY) -m studies.publish results --readme README.md

MAX_SEEDS ?= 6
MIN_SEEDS ?= 2
GAP ?= 0
resolve: $(STAMP)  ## one more seed where a critical depth (GAP=1: or an lr gap) is not settled, round after round: make resolve SWEEP=outputs/grid_c MAX_SEEDS=6 MIN_SEEDS=2 GAP=0; RESOLVE_ARGS="--dry-run"
	$(PY) -m analysis resolve $(SWEEP_ARG) --max-seeds $(MAX_SEEDS) --min-seeds $(MIN_SEEDS) $(if $(filter 1,$(GAP)),--gap) $(RESOLVE_ARGS)

status: $(STAMP)  ## jobs of a sweep by state, and the ETA (reads the sweep dir only): make status SWEEP=outputs/grid_c
	$(PY) -m analysis status $(SWEEP_ARG)

dashboard: $(STAMP)  ## the sweep's wandb view and report (spec in <sweep>/report/; published with credentials): make dashboard SWEEP=...
	$(PY) -m analysis dashboard $(SWEEP_ARG) $(DASHBOARD_ARGS)

MLFLOW_PORT ?= 5000
MLFLOW_URI ?=
mlflow-ui: $(STAMP)  ## MLflow UI on a sweep's local store (<outputs>/mlflow), or MLFLOW_URI=...: make mlflow-ui SWEEP=outputs/grid_c
	@uri="$(MLFLOW_URI)"; \
	case "$$uri" in http://*|https://*) echo "$$uri is an MLflow server: its UI is at that address"; exit 0;; esac; \
	if [ -z "$$uri" ]; then \
	  sweep="$(SWEEP)"; outputs="$${sweep:+$$sweep/..}"; outputs="$${outputs:-$${VITBN_OUTPUT_DIR:-outputs}}"; \
	  db="$$(cd "$$outputs" 2>/dev/null && pwd)/mlflow/mlflow.db"; \
	  test -f "$$db" || { echo "no MLflow store at $$outputs/mlflow/mlflow.db: run the sweep with logger=mlflow, or make export SWEEP=... TO=mlflow, or give MLFLOW_URI=..."; exit 2; }; \
	  uri="sqlite:///$$db"; \
	fi; \
	echo "MLflow UI on $$uri: http://127.0.0.1:$(MLFLOW_PORT) (Ctrl-C stops it)"; \
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=$${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false} \
	  exec $(PY) -m mlflow ui --backend-store-uri "$$uri" --host 127.0.0.1 --port $(MLFLOW_PORT)

TO ?= mlflow
export: $(STAMP)  ## log a finished sweep's jobs into a tracker, after the fact: make export SWEEP=outputs/grid_c TO=mlflow (or wandb); EXPORT_ARGS="--project P"
	$(PY) -m analysis export $(SWEEP) --to $(TO) $(EXPORT_ARGS)

test: $(STAMP)  ## the quick suite: every test not marked slow (about 2 min on 2 cores)
	$(PY) -m pytest -q

test-slow: $(STAMP)  ## the slow tests: real sweeps in subprocesses, Slurm (skipped without a cluster), long simulations
	$(PY) -m pytest -q -m slow; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test-slow: no test is marked slow"; rc=0; fi; exit $$rc

test-all: $(STAMP)  ## every test (make test and make test-slow in one run)
	$(PY) -m pytest -q -m "slow or not slow"

bench: $(STAMP)  ## fast vs torchvision pipeline side by side, bf16, mid-training, distance to the limit: Markdown table + benchmark.json (~15 min on 2 cores)
	$(PY) -m benchmarks.bench $(BENCH_ARGS)

simulate: $(STAMP)  ## the intervals and resolve's rule against a known truth (studies/): make simulate SIM_ARGS="--slow-mode 0.1 0.3"; GAP=1: resolve --gap's rule
	$(PY) -m studies.$(if $(filter 1,$(GAP)),simulate_gap,simulate) $(SIM_ARGS)

SLURM_SH ?= ../shared/slurm/local-slurm.sh
test-slurm: $(STAMP)  ## the Slurm tests against a local single-node cluster (root; started and stopped here)
	bash $(SLURM_SH) start
	$(PY) -m pytest -q -m slurm; rc=$$?; bash $(SLURM_SH) stop; exit $$rc

bench-gpu: $(STAMP)  ## on a GPU machine: the CUDA path, make bench on CUDA, and the whole study with the engine, timed into study.json (benchmarks/gpu.sh)
	bash benchmarks/gpu.sh $(GPU_OUT)

device-bundle: $(STAMP)  ## build .gpu/ (hydra & co as pure Python, MNIST) for benchmarks/device_run.sh on a lent device machine
	bash benchmarks/device_bundle.sh

wheel-check: data  ## build the wheel, install it in a fresh venv, run a one-epoch job from another directory
	VITBN_DATA_DIR="$(DATA_HOME)" bash tests/wheel_check.sh $(PY)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
