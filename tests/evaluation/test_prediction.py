"""One-step prediction with clamped Gibbs sampling (Sources §9.6) for harmoniums and VAEs."""

import pytest
import torch

from tlr.evaluation.prediction import one_step_mse, one_step_predictions, order0_predictions
from tlr.models.refh import REFH, REFHConfig
from tlr.models.rvae import RVAE, RVAEConfig
from tlr.models.trbm import TRBM, TRBMConfig


def _switch_refh() -> REFH:
    """u_0 on -> hidden 0 on -> pixels 0, 1 on; u_1 on -> hidden 1 -> pixels 2, 3."""
    m = REFH(REFHConfig(n_obs=4, n_hidden=2, obs_type="bernoulli"))
    with torch.no_grad():
        m.efh.W[0].copy_(25 * torch.eye(2))  # u_j alone switches hidden j on (25 - 20) ...
        m.efh.W[1].copy_(torch.tensor([[6.0, 0], [6, 0], [0, 6], [0, 6]]))
        m.efh.b_hid.fill_(-20.0)  # ... the pixels alone cannot (2 x 6 - 20): one mode per u
        m.efh.b_vis[1].fill_(-3.0)  # pixel means σ(±3)
    return m


def test_clamped_gibbs_follows_the_clamped_state():
    m = _switch_refh()
    u = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).repeat(50, 1)
    pred = m.predict_next(u, generator=torch.Generator().manual_seed(0))
    assert pred.shape == (100, 4)
    on = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.bool).repeat(50, 1)
    assert (pred[on] > 0.9).all() and (pred[~on] < 0.1).all()


def test_predict_next_seeded_and_validated():
    m = _switch_refh()
    u = torch.rand(5, 2, generator=torch.Generator().manual_seed(1))
    a = m.predict_next(u, 3, torch.Generator().manual_seed(2))
    b = m.predict_next(u, 3, torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="u_prev"):
        m.predict_next(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="n_gibbs"):
        m.predict_next(u, -1)


def test_trbm_and_rvae_predict_shapes():
    g = torch.Generator().manual_seed(0)
    y = (torch.rand(6, 3, 9, generator=g) < 0.3).float()
    trbm = TRBM(TRBMConfig(n_obs=9, n_hidden=5, obs_type="bernoulli"), generator=g)
    vae = RVAE(RVAEConfig(n_obs=9, likelihood="bernoulli", n_units=8), generator=g)
    for m in (trbm, vae):
        p = one_step_predictions(m, y, n_gibbs=2, generator=g, chunk=4)
        assert p.shape == (5, 3, 9) and ((p >= 0) & (p <= 1)).all()
    with pytest.raises(ValueError, match="u_prev"):
        vae.predict_next(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="method"):
        vae.predict_next(torch.zeros(2, 2), 1, method="nope")
    p_gibbs = vae.predict_next(torch.zeros(2, 2), 3, g, method="gibbs")
    assert p_gibbs.shape == (2, 9) and ((p_gibbs >= 0) & (p_gibbs <= 1)).all()


def test_rvae_map_latent_is_the_mode():
    """predict_latent finds the mode of p(x | u) ∝ p(u | x) p(x): for a linear-Gaussian u-decoder
    μ_u(x) = a x + b with fixed σ_u, the mode is a(u - b) / (a² + σ_u²) per dimension."""
    vae = RVAE(RVAEConfig(n_obs=9, learn_sigma="fixed", sigma_u=0.5),
               generator=torch.Generator().manual_seed(0))
    vae.gen_u = torch.nn.Linear(2, 2)  # a linear u-decoder: the mode is known in closed form
    with torch.no_grad():
        vae.gen_u.weight.copy_(torch.diag(torch.tensor([2.0, -1.0])))
        vae.gen_u.bias.copy_(torch.tensor([0.3, 0.1]))
    u = torch.tensor([[1.0, -0.5], [0.0, 2.0]])
    a, b = torch.tensor([2.0, -1.0]), torch.tensor([0.3, 0.1])
    want = a * (u - b) / (a**2 + 0.25)
    torch.testing.assert_close(vae.predict_latent(u, n_steps=500), want, atol=2e-3, rtol=0)


def test_poisson_rvae_predicts_rates():
    vae = RVAE(RVAEConfig(n_obs=15), generator=torch.Generator().manual_seed(0))
    for method in ("map", "gibbs"):
        p = vae.predict_next(torch.zeros(4, 2), 2, torch.Generator().manual_seed(0), method=method)
        assert p.shape == (4, 15) and (p > 0).all()


