"""The LTI + PPC experiment (Table 1 of the poster): presets, model registry, and the runner.

Each model is a *runner*: ``runner(preset, seed) -> Estimate`` trains on fresh data drawn from
the training stream of ``seed`` (if it trains at all) and returns its position estimates on
the shared test set. :func:`run` scores every estimate with the torus-wrapped MSE (spec §5.6).
Later chapters add runners ("rEFH", "TRBM", ...) to :data:`MODELS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from tlr.data.lds_ppc import LTIConfig, PPCConfig, PPCData, simulate
from tlr.evaluation.ppc import torus_mse
from tlr.filters.baselines import fit_kf, kf_true, order0, run_kf
from tlr.rng import make_generator

__all__ = ["PPCPreset", "PRESETS", "Estimate", "MODELS", "test_data", "run"]


@dataclass(frozen=True)
class PPCPreset:
    """Sizes and settings of one run of the PPC experiment (defaults: spec §2.6, §4.4)."""

    name: str
    n_test: int = 40  # test set: 40 trajectories x 1000 steps (the spec's canonical test set)
    T_test: int = 1000
    n_train: int = 40  # EM training data for KF-1/KF-2 (spec §4.4: fresh 40 x 1000)
    T_train: int = 1000
    em_max_iter: int = 500  # Makin stops at 50 (NepochsMax); EM on an LDS converges slowly
    em_tol: float = 1e-5  # relative improvement of the log-likelihood per iteration
    lti: LTIConfig = field(default_factory=LTIConfig)
    ppc: PPCConfig = field(default_factory=PPCConfig)


PRESETS: dict[str, PPCPreset] = {
    # What the book and CI run on a CPU (the four baselines in well under a minute).
    "quick": PPCPreset(name="quick"),
    # Paper scale: the same data sizes, EM run to a tighter tolerance.
    "paper": PPCPreset(name="paper", em_max_iter=2000, em_tol=1e-7),
}


class Estimate(NamedTuple):
    s_hat: torch.Tensor  # (T_test, n_test) position estimates (rad)
    train_s: float  # seconds spent training (0 for models that do not train)
    info: dict  # anything else worth reporting (e.g. EM iterations)


def test_data(preset: PPCPreset, seed: int) -> PPCData:
    """The test set of ``seed``: a stream separate from every training stream."""
    return simulate(preset.n_test, preset.T_test, seed=seed, lti=preset.lti, ppc=preset.ppc,
                    stream="ppc/test")


def _train_data(preset: PPCPreset, seed: int, stream: str) -> PPCData:
    return simulate(preset.n_train, preset.T_train, seed=seed, lti=preset.lti, ppc=preset.ppc,
                    stream=stream)


def run_order0(preset: PPCPreset, seed: int, test: PPCData) -> Estimate:
    return Estimate(order0(test.y, preset.ppc), 0.0, {})


def run_kf_true(preset: PPCPreset, seed: int, test: PPCData) -> Estimate:
    return Estimate(kf_true(test.y, preset.lti, preset.ppc), 0.0, {})


def _run_em(order: int) -> Callable[[PPCPreset, int, PPCData], Estimate]:
    def runner(preset: PPCPreset, seed: int, test: PPCData) -> Estimate:
        t0 = time.perf_counter()
        train = _train_data(preset, seed, stream="ppc/train")
        fit = fit_kf(train.y, order, preset.lti, preset.ppc, n_iter=preset.em_max_iter,
                     tol=preset.em_tol, generator=make_generator(seed, f"ppc/em{order}-init"))
        train_s = time.perf_counter() - t0
        info = {"em_iterations": fit.n_iter, "em_converged": fit.converged}
        return Estimate(run_kf(fit.params, test.y, preset.lti, preset.ppc), train_s, info)

    runner.__doc__ = f"KF-{order}: EM-fitted {order}-state LDS, run as a Kalman filter."
    return runner


MODELS: dict[str, Callable[[PPCPreset, int, PPCData], Estimate]] = {
    "ORDER 0": run_order0,
    "KF-1": _run_em(1),
    "KF-2": _run_em(2),
    "KF-true": run_kf_true,
}


def run(
    models: list[str] | None = None,
    preset: str | PPCPreset = "quick",
    seed: int = 0,
    progress: bool | None = None,
) -> dict[str, dict]:
    """Train and score ``models`` (default: all) on one preset and seed.

    Returns ``{model: {"mse": float, "train_s": float, "info": dict}}``; MSE in rad² on the
    test set; ``info`` holds model-specific extras (e.g. EM iterations).
    """
    from tqdm.auto import tqdm

    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
        preset = PRESETS[preset]
    models = list(MODELS) if models is None else models
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; valid: {', '.join(MODELS)}")
    test = test_data(preset, seed)
    results = {}
    for name in tqdm(models, desc=f"ppc/{preset.name}", disable=None if progress is None
                     else not progress):
        est = MODELS[name](preset, seed, test)
        mse = torus_mse(est.s_hat, test.position, preset.ppc.period)
        results[name] = {"mse": mse, "train_s": est.train_s, "info": est.info}
    return results
