"""Gradient alignment: how far a temporally local rule's gradient is from the full BPTT gradient.

The poster's claim (Sources §5.1, §7.1) is that treating u_{t-1} as data, i.e. letting the
derivative pass through the expectation and ignoring the dependence of u_{t-1} on θ, discards
BPTT. :func:`gradient_alignment` measures what is discarded, for a model that has both rules
for the SAME objective, on the same sequences and the same noise, as cosine similarities
between the two gradients (per parameter tensor and overall).

What is compared:

* **rVAE** (and TVAE; either value of ``config.bptt``, the flag is ignored): the loss is
  ``RVAE.sequence_loss``'s, the negative ELBO of (u_{t-1}, y_t) summed over t and averaged
  over the batch, with one noise draw eps (T, B, n_latent) shared by both rules (the model's
  deterministic ``score(y_t, u_prev, eps)`` path). Both run the same forward recursion
  u_t = ν_t (or the sample, ``u_mode="sample"``) from u_0, so every loss term has the same
  value; the local gradient back-propagates with u_{t-1} detached (the rVAE), the BPTT
  gradient through u_{t-1} (rVAE-BPTT).
* **RTRBM / TRBM** (the conditional harmonium p(y_t | u_{t-1}), Sources §6.2): one mean-field
  pass u_t = σ(u_{t-1} W_u + y_t W_y + b_x) from u_0 = 0, then ONE CD-k run on all T·B frames
  [u_{t-1}, y_t] with u_{t-1} clamped (the ``TRBM.update`` protocol). The local gradient is
  the CD gradient alone (the TRBM's rule: like the rEFH's, it treats u_{t-1} as data and
  ignores its dependence on θ); the BPTT gradient adds the RTRBM's term
  (:func:`tlr.models.trbm.bptt_term`), computed from the same CD statistics, so the two
  differ by exactly that term. Directions are descent directions, as written to ``p.grad``.

The rEFH has no BPTT version of its (joint) objective here and is rejected.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tlr.rng import make_generator

__all__ = ["cosine", "gradient_alignment", "local_and_bptt_gradients"]


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two tensors, flattened (float64).

    Conventions for zero vectors: two zero tensors agree exactly (1.0); a zero tensor and a
    non-zero one are unrelated (0.0).
    """
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    a, b = a.detach().double().flatten(), b.detach().double().flatten()
    na, nb = a.norm(), b.norm()
    if na == 0 and nb == 0:
        return 1.0
    if na == 0 or nb == 0:
        return 0.0
    return float(((a @ b) / (na * nb)).clamp(-1.0, 1.0))


def _named_params(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def local_and_bptt_gradients(model: nn.Module, y: torch.Tensor, u0: torch.Tensor | None = None,
                             generator: torch.Generator | None = None
                             ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Validate y, then (local-rule gradients, full-BPTT gradients) in the order of
    ``model.named_parameters()`` (trainable ones), from the model's own
    ``local_and_bptt_gradients``. ``generator`` defaults to a fixed stream."""
    if not torch.is_tensor(y) or y.dim() != 3:
        got = tuple(y.shape) if torch.is_tensor(y) else type(y).__name__
        raise ValueError(f"y must be a (T, B, n_obs) tensor, got {got}")
    if y.shape[0] < 1 or y.shape[1] < 1:
        raise ValueError(f"y must have T >= 1 and B >= 1, got shape {tuple(y.shape)}")
    if not torch.isfinite(y).all():
        raise ValueError("y contains non-finite values")
    generator = make_generator(0, "gradient_alignment") if generator is None else generator
    return model.local_and_bptt_gradients(y, u0, generator)


def gradient_alignment(model: nn.Module, y: torch.Tensor, u0: torch.Tensor | None = None, *,
                       generator: torch.Generator | None = None) -> dict[str, float]:
    """Cosine similarity between the local-rule and the full-BPTT gradient on y (T, B, n_obs).

    ``model``: an :class:`~tlr.models.rvae.RVAE` (or TVAE), or a TRBM/RTRBM (see the module
    docstring for exactly what is compared). ``y``: time-major, like the rest of the library.
    ``u0``: the initial state, treated as data (rVAE: default u_0 = 0; the harmoniums' BPTT
    recursion assumes u_0 = 0, so only None or zeros are accepted). ``generator``: the
    noise (rVAE) or CD samples (harmoniums) shared by both rules; default: a fixed stream, so
    the result is deterministic. The model's parameters and ``p.grad`` are left untouched.

    Returns ``{parameter name: cosine, ..., "overall": cosine of the concatenation}``. At
    T = 1 there is no past, the two rules coincide and every cosine is 1.
    """
    local, bptt = local_and_bptt_gradients(model, y, u0, generator)
    names = [n for n, _ in _named_params(model)]
    out = {n: cosine(a, b) for n, a, b in zip(names, local, bptt, strict=True)}
    out["overall"] = cosine(torch.cat([g.flatten() for g in local]),
                            torch.cat([g.flatten() for g in bptt]))
    if not all(math.isfinite(v) for v in out.values()):
        raise FloatingPointError("non-finite gradient: the model has diverged")
    return out
