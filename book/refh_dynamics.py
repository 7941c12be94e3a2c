# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all,tags
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # rEFH learns second-order dynamics
#
# The poster's central claim for the LTI + PPC experiment (a linear time-invariant system
# observed through a probabilistic population code, PPC) is that a recurrent
# exponential-family harmonium (rEFH), trained only with temporally local contrastive-divergence
# updates and no backpropagation through time, learns the *second-order* dynamics of a mass on
# a spring from neurons that report its position alone. Its Table 1 places the rEFH (3.3e-4)
# between KF-1, a first-order filter fitted by EM (5.8e-4), and KF-2, a second-order filter
# fitted the same way (2.2e-4).
#
# This chapter trains the rEFH, reproduces its row of Table 1, and then asks the question
# the error alone cannot answer: **which order of dynamics did it learn?**
#
# **What you will learn**
#
# - how to train the rEFH and its baselines with one call, and check that a model loaded from a
#   checkpoint is exactly the one that was scored;
# - the velocity probe: a least-squares linear readout of the true velocity $\dot s_t$ from a
#   filter's state, and its test $R^2$, written out in the page and checked against
#   `tlr.evaluation.order.velocity_r2`;
# - the lag $\tau$ of a position estimate, a sign of first-order filtering;
# - the gap probe: silence the neurons and measure how much of the motion each filter's
#   estimate $\tilde s_t$ carries through the gap;
# - the rEFH's Table 1 row at paper scale over five seeds, next to the TRBM and RTRBM, and how
#   its error depends on the number of hidden units;
# - why a plain linear position readout fails at the seam of the neurons' ring, and how the
#   circular readout avoids it.
#
# **Prerequisites.** {doc}`The LTI system <lti_ppc>` (the population-code data, ORDER 0, the
# Kalman-filter baselines KF-1, KF-2 and KF-true, the lag $\tau$) and {doc}`Harmoniums
# <harmoniums>` (the harmonium, contrastive divergence and the rEFH's learning rule, which are
# not repeated here). The symbols are those of the {doc}`notation <notation>` page. The maths:
# least squares and the coefficient of determination $R^2$.
#
# **Run time.** About two minutes on one CPU core at the default (`quick`) preset, exercises
# included; training the seven models of the first cell takes most of it. The paper-scale
# numbers are loaded from saved result files.
#
# > Our own commentary is set in blockquotes like this one. "Sources §n" points to a section of
# > the appendix {ref}`Sources and protocols <sources>`, which traces every setting to its
# > primary source.

# %% tags=["remove-input"]
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "tlr @ git+https://github.com/tlr-book/tlr"], check=True)

# %% [markdown]
# Everything below comes from the `tlr` library except the velocity probe, which the page also
# writes out and checks against it.

# %% tags=["exercise-setup"]
import math
import tempfile
import time

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from tlr.provenance import short_commit
import tlr.results
from tlr.evaluation import torus_mse, wrap_error
from tlr.evaluation.order import gap_slope, lag_steps, velocity_r2, withhold
from tlr.evaluation.readout import com_readout, fit_circular_readout, fit_linear_readout
from tlr.experiments.ppc import PRESETS, REFH_PAPER, run, test_data, train_data, val_data
from tlr.filters import fit_kf, kf_states, kf_true, order0, run_kf
from tlr.rng import make_generator
from tlr.experiments.common import checkpoint_path
from tlr.models import load_model
from tlr.poster import TABLE_1
from tlr.sweep import summary_rows
from tlr.train import load_checkpoint
from tlr.viz import plot_mse_curves, plot_withheld

# Tiny tensors in Python loops: extra threads only add overhead.
torch.set_num_threads(1)
SEED = 0
torch.manual_seed(SEED)  # tlr takes explicit seeds; this only pins anything else
plt.rcParams["figure.dpi"] = 110
preset = PRESETS["quick"]
lti, ppc = preset.lti, preset.ppc
T0 = time.perf_counter()
print(f"preset {preset.name!r}, seed {SEED}")

# %% tags=["remove-cell"]
# The introduction quotes the poster's Table 1: rEFH 3.3e-4, KF-1 5.8e-4, KF-2 2.2e-4.
assert [f"{TABLE_1[m]:.1e}" for m in ("rEFH", "KF-1", "KF-2")] == ["3.3e-04", "5.8e-04",
                                                                  "2.2e-04"], TABLE_1

# %% [markdown]
# ## Table 1 at the quick preset
#
# `run` trains and scores every model of the experiment on one seed; it is what
# `python -m tlr run ppc --preset quick --seed 0` calls. Besides the four baselines of
# {doc}`lti_ppc` this trains three harmoniums:
#
# - the **rEFH**, online: each epoch simulates 40 fresh trajectories of 1000 steps and makes one
#   CD-1 update per time step ({ref}`Sources §5.3 <sources-5-3>`); at the quick preset 240 hidden units, 20 epochs, Adam
#   with learning rate $10^{-3}$ divided by 1.1 every epoch;
# - the **TRBM** and **RTRBM**, on sequences of 100 steps ({ref}`Sources §6.4 <sources-6-4>`); the RTRBM adds the BPTT
#   term, the TRBM does not.
#
# `run` returns scores, not models. To analyse the trained rEFH below we let `run` save its
# training checkpoints (the CLI's `--checkpoint-dir`) into a temporary folder and load the model
# from there, so the model we analyse is the one that was scored, trained once.

# %% tags=["remove-cell"]
# The list above: the quick rEFH's and the sequence models' settings.
refh_cfg = preset.refh
assert (refh_cfg.n_traj, refh_cfg.T, refh_cfg.n_cd_steps, refh_cfg.seqs_per_update) == (
    40, 1000, 1, 1), refh_cfg
assert (refh_cfg.n_hidden, refh_cfg.n_epochs, refh_cfg.optim.name) == (240, 20, "adam"), refh_cfg
assert math.isclose(refh_cfg.optim.lr, 1e-3) and math.isclose(refh_cfg.optim.decay, 1.1)
assert preset.trbm.T == PRESETS["paper"].trbm.T == 100, (preset.trbm, PRESETS["paper"].trbm)

# %%
MODELS = ["ORDER 0", "KF-1", "KF-2", "KF-true", "rEFH", "TRBM", "RTRBM"]
ckpt_dir = tempfile.TemporaryDirectory()
results = run(MODELS, preset, seed=SEED, progress=False, checkpoint_dir=ckpt_dir.name)
mse = {name: res["mse"] for name, res in results.items()}
POSTER = {m: TABLE_1.get(m) for m in ("ORDER 0", "KF-1", "KF-2", "KF-true", "rEFH", "TRBM",
                                       "RTRBM")}  # Table 1 (rad²); KF-true is not on the poster
POSTER_NAME = {"TRBM": r"TRBM\*", "RTRBM": r"RTRBM\*"}  # the poster's asterisks (Sources §13)


def fmt(x: float | None, scale: float = 1e4, digits: int = 2) -> str:
    return "—" if x is None else f"{x * scale:.{digits}f}"


rows = ["| model | MSE (quick, seed 0) | train s | poster Table 1 |", "|---|---:|---:|---:|"]
for name, res in results.items():
    alias = f" ({POSTER_NAME[name]})" if name in POSTER_NAME else ""
    rows.append(f"| {name} | {fmt(res['mse'])} | {res['train_s']:.1f} | "
                f"{fmt(POSTER[name], digits=1)}{alias} |")
display(Markdown("MSE in units of $10^{-4}$ rad²\n\n" + "\n".join(rows)))
assert mse["rEFH"] < mse["KF-1"]  # the rEFH beats KF-1, same test set
assert mse["KF-true"] < mse["KF-2"] < mse["rEFH"] < mse["ORDER 0"]

# %% [markdown]
# The rEFH beats KF-1 on the same test set, as on the poster, and stays above KF-2 and KF-true.
#
# > **The TRBM and RTRBM rows are not a reproduction.** Their protocol ({ref}`Sources §6.4 <sources-6-4>`) makes one
# > CD-25 update per sequence of 100 steps, 400 sequences per epoch for 255 epochs: 102 000
# > updates. The quick preset gives them 400 updates (CD-5, five sequences per update), and
# > both end *worse than ORDER 0*, with validation errors still falling fast (below). They are
# > shown as measured; their paper-scale rows are in the section "Table 1 at paper scale".

# %%
for name in ("TRBM", "RTRBM"):
    info = results[name]["info"]
    print(f"{name}: {info['updates']} updates; validation MSE / 1e-4 by epoch "
          + " ".join(f"{e}:{m * 1e4:.0f}" for e, m in zip(info["epochs"], info["curve"],
                                                             strict=True)))
print("quick sequence protocol:", preset.trbm)
assert all(mse[name] > mse["ORDER 0"] for name in ("TRBM", "RTRBM"))  # undertrained

# %% tags=["remove-cell"]
# The note above: the paper protocol (CD-25, 400 sequences of 100 steps per epoch, one per
# update, 255 epochs: 102 000 updates) against the quick one (CD-5, five sequences per update:
# 400 updates).
seq = PRESETS["paper"].trbm
assert (seq.n_cd_steps, seq.T, seq.n_traj, seq.seqs_per_update, seq.n_epochs) == (
    25, 100, 400, 1, 255), seq
assert seq.n_epochs * seq.n_traj // seq.seqs_per_update == 102_000
assert (preset.trbm.n_cd_steps, preset.trbm.seqs_per_update) == (5, 5), preset.trbm
assert all(results[name]["info"]["updates"] == 400 for name in ("TRBM", "RTRBM"))

# %% [markdown]
# ## The trained rEFH
#
# The checkpoint holds the weights after the last epoch, the optimiser and the training
# history. We rebuild the model with the preset's settings and check that it reproduces the
# table's rEFH score and learning curve exactly, so that the analysis below cannot drift away
# from the table:

# %%
r = preset.refh  # the rEFH's training settings, used below
ckpt = checkpoint_path(ckpt_dir.name, "ppc", preset, SEED, "rEFH")
refh = load_model(ckpt)  # the checkpoint records the model's name and config
epochs_done, hist = load_checkpoint(ckpt, refh)  # and the training history
test = test_data(preset, SEED)
s_refh = com_readout(refh, test.y, ppc)
mse_loaded = torus_mse(s_refh, test.position, ppc.period)
print(f"{epochs_done} epochs, {hist.updates} updates; test MSE {mse_loaded:.6e} "
      f"(run() reported {mse['rEFH']:.6e})")
assert math.isclose(mse_loaded, mse["rEFH"], rel_tol=1e-9)
assert hist.metric == results["rEFH"]["info"]["curve"]

# %% [markdown]
# We also refit KF-1 and KF-2 exactly as `run` does (its training data and EM starting
# points), because the analysis needs their fitted parameters, not only their scores:

# %%
train = train_data(preset, SEED)  # run()'s EM training data
kf1, kf2 = (fit_kf(train.y, order, lti, ppc, n_iter=preset.em_max_iter, tol=preset.em_tol,
                   generator=make_generator(SEED, f"ppc/em{order}-init")) for order in (1, 2))
for name, fit in (("KF-1", kf1), ("KF-2", kf2)):
    assert math.isclose(torus_mse(run_kf(fit.params, test.y, lti, ppc), test.position,
                                  ppc.period), mse[name], rel_tol=1e-9)
