"""Benchmark: how long ``make reproduce`` would train on ONE GPU, computed from this CPU.

``make reproduce`` runs the grids ``sweeps/table1.yaml`` (PPC, paper preset, 5 seeds) and
``sweeps/table2.yaml`` (bouncing balls, paper preset, 3 seeds) with ``--device auto``. Without a
GPU to time, this script measures ONE training update of every trained model of the two grids
(rEFH, TRBM, RTRBM, rVAE, TVAE, rVAE-BPTT on each), at the paper preset's sizes and exactly as
:func:`tlr.train.fit` shapes it (the experiment's ``train_spec``: online steps of one time step
on 40 trajectories for the PPC rEFH; one whole 100-step sequence for TRBM/RTRBM and every
balls harmonium; windows of 10 steps for the VAEs, on 40 trajectories (PPC) or 20 sequences
(balls)). One update = what ``fit`` runs per window: ``zero_grad``, ``model.update``, the
finiteness check of the state, the optimiser step, and for whole sequences the per-parameter
finiteness check. For each model it records

1. **operators per update**: every aten operator dispatched, counted with a
   ``torch.utils._python_dispatch.TorchDispatchMode``. Why that and not ``torch.profiler``:
   the mode sits below autograd and sees exactly the backend calls, forward, backward (the
   autograd engine's ops) and the fused optimiser step alike, one call per operator that
   reaches a kernel, without the profiler's nesting of composite ops (``aten::linear`` ->
   ``aten::addmm``) that would need filtering, and at a fraction of its overhead. Operators are
   split into *launching* ones (compute, copies, RNG, fused optimiser steps: each starts device
   work on a GPU) and views/aliases, bare allocations and profiler markers (no kernel). Host
   syncs (``aten._local_scalar_dense``: ``.item()``, ``if tensor``) are counted too. The count
   is cross-checked against ``fit`` itself: the difference between ``fit`` runs of 3 and 2
   updates, under the same mode (``ops_fit_check``);
2. **FLOP per update** with ``torch.utils.flop_counter.FlopCounterMode``; it counts
   matrix-product-like operators only (mm, addmm, bmm, convolutions, attention), not
   element-wise ones or ``linalg_solve_triangular``;
3. **CPU ms per update**: the median of timed updates on ``--threads`` (default 1) torch
   threads, after warm-up (at least ``--repeats`` updates and ``--min-seconds`` of them);
   ``cpu_ms_min``, the fastest, gives the best case on a shared CPU (``cpu_h_fastest``);
4. **updates per run** from the preset (epochs x updates per epoch, the loop of ``fit``),
   next to the ``details[MODEL]["updates"]`` of the saved paper runs in ``results/`` (via
   :mod:`tlr.results`), and those runs' ``train_s``.

The GPU estimate per run is

    updates x max(launching ops x t_op, FLOP / (peak x efficiency))  +  data generation

with ``t_op`` the host cost of one eager PyTorch operator on CUDA (Python + dispatcher + the
kernel launch), default 10 us (``--t-op-us``). Sources for that figure: a tight Python loop of
eager ``torch.add`` on CUDA tensors submits at 8 us/op on an A100 (17 us with a sync per op),
https://github.com/flagos-ai/Torch-FL/pull/27 ; eager element-wise ops on tiny CUDA tensors take
~7 us each, https://github.com/flagos-ai/FlagGems/issues/4812 ; the bare ``cuLaunchKernel``
costs 1.3-3 us of that, https://github.com/meta-pytorch/tritonbench/pull/1017 . Inside model
code the Python between operators adds more: an eager model issuing 1185 kernels took 53.7 ms a
frame against 7.3 ms of GPU busy time (about 45 us per launch) and 12 ms as a CUDA graph,
https://github.com/facebookresearch/sam2/issues/768 . So 10 us/op sits at the low end of what
model code sees, and the estimate is a LOWER BOUND for eager PyTorch: these models are small (at
most 1300 x 400 weights, 40-400 rows per matrix product), so on a GPU they are launch-bound
(``gpu_bound``: at the defaults the FLOP term decides for none of them) and their time is the
host's time to issue operators, not the GPU's arithmetic; the estimate ignores the latency of
the host syncs ``fit`` makes every update (the finiteness checks; the PPC models also check the
Poisson rate every Gibbs step) and any GPU time not hidden behind the launches. Only CUDA graphs
/ ``torch.compile(mode="reduce-overhead")`` could beat it, after removing those syncs.
``gpu_h_by_t_op_us`` gives the totals at other t_op. ``cpu_us_per_op`` (measured CPU ms over all
operators) is the same Python + dispatch cost on this machine's CPU, tiny CPU kernels included:
a local check of the order of magnitude; a GPU pays it plus the launch.

The FLOP term uses ``--peak-tflops`` (default: the ``--gpu``'s FP32 peak without tensor cores,
which is what PyTorch's default ``allow_tf32 = False`` matmuls use: H100 SXM 67, H200 67,
A100 19.5, L4 30.3, T4 8.1 TFLOP/s, NVIDIA datasheets) times ``--efficiency`` (default 0.5, an
assumption: GEMMs this small rarely reach half of peak, so this term is optimistic too). The
JSON also lists the totals for every GPU of that list at the same t_op.

Data generation (each epoch's fresh training data, simulated on the CPU in both cases and moved
to the device) is timed once per model and added to both the CPU and the GPU figures. Not
included: validation during training (every few epochs), the final scoring (test set, readout
fits, the balls' clamped Gibbs predictions), host-GPU sync latency, and the first 30 updates of
the balls harmoniums, which are static CD-5 pretraining and are counted here as regular CD-25
updates (< 0.03 % of 102 000). The baselines (ORDER 0, Kalman filters: CPU code on either
device) enter the totals with their saved ``train_s`` (the EM fits). The CPU extrapolation
(updates x measured ms + data) is compared with the saved runs' ``train_s``, which also
include validation and ran on a shared CPU.

    python benchmarks/gpu_estimate.py --json benchmarks/results/gpu_estimate.json
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from tlr import results as saved
from tlr.experiments.balls import BALLS
from tlr.experiments.common import Experiment, TrainSpec, apply_overrides, build
from tlr.experiments.ppc import PPC
from tlr.provenance import machine_load, provenance, write_json
from tlr.rng import torch_threads
from tlr.sweep import load_grid
from tlr.train import _check_finite, fit, make_optimizer, set_schedule

ROOT = Path(__file__).resolve().parent.parent
GRIDS = (ROOT / "sweeps" / "table1.yaml", ROOT / "sweeps" / "table2.yaml")
EXPERIMENTS: dict[str, Experiment] = {"ppc": PPC, "balls": BALLS}
# FP32 (non-tensor-core) peak TFLOP/s, NVIDIA datasheets (SXM parts for H100/H200)
GPUS: dict[str, float] = {"T4": 8.1, "L4": 30.3, "A100": 19.5, "H100": 67.0, "H200": 67.0}
T_OP_US = 10.0
T_OP_SOURCES = (
    "https://github.com/flagos-ai/Torch-FL/pull/27",
    "https://github.com/flagos-ai/FlagGems/issues/4812",
    "https://github.com/meta-pytorch/tritonbench/pull/1017",
    "https://github.com/facebookresearch/sam2/issues/768",
)
EFFICIENCY = 0.5
SYNC_OPS = frozenset({"_local_scalar_dense", "item", "is_nonzero", "equal"})
NO_KERNEL_OPS = frozenset({"empty", "empty_strided", "empty_like", "new_empty",
                           "new_empty_strided", "_unsafe_view", "set_", "resize_"})


# ---------------------------------------------------------------------------- counting
class OpCounter(TorchDispatchMode):
    """Counts every aten operator dispatched below autograd, by ``OpOverload`` name."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()
        self.kinds: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[str(func)] += 1
        self.kinds[op_kind(func)] += 1
        if func.__name__.split(".")[0] in SYNC_OPS:
            self.kinds["sync"] += 1
        return func(*args, **(kwargs or {}))


