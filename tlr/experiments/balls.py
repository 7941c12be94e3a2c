"""The bouncing-balls experiment (poster Table 2): one-step prediction with clamped Gibbs sampling.

Spec §9. Data: Sutskever's generator (or Makin's MATLAB port, ``variant="port"``), 3 balls,
30 × 30 frames, T = 100 (:mod:`tlr.data.balls`). Models:

* ORDER 0: copy the last frame (§9.7);
* rEFH, TRBM, RTRBM with 900 Bernoulli visible units and 400 hidden units (§9.5), trained on
  whole sequences (one 100-frame sequence per update, fresh sequences every epoch), static
  pretraining for the first updates, CD-25, Makin's hyperbolic schedule with m0 = 50;
* rVAE, TVAE, rVAE-BPTT with a Bernoulli likelihood (§7; sizes are ours, the poster gives none).

Score (§9.6): filter each test sequence on its true frames, predict frame t from u_{t-1} alone
(:func:`tlr.evaluation.prediction.one_step_predictions`), MSE per pixel over frames 2..T and
sequences. The harmoniums predict by clamped Gibbs sampling, the VAEs by its encoder/decoder
analogue (``RVAE.predict_next``).

``python -m tlr run balls --preset quick|medium|paper --models "ORDER 0,rEFH" --seed 0``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from tlr.data.balls import BallsConfig, simulate_balls
from tlr.evaluation.prediction import one_step_mse, one_step_predictions, order0_predictions
from tlr.experiments.common import resolve
from tlr.models.refh import REFH, REFHConfig
from tlr.models.rtrbm import RTRBM
from tlr.models.rvae import RVAE, RVAEConfig
from tlr.models.trbm import TRBM, TRBMConfig
from tlr.models.tvae import TVAE, TVAEConfig
from tlr.rng import make_generator, torch_threads
from tlr.train import OptimConfig, train_sequences, train_windows

__all__ = ["HarmoniumRun", "VAERun", "BallsPreset", "PRESETS", "MODELS", "run", "test_data",
           "val_data", "build_model", "sequences"]

@dataclass(frozen=True)
class HarmoniumRun:
    """rEFH/TRBM/RTRBM on bouncing balls (spec §9.5, Makin's ``'[Sutskever2013]'`` case)."""

    n_hidden: int = 400
    n_cd_steps: int = 25
    n_pretrain: int = 30  # static (non-recurrent) updates at the start, CD-5
    pretrain_cd_steps: int = 5
    n_epochs: int = 255
    n_seq: int = 400  # fresh 100-frame sequences per epoch, one per update
    seqs_per_update: int = 1
    # hyperbolic schedule, m0 = 50 for every group: η starts at 0.02, μ = 0.9 (spec §5.4)
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig("makin-hyperbolic", m0=(50, 50, 50, 50, 50)))


@dataclass(frozen=True)
class VAERun:
    """rVAE, TVAE, rVAE-BPTT on bouncing balls: sizes and schedule are ours (spec §7.2-7.3)."""

    n_latent: int = 32
    n_units: int = 400
    learn_sigma: str = "diag"
    n_epochs: int = 100
    n_seq: int = 400  # fresh sequences per epoch
    batch: int = 20  # sequences per update (parallel trajectories)
    window: int = 10  # steps per update; u detached between windows
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig("adam", lr=1e-3, decay=1.02))


@dataclass(frozen=True)
class BallsPreset:
    """Sizes of one run of the bouncing-balls experiment (defaults: the spec's, §9.3-9.6)."""

    name: str
    variant: str = "sutskever"  # or "port": Makin's MATLAB renderer (§9.4)
    resolution: int = 30  # pixels per side (Sutskever 30; Makin's '[Boulanger-Lewandowski2012]' 15)
    T: int = 100
    n_test: int = 200  # Sutskever's/TSBN test set (§9.3)
    n_val: int = 10  # validation sequences for the learning curves
    n_gibbs: int = 25  # clamped Gibbs steps per prediction (§9.6)
    eval_every: int = 5
    harmonium: HarmoniumRun = field(default_factory=HarmoniumRun)
    vae: VAERun = field(default_factory=VAERun)

    @property
    def balls(self) -> BallsConfig:
        return BallsConfig.preset(self.variant, resolution=self.resolution)


