"""One training loop, :func:`fit`, for every model; optimisers, schedules and checkpoints.

Sources §2.6, §5.3-5.4, §6.4, §9.5. Models compute their own learning signal
(``model.update(y, u0, generator)`` writes descent directions into ``p.grad``, see
:mod:`tlr.models.base`); the loop owns epochs, fresh data, the shaping of the data into
updates, optimiser schedules, divergence checks and checkpoints. The protocols of the book
are three shapings of one loop:

* **online** (the rEFH on LTI-PPC): ``window=1``: all trajectories in parallel, one update per
  time step, the state carried from step to step;
* **whole sequences** (TRBM/RTRBM; every harmonium on bouncing balls): ``window=None,
  batch=k``: one update per k sequences;
* **windows** (the recurrent VAEs): ``window=w, batch=k``: k sequences at a time, walked in
  windows of w steps, the state carried (detached) between windows.

Every run is a pure function of its seed: the data of epoch e are ``data(e)`` (the
experiments draw them from a stream named after the epoch) and the sampling noise comes from
one ``torch.Generator`` whose state is checkpointed, so a resumed run equals an uninterrupted
one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from tlr.models.base import check_int

__all__ = ["OptimConfig", "make_optimizer", "set_schedule", "History", "fit",
           "save_checkpoint", "load_checkpoint", "checkpoint_progress"]


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and schedule.

    ``"adam"``: the poster's Adam (lr 1e-4, β 0.9/0.999), with an optional per-epoch decay
    lr_e = lr · decay^-(e-1). ``"makin-exp"``: Makin's LTI-PPC momentum schedule (Sources §5.4):
    η_e = 1/(m0 · 1.1^e) per parameter group, μ_e = 0.98 - 0.5/1.1^e, decay η_e λ = 2e-6/1.1^e.
    ``"makin-hyperbolic"``: η_e = (1/m0)(1 - (e-1)/n_epochs), μ = 0.9, no decay (TRBM/RTRBM).
    """

    name: str = "adam"
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    decay: float = 1.0  # Adam: divide lr by this every epoch
    # Makin's m0 per group, in the order (W_y, W_u, b_x, b_y, b_u) = (obs weights, recurrent
    # weights, hidden biases, obs biases, recurrent biases).
    m0: tuple[float, float, float, float, float] = (800, 50, 200, 200, 12)

    def __post_init__(self) -> None:
        if self.name not in ("adam", "makin-exp", "makin-hyperbolic"):
            raise ValueError(f"unknown optimiser {self.name!r}; valid: adam, makin-exp, "
                             "makin-hyperbolic")
        if len(self.m0) != 5 or len(self.betas) != 2:
            raise ValueError(f"m0 needs 5 values (W_y, W_u, b_x, b_y, b_u) and betas 2, got "
                             f"m0={self.m0}, betas={self.betas}")
        if not self.lr > 0 or not self.decay > 0:
            raise ValueError(f"lr and decay must be > 0, got {self.lr}, {self.decay}")


def make_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """Adam over all parameters, or SGD with momentum and one group per Makin group.

    torch's SGD keeps buf = μ buf + (g + λw) and steps w -= η buf, which equals Makin's
    Δw = μ Δw + η(ĝ - λw) while η is constant (it changes once per epoch).
    """
    # fused kernels: one call per step instead of a Python loop over parameters (~3x faster
    # for these small models on CPU); on the CPU and CUDA, where torch has them for both
    params = list(model.parameters())
    fused = True if params and params[0].device.type in ("cpu", "cuda") else None
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, fused=fused)
    return torch.optim.SGD([{"params": [p]} for p in model.makin_groups()], lr=1.0,
                           momentum=0.5, fused=fused)


def set_schedule(opt: torch.optim.Optimizer, cfg: OptimConfig, epoch: int, n_epochs: int) -> None:
    """Set the learning rates (and momentum, decay) of ``epoch`` (1-based)."""
    if cfg.name == "adam":
        for pg in opt.param_groups:
            pg["lr"] = cfg.lr / cfg.decay ** (epoch - 1)
        return
    for pg, m0 in zip(opt.param_groups, cfg.m0, strict=True):
        if cfg.name == "makin-exp":
            f = 1.1**epoch
            pg["lr"], pg["momentum"], pg["weight_decay"] = 1 / (m0 * f), 0.98 - 0.5 / f, m0 / 5e5
        else:
            pg["lr"] = (1 / m0) * (1 - (epoch - 1) / n_epochs)
            pg["momentum"], pg["weight_decay"] = 0.9, 0.0