print(f"KF-1: {kf1.n_iter} EM iterations, KF-2: {kf2.n_iter}; both reproduce the table")

# %% [markdown]
# ## Learning curves
#
# During training `run` scores the model every five epochs on a separate validation set of
# 10 trajectories × 1000 steps. The figure puts the live quick-preset curve next to the curves
# of the saved paper-scale runs (Makin's momentum schedule, 90 epochs; see the section
# "Table 1 at paper scale" below), with the baselines scored on the
# same validation set. The validation set depends only on the seed, so it is the same for both
# presets at seed 0; the other seeds have their own.

# %%
val = val_data(preset, SEED)  # run()'s validation set
assert math.isclose(torus_mse(com_readout(refh, val.y, ppc), val.position, ppc.period),
                    hist.metric[-1], rel_tol=1e-9)  # the same validation set as run()'s
val_mse = {
    "ORDER 0": torus_mse(order0(val.y, ppc), val.position, ppc.period),
    "KF-1": torus_mse(run_kf(kf1.params, val.y, lti, ppc), val.position, ppc.period),
    "KF-2": torus_mse(run_kf(kf2.params, val.y, lti, ppc), val.position, ppc.period),
}


# The saved paper-preset runs (default settings) of the Kalman filters and the harmoniums, in
# name order, and their names; the VAE-only files belong to the rVAE chapter.
HARMONIUMS = ("rEFH", "TRBM", "RTRBM")
paper_files, paper_runs = [], []
for saved_name in tlr.results.available("ppc/*"):
    saved = tlr.results.load(saved_name)
    saved_models = saved.get("results", {})
    if (saved.get("preset") == "paper" and not saved.get("overrides")
            and not any("VAE" in m for m in saved_models)
            and any(m in saved_models
                    for m in ("ORDER 0", "KF-1", "KF-2", "KF-true", *HARMONIUMS))):
        paper_files.append(saved_name)
        paper_runs.append(saved)


def run_per_seed(runs: list[dict], model: str) -> dict[int, dict]:
    """{seed: run} with the first of `runs` that holds `model`: the rule of
    `tlr.sweep.summary_rows`, which keeps a seed's first file."""
    chosen = {}
    for pr in runs:
        if model in pr["results"]:
            chosen.setdefault(pr["seed"], pr)
    return dict(sorted(chosen.items()))


curves = {"rEFH, quick (Adam), seed 0": (hist.epochs, hist.metric)}
for seed, pr in run_per_seed(paper_runs, "rEFH").items():
    d = pr["details"]["rEFH"]
    curves[f"rEFH, paper (momentum), seed {seed}"] = (d["epochs"], d["curve"])
print(f"saved paper-scale runs: {len(paper_runs)} files for "
      f"{len({pr['seed'] for pr in paper_runs})} seeds")
plot_mse_curves(curves, {f"{k} (seed 0)": v for k, v in val_mse.items()},
                xlabel="epoch (40 × 1000 online updates each)",
                title="rEFH validation MSE during training");

# %% tags=["remove-cell"]
# The text around the figure: validation every five epochs on 10 trajectories x 1000 steps
# (90 epochs at paper scale); the quick run below KF-1 within ten epochs; every paper-scale
# curve within 10 % of its final value from about epoch 60 on; the final validation errors
# rank the seeds differently from the test errors.
assert hist.epochs == list(range(5, r.n_epochs + 1, 5)), hist.epochs
assert tuple(val.y.shape[:2]) == (1000, 10) and preset.n_val == PRESETS["paper"].n_val == 10
assert REFH_PAPER.n_epochs == 90
assert min(e for e, x in zip(hist.epochs, hist.metric, strict=True) if x < val_mse["KF-1"]) <= 10
refh_paper_runs = run_per_seed(paper_runs, "rEFH")
settled = {}  # seed: the first epoch from which the curve stays within 10 % of its last value
for seed, pr in refh_paper_runs.items():
    d = pr["details"]["rEFH"]
    assert d["epochs"] == list(range(5, REFH_PAPER.n_epochs + 1, 5)), d["epochs"]
    settled[seed] = min(e for i, e in enumerate(d["epochs"])
                        if all(abs(x / d["curve"][-1] - 1) < 0.1 for x in d["curve"][i:]))
assert 45 <= min(settled.values()) and max(settled.values()) <= 60, settled
final_val = {seed: pr["details"]["rEFH"]["curve"][-1] for seed, pr in refh_paper_runs.items()}
final_test = {seed: pr["results"]["rEFH"]["mse"] for seed, pr in refh_paper_runs.items()}
assert sorted(final_val, key=final_val.get) != sorted(final_test, key=final_test.get)

# %% [markdown]
# The quick run is below the KF-1 level within ten epochs. The paper-scale runs start more
# slowly, with the small learning rates of Makin's schedule, and level off after about 60
# epochs. Their final validation errors do not rank the seeds as the test errors below do: the
# validation set is small (10 trajectories) and differs from seed to seed.
#
# ## Which order was learned?
#
# An MSE between KF-1 and KF-2 does not by itself say that the rEFH learned the velocity. It
# sees each step's total spike count and so the reliability of each observation, which KF-1's
# constant observation noise ignores; part of its advantage could come from that alone.
# A filter of KF-1's order that knows each step's reliability measures that share (as in
# {doc}`rvae`): KF-1's dynamics with KF-true's per-step noise
# $R_t = \sigma_{\text{tc}}^2/\sum_i y_t^i$ (`run_kf(..., gain_aware=True)`), and its process
# noise $Q$ re-tuned on the training set:

# %%
def kf1_gain_aware(q: float, y: torch.Tensor) -> torch.Tensor:
    """KF-1 with KF-true's per-step R_t and process noise q: position estimates (T, B)."""
    return run_kf(kf1.params._replace(Q=torch.full_like(kf1.params.Q, q)), y, lti, ppc,
                  gain_aware=True)


q_grid = (kf1.params.Q[0, 0].item() * torch.logspace(-1, 1.5, 11)).tolist()  # as in rvae
q_best = min(q_grid, key=lambda q: torus_mse(kf1_gain_aware(q, train.y), train.position,
                                             ppc.period))
mse_gain_aware = torus_mse(kf1_gain_aware(q_best, test.y), test.position, ppc.period)
share = (mse["KF-1"] - mse_gain_aware) / (mse["KF-1"] - mse["rEFH"])
display(Markdown(
    f"Test MSE ($10^{{-4}}$ rad²): KF-1 {fmt(mse['KF-1'])}, gain-aware KF-1 "
    f"{fmt(mse_gain_aware)}, rEFH {fmt(mse['rEFH'])}. Knowing each step's reliability is worth "
    f"{share:.0%} of the rEFH's advantage over KF-1; the gain-aware filter stays well above the "
    "rEFH, so most of that advantage must come from elsewhere."))
assert mse["rEFH"] < mse_gain_aware < mse["KF-1"] and share < 0.5

# %% [markdown]
# The neurons report position only, so a filter can know the velocity only by having learned the
# dynamics that link successive positions. Two probes look for that velocity directly.
#
# ### Probe 1: decode the true velocity from the filter's state
#
# Each filter carries a state from step to step: the rEFH its hidden means
# $u_t = \bar x_t \in (0, 1)^{240}$, a Kalman filter its filtered mean $\mu_{t\mid t}$ (one
# number for KF-1, two for KF-2 and KF-true). We fit a least-squares
# linear map from that state to the *true* velocity $\dot s_t$ on one data set (40 × 1000 steps) and
# report its $R^2$ on the test set:
#
# $$
# \tilde{\dot s}_t = d^\top \text{state}_t + d_0, \qquad
# R^2 = 1 - \frac{\sum_{t,b} (\tilde{\dot s}_{t,b} - \dot s_{t,b})^2}
#                {\sum_{t,b} (\dot s_{t,b} - \overline{\dot s})^2} ,
# $$
#
# with the weights $d$ and the offset $d_0$ fitted on the fitting set, and
# $\overline{\dot s}$ the mean velocity of the test set.
#
# KF-1's state is a position estimate and nothing else. For this oscillator the position and the
# velocity are uncorrelated (a quarter period apart), so a linear readout of $\dot s_t$ from a
# position gets $R^2 \approx 0$. A second-order filter carries a velocity estimate, and
# KF-true's $R^2$ is the ceiling: what can be known about $\dot s_t$ from the spikes up to $t$.

# %%
fit_set = train_data(preset, SEED, stream="ppc/rEFH/readout")  # run()'s readout-fitting set
states = {  # (state on the fitting set, state on the test set), each (T, B, D)
    "KF-1": (kf_states(fit_set.y, lti, ppc, kf1.params), kf_states(test.y, lti, ppc,
                                                                   kf1.params)),
    "KF-2": (kf_states(fit_set.y, lti, ppc, kf2.params), kf_states(test.y, lti, ppc,
                                                                   kf2.params)),
    "KF-true": (kf_states(fit_set.y, lti, ppc), kf_states(test.y, lti, ppc)),
    "rEFH": (refh.filter(fit_set.y), refh.filter(test.y)),
}
v_r2 = {name: velocity_r2(fit_s, fit_set.z[..., 1], test_s, test.z[..., 1])
        for name, (fit_s, test_s) in states.items()}
rows = ["| filter | state size | velocity $R^2$ (test) |", "|---|---:|---:|"]
rows += [f"| {name} | {states[name][1].shape[-1]} | {v:.3f} |" for name, v in v_r2.items()]
display(Markdown("\n".join(rows)))
assert v_r2["rEFH"] > 0.8 and v_r2["rEFH"] > v_r2["KF-1"] + 0.7
assert abs(v_r2["KF-1"]) < 0.05 and min(v_r2["KF-2"], v_r2["KF-true"]) > v_r2["rEFH"]

# %% tags=["remove-cell"]
# The text below quotes these R² as printed in the table.
assert v_r2["rEFH"] > 0.95 and f"{v_r2['KF-true']:.2f}" == "0.99", v_r2

# %% [markdown]
# The probe is a few lines of linear algebra. Append a column of ones to the states (for
# $d_0$), solve the normal equations
# $(\Phi^\top \Phi + 10^{-6}\, T B\, I)\,[d; d_0] = \Phi^\top \dot s$ on the $T B$ fitting
# steps (the rows of the design matrix $\Phi$), and score the test set. The tiny ridge keeps
# the rEFH's 241 × 241 system solvable when hidden units are nearly collinear; the library uses
# the same one, so the two must agree to rounding:

# %%
def velocity_r2_by_hand(m_fit: torch.Tensor, v_fit: torch.Tensor, m_test: torch.Tensor,
                        v_test: torch.Tensor, ridge: float = 1e-6) -> float:
    """Test R² of a least-squares readout v ≈ state·d + d_0 from states m (T, B, D)."""
    def design(m):  # Φ, (T·B, D + 1): the states and a column of ones
        flat = m.reshape(-1, m.shape[-1]).double()
        return torch.cat([flat, torch.ones(flat.shape[0], 1, dtype=flat.dtype)], dim=1)

    Phi = design(m_fit)
    lhs = Phi.T @ Phi + ridge * Phi.shape[0] * torch.eye(Phi.shape[1], dtype=Phi.dtype)
    coef = torch.linalg.solve(lhs, Phi.T @ v_fit.reshape(-1).double())  # [d; d_0]
    v_hat = design(m_test) @ coef
    v = v_test.reshape(-1).double()
    return float(1 - (v_hat - v).pow(2).sum() / (v - v.mean()).pow(2).sum())


