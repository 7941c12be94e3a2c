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
# # Bouncing balls
#
# The poster's second experiment moves from a one-dimensional oscillator seen through fifteen
# neurons to video: three balls bouncing in a box, rendered as 30 × 30 frames, the benchmark
# Sutskever, Hinton & Taylor introduced for the RTRBM. The poster's Table 2 scores one-step
# predictions "with clamped Gibbs sampling":
#
# | model | ORDER 0 | TRBM | rEFH | RTRBM |
# |---|---:|---:|---:|---:|
# | MSE per pixel (poster) | 0.0120 | 0.0124 | 0.0067 | 0.0059 |
#
# This chapter builds the data exactly as Sutskever's script does, explains the prediction
# protocol and why the Gibbs chain is clamped, and runs the models on a CPU-sized preset.
#
# > **Status: Table 2 is reproduced in its ordering, not in its numbers.** ORDER 0 matches the
# > spec's re-simulation. With the spec's harmonium protocol (§9.5: one 100-frame sequence per
# > update, CD-25, 255 epochs of 400 sequences, 102 000 updates; two to two and a half hours
# > per model on one CPU core) both the rEFH and the RTRBM predict the next frame better than
# > copying the last one, and the RTRBM better than the rEFH, as on the poster; but by 7% and
# > 13%, where the poster has 44% and 51%. The TRBM, as on the poster, does not beat ORDER 0,
# > here by far (three times its error; the poster's TRBM is level with it). The VAEs come
# > within a few percent of ORDER 0 without getting below it. The section "Where the chains go
# > wrong" shows where the gaps lie. The TRBM's and the RTRBM's are in the 25-step chains from
# > noise that the protocol prescribes: started from the previous frame, the same RTRBM's
# > chains predict at the poster's level. The rEFH's is in what it has learned: no chain start
# > or length brings it near the poster's number. The live run below is far shorter than any
# > of this and its models are undertrained.
#
# > Our own commentary is set in blockquotes like this one. "Sources §n" points to a section of the
# > appendix {ref}`Sources and protocols <sources>`, which traces every setting to its primary source.

# %% tags=["remove-input"]
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "tlr @ git+https://github.com/tlr-book/tlr"], check=True)

# %% [markdown]
# Everything below comes from the `tlr` library; the chapter only calls it and checks it.

# %%
import tempfile

import matplotlib.pyplot as plt
import torch
from IPython.display import HTML, Markdown, display

import tlr.results
from tlr.experiments.common import apply_overrides, checkpoint_path
from tlr.models import load_model
from tlr.data.balls import BallsConfig, frames_to_images, order0_mse, simulate_balls
from tlr.evaluation.prediction import rollout
from tlr.experiments.balls import PRESETS, build_model, run, test_data, val_data
from tlr.rng import make_generator
from tlr.viz import animate_frames, side_by_side

torch.set_num_threads(1)  # small matrices in Python loops: extra threads only add overhead
SEED = 0
torch.manual_seed(SEED)  # tlr takes explicit seeds; this only pins anything else
plt.rcParams["figure.dpi"] = 110
preset = PRESETS["quick"]
print(f"preset {preset.name!r}, seed {SEED}")

# %% [markdown]
# ## The generator
#
# Sutskever's script ({ref}`Sources §9.2 <sources-9-2>`) simulates $n = 3$ balls of radius $r = 1.2$ and equal mass in
# a $10 \times 10$ box. The initial velocities are drawn from a standard normal and scaled
# *jointly*, so that the total kinetic energy is fixed: $\sum_i \lVert v_i \rVert^2 = 0.5^2$.
# Each frame advances the balls by two sub-steps of length $0.5$; a ball that crosses a wall
# gets the sign of its velocity set to point back inside; two balls that overlap exchange
# momentum along the line between their centres (an elastic collision). Frame $t$ renders
# ball $i$ at $x_i$ as a soft disc,
#
# $$
# y_t(p) = \min\Big(1,\ \sum_i \exp\big(-(\lVert p - x_i \rVert^2 / r^2)^4\big)\Big),
# $$
#
# at the centres $p$ of a $30 \times 30$ pixel grid. `simulate_balls` runs all sequences at
# once; positions and velocities come back with `return_positions=True`.

# %%
data = simulate_balls(4, 100, seed=SEED, return_positions=True)
cfg = BallsConfig()
energy = data.velocities.pow(2).sum((-1, -2))  # (n_seq, T): Σ_i |v_i|², mass 1
print(f"frames {tuple(data.frames.shape)}, pixel range [{data.frames.min():.2f}, "
      f"{data.frames.max():.2f}], mean {data.frames.mean():.3f}")