@dataclass
class History:
    """What a training run records (one entry per evaluated epoch)."""

    epochs: list[int]
    metric: list[float]
    seconds: list[float]  # wall seconds since training started (summed over resumed sessions)
    updates: int = 0
    resumed_at: list[int] = field(default_factory=list)  # epochs completed when resuming
    elapsed: float = 0.0  # wall seconds of training so far, including earlier sessions
    # diagnostics recorded beside the metric (fit's ``diagnose``): name -> one value per epoch
    extra: dict[str, list[float]] = field(default_factory=dict)


def _check_finite(model: nn.Module, epoch: int, step: int) -> None:
    for name, p in model.named_parameters():
        if not torch.isfinite(p).all():
            raise FloatingPointError(f"training diverged at epoch {epoch}, step {step}: "
                                     f"parameter {name} is not finite")


@contextmanager
def _diverged(epoch: int, step: int):
    """Re-raise numerical failures inside one update with the epoch and step named."""
    try:
        yield
    except FloatingPointError as e:
        raise FloatingPointError(f"training diverged at epoch {epoch}, step {step}: {e}") from e


def save_checkpoint(path: str | Path, model: nn.Module, opt: torch.optim.Optimizer,
                    generator: torch.Generator, epoch: int, history: History,
                    n_epochs: int | None = None) -> None:
    """Save model (+ its config), optimiser, RNG state and progress after ``epoch``
    (of ``n_epochs``, kept for :func:`checkpoint_progress`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    from tlr.models.registry import registry_name

    torch.save({"model": model.state_dict(), "config": asdict(model.config),
                "model_name": model.name, "registry_name": registry_name(model),
                "optimizer": opt.state_dict(),
                "rng": generator.get_state(), "epoch": epoch, "n_epochs": n_epochs,
                "history": asdict(history)}, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path, model: nn.Module, opt: torch.optim.Optimizer | None = None,
                    generator: torch.Generator | None = None) -> tuple[int, History]:
    """Restore what :func:`save_checkpoint` wrote; returns (epoch done, history)."""
    ck = torch.load(Path(path), weights_only=False, map_location="cpu")
    if ck["model_name"] != model.name or ck["config"] != asdict(model.config):
        raise ValueError(f"checkpoint {path} holds a {ck['model_name']} with config "
                         f"{ck['config']}, not a {model.name} with {asdict(model.config)}")
    model.load_state_dict(ck["model"])
    if opt is not None:
        opt.load_state_dict(ck["optimizer"])
    if generator is not None:
        generator.set_state(ck["rng"])
    history = History(**ck["history"])
    if not history.elapsed and history.seconds:  # checkpoints written before `elapsed` existed
        history.elapsed = history.seconds[-1]
    return ck["epoch"], history


def checkpoint_progress(path: str | Path, n_epochs: int | None = None) -> dict:
    """How far the run behind a checkpoint has come, without building its model.

    Returns ``model``, ``epoch`` (done), ``n_epochs`` (the checkpoint's; ``n_epochs`` is used
    when it records none, as checkpoints written before it existed do), ``updates``,
    ``train_s`` (summed over resumed processes), ``resumed_at``, ``validation`` (a list of
    ``(epoch, metric)``), ``s_per_epoch`` (the pace since the last validation point before
    ``epoch``, else the mean over the run) and ``left_s`` (``s_per_epoch`` times the epochs
    left; None when ``n_epochs`` is unknown).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ck = torch.load(path, weights_only=False, map_location="cpu")
        epoch, h = ck["epoch"], ck["history"]
    except Exception as e:  # not a torch file, or a torch file of something else
        raise ValueError(f"{path} is not a checkpoint written by tlr.train.fit: {e!r}") from None
    total = ck.get("n_epochs") or n_epochs
    if total is not None:
        check_int("n_epochs", total)
        if total < epoch:
            raise ValueError(f"{path}: {epoch} epochs are done, more than n_epochs={total}")
    elapsed = h["elapsed"] or (h["seconds"][-1] if h["seconds"] else 0.0)
    before = [(e, s) for e, s in zip(h["epochs"], h["seconds"], strict=True) if e < epoch]
    e0, s0 = before[-1] if before else (0, 0.0)
    pace = (elapsed - s0) / (epoch - e0) if epoch > e0 else None
    return {"path": str(path), "model": ck.get("model_name"), "epoch": epoch,
            "n_epochs": total, "updates": h["updates"], "train_s": elapsed,
            "resumed_at": list(h["resumed_at"]),
            "validation": list(zip(h["epochs"], h["metric"], strict=True)),
            "s_per_epoch": pace,
            "left_s": None if total is None or pace is None else pace * (total - epoch)}