for name, (fit_s, test_s) in states.items():
    by_hand = velocity_r2_by_hand(fit_s, fit_set.z[..., 1], test_s, test.z[..., 1])
    assert math.isclose(by_hand, v_r2[name], rel_tol=1e-9, abs_tol=1e-12), (name, by_hand)
print("the page's velocity R² equals tlr.evaluation.order.velocity_r2 for all four filters")

# %% [markdown]
# The rEFH's state holds the velocity almost as well as the true-parameter filter does
# ($R^2$ above 0.95 against 0.99), and KF-1's holds none of it. Nothing in the rEFH's training
# signal mentions velocity: it emerged from learning the joint distribution of $u_{t-1}$ and
# $y_t$.
#
# > A linear readout is a lower bound: the rEFH might hold more velocity information in a form
# > a linear map cannot extract. Its 240 units could also, in principle, hold the last few
# > positions rather than a velocity as such, but that is the same second-order information:
# > the state is enough to extrapolate the motion. Probe 2 checks whether the model uses it.
#
# ### A third sign: the lag of the position estimate
#
# A third, indirect sign of the order is in the errors themselves. A first-order filter must
# average over past positions and so lags behind a moving mass, an error proportional to the
# velocity, $\tilde s_t - s_t \approx -\tau\, \dot s_t\, \Delta t$ with $\tau$ in steps; a
# second-order filter predicts the motion and
# does not lag ({doc}`lti_ppc` measured this for the baselines). The least-squares lag $\tau$,
# in steps:

# %%
estimates = {
    "KF-1": run_kf(kf1.params, test.y, lti, ppc),
    "KF-2": run_kf(kf2.params, test.y, lti, ppc),
    "KF-true": kf_true(test.y, lti, ppc),
    "rEFH": s_refh,
}
v = test.z[..., 1]
lag = {name: lag_steps(s_hat, test.position, v, ppc.period, lti.dt)
       for name, s_hat in estimates.items()}  # tau in steps
print("lag tau (steps): " + ", ".join(f"{k} {t:+.2f}" for k, t in lag.items()))
speed = v.pow(2).mean().sqrt().item() * lti.dt  # rms distance moved per step (rad)
print(f"rms speed {speed:.4f} rad/step: the rEFH's lag costs about {lag['rEFH'] * speed:.4f} rad, "
      f"against its rms error {math.sqrt(mse['rEFH']):.4f} rad")
assert lag["KF-1"] > lag["rEFH"] > max(lag["KF-2"], lag["KF-true"]) + 0.1

# %% tags=["remove-cell"]
# The note below: the lag's cost is about a quarter of the rEFH's rms error, and so a few per
# cent of its MSE.
lag_share = lag["rEFH"] * speed / math.sqrt(mse["rEFH"])
assert 0.2 < lag_share < 0.3 and lag_share**2 < 0.1, lag_share

# %% [markdown]
# Here the rEFH sits in between: it lags less than KF-1 but clearly more than the
# second-order filters. So its position estimate does not use the motion as fully as its
# state's velocity $R^2$ suggests it could.
#
# > The cause is not established. Part of the lag is in the readout, not the state: a linear
# > readout from the state lags about half as much (measured at the end of the chapter). One
# > guess is that the reconstruction $\mathbb{E}[y_t \mid \bar x_t]$ is pulled towards the past
# > because the same hidden units must also reconstruct $u_{t-1}$. The lag is small in absolute
# > terms (printed above): about a quarter of the rEFH's root-mean-square error, and so a few
# > per cent of its mean squared error.
#
# ### Probe 1 and the lag at paper scale
#
# The saved paper-scale runs of the rEFH (section "Table 1 at paper scale" below) record the
# same velocity probe and lag, on the test set of each of the five seeds, with KF-1's from the
# same files:

# %%
probe_runs = [pr for pr in paper_runs if "velocity_r2" in pr["details"].get("rEFH", {})]
paper_probe = {pr["seed"]: {name: (pr["details"][name]["velocity_r2"],
                                   pr["details"][name]["lag_steps"]) for name in ("rEFH", "KF-1")}
               for pr in probe_runs}
rows = ["| seed | velocity $R^2$, rEFH | velocity $R^2$, KF-1 | lag $\\tau$ (steps), rEFH "
        "| lag $\\tau$ (steps), KF-1 |", "|---:|---:|---:|---:|---:|"]
rows += [f"| {seed} | {p['rEFH'][0]:.3f} | {p['KF-1'][0]:.3f} | {p['rEFH'][1]:.2f} "
         f"| {p['KF-1'][1]:.2f} |" for seed, p in sorted(paper_probe.items())]
r2_paper = [p["rEFH"][0] for p in paper_probe.values()]
lag_paper = [p["rEFH"][1] for p in paper_probe.values()]
lag_paper_kf1 = [p["KF-1"][1] for p in paper_probe.values()]
display(Markdown(
    "Paper preset, rEFH and KF-1 of the same file per seed\n\n" + "\n".join(rows) + "\n\n"
    f"Over the {len(paper_probe)} seeds the paper-scale rEFH's velocity $R^2$ is "
    f"{min(r2_paper):.3f} to {max(r2_paper):.3f} (quick model {v_r2['rEFH']:.3f}), and KF-1's "
    f"stays near 0. The rEFH's lag is {min(lag_paper):.2f} to {max(lag_paper):.2f} steps: less "
    f"than the quick model's {lag['rEFH']:.2f}, more than the second-order filters' above, and "
    f"well below KF-1's {min(lag_paper_kf1):.2f} to {max(lag_paper_kf1):.2f}."))
assert len(probe_runs) == len(paper_probe) == 5  # one file per seed
assert min(r2_paper) > 0.95 and all(abs(p["KF-1"][0]) < 0.05 for p in paper_probe.values())
assert max(lag_paper) < lag["rEFH"] and min(lag_paper) > max(lag["KF-2"], lag["KF-true"]) + 0.05
assert max(lag_paper) < min(lag_paper_kf1) - 0.2

# %% [markdown]
# ### Probe 2: withhold the observations
#
# If a filter knows the velocity, it can keep estimating the position while the neurons are
# silent, by dead reckoning; a first-order filter can only hold its last estimate or let it
# decay towards the centre: it cannot carry a velocity. We silence all fifteen neurons for 20
# steps (`withhold`: zero spikes, so the population code's likelihood is flat) and measure how
# much of the true displacement across the gap each filter's estimate reproduces. `gap_slope`
# regresses the estimated displacement $\tilde s_{t_1} - \tilde s_{t_0 - 1}$ on the true one
# across the 40 test trajectories, through the origin ($t_0$ the first silent step, $t_1$ the
# last): 1 means the estimate moved with the mass, 0 that it stood still. We repeat this for
# eight gaps, one at a time, starting at $t_0 = 200, 300, \dots, 900$.
#
# ORDER 0 has nothing to report in a gap (the centre of mass of no spikes is undefined), so it
# is left out.

# %%
GAP = 20
STARTS = list(range(200, 1000, 100))
# The text above: fifteen neurons, gaps of 20 steps, 40 test trajectories, eight gaps
# starting at 200, 300, ..., 900.
assert ppc.n_neurons == 15 and test.y.shape[1] == 40
assert GAP == 20 and len(STARTS) == 8 and STARTS == list(range(200, 901, 100))


def withheld_estimates(y: torch.Tensor, start: int, length: int) -> dict[str, torch.Tensor]:
    """Position estimates (T, B) of the four filters with steps [start, start+length) silent."""
    yw = withhold(y, start, length)
    return {"KF-1": run_kf(kf1.params, yw, lti, ppc), "KF-2": run_kf(kf2.params, yw, lti, ppc),
            "KF-true": kf_true(yw, lti, ppc), "rEFH": com_readout(refh, yw, ppc)}


slopes = {name: [] for name in estimates}
for start in STARTS:
    for name, s_hat in withheld_estimates(test.y, start, GAP).items():
        slopes[name].append(gap_slope(s_hat, test.position, start, GAP, ppc.period))
slope = {name: torch.tensor(s, dtype=torch.float64) for name, s in slopes.items()}
rows = [f"| filter | gap slope, mean ± sd over {len(STARTS)} gaps of {GAP} steps |", "|---|---:|"]
rows += [f"| {name} | {s.mean():.2f} ± {s.std():.2f} |" for name, s in slope.items()]
display(Markdown("\n".join(rows)))
assert slope["rEFH"].mean() > slope["KF-1"].mean() + 0.3
assert (slope["rEFH"] > slope["KF-1"]).all() and slope["KF-true"].mean() > 0.9

# %% tags=["remove-cell"]
# The text below and the exercise "Teach the rEFH what silence means" quote these means.
assert (f"{slope['rEFH'].mean():.1f}", f"{slope['KF-true'].mean():.2f}") == ("0.8", "0.97")

# %% [markdown]
# The figure follows one test trajectory through the gap at $t_0 = 400$: the one whose true
# displacement across the gap is largest. The dots are ORDER 0, the centre of mass of each
# step's spikes, for reference outside the gap; the lower panel shows the errors.

# %%
def explore_gap(start: int = 400, length: int = GAP, traj: int | None = None, margin: int = 60):
    """One trajectory through a gap [start, start + length); traj=None: the largest motion."""
    if traj is None:
        moved = wrap_error(test.position[start + length - 1] - test.position[start - 1],
                           ppc.period)
        traj = int(moved.abs().argmax())
    y1 = test.y[:, traj:traj + 1]
    est = withheld_estimates(y1, start, length)
    s0 = order0(y1, ppc).clone()
    s0[start:start + length] = torch.nan  # no spikes, no centre of mass
    t0, t1 = max(0, start - margin), min(test.y.shape[0], start + length + margin)
    shown = {"ORDER 0 (spikes)": s0, **est}
    return plot_withheld(test.position[t0:t1, traj], {k: s[t0:t1, 0] for k, s in shown.items()},
                         ppc.period, start, length, t0=t0,
                         title=f"test trajectory {traj}: neurons silent for {length} steps")


explore_gap();

# %% [markdown]
# Opened in Jupyter or Colab, the notebook has one more cell here, with sliders for the gap and
# the trajectory.

# %% tags=["remove-cell", "nbval-skip", "skip-execution"]
# Sliders for the gap's start and length and the trajectory. Run this cell yourself: the book
# build and the tests skip it.
from ipywidgets import IntSlider, interact

interact(lambda start=400, length=GAP, traj=0: explore_gap(start, length, traj),
         start=IntSlider(value=400, min=100, max=900, step=10),
         length=IntSlider(value=GAP, min=1, max=80, step=1),
         traj=IntSlider(value=0, min=0, max=test.y.shape[1] - 1));

