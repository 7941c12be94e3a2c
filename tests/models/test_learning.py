"""Each model family learns: on a tiny problem, in well under a second of training, ``fit``
lowers the reconstruction error of ``reconstruct(filter(y))`` on held-out sequences by a
stated factor (one test per family: harmonium, VAE, conv VAE).

The data: a block of pixels stepping around a ring (one of ``n_pos`` positions, ``width``
pixels each, a random start and direction per sequence). An untrained model reconstructs
≈ 0.5 everywhere (MSE ≈ 0.25); a model that has learned only the pixel means sits at
p(1 - p) (0.1875 for 4 positions); the factors below ask for far less than that, i.e. the
filtered state has to identify the position. Margins (8 seeds, the smallest factor seen /
the factor asked): rEFH 134 / 20, rVAE 259 / 20, conv rVAE 865 / 20.
"""

import pytest
import torch
import torch.nn.functional as F

from tlr.models import build_model
from tlr.train import OptimConfig, fit

FACTOR = 20.0
MEAN_ONLY = 0.25 * 0.75  # the MSE of predicting the pixel means (4 positions)


def ring(T, B, seed, n_pos=4, width=4):
    """(T, B, n_pos·width) binary frames: a block moving ±1 position per step on a ring."""
    g = torch.Generator().manual_seed(seed)
    start = torch.randint(n_pos, (B,), generator=g)
    direction = torch.randint(2, (B,), generator=g) * 2 - 1
    pos = (start[None] + direction[None] * torch.arange(T)[:, None]) % n_pos
    return F.one_hot(pos, n_pos).float().repeat_interleave(width, -1)


def image_ring(T, B, seed, S=8):
    """The same motion as S x S frames: 4 positions of 2 columns each, flattened."""
    cols = ring(T, B, seed, n_pos=4, width=S // 4)  # (T, B, S)
    return cols[..., None, :].expand(T, B, S, S).reshape(T, B, S * S)


def mse(model, y):
    with torch.no_grad():
        return float(((model.reconstruct(model.filter(y)) - y) ** 2).mean())


def _learns(name, config, data, test, n_epochs, lr, seed=0, **shape):
    g = torch.Generator().manual_seed(seed)
    m = build_model(name, generator=g, **config)
    before = mse(m, test)
    hist = fit(m, data, n_epochs, OptimConfig("adam", lr=lr), g, evaluate=lambda mod: mse(
        mod, test), eval_every=n_epochs // 2, progress=False, **shape)
    after = mse(m, test)
    assert before > 0.2  # untrained: about 0.5 everywhere
    assert after == hist.metric[-1]
    assert hist.metric[0] > after  # the learning curve falls
    assert after < MEAN_ONLY / 10  # well past the pixel means: the state knows the position
    assert before / after > FACTOR, (before, after)
    return hist


@pytest.mark.parametrize("seed", [0, 1])
def test_refh_learns_on_whole_sequences(seed):
    """The bouncing-balls protocol: whole sequences, 8 per update, 80 CD-1 updates."""
    test = ring(20, 16, 999)
    hist = _learns("rEFH", dict(n_obs=16, n_hidden=16, obs_type="bernoulli"),
                   lambda e: ring(20, 32, 1000 * seed + e), test, 20, 3e-2, seed, batch=8)
    assert hist.updates == 20 * 4


def test_rvae_learns_in_windows():
    """Windows of 5 steps on 32 sequences, 120 Adam updates of the local rule."""
    test = ring(20, 16, 999)
    hist = _learns("rVAE", dict(n_obs=16, n_latent=2, n_units=32, likelihood="bernoulli"),
                   lambda e: ring(20, 32, e), test, 30, 1e-2, window=5)
    assert hist.updates == 30 * 4


def test_conv_rvae_learns_in_windows():
    """8 x 8 frames, windows of 5 steps, 80 Adam updates."""
    test = image_ring(10, 8, 999)
    hist = _learns("conv rVAE", dict(image_size=8, channels=(4,), n_latent=2, n_units=16),
                   lambda e: image_ring(10, 16, e), test, 40, 1e-2, window=5)
    assert hist.updates == 40 * 2
