"""The bouncing-balls experiment (poster Table 2): one-step prediction with clamped Gibbs sampling.

Sources §9. Data: Sutskever's generator (or Makin's MATLAB port, ``variant="port"``), 3 balls,
30 × 30 frames, T = 100 (:mod:`tlr.data.balls`). Models:

* ORDER 0: copy the last frame (§9.7);
* rEFH, TRBM, RTRBM with 900 Bernoulli visible units and 400 hidden units (§9.5), trained on
  whole sequences (one 100-frame sequence per update, fresh sequences every epoch), static
  pretraining for the first updates, CD-25, Makin's hyperbolic schedule with m0 = 50;
* rVAE, TVAE, rVAE-BPTT with a Bernoulli likelihood (§7; sizes are ours, the poster gives none);
* rVAE-β: the rVAE with its KL term weighted by a warmed-up β (the rVAE chapter derives it),
  with the rVAE's sizes, initial weights and random streams (a paired comparison).

Score (§9.6): filter each test sequence on its true frames, predict frame t from u_{t-1} alone
(:func:`tlr.evaluation.prediction.one_step_predictions`), MSE per pixel over frames 2..T and
sequences. The harmoniums predict by clamped Gibbs sampling, the VAEs by its encoder/decoder
analogue (``RVAE.predict_next``). Beside the score, every trained model's run records a rollout
check (does the generated motion follow the true one? :func:`tlr.evaluation.video.rollout_metrics`)
and linear probes of its state for the balls' centre of mass and its velocity
(:func:`tlr.evaluation.video.state_probes`).

``python -m tlr run balls --preset quick|medium|paper --models "ORDER 0,rEFH" --seed 0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from tlr.data.balls import BallsConfig, simulate_balls
from tlr.evaluation.prediction import (
    one_step_mse,
    one_step_predictions,
    order0_predictions,
    rollout,
)
from tlr.evaluation.video import rollout_metrics, state_probes
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

__all__ = ["HarmoniumRun", "VAERun", "BallsPreset", "PRESETS", "BALLS", "MODELS", "run",
           "test_data", "val_data", "epoch_data", "model_config", "build_model", "sequences",
           "chain_starts"]

@dataclass(frozen=True)
class HarmoniumRun:
    """rEFH/TRBM/RTRBM on bouncing balls (Sources §9.5, Makin's ``'[Sutskever2013]'`` case)."""

    n_hidden: int = 400
    n_cd_steps: int = 25
    n_pretrain: int = 30  # static (non-recurrent) updates at the start, CD-5
    pretrain_cd_steps: int = 5
    n_epochs: int = 255
    n_seq: int = 400  # fresh 100-frame sequences per epoch, one per update
    seqs_per_update: int = 1
    # hyperbolic schedule, m0 = 50 for every group: η starts at 0.02, μ = 0.9 (Sources §5.4)
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig("makin-hyperbolic", m0=(50, 50, 50, 50, 50)))
    # the training chains' matrix products: "float32" (the protocol) or "bfloat16" (faster where
    # the CPU or GPU multiplies bfloat16 natively; benchmarks/harmonium_update.py)
    gibbs_dtype: str = "float32"
    # replay each update of a whole sequence as one CUDA graph (tlr.graphs; --device cuda only):
    # the same update, launched once instead of as ~1400 small kernels
    cuda_graph: bool = False


@dataclass(frozen=True)
class VAERun:
    """rVAE, TVAE, rVAE-BPTT on bouncing balls: sizes and schedule are ours (Sources §7.2-7.3)."""

    n_latent: int = 32
    n_units: int = 400
    learn_sigma: str = "diag"
    n_epochs: int = 100
    n_seq: int = 400  # fresh sequences per epoch
    batch: int = 20  # sequences per update (parallel trajectories)
    window: int = 10  # steps per update; u detached between windows
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig("adam", lr=1e-3, decay=1.02))
    # rVAE-β only: β ramps linearly from beta_kl_weight0 to beta_kl_weight over the first
    # beta_kl_warmup updates (tlr.models.rvae.RVAEConfig), then stays. The Moving MNIST
    # experiment's choice for frames, carried over unchanged (its reasons: tlr.experiments.mnist
    # .VAERun): 0.25 -> 0.75 over the first half of training. 10 000 = half of the paper
    # preset's 20 000 updates (100 epochs x 400 / 20 sequences x 10 windows); quick and medium
    # set their own half.
    beta_kl_weight: float = 0.75
    beta_kl_warmup: int = 10000
    beta_kl_weight0: float = 0.25
    beta_free_bits: float = 0.0


