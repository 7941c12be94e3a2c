"""RTRBM: the recurrent temporal RBM (Sutskever, Hinton & Taylor 2008), trained with BPTT.

Sources §6.1-6.2 (Makin's ``BPTT.m``). Same network and CD step as the
:class:`~tlr.models.trbm.TRBM` (u_{t-1} = r_{t-1} = x̄_{t-1} enters as a clamped dynamic bias),
plus the gradient that flows back through the mean-field chain
r_t = σ(r_{t-1} W_u + y_t W_y + b_x): :func:`~tlr.models.trbm.bptt_term`,

    G_T = 0,    G_t = ((D_{t+1} + G_{t+1}) W_uᵀ) ⊙ σ'_t,
    ΔW_u += Σ_t u_{t-1}ᵀ G_t,   ΔW_y += Σ_t y_tᵀ G_t,   Δb_x += Σ_t G_t   (ascent directions),

with D_t = x⁺_t - x̄⁻_t (the CD statistic at step t) and σ'_t = x̄_t (1 - x̄_t).
"""

from __future__ import annotations

from tlr.models.trbm import TRBM, bptt_term

__all__ = ["RTRBM", "bptt_term"]


class RTRBM(TRBM):
    """TRBM + backprop through time along the mean-field recurrence."""

    name = "RTRBM"
    bptt = True