# %% [markdown]
# KF-1 stops where the spikes stopped; KF-2 and KF-true carry on along the spring's
# trajectory, and so does the rEFH. On this trajectory the rEFH does as well as the Kalman
# filters, but not on average: over all gaps and trajectories it reproduces about 0.8 of the
# motion, against 0.97 for KF-true (the table above), and it varies more from gap to gap.
#
# > Read the rEFH's number as a lower bound on what it learned. Silence is *outside its
# > training distribution*: every training step had a gain of at least 6.4, and a population
# > that fires $g \sum_i f_i \approx 2.48\,g$ spikes on average is silent with probability
# > $e^{-2.48 g} < 1.3\times 10^{-7}$ per step, so the rEFH never saw a silent step (computed
# > below). For a Kalman filter, zero spikes has a precise meaning, $R_t = \infty$: skip the
# > update. The rEFH has no such rule; it receives an input it was never trained on, whose
# > hidden-layer drive $W_y y_t$ is missing altogether. Part of its shortfall in this probe may
# > be that, rather than a weaker velocity estimate; the two cannot be separated here. The
# > population code has no in-distribution way to say "no information" for this model: it would
# > need training data with low gains.

# %%
g_min = ppc.gain_min
flat_sum = math.sqrt(2 * math.pi) * ppc.tuning_std / ppc.spacing  # sum_i f_i(s), flat
p_silent = math.exp(-g_min * flat_sum)
n_train_steps = r.n_epochs * r.n_traj * r.T
print(f"P(no spikes | g = {g_min}) = exp(-{g_min} x {flat_sum:.3f}) = {p_silent:.2e} per step; "
      f"expected silent steps in the rEFH's {n_train_steps:,} training steps: "
      f"< {p_silent * n_train_steps:.2f}")
assert p_silent * n_train_steps < 0.2
# The note above: a gain of at least 6.4, 2.48 g spikes on average, silent with probability
# below 1.3e-7 per step.
assert math.isclose(g_min, 6.4) and f"{flat_sum:.2f}" == "2.48" and p_silent < 1.3e-7

# %% [markdown]
# ## Table 1 at paper scale
#
# The quick preset is one seed and a short training run. The paper-scale rows were run with
# the `paper` preset on five seeds and saved as `tlr` result files (`results[model]["mse"]`,
# `["train_s"]`, details, provenance). Some models and seeds were run in more than one file;
# the page takes one file per model and seed, the first in name order, as
# `tlr.sweep.summary_rows` does (the learning curves above included), and checks below that the
# others give the same scores. The files are listed with their provenance under the table.
#
# ````{admonition} Regenerate the paper-scale runs
# :class: dropdown
# For seed $S$:
# ```
# python -m tlr run ppc --preset paper --models "ORDER 0,KF-1,KF-2,KF-true,rEFH" --seed S \
#     --json results/ppc/paper_seedS.json
# python -m tlr run ppc --preset paper --models "RTRBM,TRBM" --seed S \
#     --json results/ppc/paper_seedS_sequence.json
# ```
# Seeds 3–4, one run per model and seed (`sweep` needs `pip install "tlr[sweep]"`):
# ```
# python -m tlr sweep --grid table1 --models "ORDER 0,KF-1,KF-2,KF-true,rEFH,TRBM,RTRBM" \
#     --seeds 3,4 --executor local --jobs 2 --out DIR
# ```
# ````
#
# The `paper` preset trains the rEFH with Makin's settings ({ref}`Sources §2.6 <sources-2-6>`, {ref}`§5.2 <sources-5-2>`, {ref}`§5.3 <sources-5-3>`): 240 hidden units,
# CD-1, 40 fresh trajectories × 1000 steps per epoch, one update per step. Its optimiser is not
# the poster's:
#
# > The poster trains "all models with stochastic gradient descent and AdaM optimization" at a
# > learning rate of $10^{-4}$, and gives no schedule or number of epochs. The `paper` preset
# > uses instead the optimiser with which Makin's own code trains the rEFH
# > ({ref}`Sources §5.4 <sources-5-4>`): SGD with momentum $0.98 - 0.5/1.1^e$ in epoch $e$ and
# > per-group learning rates $1/(m_0 \cdot 1.1^e)$, the recurrent weights learning 16 times
# > faster than the sensory ones, for the 90 epochs of his 2015 code (his 2018 code stops at 50;
# > {ref}`Sources §2.6 <sources-2-6>`). On the bouncing balls, saved runs with Adam in place of
# > that schedule end far worse ({doc}`balls`). The quick
# > preset's Adam at $10^{-3}$ with a decaying rate is a CPU-sized stand-in, not a reproduction
# > of either. The TRBM and RTRBM use Makin's hyperbolic schedule and sequence protocol
# > ({ref}`Sources §6.4 <sources-6-4>`) unchanged: 400 fresh sequences of 100 steps per epoch, one sequence per update,
# > CD-25, 255 epochs.

# %%
print("paper rEFH:", REFH_PAPER)
print("quick rEFH:", preset.refh)
assert REFH_PAPER == PRESETS["paper"].refh and REFH_PAPER.optim.name == "makin-exp"
assert (REFH_PAPER.n_hidden, REFH_PAPER.n_cd_steps, REFH_PAPER.n_traj, REFH_PAPER.T,
        REFH_PAPER.seqs_per_update, REFH_PAPER.n_epochs) == (240, 1, 40, 1000, 1, 90), REFH_PAPER
seq_paper = PRESETS["paper"].trbm  # the TRBM's and RTRBM's protocol in the note above
assert (seq_paper.n_traj, seq_paper.T, seq_paper.seqs_per_update, seq_paper.n_cd_steps,
        seq_paper.n_epochs) == (400, 100, 1, 25, 255), seq_paper

# %% [markdown]
# The table reads whatever models the saved files contain; a model of the poster's Table 1
# (its harmonium and Kalman rows) that has no saved paper-scale run is marked as such.

# %%
def paper_table(runs: list[dict], poster: dict[str, float | None]) -> tuple[str, dict]:
    """Markdown table of mean ± sd over seeds per model (`tlr.sweep.summary_rows`: a model in
    two files of one seed counts once), next to the poster's numbers."""
    rows = summary_rows(runs, "ppc", preset="paper")
    train = summary_rows(runs, "ppc", preset="paper", metric="train_s", agree=False)
    by_model = {m: torch.tensor(r["values"], dtype=torch.float64) for m, r in rows.items()}
    lines = ["| model | MSE, mean ± sd | seeds | train s (mean) | poster Table 1 |",
             "|---|---:|---:|---:|---:|"]
    for m in [*poster, *(m for m in rows if m not in poster)]:
        label = POSTER_NAME.get(m, m)
        if m not in by_model:
            lines.append(f"| {label} | no saved paper-scale run | 0 | — | "
                         f"{fmt(poster.get(m), digits=1)} |")
            continue
        x = by_model[m]
        sd = f" ± {x.std() * 1e4:.2f}" if len(x) > 1 else ""
        lines.append(f"| {label} | {x.mean() * 1e4:.2f}{sd} | {len(x)} | "
                     f"{train[m]['mean']:.0f} | {fmt(poster.get(m), digits=1)} |")
    return "MSE in units of $10^{-4}$ rad²\n\n" + "\n".join(lines), by_model


table, paper_mse = paper_table(paper_runs, POSTER)
display(Markdown(table))
assert all(pr["preset"] == "paper" for pr in paper_runs)
m = {k: x.mean().item() for k, x in paper_mse.items()}
assert m["KF-true"] < m["KF-2"] < m["rEFH"] < m["KF-1"] < m["ORDER 0"]
assert paper_mse["KF-2"].max() < paper_mse["rEFH"].min()  # every seed between the two
assert paper_mse["rEFH"].max() < paper_mse["KF-1"].min()
for name in paper_mse:  # a model and seed in several files: the same scores in all of them
    for seed in {pr["seed"] for pr in paper_runs}:
        same = [(pr["results"][name]["mse"],
                 pr["details"].get(name, {}).get("mse_linear_readout"))
                for pr in paper_runs if pr["seed"] == seed and name in pr["results"]]
        assert len(set(same)) <= 1, (name, seed, same)

# %% tags=["hide-input"]
# Provenance of the saved paper-scale runs (collapsed in the book).
FOLDERS = {  # what each folder of saved runs holds
    "ppc": "the Table 1 runs of seeds 0–2, one file per group of models",
    "ppc/seeds_3_4": "the Table 1 runs of seeds 3–4, one model per file, by "
                     "`python -m tlr sweep` (the dropdown above)",
    "ppc/seeds_3_4_sequence": "the same for the TRBM and RTRBM",
    "ppc/dynamics": "repeats of the rEFH and the Kalman filters of seeds 0–2: the defaults point "
                    "of the dynamics sweep ({doc}`reproducing`)",
    "ppc/refh_paper": "repeats of KF-1 and the rEFH of all five seeds with the velocity probe "
                      "and the lag recorded (used above and by {doc}`rvae`)",
}
runs_by_file = dict(zip(paper_files, paper_runs, strict=True))
folder_of = {f: f.rpartition("/")[0] for f in paper_files}
assert set(folder_of.values()) <= set(FOLDERS), set(folder_of.values()) - set(FOLDERS)
folders = ["| folder (`results/`) | files | what |", "|---|---:|---|"]
folders += [f"| `{folder}/` | {list(folder_of.values()).count(folder)} | {what} |"
            for folder, what in FOLDERS.items() if folder in folder_of.values()]
prov = ["| seed | file | models | git commit | torch | device | started (UTC) | wall s |",
        "|---:|---|---|---|---|---|---|---:|"]
for fname, pr in sorted(runs_by_file.items(),
                        key=lambda item: (item[1]["seed"], item[1]["provenance"]["started"])):
    p = pr["provenance"]
    prov.append(f"| {pr['seed']} | `{fname.removeprefix('ppc/')}` | {', '.join(pr['results'])} "
                f"| `{short_commit(p['git'])}`"
                f" | {p['torch']} | {p['device']} | {p['started']} | {p['wall_s']:.0f} |")
# Runs from a working tree with uncommitted changes, and runs re-scored from checkpoints.
dirty = [f for f, pr in runs_by_file.items()
         if short_commit(pr["provenance"]["git"]).endswith("+ local changes")]
dirty_models = sorted({m for f in dirty for m in runs_by_file[f]["results"]})
dirty_min = [res["train_s"] / 60 for f in dirty for res in runs_by_file[f]["results"].values()]
rescored = [f for f, pr in runs_by_file.items()
            if any("resumed_at_epoch" in d for d in pr["details"].values())]
assert dirty and not any("VAE" in m for m in dirty_models), dirty_models
assert all(f.startswith("ppc/") for f in paper_files)  # the tables drop this prefix
assert len(rescored) == 1, rescored  # the text says "was re-scored"
assert all(d["resumed_at_epoch"] == [PRESETS["paper"].trbm.n_epochs]
           for f in rescored for d in runs_by_file[f]["details"].values()), rescored
display(Markdown(
    "Provenance of the saved runs\n\n" + "\n".join(folders) + "\n\n" + "\n".join(prov)
    + "\n\n"
    f"The runs marked \"+ local changes\" ({', '.join(f'`{f[4:]}`' for f in dirty)}: the "
    f"{' and '.join(dirty_models)}, {min(dirty_min):.0f} to {max(dirty_min):.0f} CPU minutes "
    "of training per model) come from working trees whose only uncommitted changes were in the "
    "recurrent-VAE code (`tlr/models/rvae.py`, `tlr.train.train_windows`), which those models "
    "do not use; every other run comes from a clean checkout of the commit shown. "
    f"{', '.join(f'`{f[4:]}`' for f in rescored)} was re-scored from its final checkpoints with "
    "the readout code of the commit shown (`details[...][\"resumed_at_epoch\"] == "
    f"[{PRESETS['paper'].trbm.n_epochs}]`: no further training; `train_s` is the original "
    "run's). Where a model and seed appear in several files the scores agree to the last digit "
    "(checked under the table); every table counts each seed once."))