@dataclass(frozen=True)
class BallsPreset:
    """Sizes of one run of the bouncing-balls experiment (defaults: Sources §9.3-9.6)."""

    name: str
    variant: str = "sutskever"  # or "port": Makin's MATLAB renderer (§9.4)
    resolution: int = 30  # pixels per side (Sutskever 30; Makin's '[Boulanger-Lewandowski2012]' 15)
    T: int = 100
    n_test: int = 200  # Sutskever's/TSBN test set (§9.3)
    n_val: int = 10  # validation sequences for the learning curves
    n_gibbs: int = 25  # clamped Gibbs steps per prediction (§9.6)
    eval_every: int = 5
    n_context: int = 10  # rollout check: true frames filtered before generating
    n_rollout_seq: int = 50  # test sequences rolled out
    # frames generated after the context: a short horizon, because over a long one the balls'
    # centre of mass drifts back to the middle of the box, and a rollout that blurs into the
    # mean frame would get credit for that drift as "motion"
    n_rollout: int = 10
    n_probe: int = 100  # sequences (their own stream) the state probes are fitted on
    harmonium: HarmoniumRun = field(default_factory=HarmoniumRun)
    vae: VAERun = field(default_factory=VAERun)
    device: str = "cpu"  # "cpu", "cuda" or "auto"

    @property
    def balls(self) -> BallsConfig:
        return BallsConfig.preset(self.variant, resolution=self.resolution)


PRESETS: dict[str, BallsPreset] = {
    # The book and CI: every model in a few CPU minutes (undertrained; the chapter says so).
    "quick": BallsPreset(
        name="quick", n_test=50, n_val=5, eval_every=2,
        harmonium=HarmoniumRun(n_hidden=400, n_cd_steps=5, n_epochs=6, n_seq=100,
                               seqs_per_update=1),
        vae=VAERun(n_epochs=12, n_seq=200, beta_kl_warmup=600),  # half of 1200 updates
    ),
    # About 10 CPU minutes per harmonium: 16 000 updates of CD-5 (the paper: 102 000 of CD-25).
    "medium": BallsPreset(
        name="medium", n_test=200, eval_every=10,
        harmonium=HarmoniumRun(n_cd_steps=5, n_epochs=40, n_seq=400),
        vae=VAERun(n_epochs=60, beta_kl_warmup=6000),  # half of 12 000 updates
    ),
    # The settings of Makin's code (Sources §9.5): hours on a CPU per harmonium.
    "paper": BallsPreset(name="paper", eval_every=25),
}


def sequences(n_seq: int, preset: BallsPreset, seed: int, stream: str) -> torch.Tensor:
    """``n_seq`` fresh sequences, time-major (T, n_seq, 900), as the models take them."""
    frames = simulate_balls(n_seq, preset.T, seed=seed, config=preset.balls, stream=stream)
    return frames.transpose(0, 1).contiguous()


def test_data(preset: BallsPreset, seed: int) -> torch.Tensor:
    """The test set (T, n_test, 900): depends on the seed and the variant, not the models."""
    return sequences(preset.n_test, preset, seed, f"balls/{preset.variant}/test")


def val_data(preset: BallsPreset, seed: int) -> torch.Tensor:
    """The validation set (T, n_val, 900) behind the learning curves, apart from the test set."""
    return sequences(preset.n_val, preset, seed, f"balls/{preset.variant}/val")


def probe_data(preset: BallsPreset, seed: int) -> torch.Tensor:
    """The sequences (T, n_probe, 900) the state probes are fitted on, apart from the others."""
    return sequences(preset.n_probe, preset, seed, f"balls/{preset.variant}/probe")


HARMONIUMS = ("rEFH", "TRBM", "RTRBM")


