"""Gradient alignment: how far a temporally local rule's gradient is from the full BPTT gradient.

The poster's claim (spec §5.1, §7.1) is that treating u_{t-1} as data, i.e. letting the
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
* **RTRBM / TRBM** (the conditional harmonium p(y_t | u_{t-1}), spec §6.2): one mean-field
  pass u_t = σ(u_{t-1} W_u + y_t W_y + b_x) from u_0 = 0, then ONE CD-k run on all T·B frames
  [u_{t-1}, y_t] with u_{t-1} clamped (the ``TRBM.update`` protocol). The local gradient is
  the CD gradient alone (the TRBM's rule: like the rEFH's, it treats u_{t-1} as data and
  ignores its dependence on θ); the BPTT gradient adds the RTRBM's term
  (:func:`tlr.models.rtrbm.bptt_term`), computed from the same CD statistics, so the two
  differ by exactly that term. Directions are descent directions, as written to ``p.grad``.

The rEFH has no BPTT version of its (joint) objective here and is rejected.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tlr.models.rtrbm import RTRBM
from tlr.models.rvae import RVAE
from tlr.models.trbm import TRBM
from tlr.rng import make_generator

__all__ = ["cosine", "gradient_alignment", "local_and_bptt_gradients", "rvae_gradients",
           "harmonium_gradients"]


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


def rvae_gradients(model: RVAE, y: torch.Tensor, u0: torch.Tensor | None = None,
                   generator: torch.Generator | None = None
                   ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(local, BPTT) gradients of the summed negative ELBO over y (T, B, n_obs), batch mean.

    Same values, same noise (drawn once from ``generator``, as ``RVAE.window`` draws it);
    only the path of the gradient differs. ``u0``: (B, n_latent), treated as data; default
    ``model.initial_state`` (u_0 = 0, as ``train_windows`` starts). Order:
    ``model.named_parameters()``.
    """
    model._check_y(y)
    T, B, _ = y.shape
    L = model.config.n_latent
    u0 = model.initial_state(B) if u0 is None else u0
    if not torch.is_tensor(u0) or u0.shape != (B, L):
        got = tuple(u0.shape) if torch.is_tensor(u0) else type(u0).__name__
        raise ValueError(f"u0 must have shape ({B}, {L}), got {got}")
    eps = torch.randn((T, B, L), generator=generator, dtype=u0.dtype).to(u0.device)
    params = [p for _, p in _named_params(model)]
    grads = []
    for detach in (True, False):
        u, loss = u0.detach(), 0.0
        for t in range(T):
            out = model.score(y[t], u.detach() if detach else u, eps[t])
            loss = loss + out.loss.mean()
            u = out.u
        grads.append(list(torch.autograd.grad(loss, params, allow_unused=True)))
    local, bptt = ([torch.zeros_like(p) if g is None else g for g, p in zip(gs, params,
                                                                             strict=True)]
                   for gs in grads)
    return local, bptt


@torch.no_grad()
def harmonium_gradients(model: TRBM, y: torch.Tensor, generator: torch.Generator | None = None
                        ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(local, BPTT) descent directions of a TRBM/RTRBM on y (T, B, n_obs), one CD sample.

    Local: ``efh.cd_gradients`` of one CD-k run on the T·B frames (the TRBM's update);
    BPTT: the same plus :func:`~tlr.models.rtrbm.bptt_term` (the RTRBM's update). Order:
    ``model.named_parameters()`` (the EFH's W, b_vis, b_hid).
    """
    model._check_y(y)
    T, B, n = y.shape
    u = model.filter(y)  # (T, B, H), from u_0 = 0
    u_prev = torch.cat([model.initial_state(B)[None], u[:-1]])
    v_pos = [u_prev.reshape(T * B, -1), y.reshape(T * B, n)]
    stats = model.efh.contrastive_divergence(v_pos, model.config.n_cd_steps, generator,
                                             clamped=(0,))
    local = model.efh.cd_gradients(stats)
    bptt = RTRBM._extra_gradients(model, list(local), stats, u, y)
    order = {id(p): i for i, p in enumerate(model.efh.ordered_parameters())}
    perm = [order[id(p)] for _, p in _named_params(model)]
    return [local[i] for i in perm], [bptt[i] for i in perm]


def local_and_bptt_gradients(model: nn.Module, y: torch.Tensor, u0: torch.Tensor | None = None,
                             generator: torch.Generator | None = None, caller: str = "this"
                             ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Validate y and u0, then (local-rule gradients, full-BPTT gradients) in the order of
    ``model.named_parameters()`` (trainable ones): :func:`rvae_gradients` for an RVAE/TVAE,
    :func:`harmonium_gradients` for a TRBM/RTRBM. ``generator`` defaults to a fixed stream."""
    if not torch.is_tensor(y) or y.dim() != 3:
        got = tuple(y.shape) if torch.is_tensor(y) else type(y).__name__
        raise ValueError(f"y must be a (T, B, n_obs) tensor, got {got}")
    if y.shape[0] < 1 or y.shape[1] < 1:
        raise ValueError(f"y must have T >= 1 and B >= 1, got shape {tuple(y.shape)}")
    if not torch.isfinite(y).all():
        raise ValueError("y contains non-finite values")
    generator = make_generator(0, "gradient_alignment") if generator is None else generator
    if isinstance(model, RVAE):
        return rvae_gradients(model, y.to(next(model.parameters()).dtype), u0, generator)
    if isinstance(model, TRBM):
        if u0 is not None and (not torch.is_tensor(u0) or bool((u0 != 0).any())):
            raise ValueError("the RTRBM's BPTT recursion starts from u_0 = 0: pass u0=None")
        return harmonium_gradients(model, y.to(model.efh.b_hid.dtype), generator)
    name = getattr(model, "name", type(model).__name__)
    raise ValueError(f"{caller} needs an RVAE/TVAE or a TRBM/RTRBM, got {name}: "
                     "it has no BPTT version of the same objective here")


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
    local, bptt = local_and_bptt_gradients(model, y, u0, generator, "gradient_alignment")
    names = [n for n, _ in _named_params(model)]
    out = {n: cosine(a, b) for n, a, b in zip(names, local, bptt, strict=True)}
    out["overall"] = cosine(torch.cat([g.flatten() for g in local]),
                            torch.cat([g.flatten() for g in bptt]))
    if not all(math.isfinite(v) for v in out.values()):
        raise FloatingPointError("non-finite gradient: the model has diverged")
    return out
