"""Metrics for video models (Moving MNIST; any frames): references, motion, state probes.

* :func:`ring_predictions`: the best a predictor without velocity can do (first order);
* :func:`centre_of_mass` and :func:`rollout_metrics`: do generated frames move the way the
  true continuation does; :func:`motion_ratio_se` gives the motion ratio's standard error and
  :func:`velocity_free_references` the scores of two continuations that know no velocity;
* :func:`state_probes`: linear-probe R² of the filtered state for the centre of mass and its
  velocity (a first-order state cannot carry the velocity).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tlr.evaluation.order import velocity_r2

__all__ = ["ring_predictions", "centre_of_mass", "rollout_metrics", "motion_ratio_se",
           "velocity_free_references", "state_probes"]


def ring_predictions(y: torch.Tensor, image_size: int, radius: float,
                     n_angles: int = 16) -> torch.Tensor:
    """y_{t-1} averaged over shifts by ``radius`` px in ``n_angles`` directions, t = 2..T.

    The best guess (ignoring walls) of a predictor that knows the digits' speed but not their
    direction: what a model without velocity (first-order dynamics) can do at best. A model
    below it in MSE has learned the direction of motion. y: (T, B, H·W); returns (T-1, B, H·W).
    """
    T, B, n = y.shape
    if n != image_size**2:
        raise ValueError(f"y must have {image_size}² = {image_size**2} pixels, got {n}")
    prev = y[:-1].reshape(-1, 1, image_size, image_size)
    out = torch.zeros_like(prev)
    for k in range(n_angles):
        a = 2 * math.pi * k / n_angles
        dy, dx = radius * math.sin(a), radius * math.cos(a)
        theta = torch.tensor([[1.0, 0.0, -2 * dx / image_size], [0.0, 1.0, -2 * dy / image_size]],
                             dtype=prev.dtype, device=prev.device).expand(prev.shape[0], 2, 3)
        grid = F.affine_grid(theta, list(prev.shape), align_corners=False)
        out += F.grid_sample(prev, grid, align_corners=False) / n_angles  # out(p) = prev(p - d)
    return out.reshape(T - 1, B, n)


def centre_of_mass(frames: torch.Tensor, image_size: int) -> torch.Tensor:
    """Intensity-weighted (row, col) centre of mass in pixels: (…, H·W) → (…, 2).

    With two digits it is their mass-weighted midpoint, which also moves at constant velocity
    between bounces. A blank frame gets the image centre.
    """
    w = frames.clamp(min=0).reshape(*frames.shape[:-1], image_size, image_size)
    idx = torch.arange(image_size, dtype=frames.dtype, device=frames.device)
    mass = w.sum((-2, -1))
    centre = (image_size - 1) / 2
    row = ((w.sum(-1) * idx).sum(-1) + 1e-6 * centre) / (mass + 1e-6)
    col = ((w.sum(-2) * idx).sum(-1) + 1e-6 * centre) / (mass + 1e-6)
    return torch.stack([row, col], dim=-1)


def rollout_metrics(generated: torch.Tensor, truth: torch.Tensor, last: torch.Tensor,
                    image_size: int) -> dict:
    """Is the generated motion the true motion? Frames (S, B, H·W); ``last`` (B, H·W) is the
    last context frame.

    Centre-of-mass (CoM) displacements from the last context frame, d_gen(s) and d_true(s):

    * ``com_corr``: Pearson correlation of d_gen with d_true over steps, sequences and axes
      (1: the generated digits go where the true ones go; a frozen frame has d_gen = 0);
    * ``motion_ratio``: Σ d_gen·d_true / Σ |d_true|², the fraction of the true motion
      reproduced (1: all of it, 0: frozen, >1: too fast);
    * ``com_err_px`` vs ``frozen_com_err_px``: mean distance |CoM_gen − CoM_true| per step, and
      the same for the last context frame held still;
    * ``mse`` / ``frozen_mse`` per pixel, and per step (``mse_per_step``);
    * ``mass_ratio``: generated / true total intensity (digits fading out → 0).
    """
    if generated.shape != truth.shape or last.shape != truth.shape[1:]:
        raise ValueError(f"need generated and truth (S, B, n) and last (B, n), got "
                         f"{tuple(generated.shape)}, {tuple(truth.shape)}, {tuple(last.shape)}")
    gen, tru, last = generated.double(), truth.double(), last.double()
    c0 = centre_of_mass(last, image_size)
    d_gen = centre_of_mass(gen, image_size) - c0
    d_true = centre_of_mass(tru, image_size) - c0
    a, b = d_gen.flatten(), d_true.flatten()
    corr = torch.corrcoef(torch.stack([a, b]))[0, 1].item() if a.std() > 0 else 0.0
    mse_step = (gen - tru).pow(2).mean((1, 2))
    return {
        "com_corr": corr,
        "motion_ratio": ((a * b).sum() / b.pow(2).sum().clamp(min=1e-12)).item(),
        "com_err_px": (d_gen - d_true).norm(dim=-1).mean().item(),
        "frozen_com_err_px": d_true.norm(dim=-1).mean().item(),
        "mse": mse_step.mean().item(),
        "frozen_mse": (last - tru).pow(2).mean().item(),
        "mse_per_step": mse_step.tolist(),
        "mass_ratio": (gen.sum() / tru.sum().clamp(min=1e-12)).item(),
    }


def motion_ratio_se(d_gen: torch.Tensor, d_true: torch.Tensor) -> float:
    """Standard error over the sequences of the motion ratio R = Σ_b a_b / Σ_b c_b of
    centre-of-mass displacements d_gen (S, B, 2) along the true ones d_true, with
    a_b = Σ_s d_gen·d_true and c_b = Σ_s |d_true|² of sequence b: the usual linearisation of a
    ratio of sums, sqrt(Σ_b (a_b - R c_b)² / (B (B - 1))) / mean_b c_b."""
    if d_gen.shape != d_true.shape or d_true.dim() != 3 or d_true.shape[-1] != 2:
        raise ValueError(f"d_gen {tuple(d_gen.shape)} and d_true {tuple(d_true.shape)}: "
                         "expected the same shape (steps, sequences, 2)")
    if d_true.shape[1] < 2:
        raise ValueError(f"{d_true.shape[1]} sequence(s): a standard error needs at least 2")
    a, c = (d_gen * d_true).sum((0, 2)), d_true.pow(2).sum((0, 2))
    R, B = a.sum() / c.sum(), len(a)
    return ((a - R * c).pow(2).sum() / (B * (B - 1))).sqrt().item() / c.mean().item()


def velocity_free_references(y_test: torch.Tensor, y_fit: torch.Tensor, mean_px: float,
                             n_context: int, n_rollout: int, image_size: int
                             ) -> tuple[dict, dict]:
    """What a continuation that knows no velocity scores on the rollout check: (blank, pull).

    Both continue each test sequence after its ``n_context`` context frames for ``n_rollout``
    frames, y_test and y_fit being (T, B, H·W) with T ≥ n_context + n_rollout:

    * the **blank frame**, every pixel at ``mean_px`` (the mean intensity of training frames):
      its centre of mass is in the middle at once. Its dict is :func:`rollout_metrics`' own;
    * the **pull to the middle**, which moves the last context frame's centre of mass a
      fraction p_j of the way to the middle at the j-th generated frame, the p_j fitted by least
      squares on the displacements of the sequences ``y_fit`` (never the test sequences).
      Its dict has ``motion_ratio``, ``com_err_px`` and ``p`` (the fitted fractions).

    Each dict also has ``motion_ratio_se`` (:func:`motion_ratio_se`) and ``com_err_se_px``, the
    standard error of the mean CoM error over the test sequences.
    """
    need = n_context + n_rollout
    for name, y in (("y_test", y_test), ("y_fit", y_fit)):
        if y.dim() != 3 or y.shape[0] < need or y.shape[-1] != image_size**2:
            raise ValueError(f"{name} {tuple(y.shape)}: expected (T, B, {image_size**2}) frames "
                             f"with T >= n_context + n_rollout = {need}")
    if y_test.shape[1] < 2:
        raise ValueError(f"{y_test.shape[1]} test sequence(s): standard errors need at least 2")
    middle = (image_size - 1) / 2

    def to_middle(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """From the last context frame's CoM: the vector to the middle (B, 2) and the true
        displacements of the next n_rollout frames (n_rollout, B, 2)."""
        com = centre_of_mass(y[:need].double(), image_size)
        return middle - com[n_context - 1], com[n_context:] - com[n_context - 1]

    def scores(d_gen: torch.Tensor, d_true: torch.Tensor) -> dict:
        err = (d_gen - d_true).norm(dim=-1).mean(0)              # per sequence
        return {"motion_ratio": ((d_gen * d_true).sum() / d_true.pow(2).sum()).item(),
                "motion_ratio_se": motion_ratio_se(d_gen, d_true),
                "com_err_px": err.mean().item(),
                "com_err_se_px": (err.std() / math.sqrt(len(err))).item()}

    fit_to, fit_d = to_middle(y_fit)
    p = (fit_d * fit_to).sum((1, 2)) / fit_to.pow(2).sum((0, 1))    # p_j, least squares
    to_mid, d_true = to_middle(y_test)
    truth = y_test[n_context:need]
    blank = rollout_metrics(torch.full_like(truth, mean_px), truth, y_test[n_context - 1],
                            image_size)
    blank_scores = scores(to_mid.expand_as(d_true), d_true)  # its CoM: the middle at once
    blank |= {k: blank_scores[k] for k in ("motion_ratio_se", "com_err_se_px")}
    pull = scores(p[:, None, None] * to_mid, d_true) | {"p": p.tolist()}
    return blank, pull


def state_probes(model, y_fit: torch.Tensor, y_test: torch.Tensor, image_size: int) -> dict:
    """What the filtered state u_t knows about the digits: linear-probe R² (test set) for the
    centre of mass (CoM) of y_t and its velocity CoM(y_t) − CoM(y_{t-1}), t = 2..T.

    The probes (:func:`tlr.evaluation.order.velocity_r2`, one per axis, averaged) are fitted
    on ``y_fit`` and scored on ``y_test``, both (T, B, H·W). A state with position but no
    velocity (first-order dynamics) can only generate frames that stand still: the rollout
    check's motion ratio is then near 0. With two digits the CoM is their midpoint, whose
    velocity is constant between bounces.
    """
    with torch.no_grad():
        u_fit, u_test = model.filter(y_fit)[1:].cpu(), model.filter(y_test)[1:].cpu()
    c_fit, c_test = (centre_of_mass(y.cpu(), image_size) for y in (y_fit, y_test))
    targets = {"position": (c_fit[1:], c_test[1:]),
               "velocity": (c_fit.diff(dim=0), c_test.diff(dim=0))}
    return {f"{key}_r2": sum(velocity_r2(u_fit, a.double()[..., k], u_test, b.double()[..., k])
                             for k in range(2)) / 2 for key, (a, b) in targets.items()}