print(f"kinetic energy: {energy.min():.6f} .. {energy.max():.6f} (speed² = {cfg.speed**2})")
assert torch.allclose(energy, torch.full_like(energy, cfg.speed**2), atol=1e-5)

fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
for b in range(cfg.n_balls):
    xy = data.positions[0, :, b]
    axes[0].plot(xy[:, 0], xy[:, 1], lw=1, label=f"ball {b + 1}")
    axes[0].plot(*xy[0], "o", color=axes[0].lines[-1].get_color())
axes[0].set(xlim=(0, cfg.box_size), ylim=(cfg.box_size, 0), aspect="equal",
            title="centres over 100 frames (dot: start)")
axes[0].legend(fontsize=7, loc="lower right")
axes[1].plot(energy[0], lw=1)
axes[1].set(xlabel="frame", ylabel=r"$\sum_i |v_i|^2$", title="kinetic energy, sequence 0",
            ylim=(0, 2 * cfg.speed**2))
fig.tight_layout()

# %% [markdown]
# The first 16 frames of the same sequence:

# %%
imgs = frames_to_images(data.frames[0])  # (T, 30, 30)


def strip(frames: torch.Tensor, n: int = 16, title: str = "", ax_row=None):
    """A row of ``n`` frames (n, 30, 30)."""
    if ax_row is None:
        _, ax_row = plt.subplots(1, n, figsize=(n * 0.8, 1.1))
    for k, ax in enumerate(ax_row):
        ax.imshow(frames[k], cmap="gray", vmin=0, vmax=1)
        ax.set_axis_off()
    ax_row[0].set_title(title, fontsize=8, loc="left")
    return ax_row


strip(imgs, title="Sutskever's generator, frames 1-16");

# %% [markdown]
# The same sequence as an animation (HTML; it plays in the rendered book and in Jupyter):

# %%
HTML(animate_frames(imgs[:40], interval=80, height=2.2, dpi=100))

# %% [markdown]
# ### ORDER 0 and the two renderers
#
# The simplest prediction of a frame is the previous frame (ORDER 0, {ref}`Sources §9.7 <sources-9-7>`). Its error
# per pixel depends on how the balls are drawn. Makin's MATLAB port of the generator, which
# produced the data behind the rEFH papers, multiplies by $r^2$ where Sutskever divides: its
# balls have an effective radius $1/r \approx 0.83$ instead of $1.2$ ({ref}`Sources §9.4 <sources-9-4>`). The poster's
# 0.0120 lies between the two:

# %%
o0 = {variant: order0_mse(simulate_balls(200, 100, seed=SEED, config=BallsConfig.preset(variant)))
      for variant in ("sutskever", "port")}
display(Markdown("| generator | ORDER 0, MSE per pixel (200 sequences) |\n|---|---:|\n"
                 + "\n".join(f"| {v} | {m:.4f} |" for v, m in o0.items())
                 + "\n| poster | 0.0120 |"))
assert o0["port"] < 0.0120 < o0["sutskever"]

# %% [markdown]
# > Which generator the poster used is not known ({ref}`Sources §13 <sources-13>`). We use Sutskever's by default;
# > `BallsConfig.preset("port")` and `python -m tlr run balls --set variant=port` give the
# > port. A per-pixel MSE is the spec's unit; papers that report per-frame errors sum over the
# > 900 pixels (multiply by 900).

# %% [markdown]
# ## The models, with Bernoulli pixels
#
# The harmoniums of {doc}`harmoniums` need only one change: the observation group is now 900
# Bernoulli units, one per pixel, with the pixel intensities in $[0, 1]$ as their data
# (`obs_type="bernoulli"`). The hidden layer has 400 units ({ref}`Sources §9.5 <sources-9-5>`). Training follows
# Makin's bouncing-balls settings: each update sees one whole 100-frame sequence, whose states
# $u_{t-1}$ are recomputed by a mean-field pass with the current weights; the first 30 updates
# train a static harmonium on the frames alone (CD-5); after that every update is CD-25 on the
# 100 pairs $[u_{t-1}, y_t]$, with the hyperbolic schedule $\eta_e = 0.02\,(1 - (e-1)/255)$ and
# momentum 0.9. The rEFH reconstructs $u_{t-1}$ in the negative phase; the TRBM and RTRBM clamp
# it, and the RTRBM adds its BPTT term.
#
# The rVAE of {doc}`rvae` gets a Bernoulli likelihood and, since a frame holds three balls, a
# larger latent (32 dimensions; our choice, the poster gives none), trained by Adam on windows
# of 10 frames.

