"""Benchmark: bouncing-balls generation, 4000 sequences x 100 frames (the training set), CPU.

Times ``tlr.data.balls.simulate_balls`` end to end (start states, physics, 30 x 30 rendering)
for Sutskever's generator and Makin's port, and reports the physics / rendering split and the
ORDER 0 MSE of the generated data as a sanity check (Sources §12.3: 0.0131 / 0.0117).
Target: < 30 s on 2 cores.

    python benchmarks/balls_generator.py --json benchmarks/results/balls_generator.json \
        [--threads N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from tlr.data.balls import BallsConfig, initial_state, integrate, order0_mse, render, simulate_balls
from tlr.provenance import provenance
from tlr.rng import make_generator, torch_threads

TARGET_S = 30.0


def measure(preset: str, n_seq: int, T: int, seed: int = 0) -> dict:
    config = BallsConfig.preset(preset)
    t0 = time.perf_counter()
    frames = simulate_balls(n_seq, T=T, seed=seed, config=config, stream="bench/balls")
    total = time.perf_counter() - t0
    # the same work in its two parts (same seed and stream, so the same data)
    t0 = time.perf_counter()
    x0, v0 = initial_state(n_seq, config, make_generator(seed, "bench/balls"))
    X, _ = integrate(x0, v0, T, config)
    physics = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = render(X, config)
    rendering = time.perf_counter() - t0
    if not torch.equal(frames, again):
        raise RuntimeError("simulate_balls and initial_state/integrate/render disagree")
    return {
        "seconds": total,
        "sequences_per_s": n_seq / total,
        "physics_seconds": physics,
        "render_seconds": rendering,
        "order0_mse": order0_mse(frames),
        "mean_pixel": frames.mean().item(),
        "config": dataclasses.asdict(config),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-seq", type=int, default=4000)
    p.add_argument("--T", type=int, default=100)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--presets", nargs="+", default=["sutskever", "port"],
                   choices=["sutskever", "port"])
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    results = {}
    with torch_threads(args.threads):
        prov = provenance("cpu")
        for preset in args.presets:
            r = measure(preset, args.n_seq, args.T)
            results[preset] = r
            print(f"{preset:>9}: {r['seconds']:6.2f} s ({r['sequences_per_s']:6.0f} seq/s; "
                  f"physics {r['physics_seconds']:.2f} s, render {r['render_seconds']:.2f} s), "
                  f"ORDER 0 {r['order0_mse']:.5f}, mean pixel {r['mean_pixel']:.3f}")
    out = {
        "benchmark": "balls_generator_seconds",
        "n_seq": args.n_seq,
        "T": args.T,
        "threads": args.threads,
        "target_seconds": TARGET_S,
        "seconds": {k: v["seconds"] for k, v in results.items()},
        "sequences_per_s": {k: v["sequences_per_s"] for k, v in results.items()},
        "results": results,
        "provenance": prov,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
