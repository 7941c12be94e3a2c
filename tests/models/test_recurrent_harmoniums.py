"""rEFH, TRBM and RTRBM: what each learning rule touches, and the RTRBM's BPTT term."""

import pytest
import torch
import torch.nn.functional as F

from tlr.models.refh import REFH, REFHConfig
from tlr.models.rtrbm import RTRBM, bptt_term
from tlr.models.trbm import TRBM, TRBMConfig


def _counts(T, B, n=15, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((T, B, n), 1.5), generator=g)


def test_refh_update_reconstructs_u_and_leaves_inputs_alone():
    m = REFH(REFHConfig(n_hidden=20), generator=torch.Generator().manual_seed(0))
    y = _counts(1, 8)[0]
    u_prev = torch.rand(8, 20, generator=torch.Generator().manual_seed(1))
    y0, u0 = y.clone(), u_prev.clone()
    g = torch.Generator().manual_seed(2)
    out = m.update(y[None], u_prev, g)  # online: a window of one step
    u = out.u
    assert out.loss is None  # a CD rule minimises no loss it could report
    assert torch.equal(y, y0) and torch.equal(u_prev, u0)
    assert u.shape == (8, 20) and torch.all((u > 0) & (u < 1))
    # u_t = means with the pre-update weights: σ(u_{t-1} W_u + y_t W_y + b_x)
    assert torch.allclose(u, m.efh.hidden_mean([u_prev, y]))
    # u_{t-1} is part of the visible layer: its bias receives a learning signal
    assert m.efh.b_vis[0].grad.abs().sum() > 0
    # ... and nothing in the update depends on u's history: no graph is kept
    assert not u.requires_grad


def test_trbm_keeps_u_clamped_and_rtrbm_adds_exactly_the_bptt_term():
    y = _counts(12, 3)
    grads = {}
    for cls in (TRBM, RTRBM):
        m = cls(TRBMConfig(n_hidden=16, n_cd_steps=2), generator=torch.Generator().manual_seed(0))
        m.update(y, None, torch.Generator().manual_seed(1))
        grads[cls.name] = [p.grad.clone() for p in m.efh.ordered_parameters()]
    assert torch.all(grads["TRBM"][2] == 0)  # b_u: u is never reconstructed
    m = TRBM(TRBMConfig(n_hidden=16, n_cd_steps=2), generator=torch.Generator().manual_seed(0))
    u = m.filter(y)
    # same CD statistics (same seeds), so the difference is the BPTT term alone
    diff = [a - b for a, b in zip(grads["RTRBM"], grads["TRBM"], strict=True)]
    assert torch.all(diff[2] == 0) and torch.all(diff[3] == 0)  # biases of the visible units
    assert diff[0].abs().sum() > 0 and diff[4].abs().sum() > 0
    assert u.shape == (12, 3, 16)


def test_bptt_term_equals_autograd_through_the_mean_field_chain():
    """Full-graph gradient minus the detached (local) gradient = the BPTT recursion."""
    torch.manual_seed(0)
    T, B, H, n = 6, 3, 5, 4
    Wu = (0.5 * torch.randn(H, H, dtype=torch.float64)).requires_grad_()
    Wy = (0.5 * torch.randn(n, H, dtype=torch.float64)).requires_grad_()
    b = (0.1 * torch.randn(H, dtype=torch.float64)).requires_grad_()
    y = torch.poisson(2 * torch.ones(T, B, n, dtype=torch.float64))
    y_neg = torch.poisson(2 * torch.ones(T, B, n, dtype=torch.float64))

    def surrogate(detach):
        # Σ_t [-F(y_t | u_{t-1}) + F(y⁻_t | u_{t-1})]: its gradient wrt η_t is x̄⁺_t - x̄⁻_t
        r, S, rs = torch.zeros(B, H, dtype=torch.float64), 0.0, []
        for t in range(T):
            rp = r.detach() if detach else r
            e_pos, e_neg = rp @ Wu + y[t] @ Wy + b, rp @ Wu + y_neg[t] @ Wy + b
            S = S + (F.softplus(e_pos) - F.softplus(e_neg)).sum()
            r = torch.sigmoid(e_pos)
            rs.append(r)
        return S, torch.stack(rs)

    full = torch.autograd.grad(surrogate(False)[0], [Wu, Wy, b])
    S, r = surrogate(True)
    local = torch.autograd.grad(S, [Wu, Wy, b])
    with torch.no_grad():
        r_prev = torch.cat([torch.zeros_like(r[:1]), r[:-1]])
        D = r - torch.sigmoid(r_prev @ Wu + y_neg @ Wy + b)
        ours = bptt_term(Wu.detach(), r, y, D)
    for o, f, lo in zip(ours, full, local, strict=True):
        assert torch.allclose(o, f - lo, atol=1e-12)


