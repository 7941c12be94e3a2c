"""The conv rVAE-β: ConvRVAEConfig's KL-weight fields, the β schedule of the conv model, and the
Moving MNIST experiment's "rVAE-β" (its preset settings, the runner, the CLI)."""

import dataclasses
import json
import math
import re
import types
from dataclasses import replace

import pytest
import torch

from tlr.data.moving_mnist import MovingMNISTConfig
from tlr.experiments.common import apply_overrides
from tlr.experiments.mnist import MNIST, MODELS, PRESETS, VAERun, build_model, run
from tlr.models import load_model
from tlr.models.conv_rvae import ConvRVAE, ConvRVAEConfig, ConvTVAEConfig
from tlr.models.registry import registry_name
from tlr.models.rvae import RVAE, RVAEConfig
from tlr.rng import make_generator
from tlr.train import OptimConfig

KL_FIELDS = ("kl_weight", "kl_warmup", "kl_weight0", "free_bits")
SMALL = dict(image_size=16, channels=(4, 8), n_latent=3, n_units=16)


def _conv(**kw) -> ConvRVAE:
    return ConvRVAE(ConvRVAEConfig(**SMALL, **kw), generator=torch.Generator().manual_seed(1))


def _frames(T=5, B=3, seed=2) -> torch.Tensor:
    return torch.rand(T, B, 16 * 16, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------- the config

def test_fields_and_defaults_are_rvae_configs():
    conv, plain = ConvRVAEConfig(), RVAEConfig()
    for f in KL_FIELDS:
        assert getattr(conv, f) == getattr(plain, f), f
        assert type(getattr(conv, f)) is type(getattr(plain, f)), f
    assert (conv.kl_weight, conv.kl_warmup, conv.kl_weight0, conv.free_bits) == (1.0, 0, 0.0, 0.0)
    assert not conv.beta_vae
    assert not any(f.name in KL_FIELDS for f in dataclasses.fields(ConvTVAEConfig))  # TVAE: none


@pytest.mark.parametrize("kw,beta_vae", [({"kl_weight": 0.5}, True), ({"kl_warmup": 3}, True),
                                         ({"free_bits": 0.1}, True), ({"kl_weight0": 0.3}, False),
                                         ({"kl_weight": 1.0}, False)])
def test_beta_vae_property_as_rvae(kw, beta_vae):
    assert ConvRVAEConfig(**kw).beta_vae is beta_vae
    assert RVAEConfig(**kw).beta_vae is beta_vae


@pytest.mark.parametrize("field,value", [("kl_weight", -0.1), ("kl_weight0", -1.0),
                                         ("free_bits", -0.5), ("kl_weight", float("nan")),
                                         ("kl_warmup", -1), ("kl_warmup", 1.5),
                                         ("kl_warmup", True)])
def test_bad_settings_name_the_field_and_value(field, value):
    with pytest.raises(ValueError, match=re.escape(field)) as e:
        ConvRVAEConfig(**{field: value})
    assert repr(value) in str(e.value) or str(value) in str(e.value), str(e.value)
    with pytest.raises(ValueError):  # and RVAEConfig rejects the same
        RVAEConfig(**{field: value})


# ---------------------------------------------------------- defaults: the plain conv rVAE

def _old_style(model: ConvRVAE) -> ConvRVAE:
    """The same model with its config as it was before the β fields existed: a stand-in
    without them (RVAE reads them with getattr, so this is the pre-change code path)."""
    c = model.config
    fields = {f.name: getattr(c, f.name) for f in dataclasses.fields(c) if f.name not in KL_FIELDS}
    model.config = types.SimpleNamespace(**fields, n_obs=c.n_obs)
    return model


def test_defaults_leave_the_conv_rvae_bit_identical():
    new, old = _conv(), _old_style(_conv())
    assert ConvRVAEConfig(**SMALL) == ConvRVAEConfig(**SMALL, kl_weight=1.0, kl_warmup=0,
                                                     kl_weight0=0.0, free_bits=0.0)
    assert not hasattr(old.config, "kl_weight") and new.name == old.name == "rVAE"
    assert "n_updates" not in dict(new.named_buffers())
    for a, b in zip(new.state_dict().values(), old.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # same initial weights
    y = _frames()
    opts = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in (new, old)]
    for _ in range(2):  # two updates, the same noise
        ups = []
        for m, opt in zip((new, old), opts, strict=True):
            opt.zero_grad()
            ups.append(m.update(y, generator=torch.Generator().manual_seed(7)))
            opt.step()
        assert torch.equal(ups[0].loss, ups[1].loss) and torch.equal(ups[0].u, ups[1].u)
    for (k, a), b in zip(new.state_dict().items(), old.state_dict().values(), strict=True):
        assert torch.equal(a, b), k  # the same parameters after the updates, bit for bit
    out = new.score(y, torch.randn(5, 3, 3, generator=torch.Generator().manual_seed(3)),
                    torch.randn(5, 3, 3, generator=torch.Generator().manual_seed(4)))
    assert torch.equal(out.loss, out.kl + out.nll_u + out.nll_y)  # the negative ELBO


# ------------------------------------------------------------------- the β schedule, conv

def test_beta_schedule_and_loss_equal_the_rvaes():
    sched = dict(kl_weight=0.8, kl_weight0=0.2, kl_warmup=4)
    conv = _conv(**sched)
    mlp = RVAE(RVAEConfig(n_obs=6, n_latent=3, n_units=8, **sched),
               generator=torch.Generator().manual_seed(1))
    assert conv.name == mlp.name == "rVAE-β" and int(conv.n_updates) == 0
    y_conv, y_mlp = _frames(), torch.poisson(torch.full((5, 3, 6), 2.0))
    seen = {"conv": [], "mlp": []}
    for _ in range(6):
        for key, m, y in (("conv", conv, y_conv), ("mlp", mlp, y_mlp)):
            seen[key].append(m.kl_weight())
            m.zero_grad()
            m.update(y, generator=torch.Generator().manual_seed(0))
    assert seen["conv"] == seen["mlp"] == pytest.approx([0.2, 0.35, 0.5, 0.65, 0.8, 0.8])
    assert int(conv.n_updates) == int(mlp.n_updates) == 6
    assert "n_updates" in conv.state_dict()  # the clock is checkpointed
    # the loss is β KL + nll_u + nll_y at the current β, on the same terms as the ELBO model's
    plain = _conv()
    plain.load_state_dict({k: v for k, v in conv.state_dict().items() if k != "n_updates"})
    u = torch.randn(5, 3, 3, generator=torch.Generator().manual_seed(3))
    eps = torch.randn(5, 3, 3, generator=torch.Generator().manual_seed(4))
    a, b = plain.score(y_conv, u, eps), conv.score(y_conv, u, eps)
    for f in ("kl", "nll_u", "nll_y", "nu", "logvar"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f
    torch.testing.assert_close(b.loss, 0.8 * b.kl + b.nll_u + b.nll_y)


def test_free_bits_and_constant_beta_on_the_conv_model():
    y = _frames()
    u = torch.randn(5, 3, 3, generator=torch.Generator().manual_seed(3))
    eps = torch.randn(5, 3, 3, generator=torch.Generator().manual_seed(4))
    out = _conv(free_bits=50.0).score(y, u, eps)  # every dimension under its floor
    torch.testing.assert_close(out.loss, 50.0 * 3 + out.nll_u + out.nll_y)
    m = _conv(kl_weight=0.5)
    assert "n_updates" not in dict(m.named_buffers()) and m.kl_weight() == 0.5
    out = m.score(y, u, eps)
    torch.testing.assert_close(out.loss, 0.5 * out.kl + out.nll_u + out.nll_y)


def test_checkpoint_round_trip_keeps_the_schedule(tmp_path):
    m = _conv(kl_weight=0.7, kl_weight0=0.1, kl_warmup=10)
    m.update(_frames(), generator=torch.Generator().manual_seed(0))
    path = tmp_path / "m.pt"
    torch.save({"model": m.state_dict(), "config": dataclasses.asdict(m.config),
                "model_name": m.name, "registry_name": registry_name(m)}, path)
    back = load_model(path)
    assert isinstance(back, ConvRVAE) and back.config == m.config and back.name == "rVAE-β"
    assert int(back.n_updates) == 1 and back.kl_weight() == m.kl_weight()


# ----------------------------------------------------------------- the Moving MNIST runner

def _updates(preset) -> int:
    r = preset.vae
    n_seq = r.n_seq if r.n_train is None else r.n_train
    windows = math.ceil(preset.data.num_frames / r.window)
    return r.n_epochs * math.ceil(n_seq / r.batch) * windows


@pytest.mark.parametrize("name", list(PRESETS))
def test_mnist_builds_rvae_beta_with_the_presets_settings(name):
    preset = PRESETS[name]
    r = preset.vae
    assert "rVAE-β" in MODELS
    arch, cfg = MNIST.model_config("rVAE-β", preset)
    assert arch == "conv rVAE"
    assert (cfg["kl_weight"], cfg["kl_warmup"], cfg["kl_weight0"], cfg["free_bits"]) == (
        r.beta_kl_weight, r.beta_kl_warmup, r.beta_kl_weight0, r.beta_free_bits)
    rvae_cfg = MNIST.model_config("rVAE", preset)[1]
    assert {k: v for k, v in cfg.items() if k not in KL_FIELDS} == rvae_cfg  # else the rVAE's
    assert 0 < r.beta_kl_weight0 < r.beta_kl_weight < 1
    assert 2 * r.beta_kl_warmup == _updates(preset)  # the warm-up spans half of training
    if name == "quick":  # paper's sizes take seconds to build; the config check above suffices
        m = build_model("rVAE-β", preset, make_generator(0, "mnist/rVAE/init"))
        assert isinstance(m, ConvRVAE) and m.name == "rVAE-β" and m.config.beta_vae
        assert m.kl_weight() == r.beta_kl_weight0 and int(m.n_updates) == 0
        ref = build_model("rVAE", preset, make_generator(0, "mnist/rVAE/init"))
        for k, v in ref.state_dict().items():  # the rVAE's initial weights
            assert torch.equal(m.state_dict()[k], v), k


def test_overrides_reach_the_model():
    p = apply_overrides(PRESETS["quick"], {"vae.beta_kl_weight": "0.5",
                                           "vae.beta_kl_warmup": "0"})
    cfg = MNIST.model_config("rVAE-β", p)[1]
    assert cfg["kl_weight"] == 0.5 and cfg["kl_warmup"] == 0
    assert MNIST.model_config("rVAE", p)[1] == MNIST.model_config("rVAE", PRESETS["quick"])[1]


TINY = replace(
    PRESETS["quick"], name="tiny", data=MovingMNISTConfig.small(num_frames=6), n_test=3,
    n_context=3, n_rollout_seq=2, n_gibbs=2, n_probe=8,
    vae=VAERun(n_latent=4, channels=(4, 8), n_units=16, n_epochs=2, n_seq=4, batch=2, window=3,
               eval_every=1, n_val=2, optim=OptimConfig("adam", lr=1e-3), beta_kl_warmup=4),
)


def test_runner_records_what_it_records_for_the_rvae():
    out = run(["rVAE", "rVAE-β"], TINY, seed=0, progress=False)
    a, b = out["rVAE"]["info"], out["rVAE-β"]["info"]
    assert set(a) == set(b)
    assert math.isfinite(b["rollout"]["motion_ratio"])
    assert math.isfinite(b["probes"]["velocity_r2"]) and math.isfinite(out["rVAE-β"]["mse"])
    assert torch.tensor(b["rollout_example"]).shape == (6 - 3, 32 * 32)
    assert b["updates"] == 8 and out["rVAE-β"]["mse"] != out["rVAE"]["mse"]
    for info in (a, b):  # the ELBO, KL weight 1, also for the rVAE-β (not its training loss)
        terms = info["kl_per_frame"] + info["nll_u_per_frame"] + info["nll_y_per_frame"]
        assert math.isclose(info["elbo_per_frame"], -terms, rel_tol=1e-5)


def test_beta_one_without_warmup_is_the_rvae_number_for_number():
    tiny = replace(TINY, vae=replace(TINY.vae, beta_kl_weight=1.0, beta_kl_warmup=0))
    out = run(["rVAE", "rVAE-β"], tiny, seed=0, progress=False)
    a, b = out["rVAE"], out["rVAE-β"]
    assert a["mse"] == b["mse"]
    for k in a["info"]:
        if k not in ("wall_s", "curve"):
            assert a["info"][k] == b["info"][k], k
    assert a["info"]["curve"]["val_elbo_per_frame"] == b["info"]["curve"]["val_elbo_per_frame"]


def test_cli_runs_rvae_beta(tmp_path):
    from tlr.cli import main

    path = tmp_path / "r.json"
    tiny = {"data.num_frames": "6", "n_test": "3", "n_context": "3", "n_rollout_seq": "2",
            "n_gibbs": "2", "n_probe": "8", "vae.n_latent": "4", "vae.channels": "4,8",
            "vae.n_units": "16", "vae.n_epochs": "1", "vae.n_seq": "4", "vae.batch": "2",
            "vae.window": "3", "vae.n_val": "2", "vae.eval_every": "1",
            "vae.beta_kl_warmup": "2", "vae.beta_kl_weight": "0.5"}
    args = ["run", "mnist", "--models", "rVAE-β", "--seed", "0", "--threads", "1",
            "--json", str(path)]
    for k, v in tiny.items():
        args += ["--set", f"{k}={v}"]
    rc = main(args)
    assert rc in (0, None)
    res = json.loads(path.read_text())
    assert set(res["results"]) == {"rVAE-β"} and res["overrides"] == tiny
    d = res["details"]["rVAE-β"]
    assert math.isfinite(res["results"]["rVAE-β"]["mse"]) and d["updates"] == 4
    assert {"motion_ratio", "com_err_px"} <= set(d["rollout"])
    assert {"position_r2", "velocity_r2"} == set(d["probes"])
    p = apply_overrides(PRESETS[res["preset"]], res["overrides"])  # the run's preset, rebuilt
    assert MNIST.model_config("rVAE-β", p)[1]["kl_weight"] == 0.5
