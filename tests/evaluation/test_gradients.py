"""Gradient alignment (local rule vs BPTT): T = 1, known cases, agreement with the models'
own training paths, shapes, and errors."""

import math

import pytest
import torch

from tlr.evaluation.gradients import cosine, gradient_alignment
from tlr.models.refh import REFH, REFHConfig
from tlr.models.rtrbm import RTRBM
from tlr.models.rvae import RVAE, RVAEConfig
from tlr.models.trbm import TRBM, TRBMConfig
from tlr.models.tvae import TVAE, TVAEConfig

B = 4


def _counts(T, B=B, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((T, B, 15), 1.5), generator=g)


def _rvae(bptt=False, cls=RVAE, **kw):
    cfg = (RVAEConfig if cls is RVAE else TVAEConfig)(n_latent=2, n_units=16, bptt=bptt, **kw)
    return cls(cfg, generator=torch.Generator().manual_seed(0))


def _harmonium(cls=RTRBM, w_u_std=0.3):
    m = cls(TRBMConfig(n_hidden=12, n_cd_steps=2), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # recurrent weights large enough that the BPTT term matters
        m.efh.W[0].normal_(0.0, w_u_std, generator=torch.Generator().manual_seed(1))
    return m


def _seed(s=3):
    return torch.Generator().manual_seed(s)


# ------------------------------------------------------------------------------ cosine


def test_cosine_conventions():
    a = torch.tensor([1.0, 2.0, -1.0])
    assert cosine(a, a) == pytest.approx(1.0)
    assert cosine(a, -2 * a) == pytest.approx(-1.0)
    assert cosine(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 3.0])) == pytest.approx(0.0)
    assert cosine(torch.zeros(3), torch.zeros(3)) == 1.0
    assert cosine(torch.zeros(3), a) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        cosine(a, torch.ones(2))


# ------------------------------------------------------------------------------ T = 1


@pytest.mark.parametrize("make", [_rvae, lambda: _rvae(bptt=True), lambda: _rvae(cls=TVAE),
                                  lambda: _harmonium(RTRBM), lambda: _harmonium(TRBM)])
def test_no_past_local_equals_bptt(make):
    m = make()
    out = gradient_alignment(m, _counts(1))
    assert all(v == pytest.approx(1.0, abs=1e-9) for v in out.values()), out


# ------------------------------------------------------------------------------ shapes


@pytest.mark.parametrize("make", [_rvae, _harmonium])
def test_keys_values_and_model_untouched(make):
    m = make()
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    out = gradient_alignment(m, _counts(6))
    assert list(out) == [n for n, _ in m.named_parameters()] + ["overall"]
    assert all(type(v) is float and -1.0 <= v <= 1.0 for v in out.values())
    for n, p in m.named_parameters():
        assert p.grad is None and torch.equal(p, before[n]), n
    # deterministic by default; another generator draws other noise / CD samples
    assert gradient_alignment(m, _counts(6)) == out
    assert gradient_alignment(m, _counts(6), generator=_seed(9)) != out


# ------------------------------------------------------------------------------ rVAE


def test_rvae_known_case_decoders_agree_encoder_differs():
    """u_t = ν_t depends on the recognition parameters only, so the BPTT gradient differs from
    the local one only there: every decoder cosine is exactly 1, the encoder's are not."""
    out = gradient_alignment(_rvae(), _counts(20))
    for name, v in out.items():
        if name.startswith("gen_"):
            assert v == pytest.approx(1.0, abs=1e-9), name
    assert min(v for n, v in out.items() if n.startswith("rec_")) < 0.99
    assert out["overall"] < 1.0 - 1e-6


def test_rvae_matches_sequence_loss_of_both_rules():
    """Same generator seed => same noise as RVAE.window: the cosine between the p.grad that
    training computes with bptt=False and with bptt=True is what gradient_alignment returns."""
    y = _counts(8)
    local, bptt = _rvae(), _rvae(bptt=True)
    bptt.load_state_dict(local.state_dict())
    grads = []
    for m in (local, bptt):
        loss, _ = m.sequence_loss(y, m.initial_state(B), _seed())
        loss.backward()
        grads.append({n: p.grad for n, p in m.named_parameters()})
    out = gradient_alignment(local, y, generator=_seed())
    for n in grads[0]:
        assert out[n] == pytest.approx(cosine(grads[0][n], grads[1][n]), abs=1e-6), n
    flat = [torch.cat([g.flatten() for g in gs.values()]) for gs in grads]
    assert out["overall"] == pytest.approx(cosine(*flat), abs=1e-6)
    assert gradient_alignment(bptt, y, generator=_seed()) == pytest.approx(out)  # flag ignored


