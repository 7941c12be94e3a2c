"""rVAE / rVAE-BPTT / TVAE: shapes, the temporally local rule, late fusion, losses, errors."""

import pytest
import torch

from tlr.data.lds_ppc import PPCConfig, simulate
from tlr.evaluation.readout import com_readout
from tlr.models.rvae import RVAE, RVAEConfig
from tlr.models.tvae import TVAE, TVAEConfig
from tlr.train import OptimConfig, fit

T, B, L = 5, 3, 4


def _counts(T=T, B=B, n=15, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((T, B, n), 1.5), generator=g)


def _model(cls=RVAE, **kw):
    torch.manual_seed(0)
    cfg = (RVAEConfig if cls is RVAE else TVAEConfig)(n_latent=L, n_units=16, **kw)
    return cls(cfg)


def _grads(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    return [torch.zeros_like(p) if p.grad is None else p.grad.clone()
            for p in model.parameters()]


MODELS = [(RVAE, {}), (RVAE, {"bptt": True}), (TVAE, {}), (TVAE, {"bptt": True})]


@pytest.mark.parametrize("cls,kw", MODELS)
def test_shapes_names_and_finite_loss(cls, kw):
    m = _model(cls, **kw)
    y = _counts()
    u0 = m.initial_state(B)
    assert u0.shape == (B, L) and torch.all(u0 == 0)
    out = m.step(y[0], u0, torch.Generator().manual_seed(1))
    assert out.u.shape == out.nu.shape == out.logvar.shape == (B, L)
    assert out.loss.shape == out.kl.shape == out.nll_u.shape == out.nll_y.shape == (B,)
    assert torch.allclose(out.loss, out.kl + out.nll_u + out.nll_y)
    loss, u = m.sequence_loss(y, u0, torch.Generator().manual_seed(1))
    assert loss.dim() == 0 and torch.isfinite(loss) and u.shape == (B, L)
    nu = m.filter(y)
    assert nu.shape == (T, B, L)
    rates = m.reconstruct(nu)
    assert rates.shape == (T, B, 15) and torch.all(rates > 0)  # Poisson rates
    expected = {(RVAE, False): "rVAE", (RVAE, True): "rVAE-BPTT", (TVAE, False): "TVAE",
                (TVAE, True): "TVAE-BPTT"}
    assert m.name == expected[(cls, kw.get("bptt", False))]


@pytest.mark.parametrize("cls", [RVAE, TVAE])
def test_filter_feeds_back_posterior_means(cls):
    m = _model(cls)
    y = _counts()
    nu = m.filter(y, u0=m.initial_state(B))
    u = m.initial_state(B)
    for t in range(T):
        u, _ = m.encode(y[t], u)
        assert torch.allclose(nu[t], u)
    # and the window's last u is the last filtered mean
    _, u_last = m.window(y, m.initial_state(B), torch.Generator().manual_seed(0))
    assert torch.allclose(u_last, nu[-1], atol=1e-6)


@pytest.mark.parametrize("cls", [RVAE, TVAE])
def test_warm_start_iterates_the_encoder_on_the_first_observation_only(cls):
    y = _counts()
    m = _model(cls, warm_start=3)
    u = m.initial_state(B)
    for _ in range(3):
        u, _ = m.encode(y[0], u)
    assert torch.allclose(m.start_state(y[0]), u)
    assert torch.allclose(m.filter(y), m.filter(y, u0=u))
    y2 = y.clone()
    y2[1:] += 1  # later observations do not change the start (causal)
    assert torch.allclose(m.filter(y2)[0], m.filter(y)[0])
    cold = _model(cls, warm_start=0)
    assert torch.equal(cold.start_state(y[0]), cold.initial_state(B))
    assert torch.allclose(cold.filter(y), cold.filter(y, u0=cold.initial_state(B)))


@pytest.mark.parametrize("cls", [RVAE, TVAE])
def test_local_rule_gradient_equals_constant_u_and_bptt_differs(cls):
    """Step t's gradient with bptt=False is the gradient with u_{t-1} fed as a constant."""
    y = _counts()
    t = 3
    eps = torch.randn(T, B, L, generator=torch.Generator().manual_seed(5))
    for bptt in (False, True):
        m = _model(cls, bptt=bptt)
        # step t's loss inside the window (the path fit takes) ...
        g = torch.Generator().manual_seed(5)
        out, _ = m.window(y, m.initial_state(B), g)
        g_window = _grads(m, out.loss[t].mean())
        # ... vs the same step scored on u_{t-1} computed beforehand and held constant
        u_const = m.filter(y, u0=m.initial_state(B))[t - 1]
        g_const = _grads(m, m.score(y[t], u_const, eps[t]).loss.mean())
        same = all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g_window, g_const,
                                                                       strict=True))
        assert same == (not bptt)


