#!/usr/bin/env bash
# The wheel as a user gets it: build it, install it (not editable) into a fresh venv,
# and run a one-epoch job from a directory outside the repository.
# Usage: tests/wheel_check.sh PYTHON   (the project's .venv python: the dependencies
# come from its site-packages through a .pth file, so nothing is downloaded again).
set -euo pipefail
: "${VITBN_DATA_DIR:?set VITBN_DATA_DIR to a folder whose MNIST/raw/ holds MNIST (make wheel-check does)}"
PY=${1:?usage: wheel_check.sh PYTHON}
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# From a copy: setuptools builds in <source>/build, whose leftovers a wheel may pick up.
mkdir "$WORK/src"
tar -C "$REPO" --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./results \
  --exclude=./outputs --exclude='*.egg-info' --exclude=__pycache__ -cf - . | tar -C "$WORK/src" -xf -
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" "$WORK/src"
"$PY" -m venv "$WORK/venv"
DEPS=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
SITE=$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$DEPS" > "$SITE/zz_vitbn_deps.pth"   # a plain path: the editable finder there is not run
"$WORK/venv/bin/python" -m pip install -q --no-deps "$WORK"/dist/*.whl

mkdir "$WORK/elsewhere" && cd "$WORK/elsewhere"
where=$("$WORK/venv/bin/python" -c 'import vitbn_sweep, analysis; print(vitbn_sweep.__file__, analysis.__file__)')
case "$where" in
  "$SITE"/*) ;;
  *) echo "wheel check: imported from the wrong place: $where" >&2; exit 1 ;;
esac
VITBN_OUTPUT_DIR="$WORK/out" "$WORK/venv/bin/python" -m vitbn_sweep -m model=vitbnffn model.depth=1 \
  trainer.epochs=1 data.train_size=300 data.test_size=100 trainer.test_batch_size=100 logger=none
result=$(ls "$WORK"/out/*/*/result.json)
grep -q '"status": "completed"' "$result"
echo "wheel check: the installed wheel ran a one-epoch job from $WORK/elsewhere ($(basename "$(dirname "$result")"))"