def op_kind(func) -> str:
    """``"launch"``: the operator starts device work on a GPU (compute, copy, RNG, fused
    optimiser step, the device-to-host copy of a sync); ``"no_kernel"``: views and aliases,
    bare allocations, profiler markers."""
    if func.namespace != "aten" or func.is_view:
        return "no_kernel"
    if func.__name__.split(".")[0] in NO_KERNEL_OPS:
        return "no_kernel"
    return "launch"


def count_ops(fn: Callable[[], object]) -> OpCounter:
    """The operators ``fn()`` dispatches (``.counts`` by name, ``.kinds`` by :func:`op_kind`
    plus ``"sync"``)."""
    with OpCounter() as counter:
        fn()
    return counter


def count_flops(fn: Callable[[], object]) -> int:
    """FLOP of ``fn()`` as :class:`FlopCounterMode` counts them (matmul-like operators only)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def gpu_update_seconds(launch_ops: float, flops: float, t_op_us: float, peak_tflops: float,
                       efficiency: float) -> tuple[float, str]:
    """(seconds, bound) of one update on a GPU: the host's time to issue ``launch_ops``
    operators at ``t_op_us`` each, or the matmuls at ``efficiency`` x peak, whichever is
    longer; bound is ``"launch"`` or ``"flops"``."""
    launch, compute = launch_ops * t_op_us * 1e-6, flops / (peak_tflops * 1e12 * efficiency)
    return (launch, "launch") if launch >= compute else (compute, "flops")


# ---------------------------------------------------------------------------- fit's shaping
def fit_windows(T: int, N: int, window: int | None, batch: int | None
                ) -> list[tuple[int, int, int, int]]:
    """``(first, size, t0, win)`` of every update of one epoch of (T, N) data, in the order of
    :func:`tlr.train.fit`: groups of ``batch`` sequences, each walked in windows."""
    size, win = N if batch is None else batch, T if window is None else window
    return [(first, size, t0, win) for first in range(0, N, size) for t0 in range(0, T, win)]


def fit_step(model: torch.nn.Module, opt: torch.optim.Optimizer, y: torch.Tensor,
             u: torch.Tensor | None, generator: torch.Generator, whole_sequence: bool,
             update: Callable | None = None) -> torch.Tensor:
    """The body of ``fit``'s loop for one window (without its pretraining branch); ``update``
    in place of ``model.update`` (e.g. a :class:`tlr.graphs.GraphedUpdate`)."""
    opt.zero_grad(set_to_none=True)
    out = (update or model.update)(y, u, generator)
    if not torch.isfinite(out.u).all():
        raise FloatingPointError("hidden state is not finite")
    opt.step()
    if whole_sequence:
        _check_finite(model, 0, 0)
    return out.u


@dataclass
class Trainer:
    """One model at the preset's sizes, its optimiser in epoch 1, one epoch of its data."""

    model: torch.nn.Module
    opt: torch.optim.Optimizer
    generator: torch.Generator
    spec: TrainSpec
    y_all: torch.Tensor
    data_s: float  # seconds to generate y_all (one epoch)

    def __post_init__(self) -> None:
        T, N = self.y_all.shape[:2]
        self.windows = fit_windows(T, N, self.spec.window, self.spec.batch)
        self._order = itertools.cycle(self.windows)
        self.u: torch.Tensor | None = None
        self.y = self.y_all

    def step(self) -> None:
        """The next update of the epoch (cycling), the state carried as ``fit`` carries it."""
        first, size, t0, win = next(self._order)
        if t0 == 0:  # a new group of sequences: fresh state (fit slices the group once)
            self.y, self.u = self.y_all[:, first:first + size], None
        self.u = fit_step(self.model, self.opt, self.y[t0:t0 + win], self.u, self.generator,
                          self.spec.window is None)


