"""The LTI + PPC data set: a damped mass-spring system seen through 15 Poisson neurons.

Sources §2 (the book's appendix "Sources and protocols"), from the 2018 version of Makin's
``rbmish`` code (``setDynamics.m``, ``setParams.m`` case ``'LTI-PPC'``, ``getDataPPC.m``,
``tiledTuning.m``).
Poster: p(z_{t+1} | z_t) = N(A z_t, Σ_x),  p(y_t | z_t) = Π_i Pois(y_t^i | g_t f_i(z_t^1)).

Layout is time-major: ``z`` is ``(T, B, 2)`` (position, velocity), ``y`` is ``(T, B, n_neurons)``,
``gain`` is ``(T, B)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from tlr.rng import make_generator
from tlr.validation import check_int

__all__ = ["LTIConfig", "PPCConfig", "PPCData", "simulate_lti", "tuning_curves", "simulate"]


@dataclass(frozen=True)
class LTIConfig:
    """Euler-discretised damped mass-spring system (Sources §2.2-2.3).

    z_{t+1} = A z_t + w_t,  w_t ~ N(0, diag(process_var)),  A = [[1, dt], [-k/m dt, 1 - b/m dt]].
    """

    dt: float = 0.05  # s
    mass: float = 5.0  # m
    damping: float = 0.25  # b
    spring: float = 3.0  # k
    process_var: tuple[float, float] = (5e-7, 5e-5)  # diag(Σ_X): position, velocity (per step)
    pos_min: float = -math.pi / 3  # start-position range (zmin, zmax) in rad
    pos_max: float = math.pi / 3
    init_margin: float = 0.05  # x_0 ~ U[pos_min + margin, pos_max - margin]
    init_vel_var: float = 5e-10  # v_0 ~ N(0, 5e-10)

    def __post_init__(self) -> None:
        for name in ("dt", "mass"):
            if not getattr(self, name) > 0:
                raise ValueError(f"LTIConfig.{name} must be > 0, got {getattr(self, name)}")
        if len(self.process_var) != 2 or not all(v >= 0 for v in self.process_var):
            raise ValueError(f"process_var must be two variances >= 0, got {self.process_var}")
        if not self.pos_max - self.pos_min > 2 * self.init_margin:
            raise ValueError("pos_max - pos_min must exceed 2 * init_margin")

    @property
    def A(self) -> torch.Tensor:
        """Transition matrix, shape (2, 2), float64."""
        dt, k, m, b = self.dt, self.spring, self.mass, self.damping
        return torch.tensor([[1.0, dt], [-k / m * dt, 1.0 - b / m * dt]], dtype=torch.float64)

    @property
    def Q(self) -> torch.Tensor:
        """Process-noise covariance Σ_X, shape (2, 2), float64."""
        return torch.diag(torch.tensor(self.process_var, dtype=torch.float64))


@dataclass(frozen=True)
class PPCConfig:
    """Probabilistic population code: Gaussian tuning on a ring, Poisson counts (Sources §2.5).

    Neuron i prefers s_i = s_min + i (s_max - s_min)/(N - 1); its tuning std is
    σ_tc = (s_max - s_min) · FWHM / (2 sqrt(2 ln 2)). The stimulus lives on a ring of period
    N/(N - 1) · (s_max - s_min), so neuron N and neuron 1 are one spacing apart.
    """

    n_neurons: int = 15
    s_min: float = -math.pi / 3
    s_max: float = math.pi / 3
    fwhm: float = 1 / 6  # of the normalised response length (s_max - s_min)
    gain_min: float = 6.4  # g_t ~ U[gain_min, gain_max], per step and trajectory
    gain_max: float = 9.6

    def __post_init__(self) -> None:
        if isinstance(self.n_neurons, bool) or not isinstance(self.n_neurons, int):
            raise TypeError(f"n_neurons must be an int, got {type(self.n_neurons).__name__}")
        if self.n_neurons < 2:
            raise ValueError(f"n_neurons must be >= 2, got {self.n_neurons}")
        if not self.s_max > self.s_min:
            raise ValueError(f"need s_max > s_min, got {self.s_min}, {self.s_max}")
        if not self.fwhm > 0:
            raise ValueError(f"fwhm must be > 0, got {self.fwhm}")
        if not 0 <= self.gain_min <= self.gain_max:
            raise ValueError(
                f"need 0 <= gain_min <= gain_max, got {self.gain_min}, {self.gain_max}"
            )

    @property
    def spacing(self) -> float:
        """Distance between neighbouring preferred stimuli (rad)."""
        return (self.s_max - self.s_min) / (self.n_neurons - 1)

    @property
    def period(self) -> float:
        """Ring period srange = N/(N-1) · (s_max - s_min) (rad); 15/14 · 2π/3 ≈ 2.244."""
        return self.n_neurons * self.spacing

    @property
    def tuning_std(self) -> float:
        """σ_tc in rad (Sources §2.5: 0.14823 rad)."""
        return (self.s_max - self.s_min) * self.fwhm / (2 * math.sqrt(2 * math.log(2)))

    @property
    def preferred(self) -> torch.Tensor:
        """Preferred stimuli s_i, shape (n_neurons,), float64."""
        return self.s_min + self.spacing * torch.arange(self.n_neurons, dtype=torch.float64)

    def wrap(self, s: torch.Tensor) -> torch.Tensor:
        """Wrap stimuli onto the ring [s_min, s_min + period) (``wrapStimuli.m``)."""
        return torch.remainder(s - self.s_min, self.period) + self.s_min


class PPCData(NamedTuple):
    """One LTI + PPC data set (time-major)."""

    z: torch.Tensor  # (T, B, 2) float64: latent position (rad, unwrapped) and velocity (rad/s)
    y: torch.Tensor  # (T, B, n_neurons) float32: Poisson spike counts (integer-valued)
    gain: torch.Tensor  # (T, B) float64: the gain g_t of each step

    @property
    def position(self) -> torch.Tensor:
        """The reported stimulus s_t = z_t^1, shape (T, B)."""
        return self.z[..., 0]


def _check_sizes(n_traj: int, T: int) -> None:
    for name, v, lo in (("n_traj", n_traj, 1), ("T", T, 2)):
        check_int(name, v, lo)


def simulate_lti(n_traj: int, T: int, cfg: LTIConfig, generator: torch.Generator) -> torch.Tensor:
    """Latent trajectories z_{1:T}, shape (T, n_traj, 2), float64 (Sources §2.2-2.3).

    z_1 is drawn from the initial distribution; z_{t+1} = A z_t + w_t afterwards. The state is
    not wrapped: only the stimulus is wrapped, for encoding.
    """
    _check_sizes(n_traj, T)
    A, Q = cfg.A, cfg.Q
    lo, hi = cfg.pos_min + cfg.init_margin, cfg.pos_max - cfg.init_margin
    z = torch.empty(T, n_traj, 2, dtype=torch.float64)
    x0 = lo + (hi - lo) * torch.rand(n_traj, generator=generator, dtype=torch.float64)
    v0 = math.sqrt(cfg.init_vel_var) * torch.randn(n_traj, generator=generator, dtype=torch.float64)
    z[0] = torch.stack([x0, v0], dim=-1)
    noise = torch.randn(T - 1, n_traj, 2, generator=generator, dtype=torch.float64)
    noise = noise * Q.diagonal().sqrt()
    for t in range(T - 1):
        z[t + 1] = z[t] @ A.T + noise[t]
    return z


def tuning_curves(s: torch.Tensor, cfg: PPCConfig) -> torch.Tensor:
    """Unit-gain rates f_i(s) on the ring, shape ``s.shape + (n_neurons,)`` (Sources §2.5).

    The wrapped stimulus and its two images s_w ± period are summed (``encodeRecursively``), so
    the population tiles a circle.
    """
    if not torch.is_tensor(s):
        raise TypeError(f"s must be a tensor, got {type(s).__name__}")
    if not torch.isfinite(s).all():
        raise ValueError("s contains NaN or Inf")
    s_w = cfg.wrap(s.to(torch.float64))[..., None, None]  # (..., 1, 1)
    images = torch.tensor([-cfg.period, 0.0, cfg.period], dtype=torch.float64)[:, None]  # (3, 1)
    d = s_w + images - cfg.preferred  # (..., 3, N)
    return torch.exp(-(d**2) / (2 * cfg.tuning_std**2)).sum(dim=-2)


def simulate(
    n_traj: int,
    T: int,
    seed: int = 0,
    lti: LTIConfig | None = None,
    ppc: PPCConfig | None = None,
    stream: str = "data",
) -> PPCData:
    """Simulate ``n_traj`` trajectories of length ``T`` with spike counts (Sources §2).

    Each step's gain g_t ~ U[gain_min, gain_max] is drawn independently for every trajectory,
    and y_t^i ~ Pois(g_t f_i(s_t)). Same (seed, stream, sizes, configs) → same data.
    """
    lti = LTIConfig() if lti is None else lti
    ppc = PPCConfig() if ppc is None else ppc
    _check_sizes(n_traj, T)
    g = make_generator(seed, stream)
    z = simulate_lti(n_traj, T, lti, g)
    gain = ppc.gain_min + (ppc.gain_max - ppc.gain_min) * torch.rand(
        T, n_traj, generator=g, dtype=torch.float64
    )
    rates = gain[..., None] * tuning_curves(z[..., 0], ppc)
    y = torch.poisson(rates, generator=g).to(torch.float32)
    return PPCData(z=z, y=y, gain=gain)
