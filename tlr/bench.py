"""Benchmarks behind ``python -m tlr bench NAME``; one so far, ``bptt``.

``bptt``: wall time and peak memory of ONE training update on a batch of B sequences of
length T, temporally local rules vs backprop through time (BPTT), for two pairs on the PPC data
(Sources §2: 15 Poisson neurons; the paper preset's model sizes and optimisers, see
:data:`tlr.experiments.ppc.PRESETS`):

* **rVAE (local) vs rVAE-BPTT** (Sources §7.1): the same network and the same loss, the negative
  ELBO of (u_{t-1}, y_t) summed over t.

  - *local*: streamed step by step. At each t the step's loss (:meth:`RVAE.step
    <tlr.models.rvae.RVAE.step>`, u_{t-1} detached) is back-propagated at once, which frees
    that step's graph; u_t is carried on detached; after T steps the accumulated gradient,
    which equals the gradient of ``RVAE.sequence_loss`` with ``bptt=False``, gets one Adam
    step. The library has no streaming path (its training path ``RVAE.update`` scores
    all T steps in one batched pass: faster, but its memory grows with T), so the loop is
    written here (:func:`rvae_local_update`) from the model's ``step``. The batched path is
    timed too and reported under ``details`` as ``"rVAE local (batched)"``.
  - *bptt*: ``RVAE.sequence_loss`` of an ``RVAEConfig(bptt=True)`` model: the whole T-step
    graph is kept, then one backward and one Adam step (``fit`` with window = T).

* **rEFH (local) vs RTRBM (BPTT)** (Sources §5.3, §6.2-6.4). These differ in more than BPTT: the
  rEFH models the joint (u_{t-1}, y_t) with CD-1 (paper preset), the RTRBM the conditional
  p(y_t | u_{t-1}) with CD-25.

  - *local*: the rEFH's rule is one CD update per time step (:meth:`REFH.update
    <tlr.models.refh.REFH.update>` on a one-step window and an optimiser step), and it carries
    only the state u_t. "One update on a sequence of length T" is therefore T online updates,
    as :func:`tlr.train.fit` runs them with ``window=1``; ``ms`` is per sequence, ``details``
    adds ms per step.
  - *bptt*: :meth:`RTRBM.update <tlr.models.trbm.TRBM.update>` on the whole batch: a
    mean-field pass over the T steps, CD on all T·B frames, the BPTT recursion
    (:func:`tlr.models.trbm.bptt_term`) over the stored states, then one optimiser step (as
    :func:`tlr.train.fit` runs it on whole sequences). ``details`` adds the TRBM (the same
    update without the BPTT term) to separate the cost of the recursion from that of the
    sequence protocol.

Memory is measured, not estimated, as the peak of the memory *allocated during* the update,
net of everything that existed before it (parameters, optimiser state, data):

* CUDA: ``torch.cuda.max_memory_allocated() - torch.cuda.memory_allocated()`` around the
  update, after ``reset_peak_memory_stats``.
* CPU: every (model, T) point runs in a fresh process (``python -m tlr.bench``). One update
  runs under ``torch.profiler`` with ``profile_memory=True``; the allocator's alloc/free
  events, in time order, are summed cumulatively and the peak is taken: the most bytes of
  tensors allocated inside the update that were alive at once. A free counts only when its
  address was allocated inside the update, so the figure is net of the baseline. As an
  OS-level cross-check, ``details`` holds the growth of the process's peak RSS
  (``ru_maxrss``) over one earlier, unprofiled update (a lower bound: glibc may reuse memory
  it kept from the warm-up).

Each point is warmed up with two updates on a 3-step sequence (optimiser state, dispatch),
then memory is measured (on CPU: one unprofiled update for RSS, one profiled update), then
``repeats`` timed updates; ``ms`` is their median.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from tlr.rng import torch_threads
from tlr.validation import check_int

__all__ = ["BENCHMARKS", "DEFAULT_T", "MODES", "PAIRS", "build_update", "rvae_local_update",
           "measure_point", "run_bptt", "format_bptt_table"]

DEFAULT_T: tuple[int, ...] = (10, 30, 100, 300, 1000)
# mode name -> what it times; the first four fill "pairs", the rest go under "details"
MODES: tuple[str, ...] = ("rVAE", "rVAE-BPTT", "rEFH", "RTRBM", "rVAE local (batched)", "TRBM")
PAIRS: dict[str, dict[str, str]] = {"rVAE": {"local": "rVAE", "bptt": "rVAE-BPTT"},
                                    "rEFH": {"local": "rEFH", "bptt": "RTRBM"}}
WARMUP_T = 3
Update = Callable[[torch.Tensor], None]


def rvae_local_update(model, opt: torch.optim.Optimizer, y: torch.Tensor,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """One rVAE update on y (T, B, n) by the temporally local rule, streamed; returns u_T.

    Per step: ``model.step`` (u_{t-1} detached), backward of the batch-mean loss (the step's
    graph is freed), u_t carried on detached. The accumulated gradient equals that of
    ``model.sequence_loss`` with ``bptt=False``; one optimiser step follows. Memory: one
    step's graph, whatever T.
    """
    if model.config.bptt:
        raise ValueError("rvae_local_update needs a model with bptt=False")
    model.check_y(y)
    opt.zero_grad(set_to_none=True)
    u = model.initial_state(y.shape[1])
    for t in range(y.shape[0]):
        out = model.step(y[t], u, generator)
        out.loss.mean().backward()
        u = out.u.detach()
    opt.step()
    return u


def build_update(mode: str, device: str | torch.device = "cpu", seed: int = 0) -> Update:
    """The model of ``mode`` (paper-preset sizes, optimiser at epoch 1) and its update.

    Returns ``update(y)``: one training update on y (T, B, 15) as described in the module
    docstring. The model, optimiser and generator live in the closure.
    """
    from tlr.experiments.ppc import PPC, PRESETS
    from tlr.models import build_model
    from tlr.train import make_optimizer, set_schedule

    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
    device = torch.device(device)
    paper = PRESETS["paper"]
    name = "rVAE" if mode == "rVAE local (batched)" else mode
    arch, config = PPC.model_config(name, paper)
    init = torch.Generator().manual_seed(seed)  # weights: drawn on the CPU, then moved
    model = build_model(arch, generator=init, **config).to(device)
    g = torch.Generator(device=device).manual_seed(seed)  # every draw on the model's device
    spec = PPC.train_spec(name, paper)
    cfg, n_epochs = spec.optim, spec.n_epochs
    opt = make_optimizer(model, cfg)
    set_schedule(opt, cfg, 1, n_epochs)

    if mode == "rVAE":
        def update(y: torch.Tensor) -> None:
            rvae_local_update(model, opt, y, g)
    elif mode == "rEFH":  # T online updates (windows of one step), the state carried
        def update(y: torch.Tensor) -> None:
            u = None
            for t in range(y.shape[0]):
                opt.zero_grad(set_to_none=True)
                u = model.update(y[t:t + 1], u, g).u
                opt.step()
    else:  # rVAE-BPTT or the local rule's batched training path; RTRBM, TRBM
        def update(y: torch.Tensor) -> None:
            opt.zero_grad(set_to_none=True)
            model.update(y, None, g)
            opt.step()
    return update


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _profiled_peak_bytes(fn: Callable[[], None]) -> int:
    """Peak live bytes of CPU tensors allocated while ``fn`` runs (torch.profiler events).

    Only blocks allocated inside the window count: a free is matched to its allocation by
    address, so freeing a tensor made before ``fn`` (a gradient of the previous update, say)
    cannot lower the peak. Without the match, whether such a free shows up in the events
    varied from process to process.
    """
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    gc.collect()  # garbage of earlier work freed inside the window would lower the peak
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    allocations = []
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.typed[0] == _EventType.Allocation and node.typed[1].device.type == "cpu":
            allocations.append(node)
    allocations.sort(key=lambda n: n.start_time_ns)
    inside: dict[int, int] = {}  # address -> bytes of the blocks allocated in the window
    live = peak = 0
    for node in allocations:
        a = node.typed[1]
        if a.alloc_size > 0:
            inside[a.ptr] = a.alloc_size
            live += a.alloc_size
            peak = max(peak, live)
        else:
            live -= inside.pop(a.ptr, 0)
    return peak


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def measure_point(mode: str, T: int, batch: int = 40, repeats: int = 3,
                  device: str = "cpu", threads: int = 1, seed: int = 0) -> dict:
    """Time and memory of one update of ``mode`` on B = ``batch`` PPC sequences of length T.

    Returns ``{"ms": median, "ms_all": [...], "peak_mb": ..., "rss_growth_mb": ... | None}``
    (MB = 10^6 bytes). Run it in a fresh process for the RSS figure to mean anything.
    """
    for name, v, lo in (("T", T, 1), ("batch", batch, 1), ("repeats", repeats, 1),
                        ("threads", threads, 1)):
        check_int(name, v, lo)
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    with torch_threads(threads):
        return _measure(mode, T, batch, repeats, dev, seed)


def _measure(mode: str, T: int, batch: int, repeats: int, dev: torch.device, seed: int) -> dict:
    from tlr.data import simulate

    update = build_update(mode, dev, seed)
    data = simulate(batch, T + WARMUP_T, seed=seed, stream="bench/bptt").y.to(dev)
    y, y_warm = data[:T].contiguous(), data[T:].contiguous()
    for _ in range(2):
        update(y_warm)
    _sync(dev)
    out: dict = {"rss_growth_mb": None}
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
        update(y)
        _sync(dev)
        out["peak_mb"] = (torch.cuda.max_memory_allocated(dev) - base) / 1e6
    else:
        before = _maxrss_bytes()
        update(y)
        out["rss_growth_mb"] = (_maxrss_bytes() - before) / 1e6
        out["peak_mb"] = _profiled_peak_bytes(lambda: update(y)) / 1e6
    ms = []
    for _ in range(repeats):
        _sync(dev)
        t0 = time.perf_counter()
        update(y)
        _sync(dev)
        ms.append(1e3 * (time.perf_counter() - t0))
    out["ms"] = statistics.median(ms)
    out["ms_all"] = ms
    return out


def _measure_isolated(mode: str, T: int, **kw) -> dict:
    """:func:`measure_point` in a fresh Python process (``python -m tlr.bench``)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(kw.get("threads", 1))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "point.json"
        cmd = [sys.executable, "-m", "tlr.bench", json.dumps({"mode": mode, "T": T, **kw}),
               str(path)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0 or not path.exists():
            raise RuntimeError(f"benchmark point {mode} T={T} failed "
                               f"(exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        return json.loads(path.read_text())


def _parse_T(T: Sequence[int]) -> list[int]:
    Ts = list(T)
    if not Ts or any(isinstance(t, bool) or not isinstance(t, int) or t < 1 for t in Ts):
        raise ValueError(f"T must be a non-empty list of positive ints, got {T!r}")
    return Ts


def run_bptt(T: Sequence[int] = DEFAULT_T, batch: int = 40, repeats: int = 3, threads: int = 1,
             device: str = "cpu", seed: int = 0, isolate: bool | None = None,
             modes: Sequence[str] = MODES, progress: Callable[[str], None] | None = None
             ) -> dict:
    """The ``bptt`` benchmark: every mode at every T; returns the results JSON.

    ``{"T": [...], "pairs": {"rVAE": {"local": {"ms": [...], "peak_mb": [...]},
    "bptt": {...}}, "rEFH": {...}}, "details": {...}, "provenance": {...}}``. ``isolate``:
    one fresh process per point (default: on CPU, where the RSS figure needs it). ``modes``
    must include the four of :data:`PAIRS`.
    """
    from tlr.provenance import provenance

    Ts = _parse_T(T)
    unknown = [m for m in modes if m not in MODES]
    missing = [m for p in PAIRS.values() for m in p.values() if m not in modes]
    if unknown or missing:
        raise ValueError(f"modes: unknown {unknown}, missing {missing}; valid: {', '.join(MODES)}")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    isolate = device == "cpu" if isolate is None else isolate
    kw = dict(batch=batch, repeats=repeats, device=device, threads=threads, seed=seed)
    started = dt.datetime.now(dt.timezone.utc)
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    points: dict[str, list[dict]] = {}
    for mode in modes:
        points[mode] = []
        for t in Ts:
            if progress:
                progress(f"{mode} T={t}")
            if isolate:
                points[mode].append(_measure_isolated(mode, t, **kw))
            else:
                points[mode].append(measure_point(mode, t, **kw))

    def series(mode: str) -> dict:
        return {"ms": [p["ms"] for p in points[mode]],
                "peak_mb": [p["peak_mb"] for p in points[mode]]}

    details = {}
    for mode in modes:
        d = {**series(mode), "ms_all": [p["ms_all"] for p in points[mode]],
             "rss_growth_mb": [p["rss_growth_mb"] for p in points[mode]]}
        if mode == "rEFH":
            d["ms_per_step"] = [p["ms"] / t for p, t in zip(points[mode], Ts, strict=True)]
        d["optimiser_steps_per_update"] = "T" if mode == "rEFH" else 1
        details[mode] = d
    wall = time.perf_counter() - t0
    memory = ("torch.cuda.max_memory_allocated - memory_allocated before the update" if
              device == "cuda" else "torch.profiler(profile_memory=True): peak cumulative sum "
              "of allocator events inside the update (frees matched by address to allocations "
              "inside it: net of baseline); cross-check: "
              "ru_maxrss growth over one unprofiled update (details.*.rss_growth_mb)")
    with torch_threads(threads):  # "device" names the thread count the points ran with
        prov = provenance(device, started)
    return {
        "T": Ts,
        "pairs": {p: {k: series(m) for k, m in pair.items()} for p, pair in PAIRS.items()},
        "details": details,
        "provenance": {
            **prov,
            "benchmark": "bptt",
            "device_used": device,
            "batch": batch,
            "threads": threads,
            "repeats": repeats,
            "ms": f"median of {repeats} timed updates after warm-up",
            "memory_method": memory,
            "isolated_processes": isolate,
            "seed": seed,
            "cpu_count": os.cpu_count(),
            "load_avg_1m_start_end": [load_start[0], os.getloadavg()[0]],
            "wall_s": wall,
            "units": {"ms": "milliseconds per update on one batch of length-T sequences",
                      "peak_mb": "10^6 bytes"},
            "update_definitions": {
                "rVAE/local": "T per-step backward passes (u detached, graph freed per step), "
                              "1 Adam step",
                "rVAE/bptt": "RVAE(bptt=True).sequence_loss over T steps, 1 backward, 1 Adam step",
                "rEFH/local": "T online CD-1 updates (REFH.update + optimiser step each)",
                "rEFH/bptt": "RTRBM.update (filter, CD-25 on T*B frames, bptt_term), 1 step",
            },
        },
    }


def format_bptt_table(result: dict) -> str:
    """A plain-text table: T, then ms and peak MB for each pair and rule."""
    cols = [(p, k) for p, pair in result["pairs"].items() for k in pair]
    head = f"{'T':>6}" + "".join(f"  {p + ' ' + k:>22}" for p, k in cols)
    sub = f"{'':>6}" + "".join(f"  {'ms':>11} {'peak MB':>10}" for _ in cols)
    lines = [head, sub]
    for i, t in enumerate(result["T"]):
        row = f"{t:>6}"
        for p, k in cols:
            s = result["pairs"][p][k]
            row += f"  {s['ms'][i]:>11.1f} {s['peak_mb'][i]:>10.3f}"
        lines.append(row)
    return "\n".join(lines)


BENCHMARKS: dict[str, Callable[..., dict]] = {"bptt": run_bptt}


def _worker(argv: list[str]) -> int:
    """``python -m tlr.bench JSON_ARGS OUT_PATH``: one :func:`measure_point`, written to OUT."""
    if len(argv) != 2:
        print("usage: python -m tlr.bench JSON_ARGS OUT_PATH", file=sys.stderr)
        return 2
    kw = json.loads(argv[0])
    Path(argv[1]).write_text(json.dumps(measure_point(**kw)))
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