@pytest.mark.parametrize("cls,cfg", [(REFH, REFHConfig), (TRBM, TRBMConfig)])
def test_filter_shapes_and_bad_inputs(cls, cfg):
    m = cls(cfg(n_hidden=10))
    y = _counts(5, 2)
    assert m.filter(y).shape == (5, 2, 10)
    assert m.reconstruct(m.filter(y)).shape == (5, 2, 15)
    with pytest.raises(ValueError, match="n_obs|shape"):
        m.filter(_counts(5, 2, n=14))
    with pytest.raises(ValueError, match="shape"):
        m.filter(torch.zeros(5, 15))


def test_config_validation():
    with pytest.raises(ValueError, match="obs_type"):
        REFHConfig(obs_type="gamma")
    with pytest.raises(ValueError, match="recurrent"):
        REFHConfig(recurrent="median")
    with pytest.raises(ValueError, match="n_hidden"):
        TRBMConfig(n_hidden=0)


# ----------------------------------------------------------------- the rEFH's update protocol


def _grads(m):
    return [p.grad.clone() for p in m.efh.ordered_parameters()]


def _refh(obs_type="poisson", **kw):
    m = REFH(REFHConfig(n_obs=6, n_hidden=7, obs_type=obs_type, **kw),
             generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # weights large enough that the recurrence matters
        for w in m.efh.W:
            w.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(1))
        m.efh.b_vis[1].fill_(-0.5)
    return m


def _hand_cd1(m, u_prev, y, g):
    """CD-1 of the joint harmonium on [u_{t-1}, y_t], written out by hand (Bernoulli y):
    x̄⁺ = σ(u W_u + y W_y + b_x), x⁺ ~ Bern(x̄⁺); u⁻ ~ Bern(σ(x⁺ W_uᵀ + b_u)), y⁻ ~
    Bern(σ(x⁺ W_yᵀ + b_y)) (both groups reconstructed); x̄⁻ = σ(u⁻ W_u + y⁻ W_y + b_x).
    Descent directions ⟨v x̄⟩⁻ - ⟨v x⟩⁺, batch means. Draws in the library's order."""
    (Wu, Wy), (bu, by), bx = m.efh.W, m.efh.b_vis, m.efh.b_hid
    with torch.no_grad():
        x_mean = torch.sigmoid(u_prev @ Wu + y @ Wy + bx)
        x = (torch.rand(x_mean.shape, generator=g) < x_mean).float()
        pu = torch.sigmoid(x @ Wu.T + bu)
        u_neg = (torch.rand(pu.shape, generator=g) < pu).float()
        py = torch.sigmoid(x @ Wy.T + by)
        y_neg = (torch.rand(py.shape, generator=g) < py).float()
        x_neg = torch.sigmoid(u_neg @ Wu + y_neg @ Wy + bx)
        n = y.shape[0]
        grads = [(u_neg.T @ x_neg - u_prev.T @ x) / n, (y_neg.T @ x_neg - y.T @ x) / n,
                 (u_neg - u_prev).mean(0), (y_neg - y).mean(0), (x_neg - x).mean(0)]
    return grads, x_mean, x


def _binary(T, B, n=6, seed=3):
    return (torch.rand(T, B, n, generator=torch.Generator().manual_seed(seed)) < 0.4).float()


def test_refh_one_step_window_is_one_hand_computed_cd_step():
    m = _refh("bernoulli")
    y = _binary(1, 5)
    u_prev = torch.rand(5, 7, generator=torch.Generator().manual_seed(4))
    out = m.update(y, u_prev, torch.Generator().manual_seed(5))
    want, x_mean, _ = _hand_cd1(m, u_prev, y[0], torch.Generator().manual_seed(5))
    for got, w in zip(_grads(m), want, strict=True):
        torch.testing.assert_close(got, w, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.u, x_mean)  # the positive phase's x̄⁺, pre-update weights
    assert m.efh.W[0].grad.abs().sum() > 0 and m.efh.b_vis[0].grad.abs().sum() > 0
    # u0=None is u_0 = 0
    m.update(y, None, torch.Generator().manual_seed(5))
    want0, _, _ = _hand_cd1(m, torch.zeros(5, 7), y[0], torch.Generator().manual_seed(5))
    for got, w in zip(_grads(m), want0, strict=True):
        torch.testing.assert_close(got, w, rtol=1e-5, atol=1e-6)