# %% [markdown]
# The table's rows, in words (computed from the saved files):

# %%
def mean_sd(name: str) -> str:
    x = paper_mse[name] * 1e4
    return f"{x.mean():.2f} ± {x.std():.2f}" if len(x) > 1 else f"{x.mean():.2f}"


words = []
for name in ("rEFH", "RTRBM", "TRBM"):
    if name in paper_mse:
        words.append(f"{name} {mean_sd(name)} over {len(paper_mse[name])} seed(s) "
                     f"(poster {TABLE_1[name] * 1e4:.1f})")
print("; ".join(words) + "  [units of 1e-4 rad²]")
assert paper_mse["rEFH"].mean() <= TABLE_1["rEFH"]  # at or below the poster's rEFH
assert abs(paper_mse["RTRBM"].mean() / TABLE_1["RTRBM"] - 1) < 0.1  # at the poster's RTRBM

# %% tags=["remove-cell"]
# The text below and the summary: our TRBM about 10 % below KF-1, the poster's about 3 % above;
# the ORDER 0 and KF-1 means within the scorecard's ±15 % of the poster's rows, KF-2's not;
# the poster's rEFH 3.3e-4, KF-2 2.2e-4 and RTRBM 3.1e-4.
trbm_vs_kf1 = m["TRBM"] / m["KF-1"] - 1
assert -0.12 < trbm_vs_kf1 < -0.08, trbm_vs_kf1
assert f"{TABLE_1['TRBM'] / TABLE_1['KF-1'] - 1:.0%}" == "3%", TABLE_1
assert all(abs(m[name] / TABLE_1[name] - 1) < 0.15 for name in ("ORDER 0", "KF-1")), m
assert abs(m["KF-2"] / TABLE_1["KF-2"] - 1) > 0.15, m
assert [f"{TABLE_1[name]:.1e}" for name in ("rEFH", "KF-2", "RTRBM")] == [
    "3.3e-04", "2.2e-04", "3.1e-04"], TABLE_1

# %% [markdown]
# At paper scale the rEFH's mean lies at or below the poster's $3.3\times10^{-4}$, and every
# seed lies between KF-1 and KF-2. The ORDER 0 and KF-1 rows match the poster too, within the
# ±15 % that the {doc}`scorecard` counts as reproduced; KF-2 does not: ours is fitted to
# convergence, and the poster's $2.2\times10^{-4}$ may be an EM fit stopped early
# ({doc}`lti_ppc`). The RTRBM, trained *with* backpropagation through time, lands near the
# poster's $3.1\times10^{-4}$, close to the rEFH; the TRBM, the same network trained with the
# same local rule but modelling only the transition (it never reconstructs $u_{t-1}$), stays
# near KF-1: about 10 % below it here, about 3 % above it on the poster. That is the poster's
# claim in numbers, with one caveat: the rEFH and the TRBM differ in training protocol as well as in
# objective (online CD-1 on 1000-step trajectories against CD-25 on 100-step sequences;
# {ref}`Sources §5.3 <sources-5-3>`, {ref}`§6.4 <sources-6-4>`). The verdict on this claim, with those of the other chapters,
# is in the {doc}`scorecard`.
#
# ## How many hidden units?
#
# The figure of Makin et al.'s JMLR submission (and PLoS Fig. 4) that compares the rEFH with
# the TRBM and RTRBM plots the MSE against the number of hidden units, 15, 30, …, 300 (twenty
# sizes, multiples of the 15 neurons), as box plots over repeated runs, with the filters as
# horizontal lines ({ref}`Sources §12.4 <sources-12-4>`). Below is a small version for the rEFH
# alone: the quick preset, one seed, five sizes, loaded from saved result files.
#
# ````{admonition} Regenerate the sweep
# :class: dropdown
# For $N$ hidden units:
# ```
# python -m tlr run ppc --preset quick --models rEFH --seed 0 --set refh.n_hidden=N \
#     --json results/ppc/hidden_sweep/quick_hN_seed0.json
# ```
# ````

# %%
sweep = [tlr.results.load(n) for n in tlr.results.available("ppc/hidden_sweep/quick_h*_seed*")]
points = sorted((int(s["overrides"]["refh.n_hidden"]), s["results"]["rEFH"]["mse"],
                 s["details"]["rEFH"]["mse_linear_readout"], s["provenance"]["git"][:7])
                for s in sweep)
for n, e, e_lin, _ in points:
    print(f"{n:4d} hidden units: MSE {e * 1e4:.2f}e-4 (linear readout {e_lin * 1e4:.2f}e-4)")
fig = plot_mse_curves(
    {"rEFH, quick preset, seed 0 (saved)": ([p[0] for p in points], [p[1] for p in points]),
     "this chapter's run (240 units)": ([r.n_hidden], [mse["rEFH"]])},
    {name: mse[name] for name in ("ORDER 0", "KF-1", "KF-2")},
    xlabel="hidden units", logx=True, title="rEFH test MSE vs hidden units (quick preset)")
fig.axes[0].set_xticks([p[0] for p in points], [str(p[0]) for p in points])
fig.axes[0].tick_params(axis="x", which="minor", bottom=False, labelbottom=False)
plt.show()

# %% tags=["hide-input"]
# Provenance of the sweep (collapsed in the book): the commit of each saved point.
print("commits: " + ", ".join(f"{n} units: {git}" for n, _, _, git in points))

# %% tags=["remove-cell"]
# The text below: 15 to 60 units between ORDER 0 and KF-1, 120 and 240 below KF-1, and the saved
# 240-unit run this chapter's computation (preset, seed, width): equal to the bit on the kind of
# CPU that saved it; on another the BLAS kernels' last bits differ and CD's sampling carries the
# difference on as a different seed would (4 % and 15 % apart in runs under two other kernels).
sweep_mse = {n: e for n, e, _, _ in points}
assert sorted(sweep_mse) == [15, 30, 60, 120, 240], sorted(sweep_mse)
assert all(mse["KF-1"] < sweep_mse[n] < mse["ORDER 0"] for n in (15, 30, 60))
assert all(sweep_mse[n] < mse["KF-1"] for n in (120, 240))
saved_240 = next(s for s in sweep if s["overrides"] == {"refh.n_hidden": "240"})
assert saved_240["preset"] == "quick" and saved_240["seed"] == SEED and r.n_hidden == 240
assert abs(sweep_mse[240] / mse["rEFH"] - 1) < 0.25, (sweep_mse[240], mse["rEFH"])

# %% [markdown]
# With 15 to 60 hidden units the quick-trained rEFH stays between ORDER 0 and KF-1; with 120
# and 240 it is below KF-1. This is one seed per size, so neighbouring sizes can swap places.
# The saved 240-unit run and this chapter's are the same computation (to the bit on the kind
# of CPU that saved it; on another the two drift apart as two seeds would, {doc}`reproducing`). At
# paper scale, with a learning rate chosen per width, 60 units already beat KF-1 on every seed,
# and 960 do worse than 240 ({doc}`reproducing`).
#
# ## The linear-readout check
#
# The rEFH's MSE decodes its own reconstruction of the population,
# $\mathbb{E}[y_t \mid \bar x_t]$, with the circular centre of mass (CoM;
# {ref}`Sources §5.5 <sources-5-5>`): no decoder is fitted. As a check, `run` also fits a
# linear readout of the hidden state on a separate data set and scores it on the test set
# (`info["mse_linear_readout"]`). The table has one row per model and seed; the paper-scale rows
# come from the same file per seed as the paper-scale table above:

# %%
quick_pair = {name: (mse[name], results[name]["info"]["mse_linear_readout"])
              for name in HARMONIUMS}  # (CoM, linear readout)
paper_pair = {name: {seed: (pr["results"][name]["mse"],
                            pr["details"][name]["mse_linear_readout"])
                     for seed, pr in run_per_seed(paper_runs, name).items()}
              for name in HARMONIUMS}
rows = ["| run | CoM of reconstruction | linear readout |", "|---|---:|---:|"]
rows += [f"| {name}, quick, seed 0 | {fmt(com)} | {fmt(lin)} |"
         for name, (com, lin) in quick_pair.items()]
rows += [f"| {name}, paper, seed {seed} | {fmt(com)} | {fmt(lin)} |"
         for name in HARMONIUMS for seed, (com, lin) in paper_pair[name].items()]
display(Markdown("MSE in units of $10^{-4}$ rad²\n\n" + "\n".join(rows)))
for name in HARMONIUMS:  # the same file per seed as the paper-scale Table 1
    assert [com for com, _ in paper_pair[name].values()] == paper_mse[name].tolist()

# %%
max_diff = max(abs(lin / com - 1) for name in ("TRBM", "RTRBM")
            for com, lin in paper_pair[name].values())
display(Markdown(
    "In all three quick runs the linear readout of the state beats the centre of mass of the "
    "model's own reconstruction. For the rEFH the gap is moderate (CoM "
    f"{fmt(quick_pair['rEFH'][0])}, linear readout {fmt(quick_pair['rEFH'][1])}): its state "
    "holds the position a little better than its reconstruction reports. The quick TRBM and "
    "RTRBM show "
    f"the same gap, far larger ({fmt(quick_pair['TRBM'][0])} against "
    f"{fmt(quick_pair['TRBM'][1])}, {fmt(quick_pair['RTRBM'][0])} against "
    f"{fmt(quick_pair['RTRBM'][1])}): their states already decode at about KF-1's level "
    f"({fmt(mse['KF-1'])}), and their own reconstructions are what fail after a few hundred "
    f"updates. At paper scale the TRBM's and RTRBM's two scores agree to within {max_diff:.0%} in "
    "every seed, while the rEFH's linear readout stays below its CoM in every seed."))
assert all(lin < com for com, lin in quick_pair.values())
assert all(abs(quick_pair[name][1] / mse["KF-1"] - 1) < 0.05 for name in ("TRBM", "RTRBM"))
assert all(lin < com for com, lin in paper_pair["rEFH"].values())

# %% [markdown]
# That readout is linear in the state but not a linear map to the position itself. The
# neurons tile a circle, so the rEFH represents the position as a point on a ring, and a
# linear map to a single number must cut the ring somewhere: positions on either side of the
# ring's seam (at $s_\min = -\pi/3$) look alike to the model but are $L = 2.24$ rad apart on
# the number line. A plain least-squares map $\bar x_t \mapsto s_t$ shows it, split by the
# distance from the seam:

# %%
u_fit, u_test = states["rEFH"]  # hidden means on the fitting and test sets
s_lin = fit_linear_readout(u_fit, fit_set.position)(u_test)
s_ring = ppc.wrap(test.position)
near = torch.minimum(s_ring - ppc.s_min, ppc.s_min + ppc.period - s_ring) < 0.3  # rad
seam_mse = {}  # (linear, CoM) by region
for label, mask in (("within 0.3 rad of the seam", near), ("elsewhere", ~near)):
    e_lin = wrap_error(s_lin - test.position, ppc.period)[mask].pow(2).mean()
    e_com = wrap_error(s_refh - test.position, ppc.period)[mask].pow(2).mean()
    seam_mse[label] = (e_lin.item(), e_com.item())
    print(f"{label:27s} ({mask.float().mean():5.1%} of steps): linear {e_lin * 1e4:7.2f}e-4, "
          f"CoM {e_com * 1e4:5.2f}e-4")