@pytest.mark.parametrize("cls", [RVAE, TVAE])
def test_no_gradient_reaches_earlier_observations_without_bptt(cls):
    for bptt in (False, True):
        m = _model(cls, bptt=bptt)
        y = _counts().requires_grad_()
        out, _ = m.window(y, m.initial_state(B), torch.Generator().manual_seed(0))
        out.loss[-1].sum().backward()
        earlier = y.grad[:-1].abs().sum()
        assert y.grad[-1].abs().sum() > 0
        assert (earlier == 0) == (not bptt)


@pytest.mark.parametrize("cls", [RVAE, TVAE])
def test_batched_local_window_equals_step_by_step(cls):
    """The fast batched path (bptt=False) gives the step-by-step loop's values and grads."""
    y = _counts()
    m = _model(cls)
    out, u_fast = m.window(y, m.initial_state(B), torch.Generator().manual_seed(2))
    g_fast = _grads(m, out.loss.sum(0).mean())
    eps = torch.randn(T, B, L, generator=torch.Generator().manual_seed(2))
    u, total = m.initial_state(B), 0.0
    for t in range(T):
        o = m.score(y[t], u.detach(), eps[t])
        total, u = total + o.loss.mean(), o.u
    g_loop = _grads(m, total)
    assert torch.allclose(out.loss.sum(0).mean(), total, atol=1e-5)
    assert torch.allclose(u_fast, u, atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(g_fast, g_loop, strict=True))


def test_bptt_forward_values_equal_local_and_only_gradients_differ():
    y = _counts()
    losses, grads = [], []
    for bptt in (False, True):
        m = _model(RVAE, bptt=bptt)
        loss, _ = m.sequence_loss(y, m.initial_state(B), torch.Generator().manual_seed(3))
        losses.append(loss.detach())
        grads.append(_grads(m, loss))
    assert torch.allclose(*losses, atol=1e-5)
    assert any(not torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads, strict=True))


@pytest.mark.parametrize("cls", [RVAE, TVAE])
def test_late_fusion_the_y_trunk_never_sees_u(cls):
    m = _model(cls)
    assert m.rec_y[0].in_features == 15
    assert m.rec_head[0].in_features == m.config.n_units + L
    seen = []
    m.rec_y.register_forward_hook(lambda mod, inp, out: seen.append((inp[0], out)))
    y = _counts()[0]
    m.encode(y, torch.zeros(B, L))
    m.encode(y, torch.randn(B, L))
    (in0, h0), (in1, h1) = seen
    assert torch.equal(in0, torch.log1p(y)) and torch.equal(h0, h1)  # u changes nothing there


def test_rvae_reconstructs_u_and_tvae_does_not():
    y = _counts()
    r, tv = _model(RVAE), _model(TVAE)
    out_r, _ = r.window(y, r.initial_state(B), torch.Generator().manual_seed(0))
    out_t, _ = tv.window(y, tv.initial_state(B), torch.Generator().manual_seed(0))
    assert torch.all(out_r.nll_u != 0)
    assert torch.all(out_t.nll_u == 0)
    assert hasattr(r, "gen_u") and not hasattr(tv, "gen_u") and hasattr(tv, "prior")
    with pytest.raises(AttributeError):
        tv.sigma_u()
    # the TVAE's u enters only through its conditional prior and the encoder
    g = _grads(tv, out_t.loss.sum())
    names = [n for n, _ in tv.named_parameters()]
    assert all(gr.abs().sum() > 0 for n, gr in zip(names, g, strict=True) if n.startswith("prior"))


