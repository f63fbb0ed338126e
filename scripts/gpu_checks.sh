#!/usr/bin/env bash
# The GPU checks of docs/gpu.md, for a machine with a CUDA GPU. Writes results/gpu/.
#   bash scripts/gpu_checks.sh                 # everything below, in order
#   bash scripts/gpu_checks.sh architecture    # only the named parts: tests sweep benchmarks architecture
# Parts:
#   tests         the cuda-marked tests
#   sweep         a timed synthetic sweep on the GPU (3 methods x 3 sets x 3 seeds)
#   benchmarks    extraction and per-method benchmarks on the GPU (tiny CLIP and ViT-B-32 with random weights)
#   architecture  the ViT-B/32 side by side at paper-like N (ours against the official-style loops, equal NMI,
#                 per-epoch extrapolation) and the growth with N that replaces the projection's GPU estimates:
#                 ARCH_N (default 2000) and ARCH_GROWTH (default 8029, the Cards size) images
# A machine with no internet (the lent H200: torch there, not open_clip or Hydra): put the missing wheels in .whl/
# (open_clip_torch ftfy wcwidth hydra-core omegaconf antlr4-python3-runtime==4.9.3 hydra-joblib-launcher; see
# docs/gpu.md) and run  WHEELS=.whl bash scripts/gpu_checks.sh ...  : they and mcbench are installed without
# the network into that machine's python3, whose torch is used as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
parts="${*:-tests sweep benchmarks architecture}"
has() { [[ " $parts " == *" $1 "* ]]; }
if [ -n "${WHEELS:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  python3 -m pip install -q --no-index --no-deps --no-build-isolation -e .
  PY=python3
  mcbench() { python3 -m mcbench.commands.cli "$@"; }
else
  bash scripts/setup.sh >/dev/null
  PY=.venv/bin/python
  mcbench() { .venv/bin/mcbench "$@"; }
fi
out=results/gpu
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/machine.csv"
if has tests; then
  $PY -m pytest -m cuda tests/test_gpu.py -v 2>&1 | tee "$out/pytest_cuda.log"
fi
if has sweep; then
  rm -f "$out/sweep_runs.csv"
  start=$(date +%s.%N)
  mcbench -m method=multi_map,multi_sub,multi_dproxy dataset=synth_shapes,synth_cards,synth_fruit \
    seed=0,1,2 device=cuda logger=none progress=false results_file="$out/sweep_runs.csv" > "$out/sweep.log" 2>&1
  end=$(date +%s.%N)
  python3 -c "import json,sys; json.dump({'sweep': '3 methods x 3 synthetic datasets x 3 seeds, device=cuda', 'wall_s': round($end - $start, 1)}, open('$out/sweep_time.json', 'w'), indent=1)"
  cat "$out/sweep_time.json"
fi
if has benchmarks; then
  $PY -m benchmarks.run --sections extraction,methods --device cuda --out "$out"
fi
if has architecture; then
  $PY -u -m benchmarks.run --sections architecture --device cuda --repeats 1 \
    --arch-n "${ARCH_N:-2000}" --arch-growth "${ARCH_GROWTH:-8029}" --out "$out/architecture"
fi
