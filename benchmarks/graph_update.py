"""Benchmark: one bouncing-ball harmonium update on a GPU, eager against a replayed CUDA graph.

The update is the paper preset's (one 100-frame sequence, CD-25, whole-sequence filter, the
optimiser step, the finiteness checks of :func:`tlr.train.fit`), at 400 and 1600 hidden units,
for the rEFH and the RTRBM (its BPTT term adds ~900 operators), chains in bfloat16. Eager, every
operator is a kernel launch paid on the host; graphed (:class:`tlr.graphs.GraphedUpdate`), the
update is one launch. ``ms`` is the median of ``--repeats`` updates after three warm-ups, each
timing waiting for the GPU; ``run_min`` the paper run's 102 000 updates at that speed (no data
generation, no validation).

    python benchmarks/graph_update.py --json graph_update.json   # needs CUDA
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

import torch
from gpu_estimate import fit_step  # benchmarks/: the body of fit's loop, as fit runs it

from tlr.experiments.balls import PRESETS, build_model
from tlr.graphs import GraphedUpdate
from tlr.provenance import provenance
from tlr.train import make_optimizer, set_schedule


def time_updates(name: str, n_hidden: int, graphed: bool, repeats: int) -> float:
    p = PRESETS["paper"]
    p = dataclasses.replace(p, harmonium=dataclasses.replace(
        p.harmonium, n_hidden=n_hidden, gibbs_dtype="bfloat16"))
    model = build_model(name, p, torch.Generator().manual_seed(0)).cuda()
    g = torch.Generator(device="cuda").manual_seed(0)
    opt = make_optimizer(model, p.harmonium.optim)
    set_schedule(opt, p.harmonium.optim, 1, p.harmonium.n_epochs)
    update = GraphedUpdate(model, g) if graphed else model.update
    y = (torch.rand(100, 1, 900, device="cuda") < 0.1).float()
    times = []
    for i in range(repeats + 3):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fit_step(model, opt, y, None, g, whole_sequence=True, update=update)
        torch.cuda.synchronize()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("graph_update.py needs CUDA")
    t0 = time.perf_counter()
    rows = []
    updates = PRESETS["paper"].harmonium.n_epochs * PRESETS["paper"].harmonium.n_seq
    for name in ("rEFH", "RTRBM"):
        for h in (400, 1600):
            row = {"model": name, "n_hidden": h, "gibbs_dtype": "bfloat16", "n_cd_steps": 25}
            for mode in ("eager", "graph"):
                ms = time_updates(name, h, mode == "graph", args.repeats)
                row[f"{mode}_ms"] = ms
                row[f"{mode}_run_min"] = ms * updates / 6e4
            row["speedup"] = row["eager_ms"] / row["graph_ms"]
            rows.append(row)
            print(row, flush=True)
    out = {"benchmark": "graph_update", "repeats": args.repeats, "updates_per_run": updates,
           "rows": rows, "bench_wall_s": time.perf_counter() - t0,
           "provenance": provenance("cuda")}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
