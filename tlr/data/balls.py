"""Bouncing balls: Sutskever's RTRBM generator, vectorised over sequences, and Makin's port.

Sources §9 (the book's appendix "Sources and protocols"). §9.2 is Sutskever's script
(``bounce_n`` and ``matricize`` in the verbatim copy ``zhegan27/TSBN_code_NIPS2015``,
``bouncing_balls/data/data_handler_bouncing_balls.py``); §9.4 is Makin's MATLAB port (the 2018 code)
(``getLatentsBouncingBalls.m``, ``getDataBouncingBalls.m``), which differs in the start
positions and in a rendering bug (it multiplies by r² where Sutskever divides).

Every sequence is an independent simulation (§9.2 "Sequences"); all sequences advance together,
one sub-step at a time, and the ball pairs are resolved in the script's order.

Layout is **sequence-major** (unlike the time-major LTI + PPC data): ``frames`` is
``(n_seq, T, res * res)``, ``positions`` and ``velocities`` are ``(n_seq, T, n_balls, 2)``.
Pixel ``k = row * res + col`` of a frame is Sutskever's ``V.reshape(T, res**2)``: the first
coordinate x[..., 0] runs along the columns and x[..., 1] along the rows (§9.2 "Rendering").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from tlr.data.order0 import order0_mse as _order0_mse
from tlr.rng import make_generator
from tlr.validation import check_int

__all__ = [
    "BallsConfig",
    "BallsData",
    "initial_state",
    "integrate",
    "render",
    "simulate_balls",
    "frames_to_images",
    "order0_mse",
]

_RENDER_SCALES = ("divide", "multiply")
_INITS = ("sutskever", "uniform_margin")
_PRESETS = {
    "sutskever": {"render_scale": "divide", "init": "sutskever"},
    "port": {"render_scale": "multiply", "init": "uniform_margin"},
}
_MAX_REJECTION_ROUNDS = 10_000
_RENDER_CHUNK = 1024  # frames rendered at once (buffers stay in cache: ~3.7 MB at 30 x 30)


def _per_ball(name: str, value: float | tuple[float, ...], n: int) -> tuple[float, ...]:
    if isinstance(value, bool):
        raise TypeError(f"BallsConfig.{name} must be a number or a tuple of numbers, got bool")
    if isinstance(value, (int, float)):
        values = (float(value),) * n
    elif isinstance(value, tuple):
        if len(value) != n:
            raise ValueError(
                f"BallsConfig.{name} needs {n} values (one per ball), got {len(value)}"
            )
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise TypeError(f"BallsConfig.{name} must contain numbers, got {value!r}")
        values = tuple(float(v) for v in value)
    else:
        raise TypeError(
            f"BallsConfig.{name} must be a number or a tuple of numbers, "
            f"got {type(value).__name__}"
        )
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"BallsConfig.{name} must be finite and > 0, got {value!r}")
    return values


@dataclass(frozen=True)
class BallsConfig:
    """Physics and rendering of the bouncing-balls data (Sources §9.2, §9.4, §9.8).

    Physics (§9.2, identical in both variants):

    - A square box [0, box_size]²; ``n_balls`` balls of radius ``radius`` and mass ``mass``
      (a number, or one value per ball).
    - Initial velocities v = randn(n_balls, 2), rescaled per sequence so that the norm over all
      balls *jointly* (Frobenius) is ``speed``: Σ_i |v_i|² = speed² = 0.25.
    - Each frame records the positions (and velocities) *first*, then runs ``n_substeps``
      sub-steps of length ``dt``: x += dt·v; walls set the sign of the velocity component
      (v := |v| if x − r < 0, v := −|v| if x + r > box_size; positions are not corrected);
      then every pair (i, j), j < i, in the order (1,0), (2,0), (2,1), ... whose centres are
      closer than r_i + r_j gets the 1-D elastic update along w = (x_i − x_j)/|x_i − x_j|.
      There is no "are they approaching" check, exactly as in the script.

    Start positions (``init``; redrawn for the whole sequence until no two balls overlap,
    |x_i − x_j| ≥ r_i + r_j, and every ball lies inside the walls):

    - ``"sutskever"``: x = 2 + 8·U[0,1) per coordinate, i.e. U[0.2 L, L) for box size L = 10
      (the script hard-codes 2 and 8 with SIZE = 10; for another box size they are scaled by
      L/10 -- our choice, the script has no such case). The wall test then rejects x + r > L.
    - ``"uniform_margin"`` (Makin's port): x = U[r, L − r) per coordinate (``scalefxn``).

    Rendering (§9.2 ``matricize``): pixel centres (k + ½)/res · L, k = 0..res−1, on both axes;
    A = Σ_balls exp(−(d²/r²)⁴) clipped at 1, with d² the squared distance from pixel centre to
    ball centre. ``render_scale="multiply"`` reproduces the port's bug exp(−(d²·r²)⁴) (§9.4),
    so the balls look like radius 1/r ≈ 0.83.

    Use :meth:`preset` for the two variants: ``"sutskever"`` (the default) and ``"port"``
    (render_scale="multiply", init="uniform_margin").

    Choices where the sources leave room: both variants use Sutskever's pixel order (row-major,
    rows = y); the port's MATLAB ``reshape`` is column-major, i.e. its frames are the transpose,
    which changes no MSE. The random draws are torch's, not numpy's or MATLAB's: the same
    distributions, not the same numbers.
    """

    n_balls: int = 3
    radius: float | tuple[float, ...] = 1.2
    mass: float | tuple[float, ...] = 1.0
    box_size: float = 10.0
    speed: float = 0.5  # Frobenius norm of the (n_balls, 2) initial velocity matrix
    dt: float = 0.5  # sub-step length (the script's eps)
    n_substeps: int = 2  # int(1/eps) in the script
    resolution: int = 30  # pixels per side: res² = 900 visible units
    T: int = 100  # default sequence length (frames)
    render_scale: str = "divide"  # "divide" (Sutskever) or "multiply" (Makin's port bug)
    init: str = "sutskever"  # "sutskever" (2 + 8U) or "uniform_margin" (U[r, L - r], port)

    def __post_init__(self) -> None:
        for name in ("n_balls", "n_substeps", "resolution", "T"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"BallsConfig.{name} must be an int, got {type(v).__name__}")
        for name, lo in (("n_balls", 1), ("n_substeps", 1), ("resolution", 1), ("T", 1)):
            if getattr(self, name) < lo:
                raise ValueError(f"BallsConfig.{name} must be >= {lo}, got {getattr(self, name)}")
        for name in ("box_size", "speed", "dt"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"BallsConfig.{name} must be a number, got {type(v).__name__}")
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"BallsConfig.{name} must be finite and > 0, got {v}")
        radii = _per_ball("radius", self.radius, self.n_balls)
        _per_ball("mass", self.mass, self.n_balls)
        if self.render_scale not in _RENDER_SCALES:
            raise ValueError(
                f"BallsConfig.render_scale must be one of {_RENDER_SCALES}, "
                f"got {self.render_scale!r}"
            )
        if self.init not in _INITS:
            raise ValueError(f"BallsConfig.init must be one of {_INITS}, got {self.init!r}")
        lo = 0.2 * self.box_size if self.init == "sutskever" else 0.0
        for r in radii:
            if not max(lo, r) < self.box_size - r:
                raise ValueError(
                    f"a ball of radius {r} cannot start inside a box of size {self.box_size} "
                    f"with init={self.init!r}"
                )

    @classmethod
    def preset(cls, name: str, **overrides: object) -> BallsConfig:
        """``"sutskever"`` (§9.2) or ``"port"`` (Makin's port, §9.4), with optional overrides."""
        if name not in _PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {tuple(_PRESETS)}")
        return cls(**{**_PRESETS[name], **overrides})  # type: ignore[arg-type]

    @property
    def variant(self) -> str:
        """``"sutskever"``, ``"port"`` or ``"mixed"`` (one flag of each)."""
        for name, flags in _PRESETS.items():
            if self.render_scale == flags["render_scale"] and self.init == flags["init"]:
                return name
        return "mixed"

    @property
    def radii(self) -> torch.Tensor:
        """Radii, shape (n_balls,), float64."""
        return torch.tensor(_per_ball("radius", self.radius, self.n_balls), dtype=torch.float64)

    @property
    def masses(self) -> torch.Tensor:
        """Masses, shape (n_balls,), float64."""
        return torch.tensor(_per_ball("mass", self.mass, self.n_balls), dtype=torch.float64)

    @property
    def n_pixels(self) -> int:
        """Visible units per frame, resolution² (900)."""
        return self.resolution**2

    @property
    def pixel_centres(self) -> torch.Tensor:
        """(k + ½)/res · box_size, k = 0..res−1 (``ar(0, 1, 1/res) * SIZE``), float64."""
        k = torch.arange(self.resolution, dtype=torch.float64)
        return (k + 0.5) / self.resolution * self.box_size


class BallsData(NamedTuple):
    """One bouncing-balls data set (sequence-major)."""

    frames: torch.Tensor  # (n_seq, T, res²) float32 in [0, 1]
    positions: torch.Tensor  # (n_seq, T, n_balls, 2) float64: centres recorded at each frame
    velocities: torch.Tensor  # (n_seq, T, n_balls, 2) float64: velocities at the same instants


def _check_config(config: object) -> BallsConfig:
    if config is None:
        return BallsConfig()
    if not isinstance(config, BallsConfig):
        raise TypeError(f"config must be a BallsConfig or None, got {type(config).__name__}")
    return config


def _pairs(n: int) -> list[tuple[int, int]]:
    """Ball pairs in the script's loop order: for i in range(n): for j in range(i)."""
    return [(i, j) for i in range(n) for j in range(i)]


def initial_state(
    n_seq: int, config: BallsConfig | None = None, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Start positions and velocities, each (n_seq, n_balls, 2), float64 (Sources §9.2, §9.4).

    Velocities: randn, divided by their joint norm per sequence, times ``speed``. Positions:
    drawn for all sequences at once, then the sequences with a bad configuration (a ball
    outside the walls, or two balls overlapping) are redrawn, all balls together, until none is
    left -- the same distribution as the script's per-sequence ``while not good_config`` loop.
    """
    config = _check_config(config)
    check_int("n_seq", n_seq, 1)
    n, L = config.n_balls, config.box_size
    r = config.radii
    v = torch.randn(n_seq, n, 2, generator=generator, dtype=torch.float64)
    v = v / v.flatten(1).norm(dim=1)[:, None, None] * config.speed

    def draw(m: int) -> torch.Tensor:
        u = torch.rand(m, n, 2, generator=generator, dtype=torch.float64)
        if config.init == "sutskever":
            return (2.0 + 8.0 * u) * (L / 10.0)
        return r[:, None] + u * (L - 2 * r[:, None])  # scalefxn(rand, 0, 1, r, L - r)

    def bad(x: torch.Tensor) -> torch.Tensor:
        out = ((x - r[:, None]) < 0).any(dim=(1, 2)) | ((x + r[:, None]) > L).any(dim=(1, 2))
        for i, j in _pairs(n):
            out |= (x[:, i] - x[:, j]).norm(dim=-1) < r[i] + r[j]
        return out

    x = draw(n_seq)
    todo = bad(x).nonzero().flatten()
    rounds = 0
    while todo.numel() > 0:
        rounds += 1
        if rounds > _MAX_REJECTION_ROUNDS:
            raise RuntimeError(
                f"no non-overlapping start found after {_MAX_REJECTION_ROUNDS} rounds; "
                "too many or too large balls for the box?"
            )
        x[todo] = draw(todo.numel())
        todo = todo[bad(x[todo])]
    return x, v


def integrate(
    x0: torch.Tensor, v0: torch.Tensor, T: int, config: BallsConfig | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the physics from (x0, v0), each (n_seq, n_balls, 2): positions and velocities
    (n_seq, T, n_balls, 2), float64, recorded at the start of each frame (Sources §9.2).

    Frame t is recorded before its ``n_substeps`` sub-steps, so ``positions[:, 0] == x0``.
    Sub-step: move; walls set velocity signs; pairs (i, j), j < i, in order, get the elastic
    update along their line of centres where they overlap (no approach check, as in the script).
    A pair at exactly the same centre (probability zero) is left alone rather than made NaN.
    """
    config = _check_config(config)
    check_int("T", T, 1)
    for name, a in (("x0", x0), ("v0", v0)):
        if not torch.is_tensor(a):
            raise TypeError(f"{name} must be a tensor, got {type(a).__name__}")
        if a.ndim != 3 or a.shape[1:] != (config.n_balls, 2):
            raise ValueError(
                f"{name} must have shape (n_seq, {config.n_balls}, 2), got {tuple(a.shape)}"
            )
        if not torch.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or Inf")
    if x0.shape != v0.shape:
        raise ValueError(f"x0 and v0 shapes differ: {tuple(x0.shape)} vs {tuple(v0.shape)}")
    x = x0.to(torch.float64).clone()
    v = v0.to(torch.float64).clone()
    r = config.radii[:, None]  # (n_balls, 1)
    m = config.masses
    L, dt = config.box_size, config.dt
    pairs = _pairs(config.n_balls)
    X = torch.empty(x.shape[0], T, *x.shape[1:], dtype=torch.float64)
    V = torch.empty_like(X)
    for t in range(T):
        X[:, t] = x
        V[:, t] = v
        for _ in range(config.n_substeps):
            x += dt * v
            v = torch.where(x - r < 0, v.abs(), v)
            v = torch.where(x + r > L, -v.abs(), v)
            for i, j in pairs:
                d = x[:, i] - x[:, j]  # (n_seq, 2)
                dist = d.norm(dim=-1, keepdim=True)  # (n_seq, 1)
                hit = (dist < r[i] + r[j]) & (dist > 0)
                if not bool(hit.any()):
                    continue
                w = d / torch.where(hit, dist, torch.ones_like(dist))
                vi = (w * v[:, i]).sum(-1, keepdim=True)
                vj = (w * v[:, j]).sum(-1, keepdim=True)
                mi, mj = m[i], m[j]
                new_vj = (2 * mi * vi + vj * (mj - mi)) / (mi + mj)  # new_speeds(m_i, m_j, ...)
                new_vi = new_vj + (vj - vi)
                v[:, i] = torch.where(hit, v[:, i] + w * (new_vi - vi), v[:, i])
                v[:, j] = torch.where(hit, v[:, j] + w * (new_vj - vj), v[:, j])
    return X, V


def _check_positions(positions: object, config: BallsConfig) -> torch.Tensor:
    if not torch.is_tensor(positions):
        raise TypeError(f"positions must be a tensor, got {type(positions).__name__}")
    if positions.ndim < 2 or positions.shape[-2:] != (config.n_balls, 2):
        raise ValueError(
            f"positions must have shape (..., {config.n_balls}, 2), got {tuple(positions.shape)}"
        )
    if not torch.isfinite(positions).all():
        raise ValueError("positions contains NaN or Inf")
    return positions.reshape(-1, config.n_balls, 2)


def _scales(config: BallsConfig) -> torch.Tensor:
    """The factor s_b in exp(−(d² s_b)⁴): 1/r² (Sutskever) or r² (the port's bug), float32."""
    r2 = config.radii**2
    return (r2 if config.render_scale == "multiply" else 1.0 / r2).to(torch.float32)


def _render_dense(positions: torch.Tensor, config: BallsConfig | None = None) -> torch.Tensor:
    """:func:`render` evaluated at every pixel for every ball (the plain transcription)."""
    config = _check_config(config)
    pos = _check_positions(positions, config)
    res = config.resolution
    scale = _scales(config)
    c = config.pixel_centres.to(torch.float32)
    out = torch.empty(pos.shape[0], res, res, dtype=torch.float32)
    for s in range(0, pos.shape[0], _RENDER_CHUNK):
        p = pos[s : s + _RENDER_CHUNK].to(torch.float32)  # (k, n_balls, 2)
        dx2 = (c - p[..., 0:1]).square_()  # (k, n_balls, res): columns
        dy2 = (c - p[..., 1:2]).square_()  # (k, n_balls, res): rows
        acc = out[s : s + _RENDER_CHUNK]
        acc.zero_()
        for b in range(config.n_balls):
            q = dy2[:, b, :, None] + dx2[:, b, None, :]  # (k, res, res)
            q.mul_(scale[b]).square_().square_().neg_().exp_()
            acc.add_(q)
        acc.clamp_(max=1.0)
    return out.reshape(*positions.shape[:-2], res * res)


def render(positions: torch.Tensor, config: BallsConfig | None = None) -> torch.Tensor:
    """Frames (..., res²), float32 in [0, 1], from ball centres (..., n_balls, 2) (§9.2).

    A = Σ_balls exp(−(d²/r²)⁴) (or exp(−(d²·r²)⁴) with ``render_scale="multiply"``, §9.4),
    clipped at 1; pixel (row, col) has centre (x = c_col, y = c_row), c_k = (k + ½)/res · L, and
    is stored at index row·res + col. Computed in float32, in chunks over the leading dims.

    Each ball is evaluated only on a square window of pixels around it: beyond
    d² s = 110^(1/4) the term exp(−(d² s)⁴) < e^−110 is exactly 0 in float32 (below the smallest
    subnormal), so the result is bit-identical to evaluating every pixel (``_render_dense``),
    with the balls added in the same order, at a third of the cost or less.
    """
    config = _check_config(config)
    pos = _check_positions(positions, config)
    res, L = config.resolution, config.box_size
    scale = _scales(config)
    # half-width h (pixels) beyond which a ball's term is exactly 0; window of W = 2h + 2 pixels
    halves = [
        math.ceil(math.sqrt(110 ** 0.25 / float(s_b)) * res / L) + 1 for s_b in scale.tolist()
    ]
    if any(2 * h + 2 >= res for h in halves):
        return _render_dense(positions, config)
    out = torch.empty(pos.shape[0], res * res, dtype=torch.float32)
    for s in range(0, pos.shape[0], _RENDER_CHUNK):
        p64 = pos[s : s + _RENDER_CHUNK].to(torch.float64)  # (k, n_balls, 2)
        p = p64.to(torch.float32)
        k = p.shape[0]
        acc = out[s : s + _RENDER_CHUNK]
        acc.zero_()
        for b, h in enumerate(halves):
            W = 2 * h + 2
            # first column and row of the window; a window sticking out of the frame is shifted
            # inside, where it still holds every pixel of the frame that the ball reaches
            start = (p64[:, b] * (res / L) - 0.5).floor().long() - h  # (k, 2)
            start.clamp_(0, res - W)
            idx = start[:, :, None] + torch.arange(W)  # (k, 2, W) pixel indices
            c = ((idx.to(torch.float64) + 0.5) / res * L).to(torch.float32)  # = pixel_centres
            d2 = (c - p[:, b, :, None]).square_()  # (k, 2, W)
            q = d2[:, 1, :, None] + d2[:, 0, None, :]  # (k, W rows, W cols)
            q.mul_(scale[b]).square_().square_().neg_().exp_()
            flat = idx[:, 1, :, None] * res + idx[:, 0, None, :]  # (k, W, W)
            acc.scatter_add_(1, flat.reshape(k, -1), q.reshape(k, -1))
        acc.clamp_(max=1.0)
    return out.reshape(*positions.shape[:-2], res * res)


def simulate_balls(
    n_seq: int,
    T: int | None = None,
    seed: int = 0,
    config: BallsConfig | None = None,
    stream: str = "balls",
    return_positions: bool = False,
) -> torch.Tensor | BallsData:
    """``n_seq`` independent bouncing-balls sequences of ``T`` frames (Sources §9).

    Returns frames (n_seq, T, res²), float32 in [0, 1] (T defaults to ``config.T`` = 100); with
    ``return_positions=True`` a :class:`BallsData` with the frames, positions and velocities.
    Same (seed, stream, n_seq, T, config) → same data on CPU; the random draws are
    (velocities, then positions with rejection), so a sequence depends on ``n_seq`` too.
    """
    config = _check_config(config)
    T = config.T if T is None else T
    check_int("n_seq", n_seq, 1)
    check_int("T", T, 1)
    if not isinstance(return_positions, bool):
        raise TypeError(f"return_positions must be a bool, got {type(return_positions).__name__}")
    g = make_generator(seed, stream)
    x0, v0 = initial_state(n_seq, config, g)
    X, V = integrate(x0, v0, T, config)
    frames = render(X, config)
    if return_positions:
        return BallsData(frames=frames, positions=X, velocities=V)
    return frames


def frames_to_images(frames: torch.Tensor, resolution: int | None = None) -> torch.Tensor:
    """Reshape flat frames (..., res²) to images (..., res, res) (rows = y, columns = x)."""
    if not torch.is_tensor(frames):
        raise TypeError(f"frames must be a tensor, got {type(frames).__name__}")
    if frames.ndim < 1:
        raise ValueError("frames must have at least one dimension (the pixels)")
    D = frames.shape[-1]
    res = math.isqrt(D) if resolution is None else resolution
    check_int("resolution", res, 1)
    if res * res != D:
        raise ValueError(f"last dimension {D} is not resolution² (resolution={res})")
    return frames.reshape(*frames.shape[:-1], res, res)


def order0_mse(frames: torch.Tensor) -> float:
    """ORDER 0 baseline: per-pixel MSE of predicting frame t by frame t−1 (Sources §9.7).

    ``frames`` is (..., T, D) -- e.g. (n_seq, T, 900) -- with T >= 2; the result is
    mean((y_t − y_{t−1})²) over all pixels, transitions t = 2..T and sequences, in float64.
    Multiply by D for the per-frame (summed-over-pixels) convention of later papers.
    """
    if not torch.is_tensor(frames):
        raise TypeError(f"frames must be a tensor, got {type(frames).__name__}")
    if frames.ndim < 2:
        raise ValueError(f"frames must be (..., T, D), got shape {tuple(frames.shape)}")
    if frames.shape[-2] < 2:
        raise ValueError(f"need T >= 2 frames for ORDER 0, got T = {frames.shape[-2]}")
    if frames.numel() == 0:
        raise ValueError("frames is empty")
    return _order0_mse(frames, time_dim=-2)

