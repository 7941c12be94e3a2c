"""Analyses behind the book's saved tables that are not a plain ``tlr run``.

``python -m tlr analyze NAME [options] --json OUT`` runs one of :data:`ANALYSES`:

* ``bptt-alignment`` (chapter "Local versus BPTT"): the cosine between the temporally local
  gradient and the full-BPTT gradient of the same objective, tracked while the rVAE,
  rVAE-BPTT, TRBM and RTRBM train on LTI-PPC exactly as ``tlr run ppc`` trains them;
* ``balls-chain-starts`` (chapter "Bouncing balls"): one-step MSE of trained harmonium
  checkpoints with their clamped Gibbs chains started from noise (the protocol, and 8x longer)
  or from the true previous frame (diagnostics beside the protocol);
* ``balls-quick-sweep`` (chapter "Bouncing balls"): what does not shorten the rEFH's training
  on bouncing balls: the quick preset's rEFH with one change per row;
* ``harmoniums-clamped`` (chapter "Harmoniums", the exercise "Does modelling the previous state
  matter?"): the chapter's small rEFH against the same network with its past clamped.

Each writes a JSON with its own provenance; the chapters load the saved files.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import torch

from tlr.data import PPCConfig, simulate
from tlr.evaluation import torus_mse
from tlr.evaluation.prediction import one_step_mse, one_step_predictions, order0_predictions
from tlr.evaluation.readout import com_readout
from tlr.evaluation.tradeoff import AlignmentTracker
from tlr.experiments import balls as B
from tlr.experiments import ppc as P
from tlr.experiments.common import build, train
from tlr.filters import order0 as order0_filter
from tlr.models import load_model
from tlr.models.refh import REFH, REFHConfig
from tlr.models.trbm import TRBM, TRBMConfig
from tlr.provenance import provenance
from tlr.rng import make_generator, torch_threads
from tlr.train import OptimConfig, fit, load_checkpoint

__all__ = ["ANALYSES", "bptt_alignment", "balls_chain_starts", "balls_quick_sweep",
           "harmoniums_clamped"]

# ----------------------------------------------------------------------- bptt-alignment
ALIGNMENT_MODELS = ("rVAE", "rVAE-BPTT", "TRBM", "RTRBM")
HARMONIUM_EPOCHS = 20
N_SEQ, T_ALIGN = 16, 100  # the fixed alignment batch
ALIGNMENT_STREAM = "bptt/alignment"


def alignment_preset(name: str) -> P.PPCPreset:
    """The rVAEs at the ``quick`` preset; the TRBM/RTRBM at the ``paper`` settings (CD-25, one
    sequence per update, Makin's schedule) cut to ``HARMONIUM_EPOCHS`` epochs, because the
    quick preset's TRBM/RTRBM do not get below ORDER 0."""
    if name.startswith("rVAE"):
        return P.PRESETS["quick"]
    paper = P.PRESETS["paper"]
    return replace(paper, name=f"paper-{HARMONIUM_EPOCHS}ep",
                   trbm=replace(paper.trbm, n_epochs=HARMONIUM_EPOCHS))


def alignment_batch(preset: P.PPCPreset, seed: int) -> torch.Tensor:
    """The fixed batch every alignment is measured on: (T_ALIGN, N_SEQ, n_neurons) counts."""
    from tlr.data import simulate

    return simulate(N_SEQ, T_ALIGN, seed=seed, lti=preset.lti, ppc=preset.ppc,
                    stream=ALIGNMENT_STREAM).y


def track_alignment(name: str, preset: P.PPCPreset, seed: int,
                    eval_every: int | None = None) -> dict:
    """Train ``name`` as ``tlr run ppc`` does, recording the validation MSE and
    :func:`tlr.evaluation.tradeoff.grouped_alignment` on the fixed batch along the way.

    The tracker draws nothing from the training generator and writes no gradients, so the
    trained model is ``run``'s (its test MSE is recorded to check it)."""
    device = torch.device("cpu")
    model, g = build(P.PPC, name, preset, seed, device)
    tracker = AlignmentTracker(alignment_batch(preset, seed),
                               P.PPC.evaluator(name, preset, seed, None, device))
    tracker(model)  # epoch 0: the initialisation
    n_epochs = P.PPC.train_spec(name, preset).n_epochs
    every = eval_every or (max(1, n_epochs // 30) if name.startswith("rVAE") else 1)
    model, hist, _ = train(P.PPC, name, preset, seed, None, device, model=model, generator=g,
                           evaluate=tracker, eval_every=every)
    rec = tracker.as_dict([0, *hist.epochs])
    rec["val_mse"] = rec.pop("metric")
    test = P.test_data(preset, seed)
    rec.update(seconds=[0.0, *hist.seconds],  # wall s since training started, incl. evaluation
               n_epochs=n_epochs, eval_every=every, updates=hist.updates,
               train_s=hist.elapsed,
               test_mse=torus_mse(com_readout(model, test.y, preset.ppc), test.position,
                                  preset.ppc.period))
    return rec


def bptt_alignment(seed: int = 0, models: Sequence[str] = ALIGNMENT_MODELS,
                   log: Callable[[str], None] = print) -> dict:
    """The ``bptt-alignment`` analysis (about 10-15 minutes on one CPU thread)."""
    started, t0 = dt.datetime.now(dt.timezone.utc), time.perf_counter()
    prov = provenance("cpu", started)
    out = {}
    for name in models:
        preset = alignment_preset(name)
        out[name] = {"preset": preset.name, **track_alignment(name, preset, seed)}
        log(f"{name}: {out[name]['train_s']:.0f} s, test MSE {out[name]['test_mse']:.3e}, "
            f"overall cosine {out[name]['cosine']['overall'][0]:.4f} -> "
            f"{out[name]['cosine']['overall'][-1]:.4f}")
    return {"experiment": "bptt/alignment", "seed": seed, "harmonium_epochs": HARMONIUM_EPOCHS,
            "batch": {"n_seq": N_SEQ, "T": T_ALIGN, "stream": ALIGNMENT_STREAM, "u0": "zeros"},
            "models": out, "provenance": {**prov, "wall_s": time.perf_counter() - t0}}


# ------------------------------------------------------------------- balls-chain-starts
CHAIN_VARIANTS = (("noise", 25), ("noise", 200), ("previous", 25), ("previous", 0))


def balls_chain_starts(checkpoints: Mapping[str, str], preset: str = "medium", seed: int = 0,
                       n_test: int = 100, log: Callable[[str], None] = print) -> dict:
    """One-step MSE of saved harmonium checkpoints (``{label: path}``, written by
    ``tlr run balls --checkpoint-dir``) on the first ``n_test`` test sequences of the preset
    and seed, with the chain started from noise (25 steps: the protocol of Sources §9.6; 200
    steps) or from the true y_{t-1} (25 steps, and 0: the mean-field readout alone), beside
    ORDER 0 on the same sequences."""
    prov = provenance("cpu", dt.datetime.now(dt.timezone.utc))
    p = B.PRESETS[preset]
    rows = {}
    test = B.test_data(p, seed)[:, :n_test]
    order0 = one_step_mse(order0_predictions(test), test)
    for label, path in checkpoints.items():
        model = load_model(path)
        epoch, hist = load_checkpoint(path, model)
        row = {"model": model.name, "checkpoint_epoch": epoch, "updates": hist.updates,
               "n_cd_steps": model.config.n_cd_steps, "file": Path(path).name}
        for start, n in CHAIN_VARIANTS:
            t0 = time.perf_counter()
            g = make_generator(seed, f"balls/chain_starts/{start}{n}")
            row[f"{start}, {n}"] = one_step_mse(
                one_step_predictions(model, test, n, g, start=start), test)
            row[f"{start}, {n} s"] = time.perf_counter() - t0
        rows[label] = row
        log(f"{label}: {row}")
    return {"preset": preset, "seed": seed, "n_test": n_test, "order0": order0, "rows": rows,
            "provenance": prov}


# -------------------------------------------------------------------- balls-quick-sweep
def _m0(m0: float) -> OptimConfig:
    return OptimConfig("makin-hyperbolic", m0=(m0,) * 5)


QUICK_SWEEP = {  # label: (harmonium changes, preset changes), on 4000 updates of CD-5
    "base": ({}, {}),
    "lr x2": ({"optim": _m0(25)}, {}),
    "lr x4, 4 seqs/update": ({"optim": _m0(12.5), "seqs_per_update": 4}, {}),
    "CD-25": ({"n_cd_steps": 25, "n_epochs": 4}, {}),
    "pretrain 1000": ({"n_pretrain": 1000}, {}),
    "15 x 15, 300 hidden": ({"n_hidden": 300, "n_epochs": 20}, {"resolution": 15,
                                                                 "eval_every": 4}),
}


def balls_quick_sweep(seed: int = 0, log: Callable[[str], None] = print) -> dict:
    """The quick preset's rEFH with 4000 updates of CD-5 (10 epochs of 400 sequences), then one
    change per row of :data:`QUICK_SWEEP`; one-step MSE, training seconds and the validation
    curve of each (about 12 minutes on one CPU thread)."""
    prov = provenance("cpu", dt.datetime.now(dt.timezone.utc))
    quick = B.PRESETS["quick"]
    rows = {}
    for label, (h, changes) in QUICK_SWEEP.items():
        harmonium = replace(quick.harmonium, **{"n_epochs": 10, "n_seq": 400, **h})
        preset = replace(quick, name="sweep", harmonium=harmonium, **changes)
        r = B.run(["ORDER 0", "rEFH"], preset, seed=seed, progress=False)
        info = r["rEFH"]["info"]
        rows[label] = {"order0": r["ORDER 0"]["mse"], "rEFH": r["rEFH"]["mse"],
                       "train_s": r["rEFH"]["train_s"], "updates": info["updates"],
                       "epochs": info["epochs"], "curve": info["curve"],
                       "n_cd_steps": harmonium.n_cd_steps, "resolution": preset.resolution,
                       "mse_from_previous_0": info["mse_from_previous_0"]}
        log(f"{label}: { {k: v for k, v in rows[label].items() if k not in ('curve', 'epochs')} }")
    return {"seed": seed, "rows": rows, "provenance": prov}


# ------------------------------------------------------------------- harmoniums-clamped
def harmoniums_clamped(seed: int = 0, n_hidden: int = 120, n_epochs: int = 30,
                       log: Callable[[str], None] = print) -> dict:
    """The chapter "Harmoniums"'s small rEFH (``n_hidden`` units, CD-1, ``n_epochs`` epochs of
    40 x 1000 fresh trajectories, one online update per step, Adam at lr 1e-3 divided by 1.1
    per epoch) and the same network with u_{t-1} clamped in the negative phase
    (``TRBM.update`` on windows of one step, which hands on the positive phase's means as the
    rEFH does), from the same initial weights and on the same data. Validation MSE after every
    epoch on the chapter's validation set (the quick PPC preset's, seed 0, for every ``seed``).
    Seed 0's rEFH is the chapter's own run. About 20 s per model on one CPU thread."""
    prov = provenance("cpu", dt.datetime.now(dt.timezone.utc))
    ppc = PPCConfig()
    val = P.val_data(P.PRESETS["quick"], 0)

    def val_mse(model) -> float:
        return torus_mse(com_readout(model, val.y, ppc), val.position, ppc.period)

    def epoch_data(epoch: int) -> torch.Tensor:
        return simulate(40, 1000, seed=seed, stream=f"book/harmoniums/epoch{epoch}").y

    runs = {}
    for name in ("rEFH", "clamped"):
        gen = make_generator(seed, "book/harmoniums/train")  # the same initial weights
        model = (REFH(REFHConfig(n_hidden=n_hidden), generator=gen) if name == "rEFH"
                 else TRBM(TRBMConfig(n_hidden=n_hidden, n_cd_steps=1), generator=gen))
        t0 = time.perf_counter()
        hist = fit(model, epoch_data, n_epochs, OptimConfig("adam", lr=1e-3, decay=1.1), gen,
                   window=1, evaluate=val_mse, eval_every=1, progress=False)
        runs[name] = {"epochs": list(hist.epochs), "val_mse": [float(m) for m in hist.metric],
                      "updates": hist.updates, "train_s": time.perf_counter() - t0}
        log(f"seed {seed}, {name}: validation MSE {runs[name]['val_mse'][-1]:.3e} after "
            f"{hist.updates} updates ({runs[name]['train_s']:.0f} s)")
    order0 = torus_mse(order0_filter(val.y, ppc), val.position, ppc.period)
    return {"seed": seed, "n_hidden": n_hidden, "n_epochs": n_epochs, "order0": float(order0),
            "runs": runs, "provenance": prov}


ANALYSES: dict[str, Callable[..., dict]] = {
    "bptt-alignment": bptt_alignment,
    "balls-chain-starts": balls_chain_starts,
    "balls-quick-sweep": balls_quick_sweep,
    "harmoniums-clamped": harmoniums_clamped,
}


def run_analysis(name: str, threads: int = 1, **kw) -> dict:
    """Run analysis ``name`` with ``threads`` torch threads."""
    if name not in ANALYSES:
        raise ValueError(f"unknown analysis {name!r}; valid: {', '.join(ANALYSES)}")
    with torch_threads(threads):
        return ANALYSES[name](**kw)
