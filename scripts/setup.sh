#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv: torch/torchvision pinned as a pair,
# mcbench installed editable with its dev and launcher extras. Idempotent: does nothing when up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
stamp=.venv/.mcbench-installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev,launchers]"
echo "$want" > "$stamp"