def epoch_data(preset: BallsPreset, seed: int, name: str, epoch: int, n_seq: int) -> torch.Tensor:
    """Model ``name``'s fresh training sequences of ``epoch``, (T, n_seq, n_pixels)."""
    return sequences(n_seq, preset, seed, f"balls/{paired_stream(name)}/epoch{epoch}")


def model_config(name: str, preset: BallsPreset) -> tuple[str, dict]:
    """(registry name, config) of model ``name`` at the preset's sizes."""
    h, v, n_pixels = preset.harmonium, preset.vae, preset.balls.n_pixels
    if name in HARMONIUMS:
        return name, dict(n_obs=n_pixels, n_hidden=h.n_hidden, obs_type="bernoulli",
                          n_cd_steps=h.n_cd_steps, gibbs_dtype=h.gibbs_dtype)
    if name in ("rVAE", "rVAE-BPTT", "TVAE", "rVAE-β"):
        return name, dict(n_obs=n_pixels, n_latent=v.n_latent, n_units=v.n_units,
                          likelihood="bernoulli", learn_sigma=v.learn_sigma,
                          **(kl_schedule(v) if name == "rVAE-β" else {}))
    raise ValueError(f"unknown model {name!r}; valid: {', '.join(BALLS.models[1:])}")


def build_model(name: str, preset: BallsPreset, generator: torch.Generator | None = None):
    """An untrained model ``name`` with the preset's sizes (the runner and the book use it)."""
    arch, config = model_config(name, preset)
    return registry_build(arch, generator=generator, **config)


class BallsExperiment(Experiment):
    """Table 2: one-step prediction MSE per pixel with clamped Gibbs sampling (Sources §9.6)."""

    name = "balls"
    presets = PRESETS
    models = ("ORDER 0", "rEFH", "TRBM", "RTRBM", "rVAE", "TVAE", "rVAE-BPTT", "rVAE-β")
    baselines = ("ORDER 0",)

    def prepare(self, preset: BallsPreset, seed: int, device: torch.device) -> torch.Tensor:
        return test_data(preset, seed).to(device)

    def baseline(self, name: str, preset: BallsPreset, seed: int,
                 test: torch.Tensor) -> tuple[float, float, dict]:
        """ORDER 0: copy the last frame (Sources §9.7)."""
        return one_step_mse(order0_predictions(test), test), 0.0, {}

    def model_config(self, name: str, preset: BallsPreset) -> tuple[str, dict]:
        return model_config(name, preset)

    def train_spec(self, name: str, preset: BallsPreset) -> TrainSpec:
        if name in HARMONIUMS:  # whole sequences, static pretraining first (Sources §9.5)
            h = preset.harmonium
            return TrainSpec(h.n_epochs, h.optim, batch=h.seqs_per_update,
                             n_pretrain=h.n_pretrain, pretrain_cd_steps=h.pretrain_cd_steps,
                             eval_every=preset.eval_every, cuda_graph=h.cuda_graph)
        v = preset.vae
        return TrainSpec(v.n_epochs, v.optim, window=v.window, batch=v.batch,
                         eval_every=preset.eval_every)

    def generators(self, name: str, seed: int, device: torch.device):
        if name in HARMONIUMS:
            return super().generators(name, seed, device)
        return (make_generator(seed, f"balls/{paired_stream(name)}/init"),  # weights: on the CPU
                make_generator(seed, f"balls/{paired_stream(name)}", device))

    def train_data(self, name: str, preset: BallsPreset, seed: int, test: torch.Tensor,
                   device: torch.device):
        n = preset.harmonium.n_seq if name in HARMONIUMS else preset.vae.n_seq
        return lambda epoch: epoch_data(preset, seed, name, epoch, n).to(device)

    def evaluator(self, name: str, preset: BallsPreset, seed: int, test: torch.Tensor,
                  device: torch.device):
        """Validation one-step MSE during training (a few sequences apart from the test set)."""
        val = val_data(preset, seed).to(device)

        def evaluate(model) -> float:
            g = make_generator(seed, "balls/val-gibbs", device)
            return one_step_mse(one_step_predictions(model, val, preset.n_gibbs, g), val)

        return evaluate

    def score(self, model, name: str, preset: BallsPreset, seed: int, test: torch.Tensor,
              hist: History, device: torch.device) -> tuple[float, dict]:
        g = make_generator(seed, "balls/test-gibbs", device)
        mse = one_step_mse(one_step_predictions(model, test, preset.n_gibbs, g), test)
        with torch.no_grad():  # not a prediction: how well the state u_t describes its frame
            recon = (model.reconstruct(model.filter(test)) - test).double().pow(2).mean().item()
        c, n_roll = preset.n_context, min(preset.n_rollout_seq, test.shape[1])
        n_gen = min(preset.n_rollout, test.shape[0] - c)
        gen = rollout(model, test[:c, :n_roll], n_gen, preset.n_gibbs,
                      make_generator(seed, f"balls/{paired_stream(name)}/rollout", device))
        side = preset.resolution
        info = {"epochs": hist.epochs, "curve": hist.metric, "n_gibbs": preset.n_gibbs,
                "reconstruction_mse": recon,
                "rollout": rollout_metrics(gen, test[c:c + n_gen, :n_roll], test[c - 1, :n_roll],
                                           side),
                "probes": state_probes(model, probe_data(preset, seed).to(device), test, side),
                # the first test sequence's generated frames, 0-255 (the book's video strip)
                "rollout_example": (gen[:, 0] * 255).round().clamp(0, 255).to(torch.uint8
                                                                             ).tolist()}
        if name in HARMONIUMS:
            # diagnostics beside the protocol: the same chains started from the true previous
            # frame, with n_gibbs steps and with none (the mean-field readout alone)
            info.update(chain_starts(model, test, preset.n_gibbs, g,
                                     kinds=("previous", "previous_0")))
        elif name != "TVAE":  # the rVAEs (prior N(0, I)): the rate of each latent coordinate
            with torch.no_grad():  # on the test frames from u_0 = 0, as in training
                out, _ = model.window(test, model.initial_state(test.shape[1]),
                                      make_generator(seed, "balls/test-rates", device))
            info["rate_per_dim"] = latent_rates(out.nu, out.logvar)
        return mse, info


