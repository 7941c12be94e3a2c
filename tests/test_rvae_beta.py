"""rVAE-β: the KL-weighted rVAE, its registry entry, and the PPC runner's velocity R²."""

import dataclasses
import math
from dataclasses import replace

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from tlr.experiments.ppc import PPC, PRESETS, HarmoniumRun, VAERun, run
from tlr.models import build_model
from tlr.models.registry import MODELS, RVAE_BETA, registry_name
from tlr.models.rvae import RVAE, RVAEConfig
from tlr.train import OptimConfig


def _inputs(n_obs=6, n_latent=3, T=4, B=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.poisson(torch.full((T, B, n_obs), 2.0), generator=g)
    u = torch.randn(T, B, n_latent, generator=g)
    eps = torch.randn(T, B, n_latent, generator=g)
    return y, u, eps


def _model(**kw):
    cfg = RVAEConfig(n_obs=6, n_latent=3, n_units=8, **kw)
    return RVAE(cfg, generator=torch.Generator().manual_seed(1))


def test_default_is_the_elbo_and_unchanged():
    c = RVAEConfig()
    assert (c.kl_weight, c.kl_warmup, c.kl_weight0, c.free_bits) == (1.0, 0, 0.0, 0.0)
    assert not c.beta_vae
    m = _model()
    assert m.name == "rVAE" and "n_updates" not in dict(m.named_buffers())
    y, u, eps = _inputs()
    out = m.score(y, u, eps)
    assert torch.equal(out.loss, out.kl + out.nll_u + out.nll_y)  # bit for bit


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.75, 2.0])
def test_beta_weights_only_the_kl(beta):
    y, u, eps = _inputs()
    ref, m = _model(), _model(kl_weight=beta)
    m.load_state_dict(ref.state_dict())
    a, b = ref.score(y, u, eps), m.score(y, u, eps)
    for f in ("kl", "nll_u", "nll_y", "nu", "logvar"):  # same network, same terms
        assert torch.equal(getattr(a, f), getattr(b, f))
    torch.testing.assert_close(b.loss, beta * b.kl + b.nll_u + b.nll_y)
    # the gradient is the β-VAE objective's: ∇(β KL) + ∇ nll
    ga = torch.autograd.grad(b.loss.sum(), list(m.parameters()), allow_unused=True,
                             retain_graph=True)
    gk = torch.autograd.grad(b.kl.sum(), list(m.parameters()), allow_unused=True,
                             retain_graph=True)
    gn = torch.autograd.grad((b.nll_u + b.nll_y).sum(), list(m.parameters()),
                             allow_unused=True)
    for g, k, n in zip(ga, gk, gn, strict=True):
        if g is None:
            continue
        want = (0 if n is None else n) + beta * (0 if k is None else k)
        torch.testing.assert_close(g, want, rtol=1e-4, atol=1e-5)
    assert m.name == ("rVAE" if beta == 1.0 else "rVAE-β")


def test_warmup_ramps_beta_over_updates():
    m = _model(kl_weight=0.8, kl_weight0=0.2, kl_warmup=4)
    assert m.name == "rVAE-β" and int(m.n_updates) == 0
    y = _inputs()[0]
    seen = []
    for _ in range(6):
        seen.append(m.kl_weight())
        m.zero_grad()
        m.update(y, generator=torch.Generator().manual_seed(0))
    assert seen == pytest.approx([0.2, 0.35, 0.5, 0.65, 0.8, 0.8])
    assert int(m.n_updates) == 6 and "n_updates" in m.state_dict()  # the clock is checkpointed


def test_free_bits_floor_each_dimension():
    y, u, eps = _inputs()
    m = _model(free_bits=50.0)  # far above any dimension's KL: every dimension at its floor
    out = m.score(y, u, eps)
    torch.testing.assert_close(out.loss, 50.0 * 3 + out.nll_u + out.nll_y)
    m0 = _model(free_bits=1e-12)  # floor never binds: the plain KL
    out0 = m0.score(y, u, eps)
    torch.testing.assert_close(out0.loss, out0.kl + out0.nll_u + out0.nll_y)
    nu, std = out.nu, torch.exp(0.5 * out.logvar)
    kl = kl_divergence(Normal(nu, std), Normal(torch.zeros_like(nu), 1.0)).sum(-1)
    torch.testing.assert_close(out.kl, kl)


