#!/usr/bin/env bash
# The GPU checks of docs/gpu.md, for a machine with a CUDA GPU: the cuda-marked tests, a timed synthetic sweep on
# the GPU, and the extraction and per-method benchmarks on the GPU (tiny CLIP and ViT-B-32 with random weights).
# Writes results/gpu/.
#   bash scripts/gpu_checks.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
out=results/gpu
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/machine.csv"
.venv/bin/python -m pytest -m cuda tests/test_gpu.py -v 2>&1 | tee "$out/pytest_cuda.log"
rm -f "$out/sweep_runs.csv"
start=$(date +%s.%N)
.venv/bin/mcbench -m method=multi_map,multi_sub,multi_dproxy dataset=synth_shapes,synth_cards,synth_fruit \
  seed=0,1,2 device=cuda logger=none progress=false results_file="$out/sweep_runs.csv" > "$out/sweep.log" 2>&1
end=$(date +%s.%N)
python3 -c "import json,sys; json.dump({'sweep': '3 methods x 3 synthetic datasets x 3 seeds, device=cuda', 'wall_s': round($end - $start, 1)}, open('$out/sweep_time.json', 'w'), indent=1)"
cat "$out/sweep_time.json"
.venv/bin/python -m benchmarks.run --sections extraction,methods --device cuda --out "$out"