# %% tags=["remove-cell"]
# The text: L = 2.24 rad above; below, the two readouts agree away from the seam, and near it
# the linear map's error is more than ten times larger (from about 17 to 70 times in runs on
# three kinds of CPU kernels: the seam holds 1.6 % of the steps, so this ratio is noisy).
assert f"{ppc.period:.2f}" == "2.24", ppc.period
e_lin, e_com = seam_mse["elsewhere"]
assert abs(e_lin / e_com - 1) < 0.1, seam_mse
e_lin, e_com = seam_mse["within 0.3 rad of the seam"]
assert e_lin / e_com > 10, seam_mse

# %% [markdown]
# Away from the seam the plain linear map and the CoM agree to within 10 %; near it the linear
# map fails by more than an order of magnitude. The readout that `run` reports respects the
# ring: it fits the two coordinates $(\cos\psi_t, \sin\psi_t)$ of the ring angle
# $\psi_t = 2\pi (s_t - s_\min)/L$ and decodes $\tilde\psi_t = \operatorname{atan2}(\widetilde{\sin\psi_t}, \widetilde{\cos\psi_t})$
# (`tlr.evaluation.readout.fit_circular_readout`):

# %%
circular = fit_circular_readout(u_fit, fit_set.position, ppc)
s_circ = circular(u_test)
mse_circ = torus_mse(s_circ, test.position, ppc.period)
assert math.isclose(mse_circ, results["rEFH"]["info"]["mse_linear_readout"], rel_tol=1e-9)
lag_circ = lag_steps(s_circ, test.position, v, ppc.period, lti.dt)
print(f"rEFH, quick: CoM {mse['rEFH'] * 1e4:.2f}e-4, circular linear {mse_circ * 1e4:.2f}e-4 "
      f"(lag {lag_circ:+.2f} steps; CoM {lag['rEFH']:+.2f})")
assert mse_circ < mse["KF-1"] and lag_circ < lag["rEFH"]

# %% tags=["remove-cell"]
# The note on the lag in "Which order was learned?": the linear readout lags about half as much.
assert 0.4 < lag_circ / lag["rEFH"] < 0.6, (lag_circ, lag["rEFH"])

# %% [markdown]
# The linear check confirms the primary number: the rEFH's hidden state holds the position at
# least as well as its own reconstruction says, and better than KF-1.
#
# ## Summary
#
# What the numbers support (the values are computed above):
#
# - **Table 1, rEFH row.** At paper scale the rEFH's MSE matches the poster's
#   $3.3\times10^{-4}$ and lies between KF-1 and the converged KF-2 in every seed. The quick
#   preset gives the same ordering on one seed.
# - **Second-order dynamics.** The true velocity, which no neuron reports, can be read
#   linearly out of the rEFH's state almost as well as out of KF-true's (KF-1: $R^2 \approx 0$),
#   and when the neurons fall silent the rEFH's estimate keeps moving with the mass, where
#   KF-1's stops. The rEFH learned second-order dynamics with temporally local updates, without
#   backpropagation through time.
# - **Local versus BPTT.** At paper scale the BPTT-trained RTRBM and the locally trained rEFH
#   reach similar errors, while the TRBM, trained locally but modelling only the transition,
#   does not get much past KF-1. That is the poster's pattern, except that our TRBM lies about
#   10 % below KF-1 and the poster's about 3 % above.
# - **Not optimal.** The rEFH's MSE is still two to three times KF-2's, its velocity
#   estimate is a little worse, its position estimate lags the moving mass where the
#   second-order filters hardly lag, and it carries the motion through silence less well than
#   the second-order Kalman filters. Silence is outside its training distribution, so that
#   figure may understate what it learned.
# - **Readouts.** A plain linear map from the hidden state to $s_t$ fails near the seam of the
#   neurons' ring; the circular readout respects the ring, beats KF-1 and lags less than the
#   rEFH's own reconstruction.
# - **Limits.** The paper-scale rEFH uses Makin's momentum schedule, not the poster's Adam at
#   $10^{-4}$; the gap probe uses the quick-preset model only (the velocity probe and the lag
#   were also measured on the five paper-scale runs); five seeds give an error bar, not a
#   distribution; and the advantage depends on the system: in the dynamics sweep of
#   {doc}`reproducing` the rEFH fails to beat KF-1 on every seed at some oscillators
#   (e.g. four times the damping). The verdicts on the poster's claims are collected in the
#   {doc}`scorecard`.
#
# The exercises below write the lag $\tau$ by least squares, give the velocity probe a history
# of KF-1's positions, compute Probe 2 for a Kalman filter in closed form, damp the spring
# until a first-order filter is nearly as good as the best filter, and ask whether the rEFH can
# be taught what silence means (an open question).

# %% tags=["remove-cell"]
# The summary: the rEFH's MSE two to three times KF-2's, at the quick preset and at
# paper scale (means over seeds).
kf2_ratio = {"quick": mse["rEFH"] / mse["KF-2"], "paper": m["rEFH"] / m["KF-2"]}
assert all(2.0 <= x <= 3.0 for x in kf2_ratio.values()), kf2_ratio
# The exercise "When the second order does not pay": KF-1 about four times KF-true in the table
# at the top of this page.
assert round(mse["KF-1"] / mse["KF-true"]) == 4, mse

# %%
print(f"chapter executed in {time.perf_counter() - T0:.0f} s on "
      f"{torch.get_num_threads()} thread")

# %% [markdown]
# ## Exercises
#
# Five exercises, from a warm-up to an open research question. Each one gives its difficulty
# (★ routine, ★★ needs the derivations above, ★★★ open-ended) and a time estimate. The coding
# exercises are checked automatically: in the book, the check cell under each exercise runs
# the solution, which is hidden under "Solution"; in the student notebook made from this chapter
# it runs your own code and prints ✓ or ✗ with the reason.
#
# The coding exercises use the Kalman filters, not the trained rEFH, so that each runs in
# seconds: a small fitting set and test set of 8 trajectories × 1000 steps each, and KF-1
# fitted by EM on the fitting set as `run` fits it.

# %%
from dataclasses import replace

from tlr.data import simulate
from tlr.exercises import check
from tlr.filters import LDSParams, centred_observations, kf_true_params

ex_fit = simulate(8, 1000, seed=SEED, lti=lti, ppc=ppc, stream="book/refh_dynamics/exercise-fit")
ex_test = simulate(8, 1000, seed=SEED, lti=lti, ppc=ppc, stream="book/refh_dynamics/exercise-test")
ex_kf1 = fit_kf(ex_fit.y, 1, lti, ppc, n_iter=preset.em_max_iter, tol=preset.em_tol,
                generator=make_generator(SEED, "ppc/em1-init"))
print(f"KF-1 fitted in {ex_kf1.n_iter} EM iterations: A = {ex_kf1.params.A.item():.4f}")

# %% [markdown]
# ```{exercise} The lag of an estimate, by least squares
# :label: refh-dyn-lag
# :nonumber:
#
# **★ · 10 min · auto-graded**
#
# Write `lag_tau(s_hat, position, velocity, period, dt)`, the lag $\tau$ in steps of the page's
# model $\tilde s_t - s_t \approx -\tau\, \dot s_t\, \Delta t$: the least-squares $\tau$ over
# all steps and trajectories (arguments of shape `(T, B)`), with the error
# $\tilde s_t - s_t$ wrapped onto the ring (`wrap_error`). Do not call `lag_steps`: the check
# compares your function with it. Then test the model on an estimate whose lag you know: the
# true position delayed by $j$ steps, $\tilde s_t = s_{t-j}$, should give $\tau \approx j$.
# What does an estimate that *leads* the truth give?
# ```

# %% [markdown]
# ```{solution-start} refh-dyn-lag
# :class: dropdown
# ```

# %% tags=["solution"]
def lag_tau(s_hat, position, velocity, period, dt):
    """Least-squares lag τ (steps) in wrap(ŝ_t - s_t) ≈ -τ ṡ_t Δt; arguments (T, B)."""
    # BEGIN SOLUTION
    e = wrap_error(s_hat - position, period).to(torch.float64)
    v = velocity.to(torch.float64)
    return float(-(e * v).sum() / (v * v).sum() / dt)
    # END SOLUTION


# %% [markdown]
# Minimising $\sum_{t,b} (\Delta_{t,b} + \tau\, \dot s_{t,b} \Delta t)^2$ over $\tau$, with
# $\Delta_{t,b} = \operatorname{wrap}(\tilde s_{t,b} - s_{t,b})$ the wrapped error, gives
# $\tau = -\sum_{t,b} \Delta_{t,b}\, \dot s_{t,b} / (\Delta t \sum_{t,b} \dot s_{t,b}^2)$. A
# delayed copy of the truth makes $s_{t-j} - s_t \approx -j\, \dot s_t\, \Delta t$, so
# $\tau \approx j$; an estimate that leads the truth by $j$ steps gives $\tau \approx -j$:

# %%
ex_v = ex_test.z[..., 1]
for j in (1, 3, -2):  # j < 0: the estimate leads the truth
    shifted = torch.roll(ex_test.position, j, dims=0)[10:-10]  # drop the wrapped-around ends
    print(f"s_hat_t = s_(t{-j:+d}): tau = "
          f"{lag_tau(shifted, ex_test.position[10:-10], ex_v[10:-10], ppc.period, lti.dt):+.3f}")
tau_kf = {name: lag_tau(s_hat, ex_test.position, ex_v, ppc.period, lti.dt) for name, s_hat in
          (("KF-1", run_kf(ex_kf1.params, ex_test.y, lti, ppc)),
           ("KF-true", kf_true(ex_test.y, lti, ppc)))}
print("on this test set: " + ", ".join(f"{k} tau = {t:+.2f} steps" for k, t in tau_kf.items()))

# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["check"]
@check("refh-dyn-lag")
def _():
    s1 = run_kf(ex_kf1.params, ex_test.y, lti, ppc)
    mine = float(lag_tau(s1, ex_test.position, ex_test.z[..., 1], ppc.period, lti.dt))
    ref = lag_steps(s1, ex_test.position, ex_test.z[..., 1], ppc.period, lti.dt)
    assert math.isclose(mine, ref, rel_tol=1e-9), f"KF-1: tau = {mine:.6f}, expected {ref:.6f}"
    delayed = torch.roll(ex_test.position, 3, dims=0)[10:]
    tau = float(lag_tau(delayed, ex_test.position[10:], ex_test.z[10:, :, 1], ppc.period, lti.dt))
    assert abs(tau - 3) < 0.1, f"the truth delayed by 3 steps: expected tau near 3, got {tau:.3f}"


