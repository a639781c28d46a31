#!/usr/bin/env bash
# make device-bundle: build .gpu/ (git-ignored) for benchmarks/device_run.sh on a lent
# device machine, which has torch but not this project's other dependencies:
#   .gpu/site/       hydra, omegaconf, antlr4, submitit, joblib and the two Hydra launcher
#                    plugins, copied from the venv (all pure Python)
#   .gpu/mnist.tgz   MNIST/raw/ from VITBN_DATA_DIR (or ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${VITBN_DATA_DIR:-../shared/data}
[[ -f $DATA/MNIST/raw/train-images-idx3-ubyte ]] || {
  echo "device-bundle: no MNIST under $DATA/MNIST/raw (set VITBN_DATA_DIR)" >&2; exit 2; }
site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
rm -rf .gpu/site && mkdir -p .gpu/site/hydra_plugins
for pkg in hydra omegaconf antlr4 submitit joblib; do cp -r "$site/$pkg" .gpu/site/; done
for plugin in hydra_joblib_launcher hydra_submitit_launcher; do
  cp -r "$site/hydra_plugins/$plugin" .gpu/site/hydra_plugins/
done
find .gpu/site -name __pycache__ -prune -exec rm -rf {} +
tar czf .gpu/mnist.tgz -C "$DATA" MNIST/raw
du -sh .gpu/site .gpu/mnist.tgz
# the commit, for study.json (the device gets a copy of the working tree without .git)
echo "$(git rev-parse HEAD)$(git status --porcelain --untracked-files=no | grep -q . && echo +dirty)" > .gpu/commit
