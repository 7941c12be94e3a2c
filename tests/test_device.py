"""Device consistency without a GPU: the video experiments' models and evaluation on a device
other than the CPU.

``--device cuda`` fails at the first tensor that code creates on the CPU by mistake (a
``torch.zeros(n)`` without ``device=``) and then mixes with the model's. PyTorch's ``meta``
device finds the same mistakes on any machine: its tensors have shapes and a device but no
values, and an operation mixing a meta and a CPU tensor raises as one mixing CUDA and CPU
tensors does. Reading a value (``.item()``, ``if tensor``, ``float(tensor)``) is impossible on
meta, so :func:`fake_values` answers those reads with fixed dummies (finite, not diverged) for
meta tensors only. What this checks: that every tensor a balls or Moving-MNIST model, its
training loop and its scoring functions create follows the data onto the data's device. What it
cannot: numbers, speed, or CUDA-only behaviour (those need a GPU run).
"""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
import torch

from tlr.data.order0 import order0_mse
from tlr.evaluation.prediction import one_step_mse, one_step_predictions, rollout
from tlr.evaluation.video import centre_of_mass, ring_predictions
from tlr.experiments import balls, mnist
from tlr.train import fit

META = torch.device("meta")


@contextlib.contextmanager
def fake_values():
    """While active, reading a value from a meta tensor gives a dummy instead of an error:
    ``.item()`` 0.5 (True for booleans), ``bool()`` True, ``float()`` 0.5, ``int()`` 1."""
    names = ("item", "__bool__", "__float__", "__int__")
    orig = {k: getattr(torch.Tensor, k) for k in names}
    dummy = {"item": lambda t: True if t.dtype == torch.bool else 0.5,
             "__bool__": lambda t: True, "__float__": lambda t: 0.5, "__int__": lambda t: 1}

    def reader(k):
        def read(self, *args, **kwargs):
            if self.device.type == "meta":
                return dummy[k](self)
            return orig[k](self, *args, **kwargs)
        return read

    for k in names:
        setattr(torch.Tensor, k, reader(k))
    try:
        yield
    finally:
        for k, f in orig.items():
            setattr(torch.Tensor, k, f)


def test_meta_catches_a_cpu_tensor():
    """The check can fail: a CPU tensor mixed into meta data raises, as it would on CUDA."""
    y = torch.rand(3, 4, device=META)
    with pytest.raises(RuntimeError, match="device"):
        torch.nn.functional.grid_sample(y.reshape(1, 1, 3, 4),
                                        torch.zeros(1, 3, 4, 2),  # grid left on the CPU
                                        align_corners=False)


def _tiny_balls(gibbs_dtype: str = "float32") -> balls.BallsPreset:
    p = balls.PRESETS["quick"]
    return dataclasses.replace(
        p, harmonium=dataclasses.replace(p.harmonium, n_hidden=16, n_cd_steps=2,
                                         gibbs_dtype=gibbs_dtype),
        vae=dataclasses.replace(p.vae, n_latent=4, n_units=8))


def _train_and_score(model, n_obs: int, side: int, spec) -> None:
    """One epoch of ``fit`` as the experiment shapes it (``spec``: its TrainSpec, with at most
    2 static updates), the learning curve's evaluation, a rollout and ORDER 0, all on meta."""
    model = model.to(META)
    y = torch.rand(12, 3, n_obs, device=META)

    def evaluate(m) -> float:
        return one_step_mse(one_step_predictions(m, y, 2), y)

    fit(model, lambda epoch: y, 1, spec.optim, None, window=spec.window, batch=spec.batch,
        n_pretrain=min(spec.n_pretrain, 2), pretrain_cd_steps=2, evaluate=evaluate,
        eval_every=1, progress=False)
    gen = rollout(model, y[:5], 4, n_gibbs=2)
    assert gen.device == META and gen.shape == (4, 3, n_obs)
    # rollout_metrics itself makes no tensor but through centre_of_mass (torch.corrcoef has
    # no meta kernel)
    assert centre_of_mass(gen, side).device == META
    assert order0_mse(y, 0) == 0.5  # the dummy: order0_mse computed on the data's device


@pytest.mark.parametrize(("name", "gibbs_dtype"),
                         [(n, "float32") for n in balls.BALLS.models[1:]]
                         + [(n, "bfloat16") for n in balls.HARMONIUMS])
def test_balls_models_follow_the_data(name, gibbs_dtype):
    preset = _tiny_balls(gibbs_dtype)
    model = balls.build_model(name, preset, torch.Generator().manual_seed(0))
    with fake_values():
        _train_and_score(model, preset.balls.n_pixels, preset.resolution,
                         balls.BALLS.train_spec(name, preset))
        if name in balls.HARMONIUMS:
            y = torch.rand(6, 2, preset.balls.n_pixels, device=META)
            diag = balls.chain_starts(model, y, 2, None)
            assert set(diag) == {"mse_noise", "mse_noise_long", "mse_from_previous",
                                 "mse_from_previous_0"}


@pytest.mark.parametrize("name", mnist.MNIST.models[1:])
def test_mnist_models_follow_the_data(name):
    preset = mnist.PRESETS["quick"]
    side = preset.data.image_size
    model = mnist.build_model(name, preset, torch.Generator().manual_seed(0))
    with fake_values():
        _train_and_score(model, side * side, side, mnist.MNIST.train_spec(name, preset))
        y = torch.rand(4, 2, side * side, device=META)
        assert ring_predictions(y, side, 2.0).device == META
        assert centre_of_mass(y, side).device == META