def test_refh_whole_sequence_window_is_the_old_update_sequence():
    """u_{t-1} by a mean-field pass with the current weights from u0, then ONE CD step on all
    T·B pairs [u_{t-1}, y_t], both groups reconstructed; the returned state is u_T."""
    m = _refh("bernoulli")
    T, B = 4, 3
    y = _binary(T, B)
    u0 = torch.rand(B, 7, generator=torch.Generator().manual_seed(6))
    # the mean-field pass, by hand
    u, us = u0, []
    with torch.no_grad():
        for t in range(T):
            us.append(u)
            u = torch.sigmoid(u @ m.efh.W[0] + y[t] @ m.efh.W[1] + m.efh.b_hid)
    u_prev = torch.stack(us)  # u_0..u_{T-1}
    out = m.update(y, u0, torch.Generator().manual_seed(7))
    want, _, _ = _hand_cd1(m, u_prev.reshape(T * B, 7), y.reshape(T * B, 6),
                           torch.Generator().manual_seed(7))
    for got, w in zip(_grads(m), want, strict=True):
        torch.testing.assert_close(got, w, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.u, u)
    torch.testing.assert_close(out.u, m.filter(y, u0)[-1])
    # Poisson observations and CD-k: the same as efh.contrastive_divergence + cd_gradients
    m = _refh("poisson", n_cd_steps=3)
    y = torch.poisson(torch.full((T, B, 6), 1.2), generator=torch.Generator().manual_seed(8))
    out = m.update(y, None, torch.Generator().manual_seed(9))
    u = m.filter(y)
    u_prev = torch.cat([torch.zeros(1, B, 7), u[:-1]]).reshape(T * B, 7)
    stats = m.efh.contrastive_divergence([u_prev, y.reshape(T * B, 6)], 3,
                                         torch.Generator().manual_seed(9))
    assert not torch.equal(stats.v_neg[0], u_prev)  # u_{t-1} reconstructed, not clamped
    for got, w in zip(_grads(m), m.efh.cd_gradients(stats), strict=True):
        assert torch.equal(got, w)
    assert torch.equal(out.u, u[-1])


def test_pretrain_update_clamps_u_at_zero():
    m = _refh("poisson")
    y = torch.poisson(torch.full((4, 3, 6), 1.2), generator=torch.Generator().manual_seed(8))
    m.pretrain_update(y, 2, torch.Generator().manual_seed(1))
    W_y, W_u, b_x, b_y, b_u = (p.grad for p in m.makin_groups())
    assert torch.equal(W_u, torch.zeros_like(W_u)) and torch.equal(b_u, torch.zeros_like(b_u))
    assert W_y.abs().sum() > 0 and b_y.abs().sum() > 0 and b_x.abs().sum() > 0
    # a static harmonium's CD-2 on all T·B frames with u = 0
    stats = m.efh.contrastive_divergence([torch.zeros(12, 7), y.reshape(12, 6)], 2,
                                         torch.Generator().manual_seed(1), clamped=(0,))
    for got, w in zip(_grads(m), m.efh.cd_gradients(stats), strict=True):
        assert torch.equal(got, w)
    with pytest.raises(ValueError, match="shape"):
        m.pretrain_update(y[0], 2)


@pytest.mark.parametrize("T", [1, 3])
def test_refh_sample_mode_hands_on_the_cd_samples(T):
    m = _refh("bernoulli", recurrent="sample")
    B = 4
    y = _binary(T, B)
    u0 = torch.rand(B, 7, generator=torch.Generator().manual_seed(2))
    out = m.update(y, u0, torch.Generator().manual_seed(3))
    assert out.u.shape == (B, 7)
    assert set(out.u.unique().tolist()) <= {0.0, 1.0}
    assert 0 < out.u.sum() < out.u.numel()  # a sample, not constant
    _, stats = m.window_cd(y, u0, torch.Generator().manual_seed(3))
    assert torch.equal(out.u, stats.x_pos[-B:])  # the last step's positive-phase x⁺
    if T == 1:
        _, _, x = _hand_cd1(m, u0, y[0], torch.Generator().manual_seed(3))
        assert torch.equal(out.u, x)
    # mean mode: the means of the same positive phase
    mean = _refh("bernoulli")
    out_mean = mean.update(y, u0, torch.Generator().manual_seed(3))
    torch.testing.assert_close(out_mean.u, mean.filter(y, u0)[-1])
    assert not torch.equal(out_mean.u, out.u)


def test_gibbs_dtype_is_checked_and_reaches_the_training_chains(monkeypatch):
    from tlr.models.efh import EFH

    with pytest.raises(ValueError, match="gibbs_dtype must be one of"):
        REFHConfig(gibbs_dtype="float16")
    seen = []
    original = EFH.contrastive_divergence

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("dtype"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(EFH, "contrastive_divergence", spy)
    m = REFH(REFHConfig(n_obs=4, n_hidden=3, obs_type="bernoulli", gibbs_dtype="bfloat16"),
             generator=torch.Generator().manual_seed(0))
    y = torch.rand(6, 2, 4, generator=torch.Generator().manual_seed(1))
    m.update(y, None, torch.Generator().manual_seed(2))
    m.pretrain_update(y, 2, torch.Generator().manual_seed(3))
    assert seen == [torch.bfloat16, torch.bfloat16]
    assert all(p.grad.dtype == torch.float32 for p in m.parameters() if p.grad is not None)
