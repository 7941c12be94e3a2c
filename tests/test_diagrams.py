"""tlr.diagrams: the five graphical models build, show the right nodes and edges, and agree
with the models they depict."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from tlr.diagrams import MODEL_NAMES, SPECS, draw_all, draw_model  # noqa: E402
from tlr.models import REFH, RTRBM, RVAE, TRBM, TVAE, REFHConfig, TRBMConfig  # noqa: E402


def texts(fig):
    return {t.get_text() for t in fig.findobj(matplotlib.text.Text)}


def gids(fig, prefix):
    return [a.get_gid() for a in fig.findobj(lambda a: (a.get_gid() or "").startswith(prefix))]


@pytest.fixture(scope="module")
def figs():
    out = {name: draw_model(name) for name in MODEL_NAMES}
    yield out
    plt.close("all")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_nodes_are_labelled(figs, name):
    labels = texts(figs[name])
    assert {"$y_{t}$", "$x_{t}$", "$u_{t-1}$", "$u_{t}$", "$y_{t+1}$", "$x_{t+1}$"} <= labels
    assert name in {t.get_text().strip() for t in figs[name].findobj(matplotlib.text.Text)}
    # every label sits on a node patch of the matching kind
    assert sorted(gids(figs[name], "node:x")) == ["node:x0", "node:x1"]
    assert len(gids(figs[name], "node:u")) == 3  # u_{t-1}, u_t, u_{t+1}


def test_bptt_arrows_only_in_the_rtrbm(figs):
    assert gids(figs["RTRBM"], "edge:bptt")  # backwards along the chain u_t -> u_{t-1}
    for name in ("rEFH", "TRBM", "rVAE", "TVAE"):
        assert not gids(figs[name], "edge:bptt"), name
        assert gids(figs[name], "stopgrad"), name  # the hand-off is detached instead
    assert not gids(figs["RTRBM"], "stopgrad")


def test_encoder_node_only_in_the_vaes(figs):
    for name in ("rVAE", "TVAE"):
        assert "$h_{t}$" in texts(figs[name]) and gids(figs[name], "node:h"), name
        assert gids(figs[name], "edge:recognition") and gids(figs[name], "edge:generative")
    for name in ("rEFH", "TRBM", "RTRBM"):
        assert "$h_{t}$" not in texts(figs[name]) and not gids(figs[name], "node:h"), name
        assert gids(figs[name], "edge:coupling") and not gids(figs[name], "edge:recognition")


def test_u_as_data_or_as_input(figs):
    # rEFH: u_{t-1} coupled like y_t; TRBM/RTRBM: a directed bias; rVAE: a child of x_t;
    # TVAE: the parent of x_t in the prior; and only the joint models shade u
    assert gids(figs["TRBM"], "edge:bias") and not gids(figs["rEFH"], "edge:bias")
    assert gids(figs["TVAE"], "edge:prior") and not gids(figs["rVAE"], "edge:prior")
    assert r"$\mathcal{N}(0, I)$" in texts(figs["rVAE"])
    assert r"$\mathcal{N}(0, I)$" not in texts(figs["TVAE"])
    for name, fig in figs.items():
        (u,) = fig.findobj(lambda a: a.get_gid() == "node:u0")
        assert (u.get_facecolor()[0] < 1) == SPECS[name].u_is_data, name


def test_specs_match_the_models():
    """The diagrams' facts, checked against the library's own models."""
    assert (TRBM.bptt, RTRBM.bptt) == (SPECS["TRBM"].bptt, SPECS["RTRBM"].bptt)
    assert not RVAE().config.bptt and not TVAE().config.bptt
    assert hasattr(RVAE(), "gen_u") and not hasattr(TVAE(), "gen_u")  # p̂(u | x) or not
    # the rEFH reconstructs u_{t-1} in CD, so its bias b_u learns; the TRBM clamps it
    g = torch.Generator().manual_seed(0)
    y = torch.poisson(torch.full((3, 4, 5), 2.0), generator=g)
    for cls, cfg in ((REFH, REFHConfig(n_obs=5, n_hidden=6)),
                     (TRBM, TRBMConfig(n_obs=5, n_hidden=6, n_cd_steps=1))):
        model = cls(cfg, generator=g)
        model.update(y, generator=g)
        learns_b_u = bool(model.efh.b_vis[0].grad.abs().sum() > 0)
        assert learns_b_u == SPECS[model.name].u_is_data, model.name


def test_unroll_three_and_case_insensitive_names():
    fig = draw_model("rvae", unroll=3, legend=False)
    assert {"$u_{t-2}$", "$x_{t-1}$", "$y_{t+1}$", "$h_{t-1}$"} <= texts(fig)
    plt.close(fig)


def test_draw_into_given_axes_and_draw_all():
    fig, ax = plt.subplots()
    assert draw_model("TRBM", ax=ax) is fig
    plt.close(fig)
    fig = draw_all()
    assert {name for name in MODEL_NAMES} <= {t.get_text().strip() for t in fig.findobj(
        matplotlib.text.Text)}
    assert "BPTT gradient" in texts(fig)
    plt.close(fig)


@pytest.mark.parametrize("bad", ["RBM", "", "rEFH-BPTT"])
def test_unknown_names_raise(bad):
    with pytest.raises(ValueError, match="valid names: rEFH, TRBM, RTRBM, rVAE, TVAE"):
        draw_model(bad)


def test_bad_unroll_raises():
    with pytest.raises(ValueError, match="unroll"):
        draw_model("rEFH", unroll=4)
    with pytest.raises(ValueError, match="unroll"):
        draw_all(unroll=1)
