#!/usr/bin/env bash
# Prepared GPU benchmark: (1) the runtimes side by side with the GPU rows (`python -m bench models --gpu`: torch on
# CUDA, ONNX Runtime with its CUDA and TensorRT providers, beside the CPU runtimes); (2) the `python -m bench triton`
# table (texts/s, p50/p99 per request, batch sizes 1-64 x 1-8 requests in flight, in-process vs Triton) with the
# model on the GPU; (3) docs/s through the whole pipeline with Triton on the GPU (`python -m bench through-triton`).
# Run from the repository root on a machine with an NVIDIA GPU and CUDA torch:
#
#   ops/gpu-bench.sh            # python backend on KIND_GPU instances (the tritonserver from nvidia-pytriton)
#
# The ONNX/TensorRT path needs the official container (its onnxruntime backend); the commands are below.
# Results land in var/bench/triton-<time>.json; copy the table into the README's Triton section.
set -euo pipefail
cd "$(dirname "$0")/.."
make install  # the released model ships with the package: nothing to train
export SENTIMON_TRITON__KIND=KIND_GPU SENTIMON_TRITON__THREADS=1 SENTIMON_THREADS="${SENTIMON_THREADS:-8}"
.venv/bin/python - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA device visible to torch: this script measures the GPU path"
print("GPU:", torch.cuda.get_device_name(0))
PY
# ONNX Runtime's CUDA/TensorRT providers live in onnxruntime-gpu (same version); without it those rows say so
.venv/bin/pip install --quiet "onnxruntime-gpu==$(.venv/bin/python -c 'import onnxruntime; print(onnxruntime.__version__)')" \
  || echo "onnxruntime-gpu not installable here: the ONNX Runtime GPU rows will say unavailable"
.venv/bin/python -m bench models --gpu
# on the GPU the python backend runs torch (or ONNX Runtime's CUDA provider when present) in fp32
export SENTIMON_SCORING__RUNTIME="${SENTIMON_SCORING__RUNTIME:-ort-fp32}"
.venv/bin/python -m bench triton
.venv/bin/python -m bench through-triton
# ONNX + TensorRT in the official container (tritonserver with the onnxruntime backend):
#   .venv/bin/sentimon export --backend onnx --kind KIND_GPU --out var/triton_onnx
#   docker run --gpus all --rm -p 8001:8001 -p 8000:8000 -p 8002:8002 -v "$PWD/var/triton_onnx:/models" \
#     nvcr.io/nvidia/tritonserver:24.10-py3 tritonserver --model-repository=/models
#   then point the pipeline at it: SENTIMON_SCORING__BACKEND=triton SENTIMON_TRITON__HOST=<host>
