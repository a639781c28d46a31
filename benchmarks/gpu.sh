#!/usr/bin/env bash
# make bench-gpu: everything a GPU owner runs, as is, in one go (issue 11, part 2).
#   bash benchmarks/gpu.sh [OUT_DIR]        (default OUT_DIR: benchmarks/gpu-<host>-<date>)
# 1. the CUDA path: one tiny job per model on the GPU, fp32 and bf16, a stacked sweep
#    eager and with CUDA graphs (trainer.cuda_graph), and the CUDA tests of the suite;
# 2. make bench on the GPU: samples/s per depth, the grid's epochs/h (one at a time,
#    packed, stacked), written to OUT_DIR/benchmark.json and bench.md;
# 3. the study itself: experiment=warmup and experiment=article_full (96 jobs) with the
#    engine (hydra/launcher=engine: one process per GPU, every stacked group at once) into
#    a fresh RESULTS (default OUT/study), timed: the target is <= 5 min of wall time on one
#    H200; OUT/study.json records study_wall_s, jobs_planned, jobs_ended, device, commit.
# Needs the project's .venv (make install) and MNIST (VITBN_DATA_DIR or ../shared/data).
# Knobs (environment): STEPS (default 123; 3: the study alone), ALLOW_CPU=1 (run without
# CUDA: the CPU dry run of tests/test_engine.py), PY (python), BENCH_ARGS (e.g. "--repeats 2 --seconds 0.5"),
# LAUNCHER (engine), STUDY_ARGS, RESULTS (default OUT/study), GRAPH (trainer.cuda_graph of the
# study: auto = true if the graphed stacked smoke sweep and
# tests/test_cuda_graph.py of step 1 passed, else false); SMOKE_TIMEOUT, BENCH_TIMEOUT and
# STUDY_TIMEOUT in seconds (default: none), or DEADLINE (epoch seconds: the study gets what
# is left until then). A study cut by its timeout keeps its completed jobs; a rerun resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${1:-benchmarks/gpu-$(hostname -s)-$(date +%Y-%m-%d)}
mkdir -p "$OUT"
if [[ -z ${VITBN_DATA_DIR:-} && -f ../shared/data/MNIST/raw/train-images-idx3-ubyte ]]; then
  export VITBN_DATA_DIR=$(cd ../shared/data && pwd)
fi
STEPS=${STEPS:-123}  # which of the 3 steps run (STEPS=3: the study alone)
if [[ -z ${ALLOW_CPU:-} ]] && ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "bench-gpu: no CUDA device here (torch.cuda.is_available() is false); run it on a GPU machine" >&2
  exit 2
fi
BENCH_ARGS=${BENCH_ARGS:-}
LAUNCHER=${LAUNCHER:-engine}  # the study's launcher: engine (one process per GPU), or stacked
RESULTS=${RESULTS:-$OUT/study}  # a fresh directory: every job of the study runs and is timed
STUDY_ARGS=${STUDY_ARGS:-}  # extra overrides of the study runs (a dry run on CPU, say)
limit() { local t=$1; shift; if [[ -n $t ]]; then timeout --signal=INT --kill-after=20 "$t" "$@"; else "$@"; fi; }
log() { echo "[bench-gpu $(date +%H:%M:%S)] $*" | tee -a "$OUT/gpu.log"; }
{ nvidia-smi || true; "$PY" -c 'import torch; c = torch.cuda.is_available(); print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0) if c else "cpu")'; } \
  > "$OUT/device.txt" 2>&1
log "device: $(tail -1 "$OUT/device.txt")"

