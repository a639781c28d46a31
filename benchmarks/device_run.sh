#!/usr/bin/env bash
# The call for a lent device machine (torch with CUDA, but no hydra): run from the
# repository root with .gpu/ carried along (make device-bundle builds it), e.g.
#   run(command="bash benchmarks/device_run.sh", carry=[".gpu"], timeout_s=600)
# It unpacks .gpu/ (pure-Python hydra & co, MNIST), then runs benchmarks/gpu.sh with a
# deadline inside the 10-minute call and packs its output (the study's fresh sweep dirs
# and study.json among it) into $OUT.
T0=$(date +%s)
mkdir -p /tmp/site /tmp/data && cp -r .gpu/site/. /tmp/site/ && tar xzf .gpu/mnist.tgz -C /tmp/data || exit 9
# the device gets no editable install: put conf/ where pkg://vitbn_sweep.conf finds it
cp -r conf vitbn_sweep/conf && find vitbn_sweep/conf -type d -exec touch {}/__init__.py \; || exit 8
export PYTHONPATH=$PWD:/tmp/site VITBN_DATA_DIR=/tmp/data PYTHONUNBUFFERED=1
python3 -c "import torch,hydra,omegaconf,submitit,joblib;print(torch.__version__,torch.version.cuda,torch.cuda.get_device_name(0),hydra.__version__)"
nproc; free -g | head -2
export PY=python3 STUDY_COMMIT=$(cat .gpu/commit 2>/dev/null)
# the study first (what the device time is for), eager: the engine with CUDA graphs is not yet
# run on a GPU; then the CUDA path and make bench with what is left of the 10 minutes
STEPS=3 GRAPH=${GRAPH:-false} DEADLINE=$((T0 + 400)) bash benchmarks/gpu.sh /tmp/gpuout
STEPS=12 BENCH_ARGS="--repeats 2 --seconds 0.4" SMOKE_TIMEOUT=80 BENCH_TIMEOUT=80 \
  bash benchmarks/gpu.sh /tmp/gpuout
echo "total $(( $(date +%s) - T0 )) s"
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv || true
tar czf "$OUT/gpu.tgz" -C /tmp gpuout
ls -la "$OUT"
