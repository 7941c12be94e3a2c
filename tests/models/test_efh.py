"""The harmonium core against brute-force enumeration and exact gradients."""

import itertools
from functools import partial

import pytest
import torch

from tlr.models.efh import EFH, bernoulli, unit_mean, unit_sample

allclose = partial(torch.allclose, atol=1e-10, rtol=1e-8)


def _tiny(groups=(("bernoulli", 3), ("poisson", 2)), n_hidden=3, seed=0) -> EFH:
    g = torch.Generator().manual_seed(seed)
    efh = EFH(list(groups), n_hidden, init_std=0.7, generator=g).double()
    with torch.no_grad():
        for b in [*efh.b_vis, efh.b_hid]:
            b.copy_(0.3 * torch.randn(b.shape, generator=g, dtype=b.dtype))
    return efh


def _all_binary(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def test_free_energy_equals_enumeration_over_hidden_states():
    efh = _tiny()
    v = [torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]], dtype=torch.float64),
         torch.tensor([[2.0, 0.0], [1.0, 5.0]], dtype=torch.float64)]
    xs = _all_binary(3)  # (8, 3)
    for b in range(2):
        vb = [vg[b:b + 1].expand(len(xs), -1) for vg in v]
        brute = -torch.logsumexp(-efh.energy(vb, xs), dim=0)
        assert allclose(efh.free_energy([vg[b:b + 1] for vg in v])[0], brute)


def test_hidden_conditional_equals_enumeration():
    efh = _tiny()
    v = [torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64),
         torch.tensor([[3.0, 1.0]], dtype=torch.float64)]
    xs = _all_binary(3)
    logp = -efh.energy([vg.expand(len(xs), -1) for vg in v], xs)
    p = torch.softmax(logp, 0)
    brute = (p[:, None] * xs).sum(0)
    assert allclose(efh.hidden_mean(v)[0], brute)


def test_bernoulli_visible_conditional_equals_enumeration():
    efh = _tiny(groups=(("bernoulli", 3),), n_hidden=2)
    x = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    vs = _all_binary(3)
    p = torch.softmax(-efh.energy([vs], x.expand(len(vs), -1)), 0)
    assert allclose(efh.visible_mean(x, 0)[0], (p[:, None] * vs).sum(0))


@pytest.mark.parametrize("kind", ["bernoulli", "poisson", "gaussian"])
def test_sample_means_match_conditional_means(kind):
    g = torch.Generator().manual_seed(1)
    eta = torch.tensor([-1.0, 0.0, 0.5, 1.5], dtype=torch.float64).expand(200_000, 4)
    samples = unit_sample(kind, eta, g)
    mean = unit_mean(kind, eta[0])
    # 6 standard errors; the variance of each family is at most max(mean, 1) here.
    se = torch.sqrt(torch.clamp(mean, min=1.0) / 200_000)
    assert torch.all((samples.mean(0) - mean).abs() < 6 * se)


def test_bernoulli_helper_is_exact_in_distribution():
    g = torch.Generator().manual_seed(2)
    p = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0]).expand(100_000, 5)
    x = bernoulli(p, g)
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    assert x[:, 0].sum() == 0 and x[:, 4].sum() == 100_000
    assert torch.allclose(x.mean(0), p[0], atol=0.006)


@pytest.mark.parametrize("dtype", [None, torch.bfloat16])
def test_long_cd_approximates_the_exact_log_likelihood_gradient(dtype):
    """CD-k with long chains, averaged over many chains, ≈ ∂ mean log p(v)/∂θ (brute force);
    also with the chain's products in bfloat16 (statistics still in the parameters' dtype)."""
    efh = _tiny(groups=(("bernoulli", 3),), n_hidden=2, seed=3)
    data = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]], dtype=torch.float64)
    vs = _all_binary(3)

    def mean_loglik():
        logZ = torch.logsumexp(-efh.free_energy([vs]), 0)
        return (-efh.free_energy([data]) - logZ).mean()

    efh.zero_grad()
    (-mean_loglik()).backward()  # descent directions, like cd_gradients
    exact = [p.grad.clone() for p in efh.ordered_parameters()]

    reps = 20_000
    batch = data.repeat(reps, 1)
    stats = efh.contrastive_divergence([batch], k=30, generator=torch.Generator().manual_seed(4),
                                       dtype=dtype)
    assert stats.x_mean_neg.dtype == stats.v_neg[0].dtype == torch.float64
    cd = efh.cd_gradients(stats)
    for e, c in zip(exact, cd, strict=True):
        assert torch.allclose(e, c, atol=0.02), (e, c)


def test_cd_gradients_formula_and_clamping():
    efh = _tiny()
    g = torch.Generator().manual_seed(5)
    v = [torch.bernoulli(torch.full((7, 3), 0.5, dtype=torch.float64), generator=g),
         torch.poisson(torch.full((7, 2), 2.0, dtype=torch.float64), generator=g)]
    s = efh.contrastive_divergence(v, k=2, generator=g, clamped=(0,))
    assert torch.equal(s.v_neg[0], v[0])  # clamped group is never resampled
    gW0, gW1, gb0, gb1, gh = efh.cd_gradients(s)
    assert allclose(gW1, -(v[1].T @ s.x_pos - s.v_neg[1].T @ s.x_mean_neg) / 7)
    assert allclose(gb0, torch.zeros(3, dtype=torch.float64))  # clamped: no bias signal
    assert allclose(gh, -(s.x_pos - s.x_mean_neg).mean(0))


def test_chain_dtype_of_the_parameters_changes_nothing():
    efh = _tiny()
    v = [torch.rand(5, 3, dtype=torch.float64), torch.ones(5, 2, dtype=torch.float64)]
    a = efh.contrastive_divergence(v, k=3, generator=torch.Generator().manual_seed(1))
    b = efh.contrastive_divergence(v, k=3, generator=torch.Generator().manual_seed(1),
                                   dtype=torch.float64)
    assert all(torch.equal(x, y) for x, y in zip(efh.cd_gradients(a), efh.cd_gradients(b),
                                                  strict=True))


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match="unsupported unit type 'gamma'"):
        EFH([("gamma", 3)], 2)
    with pytest.raises(ValueError, match="n_hidden"):
        EFH([("bernoulli", 3)], 0)
    with pytest.raises(ValueError, match="group size"):
        EFH([("bernoulli", 0)], 2)
    with pytest.raises(ValueError, match="at least one visible group"):
        EFH([], 2)
    efh = _tiny()
    with pytest.raises(ValueError, match=r"visible group 1 must have shape \(B, 2\)"):
        efh.contrastive_divergence([torch.zeros(4, 3), torch.zeros(4, 5)], 1, None)
    with pytest.raises(ValueError, match="expected 2 visible groups"):
        efh.free_energy([torch.zeros(4, 3)])
    with pytest.raises(ValueError, match="CD steps"):
        efh.contrastive_divergence([torch.zeros(4, 3), torch.zeros(4, 2)], 0, None)


def test_diverged_poisson_units_raise():
    with pytest.raises(FloatingPointError, match="diverged"):
        unit_sample("poisson", torch.tensor([50.0]), None)
