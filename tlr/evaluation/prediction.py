"""One-step prediction of the next frame from the filtered state (Sources §9.6-9.7).

Protocol (Makin's ``testEFHNextFrameError.m``): filter the test sequence with the *true*
frames, giving u_t for every t; for t = 2..T predict y_t from u_{t-1} alone with the model's
``predict_next`` (clamped Gibbs sampling for the harmoniums, its encoder/decoder analogue for
the VAEs); the score is the MSE per pixel over frames 2..T and sequences. ORDER 0 copies
y_{t-1}. Layout: time-major (T, B, n_obs), like the models.
"""

from __future__ import annotations

import torch

from tlr.models.base import check_int, check_y
from tlr.models.efh import bernoulli

__all__ = ["one_step_predictions", "one_step_mse", "order0_predictions", "rollout"]


@torch.no_grad()
def one_step_predictions(model, y: torch.Tensor, n_gibbs: int = 25,
                         generator: torch.Generator | None = None,
                         chunk: int = 4096, start: str = "noise",
                         method: str | None = None) -> torch.Tensor:
    """Predictions of y_2..y_T, shape (T - 1, B, n_obs), each from the filtered u_{t-1}.

    ``model``: any :class:`~tlr.models.base.RecurrentModel` (``filter`` and
    ``predict_next``). All (t, sequence) pairs are independent given the filtered states, so
    they are predicted in batches of ``chunk`` rows. ``start="noise"`` is the protocol;
    ``start="previous"`` (a diagnostic beside it) starts each chain from the true y_{t-1}
    (``predict_next(..., y_init=...)``). ``method``: the model's prediction method (None: its
    default; the VAEs also have ``"gibbs"``, the analogue of the harmoniums' chain).
    """
    check_y(y, min_T=2)
    if start not in ("noise", "previous"):
        raise ValueError(f"start must be 'noise' or 'previous', got {start!r}")
    u = model.filter(y)[:-1]  # u_1..u_{T-1}
    T1, B = u.shape[:2]
    flat, prev = u.reshape(T1 * B, -1), y[:-1].reshape(T1 * B, -1)
    out = []
    for i in range(0, flat.shape[0], chunk):
        y_init = prev[i:i + chunk] if start == "previous" else None
        out.append(model.predict_next(flat[i:i + chunk], n_gibbs=n_gibbs, generator=generator,
                                      y_init=y_init, method=method))
    return torch.cat(out).reshape(T1, B, -1)


def order0_predictions(y: torch.Tensor) -> torch.Tensor:
    """ORDER 0: y_{t-1} as the prediction of y_t, t = 2..T (Sources §9.7)."""
    check_y(y, min_T=2)
    return y[:-1]


def one_step_mse(predictions: torch.Tensor, y: torch.Tensor) -> float:
    """Mean squared error per pixel of predictions (T - 1, B, n) against y_2..y_T (§9.6)."""
    check_y(y, min_T=2)
    if predictions.shape != y[1:].shape:
        raise ValueError(f"predictions must have shape {tuple(y[1:].shape)} (frames 2..T), "
                         f"got {tuple(predictions.shape)}")
    return (predictions.double() - y[1:].double()).pow(2).mean().item()


@torch.no_grad()
def rollout(model, y_context: torch.Tensor, n_steps: int, n_gibbs: int = 25,
            generator: torch.Generator | None = None, sample: bool = False) -> torch.Tensor:
    """Generate ``n_steps`` frames after a context: the model run forward on its own output.

    Filter the true frames ``y_context`` (T0, B, n_obs), then repeat: predict the next frame
    from u (``predict_next``: clamped Gibbs, mean-field readout), take it (or, with
    ``sample=True``, a Bernoulli sample of it) as the observation, and filter one step on it.
    Returns the generated frames (n_steps, B, n_obs).
    """
    check_y(y_context, name="y_context")
    check_int("n_steps", n_steps)
    u = model.filter(y_context)[-1]
    frames = []
    for _ in range(n_steps):
        y = model.predict_next(u, n_gibbs=n_gibbs, generator=generator)
        if sample:
            y = bernoulli(y, generator)
        frames.append(y)
        u = model.filter(y[None], u0=u)[-1]
    return torch.stack(frames)
