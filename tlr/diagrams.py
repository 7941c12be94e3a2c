"""Graphical models of the poster's five recurrent models, drawn by code (matplotlib only).

The drawings follow :mod:`tlr.models` (``refh.py``, ``trbm.py``, ``rtrbm.py``, ``rvae.py``,
``tvae.py``): each model is summed up by a :class:`ModelSpec` (what u_{t-1} is to the model,
whether a gradient flows back in time), and one routine draws any spec, unrolled over two or
three time steps. Symbols are those of the book's notation page.

Visual language, the same in all five diagrams:

* **Nodes.** Circles are random variables: the observation y_t is *shaded* (observed), the
  latent x_t is white. Diamonds are the deterministic states u_t handed from step to step; a
  diamond is shaded where the model treats u_{t-1} as data that it must explain (rEFH, rVAE)
  and white where u_{t-1} is only a clamped input (TRBM, RTRBM, TVAE). A rounded box is a
  deterministic feature of the recognition model: the encoder output h_t = enc(y_t).
* **Edges.** A plain line is an undirected harmonium coupling (a term of the energy). A solid
  arrow is a directed dependence: a generative conditional p̂ of the VAEs, or the dynamic
  hidden bias W_u u_{t-1} of the TRBM/RTRBM. A dotted (blue) arrow belongs to the recognition
  model q̌(x_t | u_{t-1}, y_t). A thick grey arrow hands the state on, u_t = E[x_t | u_{t-1},
  y_t] (the hidden means, or the posterior mean ν_t); two strokes across it mean that no
  gradient crosses it (u_t is detached: a temporally local rule). A dashed red arc running
  backwards in time is the gradient of backprop through time (the RTRBM).

Fills are greys and every distinction is also carried by a shape or a line style, so the
diagrams survive greyscale printing; a single diagram at the default ``unroll=2`` is 10 cm wide.
Every node patch and every edge artist carries a ``gid`` (``"node:x0"``, ``"edge:bptt"``, ...)
so that tests can inspect a drawing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Polygon

__all__ = ["MODEL_NAMES", "ModelSpec", "SPECS", "draw_model", "draw_all"]

MODEL_NAMES = ("rEFH", "TRBM", "RTRBM", "rVAE", "TVAE")


@dataclass(frozen=True)
class ModelSpec:
    """What a diagram shows about one model (read off its file in :mod:`tlr.models`)."""

    family: str  # "harmonium" (undirected, trained by CD) or "vae" (directed, ELBO)
    u_is_data: bool  # u_{t-1} is explained by the model (a joint) instead of conditioned on
    bptt: bool  # the gradient flows back in time through u_{t-1}
    caption: str  # one line under the title


SPECS: dict[str, ModelSpec] = {
    "rEFH": ModelSpec("harmonium", True, False,
                      r"joint $\hat p(u_{t-1}, y_t)$; $u_{t-1}$ reconstructed in CD"),
    "TRBM": ModelSpec("harmonium", False, False,
                      r"conditional $\hat p(y_t \mid u_{t-1})$; $u_{t-1}$ clamped"),
    "RTRBM": ModelSpec("harmonium", False, True,
                       r"TRBM + BPTT along $u_t = \sigma(W_u u_{t-1} + W_y y_t + b_x)$"),
    "rVAE": ModelSpec("vae", True, False,
                      r"joint $\hat p(u_{t-1}, y_t)$, late fusion; $u_t = \nu_t$"),
    "TVAE": ModelSpec("vae", False, False,
                      r"conditional prior $\hat p(x_t \mid u_{t-1})$, late fusion"),
}

# Geometry, in data units (equal aspect ratio): the u's and y's on the bottom row, x above y.
_HALF = 1.8  # horizontal distance u_{t-1} -> y_t -> u_t
_TOP = 2.4  # height of the latent row
_R = 0.4  # circle radius
_D = 0.54  # diamond half-diagonal
_BOX = (0.6, 0.42, 0.04)  # encoder box: width, height, rounding pad
_H_AT = (0.47, 1.12)  # encoder box centre, relative to y_t
_GAP = 0.05  # space between an edge and a node border
_FONT = 9.0

_INK, _SHADE, _GREY, _REC, _BPTT = "0.1", "0.78", "0.55", "#1f4e8c", "#c0392b"
# Edge styles: colour, line width, dash pattern (None: solid), head (length, width) in points.
_STYLES: dict[str, tuple[str, float, tuple | None, tuple[float, float] | None]] = {
    "undirected": (_INK, 1.4, None, None),
    "directed": (_INK, 1.3, None, (5.5, 2.8)),
    "recognition": (_REC, 1.4, (0, (1.0, 1.7)), (5.5, 2.8)),
    "handoff": (_GREY, 2.6, None, (6.5, 3.4)),
    "bptt": (_BPTT, 1.4, (0, (4.0, 2.5)), (5.5, 2.8)),
}


class _Node(NamedTuple):
    kind: str  # "circle", "diamond" or "box"
    xy: tuple[float, float]

    def inside(self, p: np.ndarray, margin: float) -> bool:
        dx, dy = abs(p[0] - self.xy[0]), abs(p[1] - self.xy[1])
        if self.kind == "circle":
            return dx * dx + dy * dy < (_R + margin) ** 2
        if self.kind == "diamond":
            return dx + dy < _D + margin * 2**0.5
        w, h, pad = _BOX
        return dx < w / 2 + pad + margin and dy < h / 2 + pad + margin


def _sub(k: int) -> str:
    """The time index t + k in TeX: t-1, t, t+1."""
    return "t" if k == 0 else f"t{k:+d}"


def _label(var: str, k: int) -> str:
    return f"${var}_{{{_sub(k)}}}$"


def _node(ax: Axes, kind: str, xy: tuple[float, float], label: str, shaded: bool,
          gid: str, fontsize: float = _FONT) -> _Node:
    fc, (x, y) = (_SHADE if shaded else "white"), xy
    if kind == "circle":
        patch = Circle(xy, _R, fc=fc, ec=_INK, lw=1.3)
    elif kind == "diamond":
        patch = Polygon([(x - _D, y), (x, y + _D), (x + _D, y), (x, y - _D)], fc=fc, ec=_INK,
                        lw=1.3)
    else:
        w, h, pad = _BOX
        patch = FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle=f"round,pad={pad}",
                               fc=fc, ec=_INK, lw=1.1)
    patch.set_gid(gid)
    patch.set_zorder(3)
    ax.add_patch(patch)
    ax.text(x, y, label, ha="center", va="center", fontsize=fontsize - (kind == "box"),
            zorder=4)
    return _Node(kind, xy)


def _dense(pts: np.ndarray, n: int = 200) -> np.ndarray:
    """Resample a coarse polyline (fewer than n points) to n points."""
    if len(pts) >= n:
        return pts
    t = np.linspace(0.0, len(pts) - 1.0, n)
    return np.column_stack([np.interp(t, np.arange(len(pts)), pts[:, i]) for i in (0, 1)])


def _stroke(ax: Axes, pts: np.ndarray, style: str, gid: str, back: float) -> None:
    """Draw a polyline (n, 2) in ``style``; arrows get a solid head whose tip is pts[-1].

    The shaft stops ``back`` data units before the tip, under the head, so that dotted and
    dashed shafts never fray the head's outline.
    """
    color, lw, dash, head = _STYLES[style]
    pts = _dense(pts)
    if head is not None:
        tip, tangent = pts[-1], pts[-1] - pts[-2]
        tangent = tangent / np.hypot(*tangent)
        keep = np.hypot(*(pts - tip).T) > back
        shaft = pts[keep]
        arrow = FancyArrowPatch(tip - 1e-3 * tangent, tip, shrinkA=0, shrinkB=0, color=color,
                                lw=1.0, arrowstyle=f"-|>,head_length={head[0]},"
                                f"head_width={head[1]}", zorder=2.5)
        arrow.set_gid(gid)
        ax.add_patch(arrow)
    else:
        shaft = pts
    line = Line2D(shaft[:, 0], shaft[:, 1], color=color, lw=lw, zorder=2,
                  linestyle=dash if dash is not None else "-", solid_capstyle="butt")
    line.set_gid(gid)
    ax.add_line(line)


def _edge(ax: Axes, a: _Node, b: _Node, style: str, gid: str, rad: float = 0.0) -> np.ndarray:
    """An edge from node a to node b, from border to border (``_GAP`` away from each).

    The edge is the quadratic Bezier curve whose control point lies ``rad`` times the distance
    a-b to the left of the midpoint (rad = 0: a straight line).
    """
    A, B = np.asarray(a.xy, float), np.asarray(b.xy, float)
    d = B - A
    C = (A + B) / 2 + rad * np.array([-d[1], d[0]])
    s = np.linspace(0.0, 1.0, 401)[:, None]
    pts = (1 - s) ** 2 * A + 2 * (1 - s) * s * C + s**2 * B
    out = np.array([not (a.inside(p, _GAP) or b.inside(p, _GAP)) for p in pts])
    _stroke(ax, pts[out], style, gid, back=0.12)
    return pts[out]


def _strokes_across(ax: Axes, pts: np.ndarray, size: float = 0.17, gap: float = 0.07,
                    at: float = 0.5) -> None:
    """Two short strokes across the polyline ``pts`` at the fraction ``at`` of its length:
    no gradient crosses this edge."""
    pts = _dense(pts)
    dist = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])
    i = int(np.searchsorted(dist, at * dist[-1]))
    j, k = max(i - 1, 0), min(i + 1, len(pts) - 1)
    along = (pts[k] - pts[j]) / np.hypot(*(pts[k] - pts[j]))
    across = np.array([-along[1], along[0]]) * size
    for g in (-gap, gap):
        c = pts[i] + g * along
        line = Line2D([c[0] - across[0], c[0] + across[0]], [c[1] - across[1], c[1] + across[1]],
                      color=_INK, lw=1.3, zorder=5, solid_capstyle="butt")
        line.set_gid("stopgrad")
        ax.add_line(line)


_YLIM_ALL = (-1.0, _TOP + 0.95)  # fits every model: draw_all aligns its panels with it


def _draw(ax: Axes, name: str, spec: ModelSpec, unroll: int,
          ylim: tuple[float, float] | None = None) -> None:
    """The unrolled graph of one model: steps t, t+1 (unroll=2) or t-1, t, t+1 (unroll=3)."""
    ks = list(range(-1, 2)) if unroll == 3 else [0, 1]
    vae = spec.family == "vae"
    left, right = 0.0, len(ks) * 2 * _HALF
    ax.set_xlim(left - 0.95, right + 0.95)
    ax.set_ylim(ylim or (-1.0 if spec.bptt else -0.6, _TOP + (0.95 if vae and spec.u_is_data
                                                              else 0.5)))
    ax.set_aspect("equal")
    ax.axis("off")
    # Node labels scale with the drawing (9 pt at 10 cm for two steps), so they fit the nodes.
    box, fig = ax.get_position(), ax.figure
    inch_per_unit = min(box.width * fig.get_figwidth() / np.ptp(ax.get_xlim()),
                        box.height * fig.get_figheight() / np.ptp(ax.get_ylim()))
    fs = float(np.clip(_FONT * inch_per_unit / 0.42, 6.0, 12.0))
    # The states: u_{k-1} for every step k, then the last hand-off u_{k_max}.
    u = {k: _node(ax, "diamond", (i * 2 * _HALF, 0.0), _label("u", k), spec.u_is_data,
                  f"node:u{k}", fs) for i, k in enumerate([ks[0] - 1, *ks])}
    for k in ks:
        cx = u[k - 1].xy[0] + _HALF
        y = _node(ax, "circle", (cx, 0.0), _label("y", k), True, f"node:y{k}", fs)
        x = _node(ax, "circle", (cx, _TOP), _label("x", k), False, f"node:x{k}", fs)
        if not vae:
            _edge(ax, x, y, "undirected", "edge:coupling")
            if spec.u_is_data:  # u_{t-1} is a visible group next to y_t
                _edge(ax, x, u[k - 1], "undirected", "edge:coupling")
            else:  # u_{t-1} enters as the dynamic hidden bias W_u u_{t-1}
                _edge(ax, u[k - 1], x, "directed", "edge:bias")
        else:
            h = _node(ax, "box", (cx + _H_AT[0], _H_AT[1]), _label("h", k), False, f"node:h{k}",
                      fs)
            _edge(ax, x, y, "directed", "edge:generative")
            if spec.u_is_data:  # p̂(u_{t-1} | x_t): u_{t-1} is a child of x_t
                _edge(ax, x, u[k - 1], "directed", "edge:generative")
                ax.text(cx, _TOP + _R + 0.1, r"$\mathcal{N}(0, I)$", ha="center", va="bottom",
                        fontsize=fs - 1, color=_INK)
            else:  # the conditional prior p̂(x_t | u_{t-1})
                _edge(ax, u[k - 1], x, "directed", "edge:prior")
            _edge(ax, y, h, "recognition", "edge:recognition")
            _edge(ax, h, x, "recognition", "edge:recognition")
            _edge(ax, u[k - 1], x, "recognition", "edge:recognition", rad=0.3)
        handoff = _edge(ax, x, u[k], "handoff", "edge:handoff", rad=0.1)
        if not spec.bptt:
            _strokes_across(ax, handoff, at=0.6)
    if spec.bptt:  # the adjoint runs back along the chain: u_t -> u_{t-1}
        for k in ks:
            _edge(ax, u[k], u[k - 1], "bptt", "edge:bptt", rad=0.36)
        ax.text(u[ks[-1]].xy[0] - _HALF, -0.72, "BPTT", color=_BPTT, fontsize=fs - 1,
                ha="center", va="top", fontweight="bold")
    for xe in (left - 0.72, right + 0.72):  # the chain goes on at both ends
        ax.text(xe, 0.0, r"$\cdots$", ha="center", va="center", fontsize=fs, color="0.4")
    ax.set_title(f"{name}\n", fontsize=_FONT + 2, fontweight="bold", pad=2)
    ax.text(0.5, 1.0, spec.caption, transform=ax.transAxes, ha="center", va="bottom",
            fontsize=_FONT - 1, color="0.25")


# Legend texts; drawn by hand so that the arrows keep their heads and strokes.
_LEGEND = {
    "observed": r"observed $y_t$",
    "latent": r"latent $x_t$",
    "u_data": r"state $u_{t-1}$, data",
    "u_input": r"state $u_{t-1}$, clamped input",
    "box": r"encoder $h_t = \mathrm{enc}(y_t)$",
    "undirected": "undirected coupling",
    "directed": r"generative $\hat p$ / dynamic bias",
    "recognition": "recognition $\\mathit{q\u030c}$",
    "handoff": r"hand-off $u_t = \mathrm{E}[x_t \mid \cdot\,]$",
    "stopgrad": "no gradient back in time",
    "bptt": "BPTT gradient",
}
_LEGEND_BY_FAMILY = {
    "harmonium": {"directed": r"dynamic bias $W_u u_{t-1}$"},
    "vae": {"directed": r"generative $\hat p$", "handoff": r"hand-off $u_t = \nu_t$"},
}


def _legend_entries(spec: ModelSpec | None) -> list[tuple[str, str]]:
    """(glyph, text) pairs: the entries one model uses, or all of them (``spec=None``)."""
    if spec is None:
        return list(_LEGEND.items())
    keys = ["observed", "latent", "u_data" if spec.u_is_data else "u_input"]
    if spec.family == "vae":
        keys += ["box", "directed", "recognition"]
    else:
        keys += ["undirected"] + ([] if spec.u_is_data else ["directed"])
    keys += ["handoff", "bptt" if spec.bptt else "stopgrad"]
    texts = {**_LEGEND, **_LEGEND_BY_FAMILY[spec.family]}
    return [(k, texts[k]) for k in keys]


def _draw_legend(ax: Axes, entries: list[tuple[str, str]], ncol: int) -> None:
    """One glyph and one text per entry, in ``ncol`` columns; the axes' units are inches."""
    ax.axis("off")
    box, fig = ax.get_position(), ax.figure
    w_in, h_in = box.width * fig.get_figwidth(), box.height * fig.get_figheight()
    ax.set_xlim(0, w_in)
    ax.set_ylim(-h_in, 0)
    nrow = -(-len(entries) // ncol)
    row_h = min(0.22, h_in / nrow)
    g = min(0.07, 0.3 * row_h)  # glyph half-size
    for i, (key, text) in enumerate(entries):
        col, row = divmod(i, nrow)
        x0, y0 = col * w_in / ncol + 0.08, -(row + 0.5) * row_h
        xc, seg = x0 + 0.15, np.array([[x0, y0], [x0 + 0.3, y0]])
        fc = _SHADE if key in ("observed", "u_data") else "white"
        if key in ("observed", "latent"):
            ax.add_patch(Circle((xc, y0), g, fc=fc, ec=_INK, lw=1.1))
        elif key in ("u_data", "u_input"):
            s = 1.3 * g
            ax.add_patch(Polygon([(xc - s, y0), (xc, y0 + s), (xc + s, y0), (xc, y0 - s)],
                                 fc=fc, ec=_INK, lw=1.1))
        elif key == "box":
            ax.add_patch(FancyBboxPatch((xc - 1.25 * g, y0 - 0.8 * g), 2.5 * g, 1.6 * g, fc=fc,
                                        ec=_INK, boxstyle="round,pad=0.015", lw=1.0))
        else:
            _stroke(ax, seg, "handoff" if key == "stopgrad" else key, "legend", back=0.04)
            if key == "stopgrad":
                _strokes_across(ax, seg, size=0.06, gap=0.025, at=0.4)
        ax.text(x0 + 0.4, y0, text, va="center", ha="left", fontsize=_FONT - 1.5)


def _spec(name: str) -> tuple[str, ModelSpec]:
    for key, spec in SPECS.items():
        if key.lower() == str(name).lower():
            return key, spec
    raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODEL_NAMES)}")


