"""Benchmark: rEFH training updates per second on the paper PPC config (CPU).

One update = one online CD-1 step on a batch of 40 parallel trajectories (240 hidden units,
15 Poisson + 240 recurrent visible units) followed by the optimiser step, exactly as
``tlr.train.fit(..., window=1)`` runs it. Target (issue 3): >= 2000 updates/s on 2 cores.

    python benchmarks/refh_updates.py --json benchmarks/results/refh_updates.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from tlr.data import simulate
from tlr.experiments.ppc import PRESETS
from tlr.models.refh import REFH, REFHConfig
from tlr.provenance import provenance
from tlr.train import make_optimizer, set_schedule


def measure(threads: int, n_updates: int, optim_name: str, seed: int = 0) -> float:
    torch.set_num_threads(threads)
    run = PRESETS["paper"].refh
    g = torch.Generator().manual_seed(seed)
    model = REFH(REFHConfig(n_hidden=run.n_hidden, n_cd_steps=run.n_cd_steps), generator=g)
    optim = run.optim if optim_name == "paper" else PRESETS["quick"].refh.optim
    opt = make_optimizer(model, optim)
    set_schedule(opt, optim, 1, run.n_epochs)
    y = simulate(run.n_traj, n_updates + 200, seed=seed).y
    u = model.initial_state(run.n_traj)
    for t in range(200):  # warm-up
        opt.zero_grad(set_to_none=True)
        u = model.update(y[t:t + 1], u, g).u
        opt.step()
    t0 = time.perf_counter()
    for t in range(200, 200 + n_updates):
        opt.zero_grad(set_to_none=True)
        u = model.update(y[t:t + 1], u, g).u
        opt.step()
        if t % 100 == 99 and not all(torch.isfinite(p).all() for p in model.parameters()):
            raise FloatingPointError(f"diverged at update {t + 1}")
    return n_updates / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--updates", type=int, default=5000)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    results = {}
    for optim_name in ("paper", "quick"):
        for threads in (1, 2):
            rate = measure(threads, args.updates, optim_name)
            results[f"{optim_name}-optimiser/{threads}-thread"] = rate
            print(f"{optim_name:>5} optimiser, {threads} thread(s): {rate:8.0f} updates/s")
    out = {"benchmark": "refh_updates_per_second", "config": "PPC paper preset (240 hidden, "
           "B=40, CD-1)", "updates": args.updates, "updates_per_s": results,
           "target_updates_per_s": 2000, "provenance": provenance("cpu")}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
