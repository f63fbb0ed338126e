#!/usr/bin/env bash
# The synthetic suite behind results/leaderboard.md: every method x synthetic dataset x difficulty level x seed,
# then the leaderboard, its gains table and its plots. Resumable: tasks already in results/runs.csv are skipped.
#   bash scripts/synthetic_suite.sh                              # easy, medium, hard; seeds 0,1,2; 2 workers
#   SEEDS=3,4 LEVELS=medium,hard bash scripts/synthetic_suite.sh # more seeds where the gains are measured
#   bash scripts/synthetic_suite.sh method.epochs=5 ...          # extra Hydra overrides go to every job
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/mcbench -m hydra/launcher=parallel hydra.launcher.n_jobs="${JOBS:-2}" \
  method="${METHODS:-kmeans_image,zeroshot_gpt,zeroshot_label,crl_projection,multi_map,multi_sub,multi_dproxy}" \
  dataset=synth_shapes,synth_cards,synth_fruit dataset.difficulty="${LEVELS:-easy,medium,hard}" \
  seed="${SEEDS:-0,1,2}" logger=none progress=false "$@"
.venv/bin/mcbench-leaderboard --results results/runs.csv --out results
