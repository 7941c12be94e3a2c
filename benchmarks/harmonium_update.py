"""Benchmark: one harmonium training update on bouncing balls, and how close it runs to the CPU.

One update = what :func:`tlr.train.fit` does per sequence on the bouncing-balls preset: a
mean-field pass over a 100-frame sequence, one CD-k run on its 100 frames [u_{t-1}, y_t]
(900 Bernoulli pixels + n_hidden recurrent units, n_hidden hidden units), the gradient and one
optimiser step (Makin's hyperbolic momentum schedule). Measured for the rEFH with CD-5 and
CD-25 at 400 and 800 hidden units, with 1 and 2 torch threads, and with the training chains'
products in bfloat16 (``gibbs_dtype="bfloat16"``; gradients and weights stay float32).

The FLOP count is that of the matrix products, which dominate: per Gibbs step two products of
(100 × V) by (V × H) (V = 900 + H visible, H hidden): 2 · 2 · 100 · V · H FLOP; k steps, plus
the positive phase, the mean-field pass (100 steps of B = 1 rows: tiny) and the gradient
(two V × H outer products over 100 rows). ``gflops`` is that count over the measured time; the
machine's reference is one large float32 matrix product (``peak_matmul_gflops``) with the same
thread count. The ratio says how much of the CPU the update uses.

Two ceilings say what else the CPU could give: the peak of a bfloat16 product
(``peak_matmul_gflops_bf16``), and ``batching``: the update's dominant product,
(100 × V) @ (V × H), for K independent runs at once (one batched product of K weight matrices)
against K separate products: what training K runs (seeds, settings) in one process could gain.

    python benchmarks/harmonium_update.py --json benchmarks/results/harmonium_update.json

With ``--device cuda`` the same updates run on a GPU (threads: the host's, which launch the
kernels; each timing waits for the GPU to finish) and the peaks are the GPU's:

    python benchmarks/harmonium_update.py --device cuda --threads 1 --batch-runs 4 \
        --json harmonium_update_cuda.json
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


def peak_gflops(threads: int, n: int = 1536, repeats: int = 5,
                dtype: torch.dtype = torch.float32, device: str = "cpu") -> float:
    """The best of ``repeats`` (n × n) @ (n × n) products in ``dtype``, GFLOP/s."""
    with torch_threads(threads):
        a = torch.randn(n, n, dtype=dtype, device=device)
        b = torch.randn(n, n, dtype=dtype, device=device)
        a @ b
        best = min(_timed(lambda: a @ b, device) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device: str = "cpu") -> float:
    """Seconds of ``fn()``, the device's queued work included."""
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def batching(threads: int, k: int, n_hidden: int = 400, T: int = 100, n_pixels: int = 900,
             repeats: int = 20, device: str = "cpu") -> dict:
    """GFLOP/s of the update's dominant product for ``k`` independent runs: ``k`` separate
    (T × V) @ (V × H) products against one batched product (best of ``repeats``)."""
    V = n_pixels + n_hidden
    with torch_threads(threads):
        a = torch.rand(k, T, V, device=device)
        w = torch.randn(k, V, n_hidden, device=device)
        torch.bmm(a, w)
        sep = min(_timed(lambda: [a[i] @ w[i] for i in range(k)], device)
                  for _ in range(repeats))
        bat = min(_timed(lambda: torch.bmm(a, w), device) for _ in range(repeats))
    flop = 2 * k * T * V * n_hidden
    return {"separate_gflops": flop / sep / 1e9, "batched_gflops": flop / bat / 1e9,
            "speedup": sep / bat}


def measure(n_hidden: int, n_cd: int, threads: int, repeats: int, seed: int = 0,
            gibbs_dtype: str = "float32", device: str = "cpu") -> dict:
    """Median ms of ``repeats`` updates (after two warm-up updates) and the achieved GFLOP/s
    (``gibbs_dtype``: the precision of the training chains' products; on ``device``)."""
    preset = PRESETS["paper"]
    h = preset.harmonium
    with torch_threads(threads):
        g = torch.Generator().manual_seed(seed)
        from dataclasses import replace

        p = replace(preset, harmonium=replace(h, n_hidden=n_hidden, n_cd_steps=n_cd,
                                              gibbs_dtype=gibbs_dtype))
        model = build_model("rEFH", p, g).to(device)
        g = torch.Generator(device=device).manual_seed(seed)  # the chains' noise, on device
        opt = make_optimizer(model, h.optim)
        set_schedule(opt, h.optim, 1, h.n_epochs)
        y = sequences(repeats + 2, p, seed, "bench/harmonium").to(device)
        ms = []

        def update(i: int) -> None:
            opt.zero_grad(set_to_none=True)
            model.update(y[:, i:i + 1], None, g)
            opt.step()

        for i in range(repeats + 2):
            t = _timed(lambda i=i: update(i), device)
            if i >= 2:
                ms.append(1e3 * t)
    med = statistics.median(ms)
    return {"ms": med, "ms_all": ms,
            "gflops": update_flops(n_hidden, n_cd) / (med / 1e3) / 1e9}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--hidden", default="400,800")
    ap.add_argument("--cd", default="5,25")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--gibbs-dtypes", default="float32,bfloat16")
    ap.add_argument("--batch-runs", default="2,4", help="K independent runs (batching)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    dev = args.device
    prov = provenance(dev)
    load0 = os.getloadavg()[0]
    rows, peaks, peaks_bf16, batched = {}, {}, {}, {}
    for th in (int(x) for x in args.threads.split(",")):
        peaks[th] = peak_gflops(th, device=dev)
        peaks_bf16[th] = peak_gflops(th, dtype=torch.bfloat16, device=dev)
        print(f"{th} thread(s): peak matmul float32 {peaks[th]:.1f}, bfloat16 "
              f"{peaks_bf16[th]:.1f} GFLOP/s")
        for k in (int(x) for x in args.batch_runs.split(",") if x):
            batched[f"K{k}/{th}-thread"] = b = batching(th, k, device=dev)
            print(f"  {k} runs' products: separate {b['separate_gflops']:.1f}, batched "
                  f"{b['batched_gflops']:.1f} GFLOP/s (x{b['speedup']:.2f})")
        for dt in args.gibbs_dtypes.split(","):
            tag = "" if dt == "float32" else f"/{dt}"
            for H in (int(x) for x in args.hidden.split(",")):
                for k in (int(x) for x in args.cd.split(",")):
                    r = measure(H, k, th, args.repeats, gibbs_dtype=dt, device=dev)
                    r["fraction_of_peak"] = r["gflops"] / peaks[th]  # of the float32 peak
                    rows[f"H{H}/CD-{k}/{th}-thread{tag}"] = r
                    print(f"  rEFH H={H} CD-{k} {dt}: {r['ms']:7.1f} ms/update, "
                          f"{r['gflops']:5.1f} GFLOP/s ({100 * r['fraction_of_peak']:.0f}% of "
                          "the float32 peak)")
    out = {"benchmark": "harmonium_update", "config": "bouncing balls, paper preset (T = 100, "
           "one sequence per update, 900 Bernoulli pixels), rEFH", "repeats": args.repeats,
           "device": dev,
           "peak_matmul_gflops": peaks, "peak_matmul_gflops_bf16": peaks_bf16,
           "batching": batched, "rows": rows,
           "provenance": {**prov, **machine_load(load0)}}
    if args.json is not None:
        write_json(args.json, out)


if __name__ == "__main__":
    main()