def make_trainer(exp: Experiment, name: str, preset, seed: int = 0) -> Trainer:
    device = torch.device("cpu")
    model, g = build(exp, name, preset, seed, device)
    spec = exp.train_spec(name, preset)
    opt = make_optimizer(model, spec.optim)
    set_schedule(opt, spec.optim, 1, spec.n_epochs)
    t0 = time.perf_counter()
    y_all = exp.train_data(name, preset, seed, None, device)(1)
    return Trainer(model, opt, g, spec, y_all, time.perf_counter() - t0)


def fit_ops_per_update(tr: Trainer) -> int | None:
    """Operators of one steady-state update as :func:`tlr.train.fit` itself dispatches them:
    ``fit`` on 3 updates minus ``fit`` on 2 (one epoch each, fresh optimiser, no pretraining);
    None if the shaping has one update per epoch."""
    spec, N = tr.spec, tr.y_all.shape[1]
    size = N if spec.batch is None else spec.batch

    def data(k: int) -> torch.Tensor:
        if spec.window is None:
            return tr.y_all[:, :k * size]
        return tr.y_all[:k * spec.window, :size]

    if len(fit_windows(*data(3).shape[:2], spec.window, spec.batch)) != 3:
        return None

    def total(k: int) -> int:
        y = data(k)
        c = count_ops(lambda: fit(tr.model, lambda e: y, 1, spec.optim, tr.generator,
                                  window=spec.window, batch=spec.batch, progress=False))
        return sum(c.counts.values())

    return total(3) - total(2)