@pytest.mark.parametrize("field,value", [("kl_weight", -0.1), ("kl_weight0", -1.0),
                                         ("free_bits", -0.5), ("kl_warmup", -1),
                                         ("kl_warmup", 1.5)])
def test_bad_beta_settings(field, value):
    with pytest.raises(ValueError):
        RVAEConfig(**{field: value})


def test_registry_builds_rvae_beta_and_names_it():
    m = build_model("rVAE-β", n_obs=15)
    assert isinstance(m, RVAE) and not m.config.bptt
    for k, v in RVAE_BETA.items():
        assert getattr(m.config, k) == v
    assert m.name == "rVAE-β" and registry_name(m) == "rVAE-β"
    assert registry_name(build_model("rVAE", n_obs=15)) == "rVAE"
    assert registry_name(build_model("rVAE-BPTT", n_obs=15)) == "rVAE-BPTT"
    # settings are defaults of the name, not fixed: they can be overridden
    assert build_model("rVAE-β", n_obs=15, kl_weight=0.5).config.kl_weight == 0.5
    with pytest.raises(ValueError, match="fixes"):
        build_model("rVAE-β", n_obs=15, bptt=True)
    assert MODELS["rVAE"].defaults == {}


def test_ppc_presets_agree_with_the_registry():
    for preset in PRESETS.values():
        name, cfg = PPC.model_config("rVAE-β", preset)
        assert name == "rVAE-β"
        for k, v in RVAE_BETA.items():
            assert cfg[k] == v, k
    # the other VAEs are untouched by the rVAE-β fields
    assert set(PPC.model_config("rVAE", PRESETS["paper"])[1]) == {"n_obs", "n_latent", "n_units"}
    assert "beta_kl_weight" in {f.name for f in dataclasses.fields(VAERun)}


TINY = replace(
    PRESETS["quick"], name="tiny", n_test=2, T_test=60, n_train=2, T_train=60, em_max_iter=3,
    refh=HarmoniumRun(n_hidden=8, n_epochs=1, n_traj=2, T=30,
                      optim=OptimConfig("adam", lr=1e-3)),
    vae=VAERun(n_epochs=1, n_traj=2, T=30, window=5, beta_kl_warmup=3),
)


def test_runner_records_velocity_r2_of_every_model_with_a_state():
    names = ["ORDER 0", "KF-1", "KF-2", "KF-true", "rEFH", "rVAE", "rVAE-β"]
    out = run(names, TINY, seed=0, progress=False)
    for name in names:
        info = out[name]["info"]
        if name == "ORDER 0":  # no state
            assert "velocity_r2" not in info
            continue
        assert math.isfinite(info["velocity_r2"]) and info["velocity_r2"] <= 1.0, name
    assert all(math.isfinite(out[n]["info"]["lag_steps"]) for n in names)  # ORDER 0 too
    assert out["KF-true"]["info"]["velocity_r2"] > 0.5  # a second-order filter
    assert out["ORDER 0"]["info"]["lag_steps"] < out["KF-1"]["info"]["lag_steps"]
    for name in ("rEFH", "rVAE", "rVAE-β"):  # trained: the velocity R² along training too
        info = out[name]["info"]
        assert len(info["velocity_r2_curve"]) == len(info["curve"]) >= 1, name
        assert all(math.isfinite(v) and v <= 1.0 for v in info["velocity_r2_curve"]), name


