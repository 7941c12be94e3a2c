"""Local rule versus BPTT: gradient alignment by parameter group, and accuracy against time.

Helpers for the chapter "Local versus BPTT: cost and gradients" and for
``results/bptt/alignment.py``.

* :func:`grouped_alignment` extends :func:`tlr.evaluation.gradients.gradient_alignment` from
  single parameter tensors to named *groups* of them (the rVAE's encoder and decoder; the
  harmonium's W_u, W_y, ...) and adds the size of what BPTT adds: the relative norm
  ``|g_bptt - g_local| / |g_bptt|``. It compares the same two gradients, with the same noise
  (see the gradients module for exactly what they are), so its ``"overall"`` cosine equals
  ``gradient_alignment``'s.
* :class:`AlignmentTracker` is an ``evaluate`` callback for the :mod:`tlr.train` loops that
  records :func:`grouped_alignment` on one fixed batch, and a metric, every time it is called.
* :func:`training_curves` reads the saved PPC runs (the results contract of
  ``python -m tlr run ppc --json``) and puts each model's validation-MSE curve on a time axis.
  The files record the validation MSE per evaluated *epoch* and the total training seconds
  only, so epoch e is placed at ``train_s * e / n_epochs``: an approximation that assumes every
  epoch took the same time (see :func:`epoch_seconds`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

import torch
from torch import nn

from tlr.evaluation.gradients import cosine, local_and_bptt_gradients
from tlr.rng import make_generator

__all__ = ["grouped_alignment", "AlignmentTracker", "epoch_seconds",
           "TrainingCurve", "training_curves"]

def _ratio(num: torch.Tensor, den: torch.Tensor, both_zero: float) -> float:
    return float(num / den) if den > 0 else (both_zero if num == 0 else math.inf)


def _stats(local: Sequence[torch.Tensor], bptt: Sequence[torch.Tensor]
           ) -> tuple[float, float, float]:
    a = torch.cat([g.detach().double().flatten() for g in local])
    b = torch.cat([g.detach().double().flatten() for g in bptt])
    nb = b.norm()
    # two zero gradients agree exactly (cosine 1, as in tlr.evaluation.gradients.cosine)
    return cosine(a, b), _ratio((b - a).norm(), nb, 0.0), _ratio(a.norm(), nb, 1.0)


def grouped_alignment(model: nn.Module, y: torch.Tensor,
                      groups: Mapping[str, Sequence[str]] | None = None, *,
                      generator: torch.Generator | None = None) -> dict[str, dict[str, float]]:
    """Local-rule vs full-BPTT gradient on y (T, B, n_obs), overall and per parameter group.

    ``model``: an RVAE/TVAE or a TRBM/RTRBM, as for
    :func:`~tlr.evaluation.gradients.gradient_alignment` (u_0 = 0; same default noise
    stream, so the ``"overall"`` cosine is the same number). ``groups``: ``{group: prefixes}``;
    a parameter belongs to a group if its name starts with one of the prefixes (default:
    ``model.parameter_groups()``). Every group must match at least one parameter.

    Returns ``{"cosine": {group: c, ..., "overall": c}, "rel_diff": {...}, "norm_ratio":
    {...}}`` where ``rel_diff`` is ``|g_bptt - g_local| / |g_bptt|`` over the group's parameters
    (0: identical; 1: the local gradient is missing a part as large as the whole BPTT
    gradient) and ``norm_ratio`` is ``|g_local| / |g_bptt|`` (1 if both are zero). The
    model's parameters and ``p.grad`` are left untouched.
    """
    local, bptt = local_and_bptt_gradients(model, y, None, generator)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    groups = model.parameter_groups() if groups is None else groups
    keys = ("cosine", "rel_diff", "norm_ratio")
    out: dict[str, dict[str, float]] = {k: {} for k in keys}
    for group, prefixes in groups.items():
        idx = [i for i, n in enumerate(names) if any(n.startswith(p) for p in prefixes)]
        if not idx:
            raise ValueError(f"group {group!r}: no parameter name starts with {list(prefixes)}; "
                             f"names: {', '.join(names)}")
        for k, v in zip(keys, _stats([local[i] for i in idx], [bptt[i] for i in idx]),
                        strict=True):
            out[k][group] = v
    for k, v in zip(keys, _stats(local, bptt), strict=True):
        out[k]["overall"] = v
    return out


class AlignmentTracker:
    """``evaluate`` callback: gradient alignment on a fixed batch, plus a metric, per call.

    Pass it as ``evaluate=`` to :func:`~tlr.train.fit`; call
    it once on the untrained model first to record epoch 0. Each call runs
    :func:`grouped_alignment` on ``y`` with a fresh generator of the same seed (the same noise
    or CD samples at every call, and nothing drawn from the training generator), then returns
    ``metric(model)``, which the loop stores in its :class:`~tlr.train.History`.

    After training, :meth:`as_dict` with the evaluated epochs gives ``{"epochs", "metric",
    "cosine": {group: [...]}, "rel_diff": {...}, "norm_ratio": {...}, "align_s"}``.
    """

    def __init__(self, y: torch.Tensor, metric: Callable[[nn.Module], float],
                 groups: Mapping[str, Sequence[str]] | None = None, seed: int = 0) -> None:
        self.y, self.metric_fn, self.groups, self.seed = y, metric, groups, seed
        self.metric: list[float] = []
        self.cosine: dict[str, list[float]] = {}
        self.rel_diff: dict[str, list[float]] = {}
        self.norm_ratio: dict[str, list[float]] = {}
        self.align_s = 0.0  # seconds spent in grouped_alignment

    def __call__(self, model: nn.Module) -> float:
        t0 = time.perf_counter()
        a = grouped_alignment(model, self.y, self.groups,
                              generator=make_generator(self.seed, "gradient_alignment"))
        self.align_s += time.perf_counter() - t0
        for store, values in ((self.cosine, a["cosine"]), (self.rel_diff, a["rel_diff"]),
                              (self.norm_ratio, a["norm_ratio"])):
            for group, v in values.items():
                store.setdefault(group, []).append(v)
        self.metric.append(float(self.metric_fn(model)))
        return self.metric[-1]

    def as_dict(self, epochs: Sequence[int]) -> dict:
        """The record, with ``epochs`` (one per call, e.g. ``[0, *history.epochs]``)."""
        if len(epochs) != len(self.metric):
            raise ValueError(f"{len(epochs)} epochs for {len(self.metric)} recorded calls")
        return {"epochs": list(epochs), "metric": list(self.metric),
                "cosine": {k: list(v) for k, v in self.cosine.items()},
                "rel_diff": {k: list(v) for k, v in self.rel_diff.items()},
                "norm_ratio": {k: list(v) for k, v in self.norm_ratio.items()},
                "align_s": self.align_s}


def epoch_seconds(epochs: Sequence[int], train_s: float, n_epochs: int | None = None
                  ) -> list[float]:
    """Approximate wall seconds at the end of each epoch: ``train_s * e / n_epochs``.

    Assumes every epoch took the same time (the saved runs record only the total). The
    periodic validation runs inside the timed loop, so its cost is spread over the epochs too.
    ``n_epochs`` defaults to the last evaluated epoch (the training loops always evaluate the
    final epoch).
    """
    if not epochs:
        raise ValueError("epochs is empty")
    n = max(epochs) if n_epochs is None else n_epochs
    if n < 1 or any(e < 0 or e > n for e in epochs):
        raise ValueError(f"epochs must lie in [0, n_epochs={n}], got {list(epochs)}")
    if not train_s >= 0:
        raise ValueError(f"train_s must be >= 0, got {train_s}")
    return [train_s * e / n for e in epochs]


class TrainingCurve(NamedTuple):
    model: str
    seed: int
    epochs: list[int]
    seconds: list[float]  # approximate, from epoch_seconds
    val_mse: list[float]  # validation MSE at each evaluated epoch (rad²)
    test_mse: float  # the run's final test MSE (rad²)
    train_s: float


def training_curves(runs: Iterable[Mapping], models: Sequence[str] | None = None
                    ) -> list[TrainingCurve]:
    """The validation curves in saved PPC result dicts, on an approximate time axis.

    ``runs``: loaded JSON result files (keys ``seed``, ``results``, ``details``). Every model
    whose ``details`` hold a ``curve`` is returned (or only those in ``models``), in file
    order. Models without a curve (e.g. the Kalman filters) are skipped.
    """
    out = []
    for run in runs:
        for name, d in run.get("details", {}).items():
            if "curve" not in d or (models is not None and name not in models):
                continue
            r = run["results"][name]
            if len(d["epochs"]) != len(d["curve"]):
                raise ValueError(f"{name}, seed {run['seed']}: {len(d['epochs'])} epochs but "
                                 f"{len(d['curve'])} curve points")
            out.append(TrainingCurve(name, run["seed"], list(d["epochs"]),
                                     epoch_seconds(d["epochs"], r["train_s"]),
                                     list(d["curve"]), r["mse"], r["train_s"]))
    return out