def time_updates(tr: Trainer, repeats: int, min_seconds: float, max_repeats: int
                 ) -> list[float]:
    """Milliseconds of successive updates: at least ``repeats`` and ``min_seconds`` of them."""
    ms: list[float] = []
    start = time.perf_counter()
    while len(ms) < max_repeats and (len(ms) < repeats
                                     or time.perf_counter() - start < min_seconds):
        t0 = time.perf_counter()
        tr.step()
        ms.append(1e3 * (time.perf_counter() - t0))
    return ms


def measure(exp: Experiment, name: str, preset, *, repeats: int = 5, min_seconds: float = 1.0,
            max_repeats: int = 2000, warmup: int = 2, check_fit: bool = True) -> dict:
    """Operators, FLOP and CPU time of one update of model ``name`` (see the docstring)."""
    tr = make_trainer(exp, name, preset)
    for _ in range(warmup):  # optimiser state, first-call dispatch
        tr.step()
    ops = count_ops(tr.step)
    flops = count_flops(tr.step)
    ms = time_updates(tr, repeats, min_seconds, max_repeats)
    q = statistics.quantiles(ms, n=4) if len(ms) > 1 else [ms[0]] * 3
    total = sum(ops.counts.values())
    T, N = tr.y_all.shape[:2]
    first, size, t0, win = tr.windows[0]
    out = {
        "shaping": {"T": T, "N": N, "window": tr.spec.window, "batch": tr.spec.batch,
                    "update_shape": [win, size, tr.y_all.shape[2]],
                    "updates_per_epoch": len(tr.windows), "n_epochs": tr.spec.n_epochs,
                    "optimizer": tr.spec.optim.name},
        "ops_total": total,
        "ops_launching": ops.kinds["launch"],
        "ops_no_kernel": ops.kinds["no_kernel"],
        "syncs": ops.kinds["sync"],
        "ops_fit_check": fit_ops_per_update(tr) if check_fit else None,
        "top_ops": dict(ops.counts.most_common(12)),
        "flops": flops,
        "cpu_ms": statistics.median(ms),
        "cpu_ms_quartiles": [q[0], q[2]],
        "cpu_ms_min": min(ms),
        "cpu_timed_updates": len(ms),
        "cpu_us_per_op": 1e3 * statistics.median(ms) / total,
        "data_s_per_epoch": tr.data_s,
    }
    return out