# %%
h, v = preset.harmonium, preset.vae
print("harmoniums:", h)
print("VAEs:", v)
print(build_model("rEFH", preset).efh)

# %% [markdown]
# ## One-step prediction with clamped Gibbs sampling
#
# How well does a model know where the balls go next? Filter a test sequence on its true
# frames, which gives the state $u_{t-1}$ at every step, and ask the model for frame $t$ given
# $u_{t-1}$ alone ({ref}`Sources §9.6 <sources-9-6>`). For a harmonium the answer is the conditional
# $\hat p(y_t \mid u_{t-1}) = \sum_{x} \hat p(x, y_t \mid u_{t-1})$, which has no closed form:
# the hidden layer couples the pixels. But both conditionals of $\hat p(x, y \mid u_{t-1})$
# are easy, so Gibbs sampling with $u_{t-1}$ *clamped* draws from it:
#
# 1. start the frame from noise, $y \sim \mathcal U(0, 1)^{900}$, and sample $x$;
# 2. 25 times: $y \sim \hat p(y \mid x)$, then $x \sim \hat p(x \mid u_{t-1}, y)$;
# 3. read out by mean field: $\bar y = \mathbb E[y \mid \bar x]$,
#    $\bar z = \mathbb E[x \mid u_{t-1}, \bar y]$, prediction $\hat y_t = \mathbb E[y \mid \bar z]$.
#
# Clamping is what makes this a *prediction*: the chain may move the frame and the hidden units
# but never the past, so the frame it settles on is one the model finds consistent with what
# it has seen. Unclamped, the chain would wander to any frame the model can generate.
#
# The rVAE has no closed-form $\hat p(x_t \mid u_{t-1})$ either (it would be
# $\propto \hat p(u_{t-1} \mid x)\,\hat p(x)$), but it has the two conditionals of the same joint:
# the decoder $\hat p(y \mid x)$ and, approximately, the encoder $\check q(x \mid u_{t-1}, y)$.
# Alternating them with $u_{t-1}$ clamped is the same Gibbs chain (`RVAE.predict_next`), with
# the same start and readout, so every model is scored by one protocol
# (`tlr.evaluation.prediction.one_step_predictions`): the MSE per pixel over frames 2..100.

# %% [markdown]
# ## A live run at the quick preset
#
# `run` trains and scores each model on one seed; it is what
# `python -m tlr run balls --preset quick --models "ORDER 0,rEFH,rVAE" --seed 0` calls.

# %%
MODELS = ["ORDER 0", "rEFH", "rVAE"]
ckpt_dir = tempfile.TemporaryDirectory()
results = run(MODELS, preset, seed=SEED, progress=False, checkpoint_dir=ckpt_dir.name)
POSTER = {"ORDER 0": 0.0120, "TRBM": 0.0124, "rEFH": 0.0067, "RTRBM": 0.0059}
rows = ["| model | MSE per pixel (quick, seed 0) | updates | train s | poster |",
        "|---|---:|---:|---:|---:|"]
rows += [f"| {n} | {r['mse']:.4f} | {r['info'].get('updates', '—')} | {r['train_s']:.0f} | "
         f"{POSTER.get(n, '—')} |" for n, r in results.items()]
display(Markdown("\n".join(rows)))

# %% [markdown]
# The validation curves (every two epochs, 5 sequences) show where training stands:

# %%
fig, ax = plt.subplots(figsize=(5, 3))
for name in ("rEFH", "rVAE"):
    info = results[name]["info"]
    ax.plot(info["epochs"], info["curve"], "o-", label=name)
ax.axhline(results["ORDER 0"]["mse"], color="k", ls="--", lw=1, label="ORDER 0 (test)")
ax.set(xlabel="epoch", ylabel="validation MSE per pixel", yscale="log")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# > At this preset (600 harmonium updates of CD-5, about 1% of the spec's budget in updates
# > and less in Gibbs steps) neither model has learned the dynamics well enough to beat
# > copying the last frame, and we do not claim otherwise. The validation curves are still
# > falling. The longer runs below show how the rEFH's error falls with training.
#
# ### Can a few CPU minutes do it?
#
# We looked for a way to make the rEFH beat ORDER 0 within a quick preset's few minutes and
# did not find one. `python -m tlr analyze balls-quick-sweep` trains the rEFH exactly as `run` does,
# changing one thing at a time, and scores it on the quick preset's 50 test sequences
# (one CPU thread, on a shared machine):