def test_the_velocity_curve_does_not_change_training():
    """The diagnostics read the model between epochs and never draw from the training stream:
    the same run without them (an explicit ``evaluate`` turns them off) ends with the same
    weights, bit for bit."""
    from tlr.experiments.common import build, train

    data = PPC.prepare(TINY, 0, torch.device("cpu"))
    runs = []
    for evaluate in (None, PPC.evaluator("rVAE-β", TINY, 0, data, torch.device("cpu"))):
        model, g = build(PPC, "rVAE-β", TINY, 0, torch.device("cpu"))
        _, hist, _ = train(PPC, "rVAE-β", TINY, 0, data, torch.device("cpu"), progress=False,
                           model=model, generator=g, evaluate=evaluate)
        runs.append((model, hist))
    (a, ha), (b, hb) = runs
    assert "velocity_r2" in ha.extra and not hb.extra and ha.metric == hb.metric
    for (n, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), n


def test_cli_runs_rvae_beta(tmp_path):
    import json

    from tlr.cli import main

    path = tmp_path / "r.json"
    rc = main(["run", "ppc", "--models", "KF-1,rVAE-β", "--seed", "0", "--json", str(path),
               "--set", "n_test=2", "--set", "T_test=60", "--set", "n_train=2",
               "--set", "T_train=60", "--set", "em_max_iter=3", "--set", "vae.n_epochs=1",
               "--set", "vae.n_traj=2", "--set", "vae.T=30", "--set", "vae.window=5",
               "--set", "vae.beta_kl_weight=0.5"])
    assert rc in (0, None)
    res = json.loads(path.read_text())
    assert set(res["results"]) == {"KF-1", "rVAE-β"}
    assert all("velocity_r2" in res["details"][m] for m in ("KF-1", "rVAE-β"))


@pytest.mark.parametrize("learn_sigma", ["cond", "diag"])
def test_uncertain_u_term_is_the_expectation_over_the_previous_posterior(learn_sigma):
    """u_uncertain: -E_{u ~ N(ν, diag Υ)} log p̂(u | x) in closed form, checked by Monte Carlo;
    with Υ = 0 it is the plain u-term, and the option alone makes the model an rVAE-β."""
    y, u, eps = _inputs()
    ref = _model(learn_sigma=learn_sigma)
    m = _model(learn_sigma=learn_sigma, u_uncertain=True)
    m.load_state_dict(ref.state_dict())
    assert m.name == "rVAE-β" and m.config.beta_vae
    var = 0.3 * torch.rand(u.shape, generator=torch.Generator().manual_seed(2))
    a = ref.score(y, u, eps)
    assert torch.equal(m.score(y, u, eps, torch.zeros_like(u)).nll_u, a.nll_u)
    assert torch.equal(ref.score(y, u, eps, var).nll_u, a.nll_u)  # the option off: Υ unused
    b = m.score(y, u, eps, var)
    x = b.nu + torch.exp(0.5 * b.logvar) * eps
    dist = m.u_dist(x)
    g = torch.Generator().manual_seed(3)
    draws = u + var.sqrt() * torch.randn((20000, *u.shape), generator=g)
    lp = dist.log_prob(draws)
    mc = -(lp.sum(-1) if lp.dim() == draws.dim() else lp).mean(0)
    torch.testing.assert_close(b.nll_u, mc, rtol=2e-2, atol=2e-2)
    assert (b.nll_u > a.nll_u).all()  # uncertainty about u costs


def test_uncertain_u_keeps_the_rule_local():
    """The window passes Υ_{t-1} as data: the local gradient is the sum of per-step gradients
    with ν_{t-1} and Υ_{t-1} both detached, and BPTT differs from it."""
    m = _model(u_uncertain=True)
    y, _, _ = _inputs(T=6, B=3)
    g = torch.Generator().manual_seed(4)
    out, _ = m.window(y, m.initial_state(3), g)
    local, bptt = m.local_and_bptt_gradients(y, generator=torch.Generator().manual_seed(4))
    grads = torch.autograd.grad(out.loss.mean(1).sum(), [p for p in m.parameters()],
                                allow_unused=True)
    for a, b in zip(grads, local, strict=True):
        torch.testing.assert_close(torch.zeros_like(b) if a is None else a, b,
                                   rtol=1e-4, atol=1e-6)
    assert any(not torch.allclose(a, b) for a, b in zip(local, bptt, strict=True))