# %% tags=["hidden-check", "remove-cell"]
@check("refh-dyn-lag", hidden=True)
def _():
    d = simulate(3, 300, seed=5, lti=lti, ppc=ppc, stream="book/refh_dynamics/exercise-lag")
    v = d.z[..., 1]
    for s_hat in (kf_true(d.y, lti, ppc), kf_true(d.y, lti, ppc) + ppc.period,  # on the ring
                  torch.roll(d.position, -2, dims=0)):                          # leads the truth
        mine = float(lag_tau(s_hat[:-5], d.position[:-5], v[:-5], ppc.period, lti.dt))
        ref = lag_steps(s_hat[:-5], d.position[:-5], v[:-5], ppc.period, lti.dt)
        assert math.isclose(mine, ref, rel_tol=1e-9, abs_tol=1e-12), (
            f"tau = {mine:.6f}, expected {ref:.6f} (is the error wrapped onto the ring?)")


# %% [markdown]
# ```{exercise} Velocity from a history of positions
# :label: refh-dyn-history
# :nonumber:
#
# **★★ · 20 min · auto-graded**
#
# Probe 1 found no velocity in KF-1's state, one number. Give the probe more: the last
# $n_{\text{hist}}$ position estimates of KF-1. Write `position_history(s_hat, n_hist)`, which
# turns estimates of shape `(T, B)` into states of shape `(T, B, n_hist)` holding
# $[\tilde s_t, \tilde s_{t-1}, \dots, \tilde s_{t-n_{\text{hist}}+1}]$ (the steps before the
# first repeat $\tilde s_1$), and `history_velocity_r2(s_fit, v_fit, s_test, v_test, n_hist)`,
# the page's velocity $R^2$ (`velocity_r2`) with those states. KF-1's estimates are its
# unwrapped state, so differences of successive estimates do not jump at the seam. How large
# must $n_{\text{hist}}$ be for KF-1's history to hold as much velocity as KF-true's two-number
# state? What does this say about Probe 1 as a test of the rEFH's 240 hidden units?
# ```

# %% [markdown]
# ```{solution-start} refh-dyn-history
# :class: dropdown
# ```

# %% tags=["solution"]
def position_history(s_hat, n_hist):
    """(T, B, n_hist) states [ŝ_t, ..., ŝ_{t-n_hist+1}] from estimates (T, B); ŝ_1 repeated."""
    # BEGIN SOLUTION
    T = s_hat.shape[0]
    padded = torch.cat([s_hat[:1].expand(n_hist - 1, *s_hat.shape[1:]), s_hat])
    return torch.stack([padded[n_hist - 1 - j:n_hist - 1 - j + T] for j in range(n_hist)],
                       dim=-1)
    # END SOLUTION


def history_velocity_r2(s_fit, v_fit, s_test, v_test, n_hist):
    """Test R² of a linear velocity readout from the last n_hist position estimates."""
    # BEGIN SOLUTION
    return velocity_r2(position_history(s_fit, n_hist), v_fit, position_history(s_test, n_hist),
                       v_test)
    # END SOLUTION


# %%
n_hists = [1, 2, 3, 5, 10, 20]
hist_r2 = {}
for name, estimate in (("KF-1 estimates", lambda d: run_kf(ex_kf1.params, d.y, lti, ppc)),
                       ("KF-true estimates", lambda d: kf_true(d.y, lti, ppc))):
    s_f, s_t = estimate(ex_fit), estimate(ex_test)
    hist_r2[name] = [history_velocity_r2(s_f, ex_fit.z[..., 1], s_t, ex_test.z[..., 1], n)
                     for n in n_hists]
r2_true_state = velocity_r2(kf_states(ex_fit.y, lti, ppc), ex_fit.z[..., 1],
                            kf_states(ex_test.y, lti, ppc), ex_test.z[..., 1])
fig, ax = plt.subplots(figsize=(5.5, 3.2), layout="constrained")
for (name, r2s), marker in zip(hist_r2.items(), "os", strict=True):
    ax.plot(n_hists, r2s, marker=marker, label=f"last $n_{{\\text{{hist}}}}$ {name}")
ax.axhline(r2_true_state, color="k", ls="--", lw=1, label="KF-true's state (2 numbers)")
ax.set_xscale("log")
ax.set_xticks(n_hists, [str(n) for n in n_hists])
ax.set_xlabel(r"$n_{\text{hist}}$ (positions in the history)")
ax.set_ylabel("velocity $R^2$ (test)")
ax.legend(fontsize=8, frameon=False)
plt.show()
print("KF-1 history: " + ", ".join(
    f"n_hist = {n}: {r:.3f}" for n, r in zip(n_hists, hist_r2["KF-1 estimates"], strict=True)))

# %% [markdown]
# One position holds no velocity; two successive positions of KF-true already hold most of it,
# and about twenty of KF-1's (smoother, lagging) estimates hold as much as KF-true's state. A
# first-order filter's *history* is as informative as a second-order filter's state, because a
# difference of positions is a velocity. So a high $R^2$ says that the velocity is available
# in a state; a state of 240 units could in principle hold it as a short delay line of
# positions. That is why the page adds Probe 2, which asks whether the model *uses* the
# velocity to move its estimate when the data stop.
#
# ```{solution-end}
# ```

# %% tags=["check"]
@check("refh-dyn-history")
def _():
    s = torch.arange(12.0).reshape(4, 3)                       # T = 4, B = 3
    h = position_history(s, 3)
    assert tuple(h.shape) == (4, 3, 3), f"shape {tuple(h.shape)}, expected (4, 3, 3)"
    assert torch.equal(h[:, 0], torch.tensor([[0.0, 0, 0], [3, 0, 0], [6, 3, 0], [9, 6, 3]])), (
        f"trajectory 0: got {h[:, 0].tolist()}, expected [ŝ_t, ŝ_(t-1), ŝ_(t-2)] with ŝ_1 "
        "repeated")
    s_f = run_kf(ex_kf1.params, ex_fit.y, lti, ppc)
    s_t = run_kf(ex_kf1.params, ex_test.y, lti, ppc)
    r2 = {n: float(history_velocity_r2(s_f, ex_fit.z[..., 1], s_t, ex_test.z[..., 1], n))
          for n in (1, 20)}
    assert abs(r2[1]) < 0.05, (
        f"n_hist = 1 is Probe 1 on KF-1: expected R² near 0, got {r2[1]:.3f}")
    assert r2[20] > 0.95, f"n_hist = 20: expected R² above 0.95, got {r2[20]:.3f}"


# %% tags=["hidden-check", "remove-cell"]
@check("refh-dyn-history", hidden=True)
def _():
    g = make_generator(1, "book/refh_dynamics/exercise-history")
    s = torch.randn(7, 2, dtype=torch.float64, generator=g)
    assert torch.equal(position_history(s, 1), s[..., None]), (
        "n_hist = 1: the estimates themselves")
    h = position_history(s, 9)                                 # n_hist > T
    assert tuple(h.shape) == (7, 2, 9) and torch.equal(h[:, :, 0], s), "column 0 is ŝ_t"
    assert torch.equal(h[-1, :, 6], s[0]) and torch.equal(h[-1, :, 8], s[0]), "pad with ŝ_1"
    assert torch.equal(h[-1, :, 5], s[1]), "column j is ŝ_(t-j)"
    s_f, s_t = kf_true(ex_fit.y, lti, ppc), kf_true(ex_test.y, lti, ppc)
    r2 = float(history_velocity_r2(s_f, ex_fit.z[..., 1], s_t, ex_test.z[..., 1], 2))
    ref = velocity_r2(torch.stack([s_f, torch.cat([s_f[:1], s_f[:-1]])], -1), ex_fit.z[..., 1],
                      torch.stack([s_t, torch.cat([s_t[:1], s_t[:-1]])], -1), ex_test.z[..., 1])
    assert math.isclose(r2, ref, rel_tol=1e-9), (
        f"KF-true, n_hist = 2: R² {r2:.6f}, expected {ref:.6f}")


# %% [markdown]
# ```{exercise} Dead reckoning in closed form
# :label: refh-dyn-dead-reckoning
# :nonumber:
#
# **★★ · 25 min · auto-graded**
#
# For a Kalman filter Probe 2 needs no run through the gap. A silent step has $R_t = \infty$, so
# the filter skips the update and only predicts: $\mu_{t \mid t} = A\, \mu_{t-1 \mid t-1}$
# throughout the gap. Write `dead_reckoning_slope(states, params, position, start, length,
# period)` that returns the gap slope of `gap_slope` for a gap of `length` steps from step
# `start` (0-based, as in `withhold`), computed from the filter's state before the gap alone:
# `states` are the filtered means $\mu_{t \mid t}$ (`kf_states`, shape `(T, B, n)`) on the
# data *without* the gap, `params` the filter's `LDSParams` (its `A` and `C`; the position
# estimate is $C \mu$). The check compares your slope with `gap_slope` on the filter run
# through `withhold`-ed data. Then explain with $A$ why KF-1's slope is near 0.
# ```

# %% [markdown]
# ```{solution-start} refh-dyn-dead-reckoning
# :class: dropdown
# ```

# %% tags=["solution"]
def dead_reckoning_slope(states, params, position, start, length, period):
    """Gap slope of a Kalman filter from its states before a gap: μ_end = A^length μ_(start-1)."""
    # BEGIN SOLUTION
    A, C = params.A.to(torch.float64), params.C.to(torch.float64)
    mu = states[start - 1].to(torch.float64)                   # (B, n): the last update
    before = (mu @ C.T)[:, 0]
    after = (mu @ torch.linalg.matrix_power(A, length).T @ C.T)[:, 0]
    d_hat = wrap_error(after - before, period)
    d_true = wrap_error(position[start + length - 1] - position[start - 1], period)
    d_true = d_true.to(torch.float64)
    return float((d_hat * d_true).sum() / (d_true**2).sum())
    # END SOLUTION


# %% [markdown]
# The filter is causal, so its states before the gap are the same with and without the gap.
# KF-1's $A$ is one number a little below 1: over a gap of $n_{\text{gap}}$ steps its estimate
# moves by $(A^{n_{\text{gap}}} - 1)\, C\mu$, a pull towards the centre in proportion to the
# position where the gap began, whichever way the mass is moving. Over a short gap the mass's
# own displacement is mostly its velocity times the gap's duration, which is uncorrelated with
# its position, so the slope is near 0. Over a long gap the spring also brings the mass back
# towards the centre, so its displacement correlates with that same pull and KF-1's slope rises
# above 0, although KF-1 knows nothing of the velocity. KF-true's $A$ rotates the (position,
# velocity) state along the spring's orbit, and its estimate moves with the mass. Over longer
# gaps KF-true's slope falls slowly, as the process noise makes the true path drift from the
# predicted one:

# %%
states_true = kf_states(ex_test.y, lti, ppc)
states_kf1 = kf_states(ex_test.y, lti, ppc, ex_kf1.params)
for length in (5, 20, 80):
    slopes_dr = [dead_reckoning_slope(st, prm, ex_test.position, 300, length, ppc.period)
                 for st, prm in ((states_kf1, ex_kf1.params), (states_true, kf_true_params(lti)))]
    print(f"gap of {length:2d} steps at t0 = 300: slope KF-1 {slopes_dr[0]:+.2f}, "
          f"KF-true {slopes_dr[1]:+.2f}")

# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["check"]
@check("refh-dyn-dead-reckoning")
def _():
    start, length = 300, 20
    y_gap = withhold(ex_test.y, start, length)
    for name, prm, states, s_gap in (
            ("KF-true", kf_true_params(lti), kf_states(ex_test.y, lti, ppc),
             kf_true(y_gap, lti, ppc)),
            ("KF-1", ex_kf1.params, kf_states(ex_test.y, lti, ppc, ex_kf1.params),
             run_kf(ex_kf1.params, y_gap, lti, ppc))):
        mine = float(dead_reckoning_slope(states, prm, ex_test.position, start, length, ppc.period))
        ref = gap_slope(s_gap, ex_test.position, start, length, ppc.period)
        assert math.isclose(mine, ref, rel_tol=1e-6, abs_tol=1e-9), (
            f"{name}: slope {mine:.6f}, expected {ref:.6f} (gap_slope through withhold)")


# %% tags=["hidden-check", "remove-cell"]
@check("refh-dyn-dead-reckoning", hidden=True)
def _():
    prm = kf_true_params(lti)
    states = kf_states(ex_fit.y, lti, ppc)
    for start, length in ((1, 1), (700, 50), (999 - 37, 37)):
        s_gap = kf_true(withhold(ex_fit.y, start, length), lti, ppc)
        mine = float(dead_reckoning_slope(states, prm, ex_fit.position, start, length, ppc.period))
        ref = gap_slope(s_gap, ex_fit.position, start, length, ppc.period)
        assert math.isclose(mine, ref, rel_tol=1e-6, abs_tol=1e-9), (
            f"gap [{start}, {start + length}): slope {mine:.6f}, expected {ref:.6f}")


# %% [markdown]
# ```{exercise} When the second order does not pay
# :label: refh-dyn-damping
# :nonumber:
#
# **★★ · 30 min · auto-graded**
#
# The rEFH's place between KF-1 and KF-2 in Table 1 tests the order of its dynamics only
# because a first-order filter is clearly worse on this system. Damp the spring more, and the
# velocity forgets its past within a few steps: the motion is then nearly first order. Measure
# how the gap closes, with the best first-order Kalman filter you can fit with the truth in hand
# (EM is slow to converge on strongly damped data):
#
# 1. `best_first_order(data, lti_cfg, q_grid)`: a one-dimensional `LDSParams` with $C = 1$;
#    $A$ the least-squares slope of $s_{t+1}$ on $s_t$ (through the origin, all steps and
#    trajectories of `data`); $R$ the mean squared wrapped error of the centre of mass
#    (`centred_observations`) against $s_t$; $Q$ the value of `q_grid` whose filter (`run_kf`)
#    has the lowest MSE on `data`; `init_mean` $= 0$ and `init_cov` the mean of $s_1^2$.
# 2. `first_order_penalty(damping, n_traj=16, T=300, seed=0)`: on a system with the given
#    damping $\zeta$ (`replace(lti, damping=damping)`), fit the filter on one data set
#    (`simulate(..., stream="book/refh_dynamics/exercise-damping-fit")`), and return the ratio
#    MSE(first order) / MSE(KF-true) on a second one (`stream=".../exercise-damping-test"`).
#
# Expected outcome: about 4 at the chapter's damping $\zeta = 0.25$ (the ratio of KF-1 to
# KF-true in the table at the top of this page) and close to 1 at $\zeta = 25$. What would
# the rEFH's Table 1 row show at $\zeta = 25$?
# ```

# %% [markdown]
# ```{solution-start} refh-dyn-damping
# :class: dropdown
# ```

# %% tags=["solution"]
Q_GRID = torch.logspace(-7, -2, 11, dtype=torch.float64)


def best_first_order(data, lti_cfg, q_grid=Q_GRID):
    """The first-order LDS (C = 1) with A, R from the truth and Q chosen on `data` by MSE."""
    # BEGIN SOLUTION
    s = data.position.to(torch.float64)
    a = float((s[1:] * s[:-1]).sum() / (s[:-1] ** 2).sum())
    s_obs = centred_observations(data.y, lti_cfg, ppc)[0]
    r = float(wrap_error(s_obs - s, ppc.period).pow(2).mean())

    def scalar(x):
        return torch.tensor([[float(x)]], dtype=torch.float64)

    best_mse, best = math.inf, None
    for q in q_grid:
        prm = LDSParams(A=scalar(a), C=scalar(1.0), Q=scalar(q), R=scalar(r),
                        init_mean=torch.zeros(1, dtype=torch.float64),
                        init_cov=scalar(s[0].pow(2).mean()))
        err = torus_mse(run_kf(prm, data.y, lti_cfg, ppc), data.position, ppc.period)
        if err < best_mse:
            best_mse, best = err, prm
    return best
    # END SOLUTION


def first_order_penalty(damping, n_traj=16, T=300, seed=0):
    """MSE of the best first-order filter over KF-true's, on test data with this damping ζ."""
    # BEGIN SOLUTION
    cfg = replace(lti, damping=damping)
    fit_d = simulate(n_traj, T, seed=seed, lti=cfg, ppc=ppc,
                     stream="book/refh_dynamics/exercise-damping-fit")
    test_d = simulate(n_traj, T, seed=seed, lti=cfg, ppc=ppc,
                      stream="book/refh_dynamics/exercise-damping-test")
    first = run_kf(best_first_order(fit_d, cfg), test_d.y, cfg, ppc)
    return (torus_mse(first, test_d.position, ppc.period)
            / torus_mse(kf_true(test_d.y, cfg, ppc), test_d.position, ppc.period))
    # END SOLUTION


# %%
dampings = [0.25, 2.5, 25.0]
penalty = {zeta: first_order_penalty(zeta) for zeta in dampings}
print("MSE(best first order) / MSE(KF-true): "
      + ", ".join(f"ζ = {zeta}: {x:.2f}" for zeta, x in penalty.items()))

# %% [markdown]
# At the chapter's damping the first-order filter's error is about four times KF-true's, as for
# KF-1 in the table at the top of this page; at $\zeta = 25$ the two nearly agree. KF-true is
# (up to the Gaussian approximation of the spike counts) the best filter of this system, so at
# $\zeta = 25$ no model, the rEFH included, could beat the first-order filter by more than that
# small margin: Table 1 would then say nothing about the order of the learned dynamics. On the
# chapter's system the margin is large, which is what makes the rEFH's row, and Probes 1 and
# 2, informative.
#
# ```{solution-end}
# ```

# %% tags=["check"]
@check("refh-dyn-damping")
def _():
    small = simulate(8, 300, seed=SEED, lti=lti, ppc=ppc, stream="book/refh_dynamics/exercise-ar1")
    prm = best_first_order(small, lti)
    assert tuple(prm.A.shape) == (1, 1) and float(prm.C) == 1.0, "a 1-D LDS with C = 1"
    s = small.position
    a = float((s[1:] * s[:-1]).sum() / (s[:-1] ** 2).sum())
    assert math.isclose(float(prm.A), a, rel_tol=1e-6), f"A = {float(prm.A):.6f}, expected {a:.6f}"
    weak, strong = float(first_order_penalty(0.25)), float(first_order_penalty(25.0))
    assert weak > 3, f"ζ = 0.25: expected a ratio near 4, got {weak:.2f}"
    assert strong < 1.3, f"ζ = 25: expected a ratio near 1, got {strong:.2f}"


# %% tags=["hidden-check", "remove-cell"]
@check("refh-dyn-damping", hidden=True)
def _():
    ratios = [float(first_order_penalty(b, seed=1)) for b in (0.25, 2.5, 25.0)]
    assert ratios[0] > ratios[1] > ratios[2], f"the ratio must fall with the damping: {ratios}"
    assert ratios[0] > 3 and ratios[2] < 1.3, f"seed 1: ratios {ratios}"
    small = simulate(8, 300, seed=SEED, lti=lti, ppc=ppc, stream="book/refh_dynamics/exercise-ar1")
    prm = best_first_order(small, lti, q_grid=torch.tensor([1e-6, 1e-3, 1e-1]))
    assert math.isclose(float(prm.Q), 1e-3, rel_tol=1e-6), f"Q from the grid: {float(prm.Q):.1e}"


# %% [markdown]
# ````{exercise} Teach the rEFH what silence means
# :label: refh-dyn-silence
# :nonumber:
#
# **★★★ · 2–4 h · open research question, not auto-graded**
#
# Probe 2 gave the rEFH a gap slope of about 0.8 against KF-true's 0.97, but silence never
# occurred in its training data, so part of the shortfall may be the input rather than its
# dynamics. Make silence part of the training distribution and measure again. Possible
# designs: lower the gain range (`replace(ppc, gain_min=...)`, so that quiet steps occur
# naturally), or silence random stretches of each training trajectory with `withhold`. Does the
# gap slope approach KF-true's? Does the velocity $R^2$ change, or the test MSE on ordinary
# data? The open question behind it: is the rEFH's shortfall in Probe 2 a weaker velocity
# estimate, or only a missing rule for "no information", which a Kalman filter gets for free
# from $R_t = \infty$?
#
# Expected outcome: not known; the chapter does not measure it. A lower gain also makes the
# task harder for every filter, so compare against KF-true on the same data.
# ````
#
# ````{solution} refh-dyn-silence
# :class: dropdown
#
# A sketch to start from: train on lower gains at the quick preset and repeat Probe 2 with the
# page's `gap_slope` (`run` trains the model with its own data streams, as for the table at the
# top of the page):
#
# ```python
# quiet = replace(preset, ppc=replace(ppc, gain_min=0.5, gain_max=9.6))
# res = run(["rEFH"], quiet, seed=SEED, progress=False, checkpoint_dir=ckpt_dir.name)
# refh_quiet = load_model(checkpoint_path(ckpt_dir.name, "ppc", quiet, SEED, "rEFH"))
# test_quiet = test_data(quiet, SEED)
# for start in STARTS:
#     s_gap = com_readout(refh_quiet, withhold(test_quiet.y, start, GAP), quiet.ppc)
#     print(start, gap_slope(s_gap, test_quiet.position, start, GAP, ppc.period))
# ```
#
# Things worth measuring: the gap slope against the fraction of silent training steps
# ($e^{-2.48 g}$ per step at gain $g$, computed in the page), for both models trained on the same
# data; the slope against the gap's length, next to KF-true's (exercise "Dead reckoning in
# closed form"); and whether the hidden state during a gap follows the orbit that the
# velocity probe's readout predicts. A second design, closer to the Kalman filter's rule,
# gives the rEFH the spike count as an extra input, so that it can learn to ignore an empty
# step explicitly.
# ````

# %% [markdown]
# ## References
#
# - Abdulsalam, A. & Makin, J. G. (2023). Learning recurrent models with temporally local
#   rules. Poster, ICML 2023 workshop "Localized Learning" (LLW).
#   https://openreview.net/forum?id=pamVPX8p18
# - Makin, J. G., Dichter, B. K. & Sabes, P. N. (2015). Learning to estimate dynamical state
#   with probabilistic population codes. *PLoS Computational Biology* 11(11), e1004554.
# - Makin, J. G., Dichter, B. K. & Sabes, P. N. (2016). Recurrent exponential-family harmoniums
#   without backprop-through-time. arXiv:1605.05799.
# - Sutskever, I., Hinton, G. E. & Taylor, G. W. (2008). The recurrent temporal restricted
#   Boltzmann machine. *NIPS 21*, 1601–1608.