# %%
SWEEP = "balls/quick_sweep_seed0"
sweep = tlr.results.load(SWEEP)
rows = ["| change | updates | CD | train s | rEFH | ORDER 0 |",
        "|---|---:|---:|---:|---:|---:|"]
rows += [f"| {label} | {r['updates']} | {r['n_cd_steps']} | {r['train_s']:.0f} | "
         f"{r['rEFH']:.4f} | {r['order0']:.4f} |" for label, r in sweep["rows"].items()]
display(Markdown(f"`{SWEEP}` (git {sweep['provenance']['git'][:12]})\n\n" + "\n".join(rows)))
best = min(r["rEFH"] / r["order0"] for r in sweep["rows"].values())
print(f"best rEFH / ORDER 0 in the sweep: {best:.2f}")
assert best > 1.3  # none comes near ORDER 0

# %% [markdown]
# A larger learning rate does not help, and four times the rate with four sequences per update
# breaks training. The spec's CD-25 costs four times as much per update and is no better
# per second; a longer static pretraining changes nothing; and Makin's smaller 15 × 15 case
# with 300 hidden units, at twice the updates, ends in the same place relative to its own
# ORDER 0. What the rEFH needs is updates: tens of thousands of them (the longer runs below),
# tens of CPU minutes. The quick preset keeps the spec's algorithm and stays undertrained.
#
# ### How the rVAE predicts
#
# The literal Gibbs analogue for the rVAE turns out to be a poor predictor, for a reason
# worth seeing: with 900 pixels of evidence, the encoder's posterior is dominated by $y$, so
# alternating encoder and decoder barely moves from the noise frame it starts from. The
# library's default (`method="map"`) asks the generative model directly: it finds the mode
# $x^\ast$ of $\hat p(x_t \mid u_{t-1}) \propto \hat p(u_{t-1} \mid x_t)\,\hat p(x_t)$ by gradient
# ascent and predicts $\mathbb E[y_t \mid x^\ast]$. Both, on a few test sequences:

# %%
rvae = load_model(checkpoint_path(ckpt_dir.name, "balls", preset, SEED, "rVAE"))
test = test_data(preset, SEED)[:, :10]
u_prev = rvae.filter(test)[:-1].reshape(-1, rvae.config.n_latent)
pred = {m: rvae.predict_next(u_prev, 25, make_generator(SEED, "chapter"), method=m)
        for m in ("map", "gibbs")}
err = {m: (p.reshape(test[1:].shape) - test[1:]).pow(2).mean().item() for m, p in pred.items()}
print("rVAE one-step MSE per pixel: " + ", ".join(f"{m} {e:.4f}" for m, e in err.items()))
assert err["map"] < err["gibbs"]

# %% [markdown]
# ## Generated sequences
#
# Given ten true frames, each model continues the sequence on its own: predict the next frame
# from $u$ (the same readout as above), feed the prediction back as if observed, filter one
# step, repeat (`tlr.evaluation.prediction.rollout`). The poster shows such rollouts for the
# rVAE. Top row: the true continuation.

# %%
CONTEXT, STEPS = 10, 16
seq = test_data(preset, SEED)[:, :1]
models = {"rEFH": load_model(checkpoint_path(ckpt_dir.name, "balls", preset, SEED, "rEFH")),
          "rVAE": rvae}
gen = {name: rollout(m, seq[:CONTEXT], STEPS, n_gibbs=preset.n_gibbs,
                     generator=make_generator(SEED, f"chapter/rollout/{name}"))
       for name, m in models.items()}
fig, axes = plt.subplots(1 + len(gen), STEPS, figsize=(STEPS * 0.75, 0.85 * (1 + len(gen))))
strip(frames_to_images(seq[CONTEXT:CONTEXT + STEPS, 0]), STEPS, "true frames 11-26", axes[0])
for row, (name, frames) in zip(axes[1:], gen.items(), strict=True):
    strip(frames_to_images(frames[:, 0]), STEPS, f"{name}, generated", row)
fig.tight_layout()

# %% [markdown]
# As an animation: ten true frames of context in every panel, then the truth (left) and each
# model's continuation, in the order of the strip:

# %%
panels = [seq[:CONTEXT + STEPS, 0]] + [torch.cat([seq[:CONTEXT, 0], f[:, 0]]) for f in gen.values()]
HTML(animate_frames(side_by_side([frames_to_images(p) for p in panels]), interval=100))

