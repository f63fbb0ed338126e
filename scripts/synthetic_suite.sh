#!/usr/bin/env bash
# The synthetic suite behind results/leaderboard.md: every method x synthetic dataset x difficulty level x seed,
# then the leaderboard, its gains table and its plots. Resumable: tasks already in results/runs.csv are skipped.
#   bash scripts/synthetic_suite.sh          # seeds 0-2 at easy, 0-4 at medium and hard (where gains are measured)
#   SEEDS=5,6 LEVELS=hard bash scripts/synthetic_suite.sh       # one custom sweep instead
#   JOBS=1 METHODS=multi_dproxy bash scripts/synthetic_suite.sh method.epochs=5   # extra Hydra overrides
set -euo pipefail
cd "$(dirname "$0")/.."
sweep() {  # sweep LEVELS SEEDS [overrides...]
  local levels=$1 seeds=$2
  shift 2
  .venv/bin/mcbench -m hydra/launcher=parallel hydra.launcher.n_jobs="${JOBS:-2}" \
    method="${METHODS:-kmeans_image,zeroshot_gpt,zeroshot_label,crl_projection,multi_map,multi_sub,multi_dproxy}" \
    dataset=synth_shapes,synth_cards,synth_fruit dataset.difficulty="$levels" seed="$seeds" \
    logger=none progress=false "$@"
}
if [[ -n "${SEEDS:-}${LEVELS:-}" ]]; then
  sweep "${LEVELS:-easy,medium,hard}" "${SEEDS:-0,1,2}" "$@"
else
  sweep easy,medium,hard 0,1,2 "$@"
  sweep medium,hard 3,4 "$@"
fi
.venv/bin/mcbench-leaderboard --results results/runs.csv --out results