# ---------------------------------------------------------------------------- saved runs
def saved_runs(experiment: str, preset: str, overrides: dict) -> list[dict]:
    """The saved results JSONs of ``experiment`` at ``preset`` with these overrides."""
    runs = []
    for run_name in saved.available(f"{experiment}/*"):
        try:
            d = saved.load(run_name)
        except (OSError, ValueError):
            continue
        if (d.get("experiment"), d.get("preset"), d.get("overrides", {})) != (
                experiment, preset, overrides) or "results" not in d:
            continue
        runs.append({"name": run_name, **d})
    return runs


def saved_stats(runs: list[dict], model: str) -> dict | None:
    """``updates`` and ``train_s`` of ``model`` over the saved runs that finished it."""
    rows = []
    for d in runs:
        res = d["results"].get(model)
        if not isinstance(res, dict) or model in (d.get("failed") or {}):
            continue
        rows.append((d["name"], d.get("details", {}).get(model, {}).get("updates"),
                     res.get("train_s"), d["seed"]))
    train = [r[2] for r in rows if r[2] is not None]
    if not train:
        return None
    return {"runs": [r[0] for r in rows], "seeds": sorted({r[3] for r in rows}),
            "updates": sorted({r[1] for r in rows if r[1] is not None}),
            "train_s_median": statistics.median(train), "train_s_min": min(train),
            "train_s_max": max(train)}


# ---------------------------------------------------------------------------- the estimate
def estimate(m: dict, t_op_us: float, peak_tflops: float, efficiency: float) -> dict:
    """Per-run CPU extrapolation and GPU estimate of one measured model ``m``."""
    sh = m["shaping"]
    updates = sh["n_epochs"] * sh["updates_per_epoch"]
    gpu_s, bound = gpu_update_seconds(m["ops_launching"], m["flops"], t_op_us, peak_tflops,
                                      efficiency)
    data_s = sh["n_epochs"] * m["data_s_per_epoch"]
    return {"updates_run": updates, "cpu_update_s_run": updates * m["cpu_ms"] / 1e3,
            "data_s_run": data_s, "cpu_s_run": updates * m["cpu_ms"] / 1e3 + data_s,
            # the fastest timed update instead of the median: a shared CPU's best case
            "cpu_s_run_fastest": updates * m["cpu_ms_min"] / 1e3 + data_s,
            "gpu_ms": 1e3 * gpu_s, "gpu_bound": bound, "gpu_update_s_run": updates * gpu_s,
            "gpu_s_run": updates * gpu_s + data_s}


def totals(models: dict, baselines: dict, n_seeds: int) -> dict:
    """Sums over a grid's models x seeds, seconds (and hours)."""
    cpu = sum(e["cpu_s_run"] for e in models.values()) * n_seeds
    fastest = sum(e["cpu_s_run_fastest"] for e in models.values()) * n_seeds
    gpu = sum(e["gpu_s_run"] for e in models.values()) * n_seeds
    base = sum(b or 0.0 for b in baselines.values()) * n_seeds
    saved_train = [e.get("saved", {}) or {} for e in models.values()]
    known = [s.get("train_s_median") for s in saved_train]
    return {"seeds": n_seeds, "cpu_train_s": cpu, "gpu_train_s": gpu,
            "baselines_cpu_s": base, "cpu_s": cpu + base, "gpu_s": gpu + base,
            "cpu_h": (cpu + base) / 3600, "gpu_h": (gpu + base) / 3600,
            "cpu_h_fastest": (fastest + base) / 3600,
            "speedup": (cpu + base) / (gpu + base),
            "saved_train_s": (sum(known) * n_seeds if all(k is not None for k in known)
                              else None),
            "gpu_update_share_launch_bound": sum(
                e["gpu_update_s_run"] for e in models.values() if e["gpu_bound"] == "launch")
            / max(sum(e["gpu_update_s_run"] for e in models.values()), 1e-12)}