# %% [markdown]
# ## Longer runs
#
# The `medium` preset gives each harmonium 16 000 updates of CD-5 (40 epochs of 400 fresh
# sequences; about 10 CPU minutes each) and scores on the 200-sequence test set; a second run
# gives the rEFH 100 epochs (40 000 updates). Regenerate with
#
# ```
# python -m tlr run balls --preset medium --models "ORDER 0,rEFH,TRBM,RTRBM" --seed 0 \
#     --json results/balls/medium_seed0.json
# python -m tlr run balls --preset medium --set harmonium.n_epochs=100 --set eval_every=20 \
#     --models "ORDER 0,rEFH" --seed 0 --json results/balls/medium_e100_seed0.json
# python -m tlr run balls --preset medium --set harmonium.n_epochs=100 \
#     --set harmonium.n_cd_steps=25 --models "ORDER 0,rEFH" --seed 0 \
#     --json results/balls/medium_cd25_e100_seed0.json
# python -m tlr run balls --preset paper --models "ORDER 0,rVAE,TVAE,rVAE-BPTT" --seed 0 \
#     --json results/balls/paper_vae_seed0.json
# python -m tlr run balls --preset paper --models "ORDER 0,rEFH" --seed 0 \
#     --checkpoint-dir ckpt --json results/balls/paper_refh_seed0.json
# python -m tlr run balls --preset paper --models RTRBM --seed 0 \
#     --checkpoint-dir ckpt --json results/balls/paper_rtrbm_seed0.json
# ```
#
# The `paper` preset is the spec's: for the harmoniums 102 000 updates of CD-25 each, two hours
# or more per model on one CPU thread ("train min" in the tables). They ran with `--checkpoint-dir`,
# which saves a checkpoint after every epoch and resumes from it when the same command is run
# again (the JSONs record where they resumed and the total training time). The spec gives no
# settings for the VAEs; ours are 100 epochs of 400 sequences (20 000 Adam updates each).

# %%
saved = {}  # run name under balls/ (e.g. "paper_refh_seed0"): the saved run
for run_name in tlr.results.available("balls/*"):
    res = tlr.results.load(run_name)
    if res.get("experiment") != "balls":  # the analyses below read their own files
        continue
    saved[run_name.removeprefix("balls/")] = res
    over = ", ".join(f"{k}={v}" for k, v in res.get("overrides", {}).items())
    rows = [f"| model | MSE per pixel ({res['preset']}{', ' + over if over else ''}, "
            f"seed {res['seed']}) | updates | train min | poster |", "|---|---:|---:|---:|---:|"]
    for name, r in res["results"].items():
        upd = res["details"].get(name, {}).get("updates", "—")
        rows.append(f"| {name} | {r['mse']:.4f} | {upd} | {r['train_s'] / 60:.1f} | "
                    f"{POSTER.get(name, '—')} |")
    display(Markdown(f"`{run_name}` (git {res['provenance']['git'][:12]}, "
                     f"{res['provenance']['device']})\n\n" + "\n".join(rows)))
    for name, d in res["details"].items():
        if d.get("curve"):
            print(f"{name}: validation MSE by epoch " + " ".join(
                f"{e}:{m:.4f}" for e, m in zip(d["epochs"], d["curve"], strict=True)))


# %% [markdown]
# Two references put these numbers in scale: ORDER 0, and a blank frame (predicting every
# pixel as 0), which any model that has learned anything should beat:

# %%
medium_test = test_data(PRESETS["medium"], SEED)
blank = medium_test[1:].double().pow(2).mean().item()
print(f"blank frame: {blank:.4f}; ORDER 0: {order0_mse(medium_test.transpose(0, 1)):.4f} "
      "(the medium test set, 200 sequences)")
m = {n: r["mse"] for n, r in saved["medium_seed0"]["results"].items()}
assert m["rEFH"] < 0.5 * blank and min(m["TRBM"], m["RTRBM"]) > 0.8 * blank
assert (saved["medium_e100_seed0"]["results"]["rEFH"]["mse"]
        < saved["medium_seed0"]["results"]["rEFH"]["mse"])

# %%
order0 = saved["medium_seed0"]["results"]["ORDER 0"]["mse"]
refh = {k: saved[k]["results"]["rEFH"]["mse"]
        for k in ("medium_seed0", "medium_e100_seed0", "medium_cd25_e100_seed0")}