def fit(model: nn.Module, data: Callable[[int], torch.Tensor], n_epochs: int,
        optim: OptimConfig, generator: torch.Generator, *, window: int | None = None,
        batch: int | None = None, n_pretrain: int = 0, pretrain_cd_steps: int = 5,
        evaluate: Callable[[nn.Module], float] | None = None, eval_every: int = 5,
        diagnose: Callable[[nn.Module], dict[str, float]] | None = None,
        checkpoint: str | Path | None = None, progress: bool | None = None,
        cuda_graph: bool = False, prefetch: bool | None = None) -> History:
    """Train ``model`` for ``n_epochs`` on ``data(epoch)``, (T, N, n_obs) per epoch.

    Shaping (see the module docstring): the N sequences are taken ``batch`` at a time (None:
    all at once), each group walked in windows of ``window`` steps (None: the whole
    sequence), the state carried between windows (detached) and reset to the model's
    ``initial_state`` for each group. Every window is one update: zero the gradients,
    ``model.update``, one optimiser step. The first ``n_pretrain`` updates of the run are
    static pretraining (``model.pretrain_update``, CD-``pretrain_cd_steps``; Makin's
    ``Npretrain``, harmoniums only).

    Divergence stops the run with a FloatingPointError naming the epoch and the update
    ("step", counted from 1 in each epoch): a non-finite loss or state at once, non-finite
    parameters after every update of whole sequences and at the end of every epoch.
    ``evaluate(model)`` runs every ``eval_every`` epochs and at the end (the learning curve);
    ``diagnose(model)``, at the same epochs, returns named numbers kept in ``History.extra``
    (they never touch the training stream); ``checkpoint``: a file written after every epoch
    and resumed from if it exists. ``cuda_graph``: replay each update of whole sequences as one
    CUDA graph (:class:`tlr.graphs.GraphedUpdate`; CUDA only, the model's own update code).
    ``prefetch`` (default: as ``cuda_graph``): make the next epoch's data on a host thread while
    an epoch trains; ``data`` is still called once per epoch, in order, and must not read the
    model.
    """
    from tqdm.auto import trange

    check_int("n_epochs", n_epochs)
    if window is not None:
        check_int("window", window)
    if batch is not None:
        check_int("batch", batch)
    check_int("n_pretrain", n_pretrain, 0)
    opt = make_optimizer(model, optim)
    if cuda_graph:
        from tlr.graphs import GraphedUpdate
        update = GraphedUpdate(model, generator)
    else:
        update = model.update
    history, start = History([], [], []), 0
    if checkpoint is not None and Path(checkpoint).exists():
        start, history = load_checkpoint(checkpoint, model, opt, generator)
        history.resumed_at.append(start)
    pretrained = [0]  # static updates so far (all in the first epoch, which a resume never
    # repeats)

    def one_epoch(y_all: torch.Tensor, epoch: int) -> int:
        T, N = y_all.shape[:2]
        size, win, step = N if batch is None else batch, T if window is None else window, 0
        for first in range(0, N, size):
            y, u = y_all[:, first:first + size], None
            for t0 in range(0, T, win):
                step += 1
                with _diverged(epoch, step):
                    opt.zero_grad(set_to_none=True)
                    if epoch == 1 and pretrained[0] < n_pretrain:
                        model.pretrain_update(y[t0:t0 + win], pretrain_cd_steps, generator)
                        pretrained[0] += 1
                    else:
                        out = update(y[t0:t0 + win], u, generator)
                        if not torch.isfinite(out.u).all():
                            raise FloatingPointError("hidden state is not finite")
                        u = out.u
                    opt.step()
                if window is None:
                    _check_finite(model, epoch, step)
        _check_finite(model, epoch, step)
        return step

    t_start = time.perf_counter() - history.elapsed
    bar = trange(start + 1, n_epochs + 1, desc=model.name,
                 disable=None if progress is None else not progress)
    # with CUDA graphs the GPU would otherwise wait for the host's data
    pool = ThreadPoolExecutor(1) if (cuda_graph if prefetch is None else prefetch) else None
    ahead = pool.submit(data, start + 1) if pool and start < n_epochs else None
    for epoch in bar:
        set_schedule(opt, optim, epoch, n_epochs)
        y_all = ahead.result() if ahead else data(epoch)
        ahead = pool.submit(data, epoch + 1) if pool and epoch < n_epochs else None
        history.updates += one_epoch(y_all, epoch)
        history.elapsed = time.perf_counter() - t_start
        if evaluate is not None and (epoch % eval_every == 0 or epoch == n_epochs):
            history.epochs.append(epoch)
            history.metric.append(evaluate(model))
            for key, value in ({} if diagnose is None else diagnose(model)).items():
                history.extra.setdefault(key, []).append(value)
            history.seconds.append(time.perf_counter() - t_start)
            bar.set_postfix(metric=f"{history.metric[-1]:.3g}")
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, opt, generator, epoch, history, n_epochs)
    if pool is not None:
        pool.shutdown()
    return history
