"""Gradient alignment (temporally local rule vs full BPTT) tracked during training on LTI + PPC.

For the chapter "Local versus BPTT: cost and gradients" (book/local_vs_bptt.py). Each model is
built and trained exactly as ``tlr.experiments.ppc.run`` trains it (same random streams, same
loop, same schedule) at the preset of :func:`preset_for`: the ``quick`` preset for the rVAE
and rVAE-BPTT; for the TRBM and RTRBM the ``paper`` settings (CD-25, one sequence per update,
400 per epoch, Makin's momentum schedule) cut to ``HARMONIUM_EPOCHS`` epochs, because the
quick preset's TRBM/RTRBM do not get below ORDER 0 in their 20 short epochs. An ``evaluate``
callback, every few epochs (and before the first), records

* the validation MSE (10 x 1000 steps, the stream ``run`` validates on), and
* :func:`tlr.evaluation.tradeoff.grouped_alignment` (through its ``AlignmentTracker``) on one
  fixed batch of PPC sequences (``N_SEQ`` x ``T`` steps, stream ``bptt/alignment``): the
  cosine between the local-rule gradient and the full-BPTT gradient of the same objective,
  |g_bptt - g_local| / |g_bptt| and |g_local| / |g_bptt|, overall and per parameter group
  (rVAE: encoder, decoder; TRBM/RTRBM: W_u, W_y, b_x, b_u, b_y).

The callback draws no random numbers from the training generator and writes no gradients,
so the trained models are those of ``run`` (the final test MSE is recorded to check it).

Regenerate (about 10-15 minutes on one CPU thread)::

    .venv/bin/python results/bptt/alignment.py --seed 0

which writes ``results/bptt/alignment_seed0.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from tlr.data import simulate
from tlr.evaluation import torus_mse
from tlr.evaluation.readout import com_readout
from tlr.evaluation.tradeoff import AlignmentTracker
from tlr.experiments.ppc import PRESETS, PPCPreset, test_data
from tlr.models.rtrbm import RTRBM
from tlr.models.rvae import RVAE, RVAEConfig
from tlr.models.trbm import TRBM, TRBMConfig
from tlr.provenance import provenance
from tlr.rng import make_generator
from tlr.train import train_sequences, train_windows

MODELS = ("rVAE", "rVAE-BPTT", "TRBM", "RTRBM")
HARMONIUM_EPOCHS = 20
N_SEQ, T = 16, 100  # the fixed alignment batch
STREAM = "bptt/alignment"


def preset_for(name: str) -> PPCPreset:
    """The preset ``name`` is trained at (see the module docstring)."""
    if name.startswith("rVAE"):
        return PRESETS["quick"]
    paper = PRESETS["paper"]
    return replace(paper, name=f"paper-{HARMONIUM_EPOCHS}ep",
                   trbm=replace(paper.trbm, n_epochs=HARMONIUM_EPOCHS))


def alignment_batch(preset, seed: int) -> torch.Tensor:
    """The fixed batch every alignment is measured on: (T, N_SEQ, n_neurons) counts."""
    return simulate(N_SEQ, T, seed=seed, lti=preset.lti, ppc=preset.ppc, stream=STREAM).y


def build(name: str, preset, seed: int) -> torch.nn.Module:
    """The untrained model of ``name``, initialised as ``tlr.experiments.ppc``'s runner does."""
    n_obs = preset.ppc.n_neurons
    if name.startswith("rVAE"):
        v = preset.vae
        cfg = RVAEConfig(n_obs=n_obs, n_latent=v.n_latent, n_units=v.n_units,
                         bptt=name.endswith("-BPTT"))
        return RVAE(cfg, generator=make_generator(seed, f"ppc/{name}/init"))
    r = preset.trbm
    cls = RTRBM if name == "RTRBM" else TRBM
    return cls(TRBMConfig(n_obs=n_obs, n_hidden=r.n_hidden, n_cd_steps=r.n_cd_steps),
               generator=make_generator(seed, f"ppc/{name}"))


def data_fn(name: str, run, preset, seed: int):
    """``data(epoch)``: the fresh training data of ``name``'s runner in ``tlr.experiments.ppc``."""
    def data(epoch: int) -> torch.Tensor:
        return simulate(run.n_traj, run.T, seed=seed, lti=preset.lti, ppc=preset.ppc,
                        stream=f"ppc/{name}/epoch{epoch}").y
    return data


def val_metric(preset, seed: int):
    """Validation MSE, on the 10 x 1000 validation set ``run`` uses (stream ``ppc/val``)."""
    val = simulate(10, preset.T_test, seed=seed, lti=preset.lti, ppc=preset.ppc,
                   stream="ppc/val")
    return lambda m: torus_mse(com_readout(m, val.y, preset.ppc), val.position,
                               preset.ppc.period)


def track(name: str, preset, seed: int, eval_every: int | None = None) -> dict:
    """Train ``name`` as ``run`` does, recording validation MSE and alignment along the way."""
    model = build(name, preset, seed)
    tracker = AlignmentTracker(alignment_batch(preset, seed), val_metric(preset, seed))
    tracker(model)  # epoch 0: the initialisation
    g = make_generator(seed, f"ppc/{name}")
    if name.startswith("rVAE"):
        r = preset.vae
        eval_every = eval_every or max(1, r.n_epochs // 30)
        hist = train_windows(model, data_fn(name, r, preset, seed), r.n_epochs, r.optim, g,
                             window=r.window, evaluate=tracker, eval_every=eval_every,
                             progress=False)
    else:
        r = preset.trbm
        eval_every = eval_every or 1
        hist = train_sequences(model, data_fn(name, r, preset, seed), r.n_epochs, r.optim, g,
                               seqs_per_update=r.seqs_per_update, evaluate=tracker,
                               eval_every=eval_every, progress=False)
    rec = tracker.as_dict([0, *hist.epochs])
    rec["val_mse"] = rec.pop("metric")
    test = test_data(preset, seed)
    rec.update(seconds=[0.0, *hist.seconds],  # wall s since training started, incl. evaluation
               n_epochs=r.n_epochs, eval_every=eval_every, updates=hist.updates,
               train_s=hist.elapsed,
               test_mse=torus_mse(com_readout(model, test.y, preset.ppc), test.position,
                                  preset.ppc.period))
    return rec


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--out", default=None, help="default: results/bptt/alignment_seedS.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    models = {}
    for name in args.models.split(","):
        print(f"{name} ...", flush=True)
        preset = preset_for(name)
        models[name] = {"preset": preset.name, **track(name, preset, args.seed)}
        print(f"  {models[name]['train_s']:.0f} s, test MSE {models[name]['test_mse']:.3e}, "
              f"overall cosine {models[name]['cosine']['overall'][0]:.4f} -> "
              f"{models[name]['cosine']['overall'][-1]:.4f}", flush=True)
    out = Path(args.out or Path(__file__).with_name(f"alignment_seed{args.seed}.json"))
    result = {
        "experiment": "bptt/alignment", "seed": args.seed, "harmonium_epochs": HARMONIUM_EPOCHS,
        "batch": {"n_seq": N_SEQ, "T": T, "stream": STREAM, "u0": "zeros"},
        "models": models,
        "provenance": {**provenance("cpu", started), "wall_s": time.perf_counter() - t0},
    }
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
