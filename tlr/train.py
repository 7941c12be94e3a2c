"""The training loops: online (rEFH, one update per time step) and sequence (TRBM/RTRBM).

Spec §2.6, §5.3-5.4, §6.4. Models compute their own learning signal (``model.update`` writes
descent directions into ``p.grad``); the loops own epochs, fresh data, optimiser schedules,
divergence checks and checkpoints. Every loop is a pure function of its seed: the data of
epoch e come from the stream ``f"{stream}/epoch{e}"`` and the sampling noise from one
``torch.Generator`` whose state is checkpointed, so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

__all__ = ["OptimConfig", "make_optimizer", "set_schedule", "History", "train_online",
           "train_sequences", "train_windows", "save_checkpoint", "load_checkpoint"]


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and schedule.

    ``"adam"``: the poster's Adam (lr 1e-4, β 0.9/0.999), with an optional per-epoch decay
    lr_e = lr · decay^-(e-1). ``"makin-exp"``: Makin's LTI-PPC momentum schedule (spec §5.4):
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
        if not self.lr > 0 or not self.decay > 0:
            raise ValueError(f"lr and decay must be > 0, got {self.lr}, {self.decay}")


def _groups(model: nn.Module) -> list[nn.Parameter]:
    if not hasattr(model, "efh"):
        raise ValueError(f"Makin's schedules are defined for harmoniums; {model.name} needs "
                         "OptimConfig('adam')")
    e = model.efh
    return [e.W[1], e.W[0], e.b_hid, e.b_vis[1], e.b_vis[0]]


def make_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """Adam over all parameters, or SGD with momentum and one group per Makin group.

    torch's SGD keeps buf = μ buf + (g + λw) and steps w -= η buf, which equals Makin's
    Δw = μ Δw + η(ĝ - λw) while η is constant (it changes once per epoch).
    """
    # fused kernels: one call per step instead of a Python loop over parameters (~3x faster
    # for these small models on CPU); fall back where a device lacks them.
    for fused in (True, None):
        try:
            if cfg.name == "adam":
                return torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas,
                                        fused=fused)
            return torch.optim.SGD([{"params": [p]} for p in _groups(model)], lr=1.0,
                                   momentum=0.5, fused=fused)
        except (RuntimeError, ValueError):
            if fused is None:
                raise
    raise AssertionError("unreachable")


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
                    generator: torch.Generator, epoch: int, history: History) -> None:
    """Save model (+ its config), optimiser, RNG state and progress after ``epoch``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "config": asdict(model.config),
                "model_name": model.name, "optimizer": opt.state_dict(),
                "rng": generator.get_state(), "epoch": epoch, "history": asdict(history)}, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path, model: nn.Module, opt: torch.optim.Optimizer | None = None,
                    generator: torch.Generator | None = None) -> tuple[int, History]:
    """Restore what :func:`save_checkpoint` wrote; returns (epoch done, history)."""
    ck = torch.load(Path(path), weights_only=False)
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


def _loop(model, step_epoch, data: Callable[[int], torch.Tensor], n_epochs: int,
          optim: OptimConfig, generator: torch.Generator,
          evaluate: Callable[[nn.Module], float] | None, eval_every: int,
          checkpoint: str | Path | None, progress: bool | None) -> History:
    from tqdm.auto import trange

    if isinstance(n_epochs, bool) or not isinstance(n_epochs, int) or n_epochs < 1:
        raise ValueError(f"n_epochs must be a positive int, got {n_epochs!r}")
    opt = make_optimizer(model, optim)
    history, start = History([], [], []), 0
    if checkpoint is not None and Path(checkpoint).exists():
        start, history = load_checkpoint(checkpoint, model, opt, generator)
        history.resumed_at.append(start)
    t0 = time.perf_counter() - history.elapsed
    bar = trange(start + 1, n_epochs + 1, desc=model.name,
                 disable=None if progress is None else not progress)
    for epoch in bar:
        set_schedule(opt, optim, epoch, n_epochs)
        history.updates += step_epoch(opt, data(epoch), epoch)
        history.elapsed = time.perf_counter() - t0
        if evaluate is not None and (epoch % eval_every == 0 or epoch == n_epochs):
            history.epochs.append(epoch)
            history.metric.append(evaluate(model))
            history.seconds.append(time.perf_counter() - t0)
            bar.set_postfix(metric=f"{history.metric[-1]:.3g}")
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, opt, generator, epoch, history)
    return history


