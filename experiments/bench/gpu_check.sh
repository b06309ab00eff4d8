#!/usr/bin/env bash
# One-command GPU check (experiments/bench/gpu_check.py): run it first whenever a GPU machine is lent.
#
#   experiments/bench/gpu_check.sh --prepare    # here, with PyPI: wheels of what the GPU machine lacks, into .whl/
#   experiments/bench/gpu_check.sh [--out DIR]  # there (this repo and .whl/ copied over): ≤ 8 min, report in DIR
#   experiments/bench/gpu_check.sh --dry-run    # tiny sizes on the CPU, no wheels: checks the check
#
# The GPU machine (no network) has its own torch, torchvision, lightning, numpy, pillow and most of what they need;
# it lacks PyAV, PyTorchVideo, fvcore and jsonargparse and their own needs. Only those travel, as wheels, installed
# there into /tmp/site: never wheels of what the machine has (its torch 2.11 must stay).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
WHEELS=.whl
PINNED=(av pytorchvideo fvcore jsonargparse)  # versions from requirements.txt
# their needs that the GPU machine lacks, at the versions that install with our pins
NEEDS=(iopath==0.1.10 yacs==0.1.8 termcolor==3.3.0 parameterized==0.9.0 docstring-parser==0.18.0
       typeshed-client==2.15.0)
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64
           any)

pin() {  # NAME -> NAME==VERSION as requirements.txt pins it
  local line
  line=$(grep -iE "^$1(\[[a-z,]+\])?==" requirements.txt) || { echo "requirements.txt pins no $1" >&2; exit 1; }
  echo "${line/\[*\]/}"
}

prepare() {
  mkdir -p "$WHEELS"
  local requirement
  for requirement in $(for name in "${PINNED[@]}"; do pin "$name"; done) "${NEEDS[@]}"; do
    # a wheel for the GPU machine's CPython 3.12 on x86-64 Linux; sdist-only packages (pure Python) are built here
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      "${PLATFORMS[@]/#/--platform=}" -d "$WHEELS" "$requirement" 2>/dev/null \
      || "$PYTHON" -m pip wheel -q --no-deps -w "$WHEELS" "$requirement"
  done
  du -sh "$WHEELS"
  ls "$WHEELS"
}

install_wheels() {  # once per machine: skipped when the packages import already
  if "$PYTHON" -c "import av, pytorchvideo, fvcore, jsonargparse" 2>/dev/null; then return; fi
  [ -d "$WHEELS" ] || { echo "no $WHEELS/ here: run experiments/bench/gpu_check.sh --prepare where PyPI is reachable" \
                          "and copy $WHEELS/ along with the repository" >&2; exit 1; }
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$WHEELS"/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
}

case "${1:-}" in
  --prepare) prepare; exit ;;
  --dry-run) ;;
  *) install_wheels ;;
esac
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
exec "$PYTHON" -m experiments.bench.gpu_check "$@"
