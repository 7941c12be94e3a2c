"""Benchmark: one harmonium training update on bouncing balls, and how close it runs to the CPU.

One update = what :func:`tlr.train.fit` does per sequence on the bouncing-balls preset: a
mean-field pass over a 100-frame sequence, one CD-k run on its 100 frames [u_{t-1}, y_t]
(900 Bernoulli pixels + n_hidden recurrent units, n_hidden hidden units), the gradient and one
optimiser step (Makin's hyperbolic momentum schedule). Measured for the rEFH with CD-5 and
CD-25 at 400 and 800 hidden units, with 1 and 2 torch threads.

The FLOP count is that of the matrix products, which dominate: per Gibbs step two products of
(100 × V) by (V × H) (V = 900 + H visible, H hidden): 2 · 2 · 100 · V · H FLOP; k steps, plus
the positive phase, the mean-field pass (100 steps of B = 1 rows: tiny) and the gradient
(two V × H outer products over 100 rows). ``gflops`` is that count over the measured time; the
machine's reference is one large float32 matrix product (``peak_matmul_gflops``) with the same
thread count. The ratio says how much of the CPU the update uses.

    python benchmarks/harmonium_update.py --json benchmarks/results/harmonium_update.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from tlr.experiments.balls import PRESETS, build_model, sequences
from tlr.provenance import machine_load, provenance, write_json
from tlr.rng import torch_threads
from tlr.train import make_optimizer, set_schedule


def update_flops(n_hidden: int, n_cd: int, T: int = 100, n_pixels: int = 900) -> float:
    """Matrix-product FLOP of one update (see the module docstring)."""
    V, H = n_pixels + n_hidden, n_hidden
    gibbs = (n_cd + 1) * 2 * (2 * T * V * H)  # visible and hidden products per step
    filt = 2 * T * V * H  # the mean-field pass (B = 1 rows, T steps)
    grad = 2 * (2 * T * V * H)  # <v x>+ and <v x>- outer products
    return float(gibbs + filt + grad)


def peak_gflops(threads: int, n: int = 1536, repeats: int = 5) -> float:
    """The best of ``repeats`` float32 (n × n) @ (n × n) products, GFLOP/s."""
    with torch_threads(threads):
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(n_hidden: int, n_cd: int, threads: int, repeats: int, seed: int = 0) -> dict:
    """Median ms of ``repeats`` updates (after two warm-up updates) and the achieved GFLOP/s."""
    preset = PRESETS["paper"]
    h = preset.harmonium
    with torch_threads(threads):
        g = torch.Generator().manual_seed(seed)
        from dataclasses import replace

        p = replace(preset, harmonium=replace(h, n_hidden=n_hidden, n_cd_steps=n_cd))
        model = build_model("rEFH", p, g)
        opt = make_optimizer(model, h.optim)
        set_schedule(opt, h.optim, 1, h.n_epochs)
        y = sequences(repeats + 2, p, seed, "bench/harmonium")
        ms = []
        for i in range(repeats + 2):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            model.update(y[:, i:i + 1], None, g)
            opt.step()
            if i >= 2:
                ms.append(1e3 * (time.perf_counter() - t0))
    med = statistics.median(ms)
    return {"ms": med, "ms_all": ms,
            "gflops": update_flops(n_hidden, n_cd) / (med / 1e3) / 1e9}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--hidden", default="400,800")
    ap.add_argument("--cd", default="5,25")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    prov = provenance("cpu")
    load0 = os.getloadavg()[0]
    rows, peaks = {}, {}
    for th in (int(x) for x in args.threads.split(",")):
        peaks[th] = peak_gflops(th)
        print(f"{th} thread(s): peak float32 matmul {peaks[th]:.1f} GFLOP/s")
        for H in (int(x) for x in args.hidden.split(",")):
            for k in (int(x) for x in args.cd.split(",")):
                r = measure(H, k, th, args.repeats)
                r["fraction_of_peak"] = r["gflops"] / peaks[th]
                rows[f"H{H}/CD-{k}/{th}-thread"] = r
                print(f"  rEFH H={H} CD-{k}: {r['ms']:7.1f} ms/update, {r['gflops']:5.1f} "
                      f"GFLOP/s ({100 * r['fraction_of_peak']:.0f}% of peak)")
    out = {"benchmark": "harmonium_update", "config": "bouncing balls, paper preset (T = 100, "
           "one sequence per update, 900 Bernoulli pixels), rEFH", "repeats": args.repeats,
           "peak_matmul_gflops": peaks, "rows": rows,
           "provenance": {**prov, **machine_load(load0)}}
    if args.json is not None:
        write_json(args.json, out)


if __name__ == "__main__":
    main()
