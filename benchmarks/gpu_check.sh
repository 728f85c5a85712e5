#!/usr/bin/env bash
# The GPU checks of the torch backend in one run (issue 14), for a box with an NVIDIA GPU:
#   bash benchmarks/gpu_check.sh            # ~3-5 minutes on an H100
# It needs torch with CUDA, and for the export open_clip, onnx, onnxscript and onnxruntime (CPU is
# enough). Wheels for what is missing can be put in ./wheels (pip download on a machine with
# internet) and are installed from there without an index. The .pt2 is exported here, with this
# box's torch: a .pt2 is tied to the torch release that wrote it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ -d wheels ]; then
  $PY -m pip install -q --no-index --find-links wheels open_clip_torch onnx onnxscript ftfy regex pydantic pyyaml \
    paho-mqtt tqdm av opencv-contrib-python-headless 2>&1 | tail -3 || true
fi
$PY - <<'PY'
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
PY
export PYTHONPATH=$PWD
# The torch backend against ONNX Runtime on the same weights (CPU fp32 and CUDA fp16).
timeout 240 $PY -m pytest -q -p no:cacheprovider tests/test_clip_scoring.py -k "torch_runtime" || echo "TESTS FAILED"
# The bench: bare model eager, bare CUDA-graph replay (the ceiling), the backend's full call.
timeout 240 $PY -m monitor bench scorer --device cuda --arch ViT-B-32 --config configs/demo.yaml || echo "BENCH FAILED"