@pytest.mark.parametrize("cls,cfg", [(RVAE, RVAEConfig), (TVAE, TVAEConfig)])
def test_generator_makes_the_initialisation_reproducible(cls, cfg):
    a = cls(cfg(n_units=16), generator=torch.Generator().manual_seed(3))
    b = cls(cfg(n_units=16), generator=torch.Generator().manual_seed(3))
    c = cls(cfg(n_units=16), generator=torch.Generator().manual_seed(4))
    pa, pb, pc = (list(m.parameters()) for m in (a, b, c))
    assert all(torch.equal(x, y) for x, y in zip(pa, pb, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(pa, pc, strict=True))


def test_learned_and_fixed_sigmas():
    fixed = _model(RVAE, learn_sigma="fixed", sigma_u=0.3)
    assert "log_sigma_u" not in dict(fixed.named_parameters())
    assert torch.allclose(fixed.sigma_u(), torch.tensor([0.3]))
    diag = _model(RVAE, learn_sigma="diag", sigma_u=0.5)
    assert dict(diag.named_parameters())["log_sigma_u"].shape == (L,)
    assert _model(RVAE, learn_sigma="scalar").log_sigma_u.shape == (1,)
    gauss = _model(RVAE, likelihood="gaussian", learn_sigma="diag")
    assert dict(gauss.named_parameters())["log_sigma_y"].shape == (15,)
    with torch.no_grad():
        diag.log_sigma_u.fill_(-50.0)
    assert torch.allclose(diag.sigma_u(), torch.full((L,), 1e-2))  # floored


def test_conditional_full_covariance():
    from tlr.models.rvae import scale_tril
    raw = torch.randn(7, 6)
    Lc = scale_tril(raw, 3, log_scale=-1.0)
    assert torch.equal(Lc, torch.tril(Lc)) and torch.all(torch.diagonal(Lc, dim1=-2, dim2=-1) > 0)
    assert torch.allclose(Lc[:, 1, 0], raw[:, 1] * torch.exp(torch.tensor(-1.0)))
    floor = scale_tril(torch.full((1, 3), -100.0), 2)
    assert torch.allclose(torch.diagonal(floor[0]), torch.full((2,), 1e-2))

    m = _model(RVAE, learn_sigma="cond", sigma_u=0.5)
    x = torch.randn(B, L)
    with pytest.raises(ValueError, match="pass x"):
        m.sigma_u()
    sd = m.sigma_u(x)
    assert sd.shape == (B, L) and torch.all(sd > 0)
    d = m.u_dist(x)
    assert isinstance(d, torch.distributions.MultivariateNormal)
    assert torch.allclose(d.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt(), sd)
    for cls in (RVAE, TVAE):
        mod = _model(cls, learn_sigma="cond")
        out, _ = mod.window(_counts(), mod.initial_state(B), torch.Generator().manual_seed(0))
        assert torch.isfinite(out.loss).all() and torch.all(out.kl >= -1e-5)
        assert torch.allclose(out.loss, out.kl + out.nll_u + out.nll_y)


def test_non_finite_state_raises_floating_point_error():
    m = _model(RVAE)
    u = torch.full((B, L), float("nan"))
    with pytest.raises(FloatingPointError, match="not finite"):
        m.step(_counts()[0], u)


def test_u_mode_sample_hands_on_the_posterior_sample():
    m = _model(RVAE, u_mode="sample")
    out = m.step(_counts()[0], m.initial_state(B), torch.Generator().manual_seed(0))
    assert not torch.allclose(out.u, out.nu)


@pytest.mark.parametrize("likelihood", ["multinomial", "gaussian", "bernoulli"])
def test_other_likelihoods(likelihood):
    m = _model(RVAE, likelihood=likelihood)
    y = _counts().clamp(max=1) if likelihood == "bernoulli" else _counts()
    out, _ = m.window(y, m.initial_state(B), torch.Generator().manual_seed(0))
    assert out.nll_y.shape == (T, B) and torch.isfinite(out.loss).all()
    rates = m.reconstruct(m.filter(y))
    if likelihood == "bernoulli":
        assert torch.all((rates > 0) & (rates < 1))
    if likelihood == "multinomial":  # the response shape
        assert torch.allclose(rates.sum(-1), torch.ones(T, B))


def test_multinomial_is_the_poisson_likelihood_given_the_total():
    """log Pois(y; λ) = log Mult(y; Σy, λ/Σλ) + log Pois(Σy; Σλ): the shape term only."""
    from tlr.models.rvae import obs_distribution
    y = _counts()[0]
    eta = torch.randn(B, 15)
    lam = eta.exp()
    pois = obs_distribution("poisson", eta).log_prob(y).sum(-1)
    mult = obs_distribution("multinomial", eta).log_prob(y)
    total = torch.distributions.Poisson(lam.sum(-1)).log_prob(y.sum(-1))
    assert torch.allclose(pois, mult + total, atol=1e-4)


@pytest.mark.parametrize("kw", [
    {"likelihood": "student"}, {"u_mode": "median"}, {"learn_sigma": "full"},
    {"n_latent": 0}, {"n_units": 2.5}, {"n_layers": True}, {"sigma_u": 0.0}, {"sigma_y": -1.0},
    {"warm_start": -1},
])
def test_bad_config(kw):
    with pytest.raises(ValueError):
        RVAEConfig(**kw)
    if "sigma_u" not in kw:
        with pytest.raises(ValueError):
            TVAEConfig(**kw)


@pytest.mark.parametrize("cls", [RVAE, TVAE])
def test_bad_shapes(cls):
    m = _model(cls)
    with pytest.raises(ValueError, match="shape"):
        m.filter(_counts()[0])  # (B, n): missing time
    with pytest.raises(ValueError, match="shape"):
        m.sequence_loss(_counts(n=14), m.initial_state(B))
    with pytest.raises(ValueError, match="u0"):
        m.sequence_loss(_counts(), torch.zeros(B, L + 1))


@pytest.mark.parametrize("cls,kw", MODELS)
def test_fit_windows_and_com_readout(cls, kw):
    ppc = PPCConfig()
    data = simulate(2, 20, seed=0, stream="test/rvae")
    m = _model(cls, **kw)
    before = [p.detach().clone() for p in m.parameters()]
    hist = fit(m, lambda e: data.y, 2, OptimConfig("adam", lr=1e-3),
               torch.Generator().manual_seed(0), window=5,
               evaluate=lambda mod: 0.0, eval_every=1, progress=False)
    assert hist.updates == 2 * 4
    assert any(not torch.equal(a, b) for a, b in zip(before, m.parameters(), strict=True))
    s_hat = com_readout(m, data.y, ppc)
    assert s_hat.shape == (20, 2) and torch.isfinite(s_hat).all()


@pytest.mark.parametrize("cls,kw", MODELS)
def test_update_backpropagates_the_sequence_loss(cls, kw):
    """update(y, u0, g) writes exactly the gradient of sequence_loss (same noise) into p.grad
    and returns (last u detached, loss detached); u0=None is u_0 = 0."""
    y = _counts()
    m = _model(cls, **kw)
    u0 = torch.randn(B, L, generator=torch.Generator().manual_seed(4))
    loss, u = m.sequence_loss(y, u0, torch.Generator().manual_seed(6))
    want = _grads(m, loss)
    m.zero_grad(set_to_none=True)
    out = m.update(y, u0, torch.Generator().manual_seed(6))
    got = [torch.zeros_like(p) if p.grad is None else p.grad for p in m.parameters()]
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got, want, strict=True))
    assert torch.allclose(out.loss, loss.detach()) and not out.loss.requires_grad
    assert torch.allclose(out.u, u) and not out.u.requires_grad and out.u.shape == (B, L)
    m.zero_grad(set_to_none=True)
    a = m.update(y, None, torch.Generator().manual_seed(6))
    b_loss, b_u = m.sequence_loss(y, m.initial_state(B), torch.Generator().manual_seed(6))
    assert torch.allclose(a.loss, b_loss.detach()) and torch.allclose(a.u, b_u)
    with pytest.raises(ValueError, match="shape"):
        m.update(_counts()[0])
    with torch.no_grad():
        for p in m.parameters():
            p.fill_(float("nan"))
    with pytest.raises(FloatingPointError):
        m.update(y)