def run(grids=GRIDS, *, t_op_us: float = T_OP_US, peak_tflops: float = GPUS["H100"],
        efficiency: float = EFFICIENCY, repeats: int = 5, min_seconds: float = 1.0,
        threads: int = 1, models: list[str] | None = None, progress: bool = True) -> dict:
    """Measure every trained model of ``grids`` and sum the estimates (see the docstring)."""
    out_models, tables = {}, {}
    with torch_threads(threads):
        for grid in grids:
            sweep = load_grid(grid)
            exp = EXPERIMENTS[sweep.experiment]
            settings = sweep.settings()
            if len(settings) != 1:
                raise ValueError(f"{grid}: expected one setting, got {settings}")
            preset = apply_overrides(exp.presets[sweep.preset], settings[0])
            names = list(sweep.models or exp.models)
            runs = saved_runs(sweep.experiment, sweep.preset, settings[0])
            per_model, baselines = {}, {}
            for name in names:
                key = f"{sweep.experiment}/{name}"
                if name in exp.baselines:
                    s = saved_stats(runs, name)
                    baselines[name] = None if s is None else s["train_s_median"]
                    continue
                if models is not None and name not in models:
                    continue
                t0 = time.perf_counter()
                m = measure(exp, name, preset, repeats=repeats, min_seconds=min_seconds)
                m.update(estimate(m, t_op_us, peak_tflops, efficiency))
                m["saved"] = saved_stats(runs, name)
                m["updates_saved"] = m["saved"]["updates"] if m["saved"] else []
                m["updates_match_saved"] = (m["updates_saved"] == [m["updates_run"]]
                                            if m["updates_saved"] else None)
                m["bench_s"] = time.perf_counter() - t0
                per_model[key] = out_models[key] = m
                if progress:
                    print(f"  {key:<16} {m['ops_total']:5d} ops ({m['ops_launching']:4d} "
                          f"launching, {m['syncs']:2d} syncs), {m['flops'] / 1e6:9.1f} MFLOP, "
                          f"{m['cpu_ms']:8.2f} CPU ms (fit check: {m['ops_fit_check']} ops), "
                          f"{m['bench_s']:.0f} s", flush=True)
            tables[Path(grid).stem] = {
                "grid": str(Path(grid).relative_to(ROOT) if Path(grid).is_relative_to(ROOT)
                            else grid),
                "experiment": sweep.experiment, "preset": sweep.preset,
                "models": list(per_model), "baselines_saved_train_s": baselines,
                **totals(per_model, baselines, len(sweep.seeds))}
    def gpu_h(t_op: float, peak: float) -> dict[str, float]:
        """GPU hours of every table at another t_op or peak."""
        out = {}
        for t, tab in tables.items():
            ms = {k: {**out_models[k], **estimate(out_models[k], t_op, peak, efficiency)}
                  for k in tab["models"]}
            out[t] = totals(ms, tab["baselines_saved_train_s"], tab["seeds"])["gpu_h"]
        return out

    by_gpu = {gpu: {"peak_tflops": peak, "gpu_h": gpu_h(t_op_us, peak)}
              for gpu, peak in GPUS.items()}
    by_t_op = {str(t): gpu_h(t, peak_tflops) for t in sorted({2.5, 5.0, t_op_us, 20.0, 40.0})}
    return {"models": out_models, "tables": tables, "gpu_h_by_gpu": by_gpu,
            "gpu_h_by_t_op_us": by_t_op}


