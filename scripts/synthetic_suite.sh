#!/usr/bin/env bash
# The synthetic suite behind results/leaderboard.md: every method x synthetic dataset x seed, then the
# leaderboard and its plots. Resumable: tasks already in results/runs.csv are skipped.
#   bash scripts/synthetic_suite.sh [extra Hydra overrides, e.g. dataset.difficulty=medium]
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/mcbench -m \
  method=kmeans_image,zeroshot_gpt,zeroshot_label,crl_projection,multi_map,multi_sub,multi_dproxy \
  dataset=synth_shapes,synth_cards,synth_fruit seed=0,1,2 logger=none progress=false "$@"
.venv/bin/mcbench-leaderboard --results results/runs.csv --out results
