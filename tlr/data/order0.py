"""ORDER 0 of a set of frame sequences: the per-pixel MSE of predicting frame t by frame t − 1.

Sources §9.7. One implementation for every video data set (bouncing balls, Moving MNIST); the
experiments score ORDER 0 through the prediction protocol instead
(:func:`tlr.evaluation.prediction.order0_predictions`), which gives the same number on the
same frames.
"""

from __future__ import annotations

import torch

__all__ = ["order0_mse"]


def order0_mse(frames: torch.Tensor, time_dim: int) -> float:
    """mean((y_t − y_{t−1})²) over transitions t = 2..T and every other axis, in float64.

    ``time_dim`` is the time axis of ``frames`` (which needs T >= 2). One transition at a
    time, so no float64 copy of the whole tensor is made (64 × 64 Moving MNIST is large).
    """
    if not torch.is_tensor(frames):
        raise TypeError(f"frames must be a tensor, got {type(frames).__name__}")
    if frames.dim() < 2 or frames.numel() == 0:
        raise ValueError(f"frames must have a time axis and another axis, got shape "
                         f"{tuple(frames.shape)}")
    y = frames.movedim(time_dim, 0)
    if y.shape[0] < 2:
        raise ValueError(f"need T >= 2 frames for ORDER 0, got T = {y.shape[0]}")
    total = torch.zeros((), dtype=torch.float64, device=y.device)  # on y's device (CUDA too)
    for t in range(1, y.shape[0]):
        total += (y[t].to(torch.float64) - y[t - 1].to(torch.float64)).square().sum()
    return float(total / y[1:].numel())
