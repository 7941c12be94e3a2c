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
    u = m.update(y, u_prev, g)
    assert torch.equal(y, y0) and torch.equal(u_prev, u0)
    assert u.shape == (8, 20) and torch.all((u > 0) & (u < 1))
    assert torch.allclose(u, m.step(y, u_prev))  # u_t = means with the pre-update weights
    # u_{t-1} is part of the visible layer: its bias receives a learning signal
    assert m.efh.b_vis[0].grad.abs().sum() > 0
    # ... and nothing in the update depends on u's history: no graph is kept
    assert not u.requires_grad


def test_trbm_keeps_u_clamped_and_rtrbm_adds_exactly_the_bptt_term():
    y = _counts(12, 3)
    grads = {}
    for cls in (TRBM, RTRBM):
        m = cls(TRBMConfig(n_hidden=16, n_cd_steps=2), generator=torch.Generator().manual_seed(0))
        m.update(y, torch.Generator().manual_seed(1))
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