def test_tvae_predicts_from_its_prior_mean():
    from tlr.models.tvae import TVAE, TVAEConfig

    vae = TVAE(TVAEConfig(n_obs=9, likelihood="bernoulli"),
               generator=torch.Generator().manual_seed(0))
    u = torch.randn(3, 2, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(vae.predict_next(u), vae.reconstruct(vae.prior_dist(u).mean))


def test_one_step_mse_and_order0():
    y = torch.arange(24, dtype=torch.float32).reshape(3, 2, 4)
    assert one_step_mse(order0_predictions(y), y) == pytest.approx(64.0)  # steps of 8
    assert one_step_mse(y[1:], y) == 0.0
    with pytest.raises(ValueError, match="frames 2..T"):
        one_step_mse(y, y)
    with pytest.raises(ValueError, match="T >= 2"):
        order0_predictions(y[:1])


def test_rollout_is_predict_then_filter():
    """rollout = filter the context, then predict_next and a one-step filter, repeatedly."""
    from tlr.evaluation.prediction import rollout

    m = _switch_refh()
    ctx = torch.tensor([[[1.0, 1, 0, 0]]]).repeat(2, 3, 1)  # (T0=2, B=3, 4)
    frames = rollout(m, ctx, 4, n_gibbs=5, generator=torch.Generator().manual_seed(0))
    assert frames.shape == (4, 3, 4)
    assert (frames < 0.1).all()  # pixels alone cannot switch a hidden unit on: all dark
    g = torch.Generator().manual_seed(0)
    u = m.filter(ctx)[-1]
    for t in range(4):
        y = m.predict_next(u, 5, g)
        torch.testing.assert_close(frames[t], y)
        u = m.efh.hidden_mean([u, y])  # one filter step: u_t = σ(u_{t-1} W_u + y_t W_y + b_x)
    with pytest.raises(ValueError, match="n_steps"):
        rollout(m, ctx, 0)


def test_chains_started_from_the_previous_frame():
    """start="previous" (a diagnostic): the chain starts at y_{t-1}; with no Gibbs steps the
    prediction is the deterministic mean-field readout from it."""
    g = torch.Generator().manual_seed(0)
    y = (torch.rand(5, 3, 9, generator=g) < 0.3).float()
    m = REFH(REFHConfig(n_obs=9, n_hidden=4, obs_type="bernoulli"), generator=g)
    with torch.no_grad():
        for w in m.efh.W:
            w.normal_(0, 1, generator=g)
    p = one_step_predictions(m, y, n_gibbs=0, generator=g, chunk=4, start="previous")
    u = m.filter(y)[:-1].reshape(-1, 4)
    h = m.efh.hidden_mean
    want = m.reconstruct(h([u, m.reconstruct(h([u, y[:-1].reshape(-1, 9)]))]))
    torch.testing.assert_close(p, want.reshape(4, 3, 9))
    noise = one_step_predictions(m, y, n_gibbs=0, generator=g)
    assert not torch.allclose(p, noise)  # the start matters here
    with pytest.raises(ValueError, match="y_init"):
        m.predict_next(u, 0, g, y_init=torch.zeros(2, 9))
    with pytest.raises(ValueError, match="start"):
        one_step_predictions(m, y, start="data")
    vae = RVAE(RVAEConfig(n_obs=9, likelihood="bernoulli", n_units=8), generator=g)
    with pytest.raises(ValueError, match="y_init"):  # the VAEs' default (MAP) has no chain
        one_step_predictions(vae, y, start="previous")
    with pytest.raises(ValueError, match="y_init"):
        vae.predict_next(torch.zeros(2, 2), 0, g, y_init=torch.zeros(2, 9))
    # the VAEs' Gibbs analogue starts from y_{t-1} too: with no steps, the mean-field readout
    # ν̄ = ν(u, E[y | ν(u, y_{t-1})]), prediction E[y | ν̄]
    p = one_step_predictions(vae, y, n_gibbs=0, generator=g, chunk=4, start="previous",
                             method="gibbs")
    u = vae.filter(y)[:-1].reshape(-1, 2)
    with torch.no_grad():
        x_mean, _ = vae.encode(y[:-1].reshape(-1, 9), u)
        nu_bar, _ = vae.encode(vae.reconstruct(x_mean), u)
    torch.testing.assert_close(p, vae.reconstruct(nu_bar).reshape(4, 3, 9))
    with pytest.raises(ValueError, match="y_init must have shape"):
        vae.predict_next(u, 0, g, y_init=torch.zeros(2, 9), method="gibbs")