log "1/3 the CUDA path: one tiny job per model, fp32 and bf16; tests/test_cuda.py"
smoke() {
TINY=(trainer.epochs=2 data.train_size=2000 data.test_size=1000 logger=none trainer.device=cuda)
for precision in fp32 bf16; do
  "$PY" -m vitbn_sweep -m model=vit,vitbnffn,vitbn,dnn,dnnbn model.depth=2 \
    trainer.precision=$precision sweep_name=cuda-$precision paths.outputs="$OUT/smoke" "${TINY[@]}" \
    2>&1 | tee -a "$OUT/gpu.log" | grep -E "sweep .*jobs:|job failed" || true
done
"$PY" -m vitbn_sweep -m hydra/launcher=stacked model=vit,vitbnffn model.depth=2 optim.lr=0.003,0.005 \
  trainer.seed=0,1 sweep_name=cuda-stacked paths.outputs="$OUT/smoke" "${TINY[@]}" \
  2>&1 | tee -a "$OUT/gpu.log" | grep -E "sweep .*jobs:|job failed" || true
# the stacked step replayed from CUDA graphs: the study below uses them only if both the
# graphed stacked sweep runs and the graph tests (graphed group == eager group) pass
rm -f "$OUT/graph-ok"
graph_sweep=fail
if "$PY" -m vitbn_sweep -m hydra/launcher=stacked model=vit,vitbnffn,dnnbn model.depth=2 \
  optim.lr=0.003,0.005 trainer.seed=0,1 trainer.cuda_graph=true sweep_name=cuda-graph \
  paths.outputs="$OUT/smoke" "${TINY[@]}" > "$OUT/smoke-graph.log" 2>&1; then
  graph_sweep=pass
fi
grep -E "sweep .*jobs:|job failed|Error" "$OUT/smoke-graph.log" | tee -a "$OUT/gpu.log" || true
graph_tests=fail
if "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda_graph.py > "$OUT/tests-graph.log" 2>&1; then
  graph_tests=pass
fi
tail -5 "$OUT/tests-graph.log" | tee -a "$OUT/gpu.log"
log "CUDA graphs: graphed sweep $graph_sweep, graph tests $graph_tests"
if [[ $graph_sweep == pass && $graph_tests == pass ]]; then touch "$OUT/graph-ok"; fi
"$PY" -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_bench.py \
  -k "cuda or bf16" 2>&1 \
  | tail -15 | tee -a "$OUT/gpu.log" || true
}
if [[ $STEPS == *1* ]]; then
  limit "${SMOKE_TIMEOUT:-}" bash -c "$(declare -f smoke log); OUT='$OUT' PY='$PY'; smoke" || log "smoke: cut or failed"
fi

log "2/3 make bench on the GPU"
if [[ $STEPS == *2* ]]; then
  limit "${BENCH_TIMEOUT:-}" "$PY" -m benchmarks.bench $BENCH_ARGS --out "$OUT/benchmark.json" \
    > "$OUT/bench.md" 2>> "$OUT/gpu.log" || log "bench: cut or failed"
  cat "$OUT/bench.md"
fi

if [[ $STEPS == *3* ]]; then
  log "3/3 the study: warmup + article_full with the engine (hydra/launcher=$LAUNCHER), fresh, into $RESULTS"
  if [[ -n ${DEADLINE:-} ]]; then STUDY_TIMEOUT=$(( DEADLINE - $(date +%s) )); fi  # epoch seconds
  case ${GRAPH:-auto} in  # trainer.cuda_graph for the study: auto = if graphed sweep and graph tests passed
    auto) if [[ -f $OUT/graph-ok ]]; then GRAPH=true; else GRAPH=false; fi ;;
    true|false) ;;
    *) echo "bench-gpu: GRAPH must be auto, true or false, got $GRAPH" >&2; exit 2 ;;
  esac
  log "study with trainer.cuda_graph=$GRAPH"
  start=$(date +%s.%N)
  study() {  # experiment
    limit "${STUDY_TIMEOUT:-}" "$PY" -m vitbn_sweep -m experiment=$1 hydra/launcher=$LAUNCHER \
      paths.outputs="$RESULTS" logger=none trainer.progress=log trainer.cuda_graph=$GRAPH $STUDY_ARGS \
      > "$OUT/study-$1.log" 2>&1 || log "study $1: cut or failed (exit $?)"
    grep -E "sweep .*jobs|engine on" "$OUT/study-$1.log" | tee -a "$OUT/gpu.log" || true
  }
  study warmup &
  study article_full
  wait
  seconds=$("$PY" -c "print(round($(date +%s.%N) - $start, 1))")
  log "study: ${seconds} s of wall time for warmup + article_full (target: <= 300 s on one H200)"
  "$PY" -m benchmarks.study_record "$OUT/study.json" "$RESULTS/warmup" "$RESULTS/article_full" \
    --wall-s "$seconds" --device "$(tail -1 "$OUT/device.txt")" --launcher "$LAUNCHER" | tee -a "$OUT/gpu.log"
fi
log "done: $OUT"