vaes = {k: v["mse"] for k, v in saved["paper_vae_seed0"]["results"].items() if k != "ORDER 0"}
print("rEFH / ORDER 0: " + ", ".join(f"{k} {v / order0:.3f}" for k, v in refh.items()))
print("VAEs (paper preset) / ORDER 0: "
      + ", ".join(f"{k} {v / order0:.3f}" for k, v in vaes.items()))
assert refh["medium_cd25_e100_seed0"] < order0 < refh["medium_e100_seed0"]
assert refh["medium_e100_seed0"] < refh["medium_seed0"] < 1.15 * order0
assert all(1 < v / order0 < 1.15 for v in vaes.values())
assert min(vaes, key=vaes.get) == "rVAE"
curve = saved["medium_cd25_e100_seed0"]["details"]["rEFH"]["curve"]
assert curve[-1] < curve[-2] < curve[-3]  # still falling when the schedule ended

# %% [markdown]
# With 16 000 updates of CD-5 the rEFH is close to ORDER 0; with 40 000
# (`--set harmonium.n_epochs=100`) it is closer still, not below. With the spec's **CD-25**
# over the same 40 000 updates it crosses: the first of our runs in which the rEFH predicts
# the next frame better than copying the last one, by a small margin, with its validation
# error still falling steeply when the schedule ended. Over this many updates the length of
# the training chains matters (early in training it did not: the quick sweep above). The spec's
# 102 000 updates are two and a half times more. The VAEs, at the paper preset (20 000 Adam
# updates each), are within a few percent of ORDER 0 and above it; the rVAE is the best of the
# three, and rVAE-BPTT is no better than the local rule. The TRBM and RTRBM of the medium
# preset (CD-5) score no better than a blank frame, although their filtered states describe
# the current frame well (`reconstruction_mse` in the runner's details: below 0.001 per pixel,
# a tenth of ORDER 0's error).
#
# ### Table 2 at the spec's budget
#
# The `paper` runs give the rEFH, TRBM and RTRBM the spec's 102 000 updates of CD-25. Their
# validation error (10 sequences, scored by the protocol every 25 epochs) next to that of the
# shorter runs, against the number of updates; the dashed line is ORDER 0 on the same
# validation sequences:

# %%
HARMONIUMS = ("rEFH", "TRBM", "RTRBM")
order0_val = order0_mse(val_data(PRESETS["paper"], SEED).transpose(0, 1))
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
for res in saved.values():
    if "variant" in res.get("overrides", {}):  # other data: another ORDER 0
        continue
    h = apply_overrides(PRESETS[res["preset"]], res.get("overrides", {})).harmonium
    for name, d in res["details"].items():
        if name in HARMONIUMS and d.get("curve"):
            ax = axes[0] if name == "rEFH" else axes[1]
            ax.plot([e * h.n_seq // h.seqs_per_update for e in d["epochs"]], d["curve"], "o-",
                    ms=3, lw=2 if res["preset"] == "paper" else 1,
                    label=f"{name}, CD-{h.n_cd_steps}, {h.n_epochs} epochs ({res['preset']})")
for ax, title in zip(axes, ("rEFH", "TRBM and RTRBM"), strict=True):
    ax.axhline(order0_val, color="k", ls="--", lw=1, label="ORDER 0")
    ax.set(xlabel="updates", xscale="log", yscale="log", title=title)
    ax.legend(fontsize=7)
axes[0].set_ylabel("validation MSE per pixel")
fig.tight_layout()

# %% [markdown]
# Table 2 beside the poster, from the saved runs with the spec's settings (the `paper`
# preset; our settings for the rVAE, whose row the poster does not have):

# %%
paper = {}  # model: (MSE, run) from the paper-preset runs without overrides, first run first
for stem, res in saved.items():
    if res["preset"] == "paper" and not res.get("overrides"):
        for name, r in res["results"].items():
            paper.setdefault(name, (r["mse"], stem))
names = [n for n in ("ORDER 0", "TRBM", "rEFH", "RTRBM", "rVAE") if n in paper]
rows = ["| model | poster | ours | ours / ORDER 0 | run |", "|---|---:|---:|---:|---|"]
for name in names:
    mse, stem = paper[name]
    poster = f"{POSTER[name]:.4f}" if name in POSTER else "—"
    rows.append(f"| {name} | {poster} | {mse:.4f} | {mse / paper['ORDER 0'][0]:.2f} | `{stem}` |")
display(Markdown("\n".join(rows)))
refh_p = saved["paper_refh_seed0"]["results"]["rEFH"]["mse"]
rtrbm_p = saved["paper_rtrbm_seed0"]["results"]["RTRBM"]["mse"]
order0_p = saved["paper_refh_seed0"]["results"]["ORDER 0"]["mse"]
print(f"paper preset, 1 - MSE / ORDER 0: rEFH {1 - refh_p / order0_p:.1%}, "
      f"RTRBM {1 - rtrbm_p / order0_p:.1%} (poster: rEFH "
      f"{1 - POSTER['rEFH'] / POSTER['ORDER 0']:.1%}, "
      f"RTRBM {1 - POSTER['RTRBM'] / POSTER['ORDER 0']:.1%})")
trbm_p = saved["paper_trbm_seed0"]["results"]["TRBM"]["mse"]
assert rtrbm_p < refh_p < order0_p < trbm_p  # the poster's ordering
assert 2.5 < trbm_p / order0_p < 3.5
assert refh_p < saved["medium_cd25_e100_seed0"]["results"]["rEFH"]["mse"]
assert refh_p > 0.8 * order0_p and rtrbm_p > 0.8 * order0_p  # far from the poster's margins
c_refh = dict(zip(saved["paper_refh_seed0"]["details"]["rEFH"]["epochs"],
                  saved["paper_refh_seed0"]["details"]["rEFH"]["curve"], strict=True))
c_rtrbm = dict(zip(saved["paper_rtrbm_seed0"]["details"]["RTRBM"]["epochs"],
                   saved["paper_rtrbm_seed0"]["details"]["RTRBM"]["curve"], strict=True))
assert c_rtrbm[200] > c_refh[200] and c_rtrbm[225] < c_refh[225]  # overtakes at 200-225

# %% [markdown]
# With the spec's budget both models learn to predict the next frame better than ORDER 0, and
# the ordering is the poster's: RTRBM, then rEFH, then copying the last frame, then the TRBM.
# The margins are not: the poster's rEFH and RTRBM are about half of ORDER 0, ours are within
# 15% of it, and the poster's TRBM is level with ORDER 0, ours three times worse. The
# RTRBM, which with CD-5 never got past a blank frame, improves steadily with CD-25 and
# overtakes the rEFH in the last fifth of training. At equal numbers of updates the shorter
# runs lie *below* the paper run: the hyperbolic schedule takes the learning rate to zero at
# the last epoch of each run, so a shorter run anneals sooner. The paper rEFH ends only a
# little below the 40 000-update CD-25 run. Where the remaining gap to the poster lies is the
# subject of the next section.
#
# ### Where the chains go wrong
#
# The protocol asks two things of a model at once: to know the next frame, and to reach it
# with 25 steps of a Gibbs chain that starts from noise. `python -m tlr analyze balls-chain-starts`
# separates them, on the checkpoints of the runs above: the protocol's chain; the same chain run
# eight times longer; and the chain started from the true previous frame $y_{t-1}$ instead of
# noise, with 25 steps and with none (the mean-field readout alone). Starting from $y_{t-1}$
# is not the authors' protocol, but it is a fair predictor: $y_{t-1}$ has been observed when
# $y_t$ is predicted.

# %%
chain_rows, chain_files = {}, []
for run_name in ("balls/chain_starts_seed0", "balls/chain_starts_paper_seed0"):
    chains = tlr.results.load(run_name)
    chain_rows.update(chains["rows"])
    chain_files.append(f"`{run_name}` ({chains['preset']} checkpoints, "
                       f"git {chains['provenance']['git'][:12]})")
# both runs score the first 100 sequences of the same 200-sequence test set
order0_100 = chains["order0"]
cols = ["noise, 25", "noise, 200", "previous, 25", "previous, 0"]
rows = [f"| checkpoint | updates | CD | {' | '.join(cols)} |",
        "|---|---:|---:|" + "---:|" * 4]
rows += [f"| {label} | {r['updates']} | {r['n_cd_steps']} | "
         + " | ".join(f"{r[c]:.4f}" for c in cols) + " |"
         for label, r in chain_rows.items()]
display(Markdown("; ".join(chain_files) + f". First {chains['n_test']} test sequences; "
                 f"ORDER 0 on them: {order0_100:.4f}.\n\n" + "\n".join(rows)))
for r in chain_rows.values():
    if r["model"] == "rEFH":  # its chains find nearly what they find from y_{t-1}
        assert r["noise, 25"] < 1.1 * r["previous, 25"]
        assert r["previous, 0"] < 0.9 * order0_100
        assert min(r[c] for c in cols) > 0.8 * order0_100  # none near the poster's 0.56
    elif r["model"] == "TRBM" or r["n_cd_steps"] == 5:  # know the frame, chains miss it
        assert r["previous, 0"] < 1.15 * order0_100 < r["noise, 200"] < r["noise, 25"]
        if r["n_cd_steps"] == 25:  # the paper-preset TRBM
            assert r["previous, 0"] < order0_100 and 2.5 < r["noise, 25"] / order0_100 < 3.5
    else:  # the paper-preset RTRBM: longer chains help; from y_{t-1}, poster level
        assert r["previous, 25"] < r["noise, 200"] < r["noise, 25"] < order0_100
        assert r["previous, 25"] < 0.5 * order0_100

# %% [markdown]
# The CD-5 TRBM and RTRBM *have* learned the next frame: started from $y_{t-1}$, the
# mean-field readout alone predicts about as well as ORDER 0. Started from noise, their chains
# do not get there: eight times more steps close only part of the gap, and even from
# $y_{t-1}$, 25 steps carry the chain away from the right frame. Their conditional
# $\hat p(y_t \mid u_{t-1})$ puts its mode in the right place but leaves a landscape that a
# short chain cannot cross; CD shapes it only near the data, where each training chain starts.
#
# The rEFH's chains are in far better shape: from noise they end within a few percent of where
# they end from $y_{t-1}$. Its joint model must also explain $u_{t-1}$, which shapes the
# landscape away from the data too. Yet the mean-field readout from $y_{t-1}$ is well below
# ORDER 0 for every rEFH here, so the rEFH knows more about the next frame than 25 sampled
# steps show. The protocol measures the model and its sampler together.
#
# The spec's budget leaves the TRBM's story as it was: the mean-field readout from $y_{t-1}$
# beats ORDER 0, its chains from noise end three times above it. It changes the RTRBM most.
# After 102 000 updates of CD-25 its chains from noise beat ORDER 0, and eight times longer
# chains do better still; started from $y_{t-1}$, 25 steps predict at about **half of
# ORDER 0, the poster's level** for the RTRBM. This RTRBM has learned what the poster's has;
# 25 steps from a noise frame do not reach it. The paper-preset rEFH is different: whatever
# the chain's start and length, and with the mean-field readout alone, it stays within 20% of
# ORDER 0. The rEFH's gap to the poster (0.0067, 56% of ORDER 0) lies in what it has learned,
# not in its sampler.
#
# > Two readings of the remaining gap: the poster's chains may have been started closer to
# > the data than the released code's uniform noise (§9.6; not tested here); and its data may
# > be Makin's port (the poster's ORDER 0, 0.0120, lies between our two renderers'). The port
# > makes smaller balls, and the rEFH does a little better against ORDER 0 on them at the
# > medium preset (`--set variant=port`, `results/balls/medium_port_seed0.json`):

# %%
for stem in ("medium_seed0", "medium_port_seed0"):
    r = saved[stem]["results"]
    print(f"{stem} ({saved[stem]['overrides'].get('variant', 'sutskever')}): ORDER 0 "
          f"{r['ORDER 0']['mse']:.4f}, rEFH {r['rEFH']['mse']:.4f} "
          f"(x {r['rEFH']['mse'] / r['ORDER 0']['mse']:.3f} ORDER 0)")
port = saved["medium_port_seed0"]["results"]
sutskever = saved["medium_seed0"]["results"]
assert (port["rEFH"]["mse"] / port["ORDER 0"]["mse"]
        < sutskever["rEFH"]["mse"] / sutskever["ORDER 0"]["mse"])
assert port["rEFH"]["mse"] > 0.9 * port["ORDER 0"]["mse"]  # not the poster's margin

# %% [markdown]
# > A few percent, not the factor the poster's margins need; whether the spec's full budget
# > on the port's data gets closer is a run we have not finished.

# %%
cd25 = saved["medium_trbm_cd25_seed0"]
print(f"TRBM, CD-25, {cd25['details']['TRBM']['updates']} updates: "
      f"{cd25['results']['TRBM']['mse']:.4f}; CD-5, 16 000 updates: "
      f"{saved['medium_seed0']['results']['TRBM']['mse']:.4f}")
medium = saved["medium_seed0"]["results"]
assert medium["TRBM"]["mse"] > cd25["results"]["TRBM"]["mse"] > 2 * medium["ORDER 0"]["mse"]

# %% [markdown]
# Longer chains in *training* help too: a TRBM trained with CD-25 for 4 000 updates
# (`--set harmonium.n_cd_steps=25 --set harmonium.n_epochs=10`) predicts better under the
# protocol than the CD-5 TRBM after 16 000, though still far worse than ORDER 0.