BALLS = BallsExperiment()
MODELS = BALLS.models


def chain_starts(model, y: torch.Tensor, n_gibbs: int, generator: torch.Generator,
                 kinds: tuple[str, ...] = ("noise", "noise_long", "previous", "previous_0")
                 ) -> dict[str, float]:
    """One-step MSE of ``model`` on y with its chains started in different ways.

    ``noise``: the protocol (Sources §9.6), ``n_gibbs`` steps from noise; ``noise_long``: 8x
    the steps from noise; ``previous``: ``n_gibbs`` steps from the true y_{t-1};
    ``previous_0``: no Gibbs step from y_{t-1} (the mean-field readout of the learned
    transition, independent of the sampler). Keys: ``mse_`` + kind, except ``previous`` /
    ``previous_0``, recorded as ``mse_from_previous`` / ``mse_from_previous_0``.
    """
    setups = {"noise": ("mse_noise", n_gibbs, "noise"),
              "noise_long": ("mse_noise_long", 8 * n_gibbs, "noise"),
              "previous": ("mse_from_previous", n_gibbs, "previous"),
              "previous_0": ("mse_from_previous_0", 0, "previous")}
    unknown = [k for k in kinds if k not in setups]
    if unknown:
        raise ValueError(f"unknown chain start(s) {unknown}; valid: {', '.join(setups)}")
    out = {}
    for kind in kinds:
        key, n, start = setups[kind]
        out[key] = one_step_mse(one_step_predictions(model, y, n, generator, start=start), y)
    return out


def run(models: list[str] | None = None, preset: str | BallsPreset = "quick", seed: int = 0,
        progress: bool | None = None, checkpoint_dir: str | None = None,
        threads: int | None = 1, device: str | None = None) -> dict[str, ModelResult]:
    """Train and score ``models`` (default: all) on one preset and seed (see
    :func:`tlr.experiments.common.run_experiment`); "mse" is the one-step prediction error
    per pixel on the test set (Sources §9.6)."""
    return run_experiment(BALLS, models, preset, seed, progress, checkpoint_dir, threads, device)