def train_online(model: nn.Module, data: Callable[[int], torch.Tensor], n_epochs: int,
                 optim: OptimConfig, generator: torch.Generator,
                 evaluate: Callable[[nn.Module], float] | None = None, eval_every: int = 5,
                 checkpoint: str | Path | None = None, progress: bool | None = None) -> History:
    """Online training (rEFH on LTI-PPC, spec §5.3): ``data(epoch)`` is (T, B, n_obs).

    Each epoch walks forward through the B parallel trajectories; at every step t the model
    updates once on [u_{t-1}, y_t] and hands back u_t. u_0 = 0 at the start of each epoch.
    """

    def step_epoch(opt, y, epoch):
        u = model.initial_state(y.shape[1])
        for t in range(y.shape[0]):
            with _diverged(epoch, t + 1):
                u = model.update(y[t], u, generator)
                opt.step()
                # NaN/Inf anywhere in the parameters reaches u within two steps; checking u
                # every step is cheap, all parameters at the end of the epoch.
                if not torch.isfinite(u).all():
                    raise FloatingPointError("hidden state is not finite")
        _check_finite(model, epoch, y.shape[0])
        return y.shape[0]

    return _loop(model, step_epoch, data, n_epochs, optim, generator, evaluate, eval_every,
                 checkpoint, progress)


def train_sequences(model: nn.Module, data: Callable[[int], torch.Tensor], n_epochs: int,
                    optim: OptimConfig, generator: torch.Generator, seqs_per_update: int = 1,
                    evaluate: Callable[[nn.Module], float] | None = None, eval_every: int = 5,
                    checkpoint: str | Path | None = None, progress: bool | None = None,
                    n_pretrain: int = 0, pretrain_cd_steps: int = 5) -> History:
    """Sequence training (TRBM/RTRBM, spec §6.4; every harmonium on bouncing balls, §9.5):
    ``data(epoch)`` is (T, N_seq, n_obs).

    One update per ``seqs_per_update`` sequences (Makin: 1), in the order given. The rEFH
    uses its ``update_sequence`` (the joint rule on whole sequences), the TRBM/RTRBM their
    ``update``. The first ``n_pretrain`` updates of the run are static pretraining
    (``static_update``, CD-``pretrain_cd_steps`` with u = 0; Makin's ``Npretrain``).
    """
    update = getattr(model, "update_sequence", None) or model.update
    done = [0]  # updates so far, across epochs (a resumed run restarts the count: pretraining
    # happens in the first epoch, which a resume never repeats)

    def step_epoch(opt, y, epoch):
        n = math.ceil(y.shape[1] / seqs_per_update)
        for i in range(n):
            batch = y[:, i * seqs_per_update:(i + 1) * seqs_per_update]
            with _diverged(epoch, i + 1):
                if epoch == 1 and done[0] < n_pretrain:
                    model.static_update(batch, pretrain_cd_steps, generator)
                else:
                    update(batch, generator)
                opt.step()
            done[0] += 1
            _check_finite(model, epoch, i + 1)
        return n

    return _loop(model, step_epoch, data, n_epochs, optim, generator, evaluate, eval_every,
                 checkpoint, progress)


def train_windows(model: nn.Module, data: Callable[[int], torch.Tensor], n_epochs: int,
                  optim: OptimConfig, generator: torch.Generator, window: int = 1,
                  evaluate: Callable[[nn.Module], float] | None = None, eval_every: int = 5,
                  checkpoint: str | Path | None = None,
                  progress: bool | None = None, batch: int | None = None) -> History:
    """Gradient training of a recurrent VAE on parallel trajectories ``data(epoch)`` (T, B, n).

    The trajectories are walked forward in windows of ``window`` steps; each window's summed
    loss (``model.sequence_loss``) gets one optimiser step, and the last u is carried into the
    next window, detached. ``window=1`` is the fully online rule. A model whose config has
    ``bptt=True`` backpropagates through u inside each window (truncated BPTT). ``batch``:
    walk the B trajectories in groups of this many, one after the other (None: all at once).
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive int, got {window!r}")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int)
                              or batch < 1):
        raise ValueError(f"batch must be a positive int or None, got {batch!r}")

    def step_epoch(opt, y_all, epoch):
        n = 0
        size = y_all.shape[1] if batch is None else batch
        for first in range(0, y_all.shape[1], size):
            y = y_all[:, first:first + size]
            u = model.initial_state(y.shape[1])
            for start in range(0, y.shape[0], window):
                with _diverged(epoch, n + 1):
                    loss, u = model.sequence_loss(y[start:start + window], u, generator)
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"loss is {loss.item()}")
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                u = u.detach()
                n += 1
        _check_finite(model, epoch, n)
        return n

    return _loop(model, step_epoch, data, n_epochs, optim, generator, evaluate, eval_every,
                 checkpoint, progress)
