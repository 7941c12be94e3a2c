"""tlr.graphs: a harmonium update replayed as a CUDA graph is the eager update.

The CUDA tests run only where a GPU is (the device check runs them); on a CPU the argument
checks run.
"""

from __future__ import annotations

import pytest
import torch

from tlr.graphs import GraphedUpdate
from tlr.models import build_model
from tlr.train import OptimConfig, fit

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA device")


def _model(name: str, device: str, **kw):
    g = torch.Generator().manual_seed(0)
    cfg = dict(n_obs=30, n_hidden=48, obs_type="bernoulli", n_cd_steps=5, **kw)
    return build_model(name, generator=g, **cfg).to(device)


@pytest.mark.skipif(CUDA, reason="needs a machine without CUDA")
def test_needs_cuda():
    model = _model("rEFH", "cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        GraphedUpdate(model, torch.Generator())
    with pytest.raises(ValueError, match="CUDA is not available"):
        fit(model, lambda e: torch.rand(5, 2, 30).round(), 1, OptimConfig("adam", lr=1e-2),
            torch.Generator(), cuda_graph=True, progress=False)


def test_cli_refuses_cuda_graph_on_cpu(capsys):
    from tlr.cli import main
    with pytest.raises(SystemExit) as e:
        main(["run", "balls", "--models", "rEFH", "--set", "harmonium.cuda_graph=true",
              "--device", "cpu"])
    assert e.value.code == 2
    assert "harmonium.cuda_graph=true needs --device cuda, got device cpu" in \
        capsys.readouterr().err


@needs_cuda
@pytest.mark.parametrize("name", ["rEFH", "TRBM", "RTRBM"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_graphed_update_is_the_eager_update(name, dtype):
    model = _model(name, "cuda", gibbs_dtype=dtype)
    y = (torch.rand(20, 1, 30, generator=torch.Generator().manual_seed(1)) < 0.3).float().cuda()
    g = torch.Generator(device="cuda").manual_seed(2)
    start = g.get_state()
    eager = model.update(y, None, g)
    grads_eager = [p.grad.clone() for p in model.parameters()]
    after_eager = g.get_state()

    g.set_state(start)
    graphed = GraphedUpdate(model, g)
    model.zero_grad(set_to_none=True)
    out = graphed(y, None, g)
    grads_graph = [p.grad.clone() for p in model.parameters()]
    # the same stream from the same point, moved on by as much
    assert torch.equal(g.get_state(), after_eager)
    assert torch.equal(out.u, eager.u)  # the mean-field filter: no noise
    for a, b in zip(grads_graph, grads_eager, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # a second replay draws new noise: its gradients differ
    model.zero_grad(set_to_none=True)
    graphed(y, None, g)
    assert any(not torch.equal(p.grad, a) for p, a in zip(model.parameters(), grads_graph,
                                                           strict=True))


@needs_cuda
def test_fit_with_cuda_graph_trains_and_checkpoints(tmp_path):
    model = _model("rEFH", "cuda")
    data = lambda e: (torch.rand(20, 4, 30, generator=torch.Generator().manual_seed(e))  # noqa: E731
                      < 0.3).float().cuda()
    g = torch.Generator(device="cuda").manual_seed(0)
    before = [p.detach().clone() for p in model.parameters()]
    hist = fit(model, data, 2, OptimConfig("adam", lr=1e-2), g, batch=1, n_pretrain=2,
               checkpoint=tmp_path / "ck.pt", cuda_graph=True, progress=False)
    assert hist.updates == 8
    assert (tmp_path / "ck.pt").exists()
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
    assert all(torch.isfinite(p).all() for p in model.parameters())


@needs_cuda
@pytest.mark.parametrize("name", ["rEFH", "TRBM", "RTRBM"])
def test_harmonium_builds_from_a_cuda_generator(name):
    """The runners draw a harmonium's initial weights from its CUDA training generator."""
    g = torch.Generator(device="cuda").manual_seed(0)
    model = build_model(name, generator=g, n_obs=30, n_hidden=48, obs_type="bernoulli")
    assert {p.device.type for p in model.parameters()} == {"cuda"}