def draw_model(name: str, ax: Axes | None = None, unroll: int = 2,
               legend: bool = True) -> Figure:
    """Draw the graphical model of ``name`` (one of :data:`MODEL_NAMES`, any case).

    ``unroll``: 2 (steps t, t+1) or 3 (steps t-1, t, t+1). With ``ax=None`` a new figure 10 cm
    wide (13 cm for ``unroll=3``) is made, with the model's legend below the graph unless
    ``legend=False``; with an ``ax`` the graph is drawn into it and the legend is left to the
    caller. Returns the figure. Raises ``ValueError`` for an unknown name or ``unroll``.
    """
    key, spec = _spec(name)
    if unroll not in (2, 3):
        raise ValueError(f"unroll must be 2 or 3, got {unroll!r}")
    if ax is None:
        entries = _legend_entries(spec)
        width = 3.94 if unroll == 2 else 5.2
        graph_h = width * (0.46 if unroll == 2 else 0.33) + 0.4  # + title and caption
        leg_h = 0.2 * -(-len(entries) // 2) + 0.08 if legend else 0.0
        fig = plt.figure(figsize=(width, graph_h + leg_h))
        top, split = 1 - 0.42 / (graph_h + leg_h), leg_h / (graph_h + leg_h)
        ax = fig.add_axes((0.01, split, 0.98, top - split))
        if legend:
            _draw_legend(fig.add_axes((0.0, 0.0, 1.0, split)), entries, ncol=2)
    _draw(ax, key, spec, unroll)
    return ax.figure


def draw_all(unroll: int = 2) -> Figure:
    """The five models in a 2 x 3 grid (harmoniums on top, VAEs below) and a shared legend."""
    if unroll not in (2, 3):
        raise ValueError(f"unroll must be 2 or 3, got {unroll!r}")
    fig, axes = plt.subplots(2, 3, figsize=(12.5, 5.6 if unroll == 2 else 4.6))
    fig.subplots_adjust(left=0.01, right=0.99, top=0.92, bottom=0.01, wspace=0.04, hspace=0.3)
    for ax, name in zip(axes.flat, MODEL_NAMES, strict=False):
        _draw(ax, name, SPECS[name], unroll, ylim=_YLIM_ALL)
    _draw_legend(axes.flat[-1], _legend_entries(None), ncol=1)
    return fig