def format_table(res: dict) -> str:
    head = (f"{'model':<16} {'ops':>5} {'launch':>6} {'MFLOP':>8} {'CPU ms':>8} "
            f"{'updates':>7} {'CPU min':>8} {'GPU ms':>7} {'GPU min':>8} {'saved min':>9}")
    lines = [head, "-" * len(head)]
    for key, m in res["models"].items():
        s = (m["saved"] or {}).get("train_s_median")
        lines.append(f"{key:<16} {m['ops_total']:5d} {m['ops_launching']:6d} "
                     f"{m['flops'] / 1e6:8.1f} {m['cpu_ms']:8.2f} {m['updates_run']:7d} "
                     f"{m['cpu_s_run'] / 60:8.1f} {m['gpu_ms']:7.2f} {m['gpu_s_run'] / 60:8.1f} "
                     f"{'-' if s is None else f'{s / 60:.1f}':>9}")
    for t, tab in res["tables"].items():
        saved_h = tab["saved_train_s"]
        lines.append(f"{t}: {tab['seeds']} seeds: CPU {tab['cpu_h']:.1f} h (fastest updates "
                     f"{tab['cpu_h_fastest']:.1f} h; trained models "
                     f"{tab['cpu_train_s'] / 3600:.1f} h, saved runs' train_s "
                     f"{'-' if saved_h is None else f'{saved_h / 3600:.1f}'} h; baselines "
                     f"{tab['baselines_cpu_s'] / 3600:.2f} h), GPU >= {tab['gpu_h']:.2f} h "
                     f"(x{tab['speedup']:.1f})")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gpu", choices=list(GPUS), default="H100",
                    help="sets the default --peak-tflops (FP32, no tensor cores)")
    ap.add_argument("--peak-tflops", type=float, default=None)
    ap.add_argument("--efficiency", type=float, default=EFFICIENCY,
                    help="fraction of peak the matmuls reach")
    ap.add_argument("--t-op-us", type=float, default=T_OP_US,
                    help="host cost of one eager operator on CUDA, us")
    ap.add_argument("--repeats", type=int, default=5, help="timed updates at least")
    ap.add_argument("--min-seconds", type=float, default=3.0,
                    help="timed updates of each model for at least this long")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", default=None, help="comma-separated subset (default: all)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    peak = GPUS[args.gpu] if args.peak_tflops is None else args.peak_tflops
    load0, t_start = os.getloadavg()[0], time.perf_counter()
    with torch_threads(args.threads):
        prov = provenance("cpu")
    res = run(t_op_us=args.t_op_us, peak_tflops=peak, efficiency=args.efficiency,
              repeats=args.repeats, min_seconds=args.min_seconds, threads=args.threads,
              models=None if args.models is None else args.models.split(","))
    print(format_table(res))
    out = {"benchmark": "gpu_estimate",
           "config": "sweeps/table1.yaml + sweeps/table2.yaml (make reproduce), paper presets; "
                     "one training update per trained model as tlr.train.fit shapes it",
           "assumptions": {
               "formula": "updates x max(ops_launching x t_op, flops / (peak x efficiency)) "
                          "+ data generation; lower bound (see notes)",
               "t_op_us": args.t_op_us, "t_op_sources": list(T_OP_SOURCES),
               "gpu": args.gpu if args.peak_tflops is None else "custom",
               "peak_tflops": peak, "efficiency": args.efficiency, "threads": args.threads,
               "op_counter": "torch.utils._python_dispatch.TorchDispatchMode (aten ops "
                             "below autograd: forward, backward, optimiser)",
               "flop_counter": "torch.utils.flop_counter.FlopCounterMode (matmul-like ops "
                               "only)",
               "notes": [
                   "GPU figures are launch-bound lower bounds: eager PyTorch issues one "
                   "kernel per operator and these models are too small to hide that cost; "
                   "only CUDA graphs / torch.compile(mode='reduce-overhead') could beat them, "
                   "and fit syncs the host every update (finiteness checks, the Poisson "
                   "rate check of the PPC models), which a graph capture would first have "
                   "to remove.",
                   "t_op is paid on the host: it scales with the host CPU's single-thread "
                   "speed (Colab's VMs are slower than a datacentre H100 host).",
                   "Ignored: validation during training, final scoring, "
                   "host-GPU sync latency, the static pretraining of the first 30 balls "
                   "harmonium updates (counted as regular updates).",
                   "Baselines (ORDER 0, KF-*) are CPU code on either device: their saved "
                   "train_s (EM fits) enters both totals.",
                   "saved train_s include data generation and validation, ran on a shared "
                   "CPU and on earlier commits.",
               ]},
           **res,
           "bench_wall_s": time.perf_counter() - t_start,
           "provenance": {**prov, **machine_load(load0)}}
    if args.json is not None:
        write_json(args.json, out)


if __name__ == "__main__":
    main()
