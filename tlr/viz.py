"""Plotting helpers for the book: pure functions that take tensors and return a Figure.

Each function draws one figure from data it is given (it computes nothing that a chapter would
want to check), so a chapter shows the static figure and a widget can redraw it. Time-major
inputs as everywhere in tlr: ``z`` is (T, B, 2), ``y`` is (T, B, n_neurons), ``gain`` (T, B).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatterSciNotation

from tlr.data.lds_ppc import PPCConfig
from tlr.evaluation.ppc import wrap_error

__all__ = [
    "plot_trajectories",
    "plot_tuning_curves",
    "plot_raster",
    "plot_estimates",
    "plot_binned_variance",
    "plot_mse_vs_iterations",
    "plot_withheld",
    "plot_mse_curves",
    "side_by_side",
    "animate_frames",
]


def _np(x: torch.Tensor | np.ndarray | Sequence[float]) -> np.ndarray:
    return x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)


def plot_trajectories(z: torch.Tensor, n_show: int = 4, dt: float | None = None) -> Figure:
    """Position and velocity of the first ``n_show`` latent trajectories ``z`` (T, B, 2)."""
    z = _np(z)[:, :n_show]
    t = np.arange(z.shape[0]) * (dt if dt else 1.0)
    fig, axes = plt.subplots(2, 1, figsize=(8, 4.5), sharex=True, layout="constrained")
    labels = ("position $s_t$ (rad)", r"velocity $\dot s_t$ (rad/s)")
    for k, (ax, label) in enumerate(zip(axes, labels, strict=True)):
        ax.plot(t, z[..., k], lw=1)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_ylabel(label)
    axes[-1].set_xlabel("time (s)" if dt else "time step $t$")
    return fig


def plot_tuning_curves(s: torch.Tensor, rates: torch.Tensor, ppc: PPCConfig) -> Figure:
    """Unit-gain tuning curves ``rates`` (S, n_neurons) over stimuli ``s`` (S,), and their sum."""
    s, rates = _np(s), _np(rates)
    fig, ax = plt.subplots(figsize=(8, 3.2), layout="constrained")
    colours = plt.get_cmap("hsv")(np.arange(ppc.n_neurons) / ppc.n_neurons)  # cyclic: a ring
    for i in range(ppc.n_neurons):
        ax.plot(s, rates[:, i], lw=1, color=colours[i])
    ax.plot(s, rates.sum(-1), "k--", lw=1, label=r"$\Sigma_i\, f_i(s)$")
    ax.plot(_np(ppc.preferred), np.ones(ppc.n_neurons), "k|", ms=8, label=r"preferred $\mu_i$")
    seam = ppc.s_min + ppc.period
    ax.axvspan(ppc.s_min, seam, color="0.93", zorder=0, label="one period of the ring")
    ax.set_xlabel("stimulus $s$ (rad)")
    ax.set_ylabel("$f_i(s)$")
    ax.legend(loc="upper right", fontsize=8, ncol=3)
    ax.set_ylim(0, 3.4)
    return fig


def plot_raster(
    y: torch.Tensor, s: torch.Tensor, gain: torch.Tensor, ppc: PPCConfig, t_max: int = 300
) -> Figure:
    """Counts ``y`` (T, n_neurons) of one trajectory, with its position ``s`` (T,) and gain (T,).

    The position is drawn in neuron-index units on the ring, (s_w - s_min)/spacing, so it runs
    over the neurons that respond to it; it jumps where it crosses the ring's seam.
    """
    y, g = _np(y)[:t_max], _np(gain)[:t_max]
    idx = _np((ppc.wrap(s[:t_max]) - ppc.s_min) / ppc.spacing)
    idx = np.where(np.abs(np.diff(idx, prepend=idx[0])) > ppc.n_neurons / 2, np.nan, idx)
    fig, (ax, axg) = plt.subplots(2, 1, figsize=(8, 5), sharex=True, layout="constrained",
                                  gridspec_kw={"height_ratios": [3, 1.2]})
    im = ax.imshow(y.T, aspect="auto", origin="lower", cmap="Greys", interpolation="nearest",
                   extent=(-0.5, len(y) - 0.5, -0.5, ppc.n_neurons - 0.5))
    ax.plot(idx, color="C3", lw=1.5, label="true position $s_t$")
    ax.set_ylabel("neuron $i$")
    ax.legend(loc="upper right", fontsize=8)
    fig.colorbar(im, ax=ax, label="spike count $y_t^i$", pad=0.01)
    per_gain = np.sqrt(2 * np.pi) * ppc.tuning_std / ppc.spacing  # Σ_i f_i(s), flat on the ring
    axg.plot(y.sum(-1) / per_gain, ".", color="C1", ms=2,
             label=r"$\Sigma_i\, y_t^i \,/\, \Sigma_i\, f_i$")
    axg.plot(g, color="C0", lw=1, label="gain $g_t$")
    axg.set_ylabel("gain")
    axg.set_ylim(0, 1.25 * max(g.max(), np.percentile(y.sum(-1) / per_gain, 99.5)))
    axg.set_xlabel("time step $t$")
    axg.legend(loc="upper right", fontsize=7, ncol=2)
    return fig


def plot_estimates(
    s_true: torch.Tensor,
    estimates: Mapping[str, torch.Tensor],
    period: float,
    title: str | None = None,
    t0: int = 0,
) -> Figure:
    """Position estimates (T,) of several filters against the truth ``s_true`` (T,), and errors.

    Top: each estimate on the image of the ring nearest the truth, s + wrap(ŝ - s), the same
    wrapping the torus MSE uses. Bottom: the wrapped errors wrap(ŝ - s). The first estimate is
    drawn as dots (meant for the noisy per-step readout), the others as lines. ``t0`` labels
    the first step on the time axis.
    """
    s = _np(s_true)
    t = t0 + np.arange(len(s))
    fig, (ax, axe) = plt.subplots(2, 1, figsize=(8, 4.8), sharex=True, layout="constrained",
                                  gridspec_kw={"height_ratios": [2, 1]})
    ax.plot(t, s, color="k", lw=2, label="truth")
    axe.axhline(0, color="k", lw=1)
    for k, (name, est) in enumerate(estimates.items()):
        e = _np(wrap_error(est.to(torch.float64) - s_true.to(torch.float64), period))
        style = dict(ls="", marker=".", ms=3) if k == 0 else dict(lw=1.2)
        ax.plot(t, s + e, label=name, color=f"C{k}", **style)
        axe.plot(t, e, color=f"C{k}", **style)
    ax.set_ylabel("position (rad)")
    ax.legend(fontsize=8, ncol=len(estimates) + 1, loc="best")
    axe.set_ylabel("error (rad)")
    axe.set_xlabel("time step $t$")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def plot_binned_variance(
    total: torch.Tensor, emp_var: torch.Tensor, sigma2: float, counts: torch.Tensor
) -> Figure:
    """Empirical error variance per total spike count against the prediction σ²/Σ_i y_i."""
    total, emp_var, counts = _np(total), _np(emp_var), _np(counts)
    n = np.linspace(total.min(), total.max(), 200)
    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    ax.plot(n, sigma2 / n, "k", lw=1, label=r"$\sigma_{\mathrm{tc}}^2 \,/\, \Sigma_i\, y_t^i$")
    sem = emp_var * np.sqrt(2 / np.maximum(counts - 1, 1))  # s.e. of a variance (Gaussian)
    ax.errorbar(total, emp_var, yerr=sem, fmt="o", ms=3, color="C3",
                label=r"measured mean $(\bar s_t - s_t)^2$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"total spike count $\Sigma_i\, y_t^i$")
    ax.set_ylabel("error variance (rad$^2$)")
    ax.legend(fontsize=8)
    return fig


def plot_mse_vs_iterations(
    iterations: Sequence[int], mse: Sequence[float], references: Mapping[str, float]
) -> Figure:
    """Test MSE of an EM fit against its iteration count, with horizontal reference lines."""
    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    ax.plot(iterations, mse, "o-", color="C2")
    for j, (name, value) in enumerate(references.items()):
        ax.axhline(value, color=f"C{j + 3}", ls="--", lw=1)
        ax.annotate(name, (iterations[-1], value), xytext=(0, -3), textcoords="offset points",
                    color=f"C{j + 3}", fontsize=8, ha="right", va="top")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("EM iterations")
    ax.set_ylabel("test MSE (rad$^2$)")
    low = min(*mse, *references.values())
    ax.set_ylim(bottom=low / 1.15)
    ax.set_title("test MSE of the KF-2 fit against EM iterations", fontsize=10)
    return fig


def plot_withheld(
    s_true: torch.Tensor,
    estimates: Mapping[str, torch.Tensor],
    period: float,
    start: int,
    length: int,
    t0: int = 0,
    title: str | None = None,
) -> Figure:
    """:func:`plot_estimates` with the withheld steps [start, start + length) shaded.

    ``start`` is in the same time units as ``t0`` (absolute steps). Estimates may hold NaN
    where a readout has nothing to say (e.g. the centre of mass of a silent population).
    """
    fig = plot_estimates(s_true, estimates, period, title=title, t0=t0)
    for k, ax in enumerate(fig.axes):
        ax.axvspan(start - 0.5, start + length - 0.5, color="0.88", zorder=0,
                   label="no spikes" if k == 0 else None)
    fig.axes[0].legend(fontsize=8, ncol=3, loc="best")
    return fig


def plot_mse_curves(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    references: Mapping[str, float],
    xlabel: str,
    logx: bool = False,
    title: str | None = None,
) -> Figure:
    """MSE curves ``{label: (x, mse)}`` on a log y-axis, with horizontal reference levels."""
    fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
    for j, (name, (x, mse)) in enumerate(curves.items()):
        ax.plot(_np(x), _np(mse), "o-", ms=3.5, lw=1.2, color=f"C{j}", label=name)
    for j, (name, value) in enumerate(references.items()):
        ax.axhline(value, color="k", ls=("--", ":", "-.", (0, (1, 3)))[j % 4], lw=1, label=name)
    if logx:
        ax.set_xscale("log")
    ax.set_yscale("log")
    # label the 2x and 5x ticks too when the axis spans only a decade or two
    ax.yaxis.set_minor_formatter(LogFormatterSciNotation(minor_thresholds=(2, 0.5)))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("position MSE (rad$^2$)")
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def side_by_side(panels: Sequence[torch.Tensor], gap: int = 2) -> torch.Tensor:
    """Videos (T, H, W_k) placed left to right, separated by white bars ``gap`` pixels wide."""
    if not panels or any(p.dim() != 3 or p.shape[:2] != panels[0].shape[:2] for p in panels):
        raise ValueError("panels must be (T, H, W) videos with equal T and H, got shapes "
                         f"{[tuple(p.shape) for p in panels]}")
    bar = torch.ones(*panels[0].shape[:2], gap, dtype=panels[0].dtype)
    parts = [x for p in panels for x in (p, bar)][:-1]
    return torch.cat(parts, dim=-1)


# A <link> tag whose href is off-site (http, https or protocol-relative): to_jshtml's Font
# Awesome stylesheet on maxcdn.bootstrapcdn.com.
_REMOTE_LINK = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//[^>]*>\s*",
                          re.IGNORECASE)


def animate_frames(frames: torch.Tensor, interval: int = 100, height: float = 1.6,
                   dpi: int = 64, loop: bool = True) -> str:
    """An HTML/JavaScript player (matplotlib's ``to_jshtml``) for grey frames (T, H, W) in
    [0, 1] (0 black). Every frame is embedded, so keep the figure small; ``height`` inches.

    The player is self-contained: matplotlib's ``<link>`` to Font Awesome on a CDN
    (``maxcdn.bootstrapcdn.com``) is dropped, so an offline page makes no off-site request.
    The buttons' icons come from the page's own Font Awesome (the book's theme ships it);
    where a page has none, the buttons still work and keep their ``title`` tooltips."""
    from matplotlib import animation

    if frames.dim() != 3:
        raise ValueError(f"frames must have shape (T, H, W), got {tuple(frames.shape)}")
    video = _np(frames)
    fig, ax = plt.subplots(figsize=(height * video.shape[2] / video.shape[1], height), dpi=dpi)
    im = ax.imshow(video[0], cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    fig.subplots_adjust(0, 0, 1, 1)
    anim = animation.FuncAnimation(fig, lambda k: [im.set_data(video[k])],
                                   frames=video.shape[0], interval=interval)
    html = anim.to_jshtml(default_mode="loop" if loop else "once")
    plt.close(fig)
    return _REMOTE_LINK.sub("", html)