def test_rvae_u0_is_used():
    y = _counts(5)
    m = _rvae()
    a = gradient_alignment(m, y)
    b = gradient_alignment(m, y, u0=torch.full((B, 2), 0.7))
    assert a["overall"] != b["overall"]


# ------------------------------------------------------------------------------ harmoniums


def test_harmonium_known_case_no_recurrent_weights():
    """W_u = 0: the BPTT recursion G_t = ((D + G) W_uᵀ) ⊙ σ' vanishes, so the rules agree."""
    m = _harmonium(w_u_std=0.0)
    out = gradient_alignment(m, _counts(10))
    assert all(v == pytest.approx(1.0, abs=1e-9) for v in out.values()), out


def test_harmonium_matches_trbm_and_rtrbm_updates():
    """The local / BPTT gradients are exactly the p.grad of TRBM.update / RTRBM.update run
    with the same generator state (the same CD samples)."""
    y = _counts(10)
    rtrbm, trbm = _harmonium(RTRBM), _harmonium(TRBM)
    grads = []
    for m in (trbm, rtrbm):
        m.update(y, None, _seed())
        grads.append({n: p.grad for n, p in m.named_parameters()})
        m.zero_grad(set_to_none=True)
    out = gradient_alignment(rtrbm, y, generator=_seed())
    for n in grads[0]:
        assert out[n] == pytest.approx(cosine(grads[0][n], grads[1][n]), abs=1e-9), n
    assert out["efh.b_vis.0"] == 1.0  # u is clamped: b_u gets no gradient from either rule
    assert out["efh.b_vis.1"] == pytest.approx(1.0)  # the BPTT term does not touch b_y
    assert out["efh.W.0"] < 0.999 and out["overall"] < 1.0
    assert gradient_alignment(trbm, y, generator=_seed()) == out  # same network, same answer


# ------------------------------------------------------------------------------ errors


def test_bad_inputs():
    m, h = _rvae(), _harmonium()
    y = _counts(4)
    for bad in (y[0], y[..., :10], torch.zeros(0, B, 15), [[0.0] * 15]):
        with pytest.raises(ValueError):
            gradient_alignment(m, bad)
        with pytest.raises(ValueError):
            gradient_alignment(h, bad)
    with pytest.raises(ValueError, match="non-finite"):
        gradient_alignment(m, torch.full((2, B, 15), math.nan))
    with pytest.raises(ValueError, match="u0 must have shape"):
        gradient_alignment(m, y, u0=torch.zeros(B, 3))
    with pytest.raises(ValueError, match="u_0 = 0"):
        gradient_alignment(h, y, u0=torch.ones(B, 12))
    assert gradient_alignment(h, y, u0=torch.zeros(B, 12)) == gradient_alignment(h, y)
    with pytest.raises(ValueError, match="no BPTT version"):
        gradient_alignment(REFH(REFHConfig(n_hidden=8)), y)


# ------------------------------------------------------------------------------ delegation


@pytest.mark.parametrize("make", [_rvae, lambda: _rvae(cls=TVAE), _harmonium])
def test_module_function_validates_and_delegates_to_the_model(make):
    """tlr.evaluation.gradients.local_and_bptt_gradients = the model's own method (same
    generator), with a fixed default stream."""
    from tlr.evaluation.gradients import local_and_bptt_gradients

    m = make()
    y = _counts(5)
    a = local_and_bptt_gradients(m, y, None, _seed())
    b = m.local_and_bptt_gradients(y, None, _seed())
    for got, want in zip(a[0] + a[1], b[0] + b[1], strict=True):
        assert torch.equal(got, want)
    assert [g.shape for g in a[0]] == [p.shape for p in m.parameters()]
    c, d = local_and_bptt_gradients(m, y), local_and_bptt_gradients(m, y)  # default stream
    assert all(torch.equal(x, z) for x, z in zip(c[0] + c[1], d[0] + d[1], strict=True))