PRESETS: dict[str, BallsPreset] = {
    # The book and CI: every model in a few CPU minutes (undertrained; the chapter says so).
    "quick": BallsPreset(
        name="quick", n_test=50, n_val=5, eval_every=2,
        harmonium=HarmoniumRun(n_hidden=400, n_cd_steps=5, n_epochs=6, n_seq=100,
                               seqs_per_update=1),
        vae=VAERun(n_epochs=12, n_seq=200),
    ),
    # About 10 CPU minutes per harmonium: 16 000 updates of CD-5 (the paper: 102 000 of CD-25).
    "medium": BallsPreset(
        name="medium", n_test=200, eval_every=10,
        harmonium=HarmoniumRun(n_cd_steps=5, n_epochs=40, n_seq=400),
        vae=VAERun(n_epochs=60),
    ),
    # The spec's settings: hours on a CPU per harmonium.
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


def build_model(name: str, preset: BallsPreset, generator: torch.Generator | None = None):
    """An untrained model ``name`` with the preset's sizes (the runners and the book use it)."""
    h, v, n_pixels = preset.harmonium, preset.vae, preset.balls.n_pixels
    if name == "rEFH":
        return REFH(REFHConfig(n_obs=n_pixels, n_hidden=h.n_hidden, obs_type="bernoulli",
                               n_cd_steps=h.n_cd_steps), generator=generator)
    if name in ("TRBM", "RTRBM"):
        cls = TRBM if name == "TRBM" else RTRBM
        return cls(TRBMConfig(n_obs=n_pixels, n_hidden=h.n_hidden, obs_type="bernoulli",
                              n_cd_steps=h.n_cd_steps), generator=generator)
    kw = dict(n_obs=n_pixels, n_latent=v.n_latent, n_units=v.n_units, likelihood="bernoulli",
              learn_sigma=v.learn_sigma, bptt=name.endswith("-BPTT"))
    if name == "TVAE":
        return TVAE(TVAEConfig(**kw), generator=generator)
    if name in ("rVAE", "rVAE-BPTT"):
        return RVAE(RVAEConfig(**kw), generator=generator)
    raise ValueError(f"unknown model {name!r}; valid: {', '.join(MODELS)}")


def _evaluator(preset: BallsPreset, seed: int):
    """Validation one-step MSE during training (a few sequences, separate from the test set)."""
    val = val_data(preset, seed)

    def evaluate(model) -> float:
        g = make_generator(seed, "balls/val-gibbs")
        return one_step_mse(one_step_predictions(model, val, preset.n_gibbs, g), val)

    return evaluate


def _checkpoint(checkpoint_dir: str | None, preset: BallsPreset, seed: int,
                name: str) -> str | None:
    if checkpoint_dir is None:
        return None
    return f"{checkpoint_dir}/balls_{preset.name}_seed{seed}_{name}.pt"


def _score(model, preset: BallsPreset, seed: int, test: torch.Tensor, hist,
           train_s: float, chain_starts: bool = False) -> tuple[float, float, dict]:
    g = make_generator(seed, "balls/test-gibbs")
    mse = one_step_mse(one_step_predictions(model, test, preset.n_gibbs, g), test)
    with torch.no_grad():  # not a prediction: how well the state u_t describes its own frame
        recon = (model.reconstruct(model.filter(test)) - test).double().pow(2).mean().item()
    info = {"updates": hist.updates, "epochs": hist.epochs, "curve": hist.metric,
            "n_gibbs": preset.n_gibbs, "reconstruction_mse": recon}
    if chain_starts:
        # diagnostics, not the spec: the same chains started from the true previous frame,
        # with n_gibbs steps and with none (the mean-field readout alone)
        for key, n in (("mse_from_previous", preset.n_gibbs), ("mse_from_previous_0", 0)):
            pred = one_step_predictions(model, test, n, g, start="previous")
            info[key] = one_step_mse(pred, test)
    if hist.resumed_at:
        info["resumed_at_epoch"] = hist.resumed_at
        train_s = hist.elapsed
    return mse, train_s, info


def run_order0(preset: BallsPreset, seed: int, test: torch.Tensor, opts: dict):
    """ORDER 0: copy the last frame (spec §9.7)."""
    return one_step_mse(order0_predictions(test), test), 0.0, {}


def _run_harmonium(name: str):
    def runner(preset: BallsPreset, seed: int, test: torch.Tensor, opts: dict):
        h = preset.harmonium
        g = make_generator(seed, f"balls/{name}")
        model = build_model(name, preset, g)
        t0 = time.perf_counter()
        hist = train_sequences(
            model, lambda e: sequences(h.n_seq, preset, seed, f"balls/{name}/epoch{e}"),
            h.n_epochs, h.optim, g, seqs_per_update=h.seqs_per_update,
            evaluate=_evaluator(preset, seed), eval_every=preset.eval_every,
            checkpoint=_checkpoint(opts.get("checkpoint_dir"), preset, seed, name),
            progress=opts.get("progress"), n_pretrain=h.n_pretrain,
            pretrain_cd_steps=h.pretrain_cd_steps)
        return _score(model, preset, seed, test, hist, time.perf_counter() - t0,
                      chain_starts=True)

    runner.__doc__ = f"{name} with Bernoulli pixels, whole-sequence CD updates (spec §9.5)."
    return runner


def _run_vae(name: str):
    def runner(preset: BallsPreset, seed: int, test: torch.Tensor, opts: dict):
        v = preset.vae
        model = build_model(name, preset, make_generator(seed, f"balls/{name}/init"))
        g = make_generator(seed, f"balls/{name}")

        def data(epoch: int) -> torch.Tensor:  # (T, n_seq, 900), then split into batches
            return sequences(v.n_seq, preset, seed, f"balls/{name}/epoch{epoch}")

        t0 = time.perf_counter()
        hist = train_windows(model, data, v.n_epochs, v.optim, g, window=v.window,
                             batch=v.batch, evaluate=_evaluator(preset, seed),
                             eval_every=preset.eval_every,
                             checkpoint=_checkpoint(opts.get("checkpoint_dir"), preset, seed,
                                                    name),
                             progress=opts.get("progress"))
        return _score(model, preset, seed, test, hist, time.perf_counter() - t0)

    runner.__doc__ = f"{name} with a Bernoulli likelihood, trained on windows (spec §7)."
    return runner


MODELS = {
    "ORDER 0": run_order0,
    "rEFH": _run_harmonium("rEFH"),
    "TRBM": _run_harmonium("TRBM"),
    "RTRBM": _run_harmonium("RTRBM"),
    "rVAE": _run_vae("rVAE"),
    "TVAE": _run_vae("TVAE"),
    "rVAE-BPTT": _run_vae("rVAE-BPTT"),
}


def run(
    models: list[str] | None = None,
    preset: str | BallsPreset = "quick",
    seed: int = 0,
    progress: bool | None = None,
    checkpoint_dir: str | None = None,
    threads: int | None = 1,
) -> dict[str, dict]:
    """Train and score ``models`` (default: all) on one preset and seed.

    Returns ``{model: {"mse": float, "train_s": float, "info": dict}}``; "mse" is the one-step
    prediction error per pixel on the test set (spec §9.6). ``threads``: torch CPU threads
    while running (None leaves the setting alone).
    """
    from tqdm.auto import tqdm

    preset, models = resolve(preset, models, PRESETS, MODELS)
    opts = {"checkpoint_dir": checkpoint_dir, "progress": progress}
    results = {}
    with torch_threads(threads):
        test = test_data(preset, seed)
        for name in tqdm(models, desc=f"balls/{preset.name}",
                         disable=None if progress is None else not progress):
            mse, train_s, info = MODELS[name](preset, seed, test, opts)
            results[name] = {"mse": mse, "train_s": train_s, "info": info}
    return results
