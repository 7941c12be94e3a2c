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
# # The recurrent VAE
#
# The rEFH of the previous chapters is an undirected model trained by contrastive divergence.
# The poster's second architecture carries the same idea into a directed model trained by
# gradient descent on a variational bound: the **recurrent variational autoencoder (rVAE)**.
# As in the rEFH, the model's own previous latent state $u_{t-1}$ is treated as *data*, and the
# model learns the joint distribution of $u_{t-1}$ and the current observation $y_t$; no
# gradient flows back in time.
#
# This chapter derives the rVAE's loss from the poster's equations, shows why cutting the graph
# at $u_{t-1}$ is exactly the poster's "letting the derivative pass through the expectation", and
# why the recognition model fuses $u_{t-1}$ *after* encoding $y_t$. It then trains the rVAE, its
# transition-only control (TVAE) and its BPTT twin (rVAE-BPTT) on the population-code data of
# {doc}`lti_ppc`, puts them next to the harmonium rows of Table 1, and asks the question of
# {doc}`refh_dynamics`: which order of dynamics did each learn?
#
# The short answer, measured below: **our rVAE beats KF-1 (on two of three seeds at paper
# scale; it ties on the third), but only by about as much as a first-order filter gains from
# knowing how reliable each step's spikes are; it does not learn the velocity**, unlike the
# rEFH. The poster's own rVAE number (5.3e-4, against KF-1's
# 5.8e-4) is consistent with that. The last sections show why the joint objective gives a
# low-dimensional VAE almost no incentive to carry a velocity.
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
import math
import tempfile

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

import tlr.results
from tlr.evaluation import torus_mse, wrap_error
from tlr.evaluation.order import gap_slope, lag_steps, velocity_r2, withhold
from tlr.evaluation.readout import com_readout
from tlr.experiments.ppc import PRESETS, run, test_data, train_data
from tlr.filters import fit_kf, kf_states, run_kf
from tlr.models.rvae import RVAE, RVAEConfig
from tlr.rng import make_generator
from tlr.experiments.common import checkpoint_path
from tlr.models import load_model

torch.set_num_threads(1)  # small tensors in Python loops: extra threads only add overhead
SEED = 0
torch.manual_seed(SEED)  # tlr takes explicit seeds; this only pins anything else
plt.rcParams["figure.dpi"] = 110
preset = PRESETS["quick"]
lti, ppc = preset.lti, preset.ppc
print(f"preset {preset.name!r}, seed {SEED}")

# %% [markdown]
# ## The model, as the poster states it
#
# The generative model has a latent $x_t$ and two children, the previous latent state
# $u_{t-1}$ and the current observation $y_t$ ({ref}`Sources §7.1 <sources-7-1>`):
#
# $$
# \hat p(x_t) = \mathcal N(0, I), \qquad
# \hat p(u_{t-1} \mid x_t) = \mathcal N\big(\mu_u(x_t), \Sigma_u\big), \qquad
# \hat p(y_t \mid x_t) = \text{the observation model}.
# $$
#
# The recognition model infers $x_t$ from both:
# $\check q(x_t \mid u_{t-1}, y_t) = \mathcal N\big(\nu_t, \operatorname{diag}\Upsilon_t\big)$, and
# the state handed to the next step is its mean, $u_t = \nu_t$ (with $u_0$ discussed below).
# The loss is the negative evidence lower bound (ELBO) of the **joint** pair
# $(u_{t-1}, y_t)$, summed over time:
#
# $$
# \mathcal L = \sum_t \mathbb E\Big[
#   \underbrace{-\log \hat p(u_{t-1} \mid x_t)}_{\text{reconstruct the past}}
#   \;\underbrace{-\log \hat p(y_t \mid x_t)}_{\text{reconstruct the present}}
#   \Big] + \mathrm{KL}\big(\check q(x_t \mid u_{t-1}, y_t)\,\big\|\,\hat p(x_t)\big),
# $$
#
# the expectation over the data, over $u_{t-1}$ and over $x_t \sim \check q$ (one
# reparameterised sample per step, as in {ref}`Kingma & Welling 2014 <ref-kingma2014>`). Each term is the usual
# single-observation ELBO of a VAE whose "observation" is the pair $(u_{t-1}, y_t)$; the only
# thing recurrent about the model is where $u_{t-1}$ comes from.
#
# ### Detaching $u_{t-1}$ is "letting the derivative pass through the expectation"
#
# Write the per-step loss as $\ell(\theta, \phi;\, u, y)$ and the previous state as a function of
# the recognition parameters, $u_{t-1} = \nu_{t-1}^{\phi}(y_{1:t-1})$. The total derivative of
# one step's loss has two parts:
#
# $$
# \frac{d\,\ell}{d\phi}
# = \underbrace{\frac{\partial \ell}{\partial \phi}\Big|_{u_{t-1}\ \text{fixed}}}_{\text{local}}
# + \underbrace{\frac{\partial \ell}{\partial u_{t-1}}
#   \frac{d\,\nu^{\phi}_{t-1}}{d\phi}}_{\text{through time}},
# \qquad
# \frac{d\,\nu^{\phi}_{t-1}}{d\phi} = \frac{\partial \nu_{t-1}}{\partial \phi}
# + \frac{\partial \nu_{t-1}}{\partial u_{t-2}} \frac{d\,\nu^{\phi}_{t-2}}{d\phi} .
# $$
#
# The second part unrolls through every earlier step: it is backpropagation through time.
# The poster reads the loss differently: as an expectation of $\ell$ under the distribution
# $\pi_\phi(u_{t-1}, y_t)$ of the pairs the filter produces, and moves the derivative inside
# it, $\nabla \mathbb E_{\pi_\phi}[\ell] \approx \mathbb E_{\pi_\phi}[\nabla \ell]$. The
# approximation ignores that $\pi_\phi$ depends on $\phi$, which is exactly the second part:
# what remains is the local gradient. In code it is one call, `u_prev.detach()`
# (`RVAE.step`). The rEFH makes the same move ({doc}`harmoniums`): its CD update treats
# $u_{t-1}$ as a clamped visible vector.
#
# The local rule is a fixed-point method, as in the rEFH: the model is fitted to the states the
# filter produces, which changes the filter, which changes the states. It is *not* the gradient
# of any single objective, so there is no guarantee that the fixed point it reaches is the one
# BPTT would reach; the BPTT twin below measures the difference.
#
# ### Why late fusion
#
# The generative model makes $u_{t-1}$ and $y_t$ conditionally independent given $x_t$, so the
# exact posterior is additive in the two pieces of evidence:
#
# $$
# \log \hat p(x_t \mid u_{t-1}, y_t) = \log \hat p(x_t) + \log \hat p(u_{t-1} \mid x_t)
#   + \log \hat p(y_t \mid x_t) + \text{const}.
# $$
#
# The rEFH's posterior has exactly this form, $\sigma(W_u u_{t-1} + W_y y_t + b)$. The poster
# "concatenates $U_{t-1}$ with $Y_t$ only after encoding": $y_t$ passes through its own encoder
# trunk, $h_t = \operatorname{enc}(y_t)$, and only the final layer sees $[h_t, u_{t-1}]$. The
# trunk can then only summarise the evidence of $y_t$, as the exact posterior's
# $\log \hat p(y_t \mid x_t)$ term does, and cannot model interactions between $u$ and $y$ that
# the generative model rules out. A practical bonus: the trunk does not depend on $u$, so at
# test time it runs on all steps at once and only the small fusion layer is recurrent
# (`RVAE.filter`).

# %% [markdown]
# ### What the poster leaves open, and what we chose
#
# The poster gives no sizes, no $\sigma$'s, no likelihood for spike counts, and no training
# schedule ({ref}`Sources §7.2 <sources-7-2>`). Our choices, from a search on a 200-trajectory validation set (seed 0),
# are the defaults of `RVAEConfig` and the `vae` field of the PPC presets:
#
# | choice | poster | ours | why |
# |---|---|---|---|
# | $\hat p(y_t \mid x_t)$ | Gaussian | Poisson, rate $e^{\eta(x)}$ | spike counts; the rEFH's choice |
# | latent size | — | 2 | a position on a ring; 3 or 4 did no better |
# | $\Sigma_u$ | $\sigma_x^2 I$, fixed | full $\Sigma_u(x)$, learned | see below |
# | $u_t$ | — | the posterior mean $\nu_t$ | as the rEFH's hidden means ({ref}`Sources §7.3 <sources-7-3>`) |
# | $u_0$ | — | the fixed point of $\nu = \text{enc}(y_1, \nu)$ | a VAE latent 0 is a definite state |
# | networks | — | one hidden layer of 128 ELUs per map | deeper did not help |
# | training | Adam, $10^{-4}$ | Adam $10^{-3}$, decayed, windows of 10 steps | $10^{-4}$ is very slow |
#
# > **$\Sigma_u$ decides whether the rVAE works at all.** With a small fixed $\sigma_u$, copying
# > $u_{t-1}$ into $x_t$ is cheap and the latent fills with a self-sustaining memory of its own
# > past that drifts away from the data; with a large one the model ignores $u_{t-1}$ and
# > becomes ORDER 0. A learned $\sigma_u$ anneals itself between the two. Two latents are
# > needed for a point on a ring, and the posterior mean then also scatters *across* the ring
# > (a direction the $y$-decoder ignores); with one $\sigma$ per axis that scatter swamps the
# > precise along-ring part of $u_{t-1}$, so the $u$-decoder outputs a full covariance
# > $\Sigma_u(x)$ (`learn_sigma="cond"`). We also tried a multinomial likelihood (only the
# > shape of the population response), sampled $u$, 1, 3 and 4 latents, two hidden layers of
# > 256 units, windows of 1, 2, 10 and 20 steps, learning rates up to $3\times10^{-3}$ and
# > 80 to 350 epochs; none did better on validation.

# %%
print(RVAEConfig())
print(preset.vae)
print(RVAE(RVAEConfig(n_obs=ppc.n_neurons)))

# %% [markdown]
# ### The TVAE: the transition-only control
#
# The poster's Table 1 has a "TVAE" row (9.5e-4) that it never defines. Its most plausible
# reading ({ref}`Sources §7.4 <sources-7-4>`) is the VAE analogue of the TRBM: the same encoder and $y$-decoder, but
# $u_{t-1}$ is a *conditioning input* to a learned prior instead of data to reconstruct,
#
# $$
# \hat p(x_t \mid u_{t-1}) = \mathcal N\big(\mu_p(u_{t-1}), \Sigma_p(u_{t-1})\big), \qquad
# \mathcal L_{\text{TVAE}} = \sum_t \mathbb E\big[-\log \hat p(y_t \mid x_t)\big]
#   + \mathrm{KL}\big(\check q(x_t \mid u_{t-1}, y_t)\,\big\|\,\hat p(x_t \mid u_{t-1})\big),
# $$
#
# trained with the same detached $u_{t-1}$. It models "merely the transition probabilities",
# the thing the poster's abstract contrasts its method with. It is a one-step-truncated deep
# Kalman filter ({ref}`Krishnan, Shalit & Sontag 2015 <ref-krishnan2015>`). Two other readings are possible ({ref}`Sources §7.4 <sources-7-4>`):
# a sequential VAE trained *with* BPTT, or a VAE conditioned on the previous observation
# $y_{t-1}$. Our TVAE is the first reading; treat its row accordingly.
#
# ### The rVAE-BPTT: the same loss through time
#
# `RVAEConfig(bptt=True)` keeps the graph through $u_{t-1}$ inside each training window of 10
# steps (truncated BPTT; the state is still detached between windows). Same networks, same loss,
# same data: the only difference is the second part of the derivative above.

# %% [markdown]
# ## Table 1 at the quick preset
#
# `run` trains and scores every model on one seed; it is what
# `python -m tlr run ppc --preset quick --seed 0 --models "KF-1,KF-2,rVAE,TVAE,rVAE-BPTT"` calls.
# Each VAE sees 40 fresh trajectories of 1000 steps per epoch, cut into windows of 10 steps, one
# Adam update per window ({ref}`Sources §7.1 <sources-7-1>`'s loss summed over the window, averaged over the 40
# trajectories). The position estimate is read out as in the rEFH: the circular centre of mass
# of the rates the $y$-decoder predicts from $\nu_t$ ({ref}`Sources §5.5 <sources-5-5>`).

# %%
MODELS = ["KF-1", "KF-2", "rVAE", "TVAE", "rVAE-BPTT"]
ckpt_dir = tempfile.TemporaryDirectory()
results = run(MODELS, preset, seed=SEED, progress=False, checkpoint_dir=ckpt_dir.name)
mse = {name: r["mse"] for name, r in results.items()}
POSTER = {"KF-1": 5.8e-4, "KF-2": 2.2e-4, "rVAE": 5.3e-4, "TVAE": 9.5e-4, "rVAE-BPTT": None}


def fmt(x: float | None, scale: float = 1e4, digits: int = 2) -> str:
    return "—" if x is None else f"{x * scale:.{digits}f}"


rows = ["| model | MSE (quick, seed 0) | train s | poster Table 1 |", "|---|---:|---:|---:|"]
rows += [f"| {name} | {fmt(r['mse'])} | {r['train_s']:.1f} | {fmt(POSTER[name], digits=1)} |"
         for name, r in results.items()]
display(Markdown("MSE in units of $10^{-4}$ rad²\n\n" + "\n".join(rows)))
assert mse["rVAE"] < mse["KF-1"]  # the rVAE beats the best first-order filter, same test set
assert mse["KF-2"] < mse["rVAE"]

# %% [markdown]
# The rVAE beats KF-1 on the same test set, as on the poster, by a few per cent. The TVAE is
# as good or better here, the reverse of the poster's order, and the rVAE-BPTT is much worse
# than either. The rest of the chapter explains these three facts.
#
# We rebuild the three VAEs from their training checkpoints and check that they reproduce the
# table exactly, so that the analysis below is about the models that were scored:

# %%
def load_vae(name: str) -> torch.nn.Module:
    """The trained model `run` checkpointed for ``name`` (the checkpoint records its config)."""
    return load_model(checkpoint_path(ckpt_dir.name, "ppc", preset, SEED, name)).eval()


vaes = {name: load_vae(name) for name in ("rVAE", "TVAE", "rVAE-BPTT")}
test = test_data(preset, SEED)
s_hat = {name: com_readout(m, test.y, ppc) for name, m in vaes.items()}
for name, s in s_hat.items():
    assert math.isclose(torus_mse(s, test.position, ppc.period), mse[name], rel_tol=1e-9)
print("the loaded models reproduce the table")

# %% [markdown]
# ## Which order was learned?
#
# We run the two probes of {doc}`refh_dynamics` on the VAEs, next to the Kalman filters. KF-1
# and KF-2 are refitted exactly as `run` fits them.

# %%
train = train_data(preset, SEED)
kf1, kf2 = (fit_kf(train.y, order, lti, ppc, n_iter=preset.em_max_iter, tol=preset.em_tol,
                   generator=make_generator(SEED, f"ppc/em{order}-init")) for order in (1, 2))
assert math.isclose(torus_mse(run_kf(kf1.params, test.y, lti, ppc), test.position, ppc.period),
                    mse["KF-1"], rel_tol=1e-9)
fit_set = train_data(preset, SEED, stream="ppc/rVAE/readout")
states = {
    "KF-1": (kf_states(fit_set.y, lti, ppc, kf1.params), kf_states(test.y, lti, ppc, kf1.params)),
    "KF-2": (kf_states(fit_set.y, lti, ppc, kf2.params), kf_states(test.y, lti, ppc, kf2.params)),
    **{name: (m.filter(fit_set.y), m.filter(test.y)) for name, m in vaes.items()},
}
v_r2 = {name: velocity_r2(f, fit_set.z[..., 1], t, test.z[..., 1])
        for name, (f, t) in states.items()}
estimates = {"KF-1": run_kf(kf1.params, test.y, lti, ppc),
             "KF-2": run_kf(kf2.params, test.y, lti, ppc), **s_hat}
lag = {name: lag_steps(s, test.position, test.z[..., 1], ppc.period, lti.dt)
       for name, s in estimates.items()}

GAP, STARTS = 20, list(range(200, 1000, 100))


def withheld(name: str, y: torch.Tensor) -> torch.Tensor:
    if name in ("KF-1", "KF-2"):
        return run_kf((kf1 if name == "KF-1" else kf2).params, y, lti, ppc)
    return com_readout(vaes[name], y, ppc)


slope = {name: torch.tensor([gap_slope(withheld(name, withhold(test.y, t0, GAP)), test.position,
                                       t0, GAP, ppc.period) for t0 in STARTS])
         for name in estimates}
rows = ["| filter | state size | velocity $R^2$ | lag (steps) | gap slope |",
        "|---|---:|---:|---:|---:|"]
rows += [f"| {n} | {states[n][1].shape[-1]} | {v_r2[n]:.3f} | {lag[n]:+.2f} | "
         f"{slope[n].mean():.2f} ± {slope[n].std():.2f} |" for n in estimates]
display(Markdown("\n".join(rows)))
assert max(abs(v_r2[n]) for n in vaes) < 0.1 and v_r2["KF-2"] > 0.9  # no velocity in the VAEs
assert min(lag[n] for n in ("rVAE", "TVAE")) > lag["KF-1"] - 0.1 > lag["KF-2"]  # they lag
assert slope["KF-2"].mean() > 0.9


def gap_end_error(name: str) -> torch.Tensor:
    """|ŝ - s| (rad) at the last silent step of every gap and trajectory."""
    errs = []
    for t0 in STARTS:
        t1 = t0 + GAP - 1
        s = withheld(name, withhold(test.y, t0, GAP))
        errs.append(wrap_error(s[t1] - test.position[t1], ppc.period).abs())  # on the ring
    return torch.cat(errs)


end_err = {name: gap_end_error(name) for name in estimates}
print("error at the end of the gap (rad), median / share > 0.5 rad: " + ", ".join(
    f"{n} {e.median():.2f} / {(e > 0.5).double().mean():.0%}" for n, e in end_err.items()))
assert min(end_err[n].median() for n in ("rVAE", "TVAE")) > 2 * end_err["KF-1"].median()

# %% [markdown]
# A stretch of one test trajectory shows the lag: the VAEs' estimates trail the true position
# like KF-1's, where KF-2's keep up.

# %%
t0, t1, b = 300, 420, 0
fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(range(t0, t1), test.position[t0:t1, b], "k", lw=2, label="true position")
for name, style in (("KF-1", ":"), ("KF-2", "--"), ("rVAE", "-"), ("TVAE", "-")):
    s = test.position[t0:t1, b] + wrap_error(estimates[name][t0:t1, b] - test.position[t0:t1, b],
                                             ppc.period)  # the estimate's image nearest the truth
    ax.plot(range(t0, t1), s, style, lw=1.2, label=name)
ax.set(xlabel="step", ylabel="position (rad)", title=f"test trajectory {b}")
ax.legend(fontsize=8, ncol=3)
fig.tight_layout()

# %% [markdown]
# All three VAEs behave as **first-order filters**. No linear map recovers the velocity from
# their state (the rEFH's state gave $R^2 = 0.97$), and they lag behind the moving mass at
# least as much as KF-1 does, where a filter that knew the velocity would not lag at all
# (KF-2).
#
# > The gap probe, which worked for the rEFH, is uninformative here: the VAEs' gap slopes
# > scatter far beyond $[0, 1]$ from gap to gap. A silent step is far outside the training
# > data (the rEFH chapter computes how far), and the VAEs do not hold their estimate through
# > it: by the end of the gap they have drifted far from the truth, much further than KF-1,
# > which simply stands still (the printed errors). Their encoders answer an input they never
# > saw with a state that carries them away. The velocity probe is linear and the state
# > two-dimensional, so a velocity coded non-linearly could escape it, but the lag cannot: a
# > filter that used a velocity would not lag.
#
# So where does the rVAE's advantage over KF-1 come from? KF-1 assumes the same observation
# noise at every step, but the population's gain varies from step to step, and the total spike
# count tells how reliable each step's centre of mass is ({ref}`Sources §2.5 <sources-2-5>`). A filter of the *same
# order* as KF-1 that knows this, KF-1's dynamics with KF-true's per-step noise
# $R_t = \sigma_{\text{tc}}^2/\sum_i y_t^i$ and its process noise re-tuned on the training set
# (`run_kf(..., gain_aware=True)`), shows how much that alone is worth:

# %%
s_train = train.position
q_grid = (kf1.params.Q[0, 0].item() * torch.logspace(-1, 1.5, 11)).tolist()


def kf1_gain_aware(q: float, y: torch.Tensor) -> torch.Tensor:
    params = kf1.params._replace(Q=torch.full_like(kf1.params.Q, q))
    return run_kf(params, y, lti, ppc, gain_aware=True)


train_mse = [torus_mse(kf1_gain_aware(q, train.y), s_train, ppc.period) for q in q_grid]
q_best = q_grid[min(range(len(q_grid)), key=train_mse.__getitem__)]
mse["KF-1 + R_t"] = torus_mse(kf1_gain_aware(q_best, test.y), test.position, ppc.period)
print(f"KF-1: Q = {kf1.params.Q[0, 0].item():.2e}; gain-aware KF-1: Q = {q_best:.2e} "
      f"(best of {len(q_grid)} on the training set)")
display(Markdown("\n".join(["| filter | order | test MSE / $10^{-4}$ |", "|---|---:|---:|"] + [
    f"| {n} | {o} | {fmt(mse[n])} |" for n, o in
    (("KF-1", 1), ("KF-1 + R_t", 1), ("rVAE", 1), ("TVAE", 1), ("KF-2", 2))])))
assert mse["KF-1 + R_t"] < min(mse["rVAE"], mse["TVAE"]) * 1.02

# %% [markdown]
# The gain-aware first-order filter is at least as good as either VAE. Their whole advantage
# over KF-1 is within what a first-order filter gains from weighting each step by its spike
# count; none of it needs dynamics. The TVAE does slightly better than the rVAE for a simple reason: its learned prior
# $\hat p(x_t \mid u_{t-1})$ *is* a first-order transition model, which is all either of them
# learned, and it gets it without having to reconstruct $u_{t-1}$ through a noisy decoder.

# %% [markdown]
# ## Why the rVAE does not learn the velocity
#
# The rEFH learned the velocity from the same objective (the joint of $u_{t-1}$ and $y_t$), so
# why not the rVAE? Look at what the velocity would buy it. The rVAE's only reward for carrying
# information about the past is the term $-\log \hat p(u_{t-1} \mid x_t)$. Given a latent that
# codes the current position, the rest of $u_{t-1}$ is the previous position estimate: the
# current one minus about one step of motion, plus the filter's own noise. A velocity in $x_t$
# would predict the motion part. How large is it? We measure it on the trained rVAE: the
# residual $r_t = u_{t-1} - \mu_u(\nu_t)$ of its $u$-decoder, regressed on the true velocity
# $v_t$ (an upper bound on what any velocity code could explain), and compare its information
# value with the per-step terms of the loss.

# %%
rvae = vaes["rVAE"]
with torch.no_grad():
    nu = rvae.filter(test.y)  # (T, B, 2)
    u_prev, x = nu[:-1], nu[1:]
    resid = u_prev - rvae.u_dist(x).mean  # what the u-decoder cannot predict from x_t
    v = test.z[1:, :, 1]
    feats = torch.stack([v, torch.ones_like(v)], -1).reshape(-1, 2).double()
    target = resid.reshape(-1, 2).double()
    coef = torch.linalg.lstsq(feats, target).solution
    explained = 1 - (target - feats @ coef).var(0) / target.var(0)  # per latent dimension
    # Gaussian residuals: explaining a fraction R² of a variance saves -½ log(1 - R²) nats
    nats_velocity = (-0.5 * torch.log1p(-explained.clamp(max=0.999))).sum().item()
    out = rvae.window(test.y[1:], nu[0], make_generator(SEED, "chapter/elbo"))[0]
terms = {k: getattr(out, k).mean().item() for k in ("kl", "nll_u", "nll_y")}
print("velocity explains " + ", ".join(f"{e:.1%}" for e in explained.tolist())
      + " of the u-residual variance, per latent dimension")
print(f"worth at most {nats_velocity:.3f} nats per step; the loss terms per step: "
      + ", ".join(f"{k} {val:.2f}" for k, val in terms.items()))
step = (test.z[..., 1].pow(2).mean().sqrt() * lti.dt).item()  # rms motion per step (rad)
print(f"rms motion per step {step:.4f} rad; the rVAE's rms error {math.sqrt(mse['rVAE']):.4f} rad")
assert nats_velocity < 0.01 * terms["kl"] and step < math.sqrt(mse["rVAE"])

# %% [markdown]
# The velocity explains a few per cent of what the $u$-decoder cannot predict, worth a few
# hundredths of a nat per step: less than a hundredth of the KL term the model pays every
# step. The motion in one step is smaller than the filter's own uncertainty (the printed rms
# values), so $u_{t-1}$ is mostly noise around the current position, and coding the velocity
# would cost more KL than it saves. With a two-dimensional latent there
# is no spare room to code it anyway, and more latents (we tried 3 and 4) did not lower the
# validation error.
#
# > Compare the rEFH. Its $u_{t-1}$ is 240 hidden-unit probabilities, not a two-number
# > position estimate, and reconstructing it rewards $x_t$ for everything the previous state
# > knew, including how it was moving; its prior costs nothing per unit of information, as
# > there is no KL term. That asymmetry, not the local rule, is our best account of why one
# > learned second-order dynamics and the other did not. A linear-Gaussian version of the
# > local-rule rVAE, iterated to its fixed point with exact inference, settles at the same
# > first-order level (about 5.6e-4); we have not found a VAE setting where the velocity
# > emerges.

# %% [markdown]
# ## What BPTT does to the rVAE
#
# BPTT adds one thing to the local gradient: the encoder is now rewarded for making the
# *next* step's loss small through $u_{t-1}$. The cheapest way to make
# $-\log \hat p(u_{t-1} \mid x_t)$ small is to make $u_{t-1}$ easy to predict, which the
# encoder controls directly, since $u_{t-1} = \nu_{t-1}$ is its own output. The local rule
# cannot do that: to it, $u_{t-1}$ is data. The table shows the result, a position estimate
# worse than KF-1's; the next cell looks at the learned $u$-model.

# %%
with torch.no_grad():
    rows = ["| model | $-\\log \\hat p(u_{t-1} \\mid x_t)$ | KL | $-\\log \\hat p(y_t \\mid x_t)$ "
            "| spread of $\\nu_t$ | rms $u$-residual |", "|---|---:|---:|---:|---:|---:|"]
    spread = {}
    for name in ("rVAE", "rVAE-BPTT"):
        m = vaes[name]
        nu_m = m.filter(test.y)
        o = m.window(test.y[1:], nu_m[0], make_generator(SEED, "chapter/elbo"))[0]
        res = nu_m[:-1] - m.u_dist(nu_m[1:]).mean
        spread[name] = nu_m.reshape(-1, 2).std(0).norm().item()
        rows.append(f"| {name} | {o.nll_u.mean():.2f} | {o.kl.mean():.2f} | "
                    f"{o.nll_y.mean():.2f} | {spread[name]:.3f} | "
                    f"{res.pow(2).sum(-1).mean().sqrt():.4f} |")
display(Markdown("Per-step averages on the test set\n\n" + "\n".join(rows)))

# %% [markdown]
# With BPTT the $u$-term falls far below the local rVAE's: the encoder has made its own past
# easy to reconstruct. That is a legitimate way to lower the joint loss, which never asked
# $u_{t-1}$ to be a good *position* estimate, only a predictable one, and it costs the
# estimate its precision. The poster's argument for the local rule was biological
# plausibility and cost; here it also keeps the objective honest, because data cannot be
# changed to fit the model.
#
# > The rVAE-BPTT is our own control, not a poster row. We trained it with BPTT inside
# > windows of 10 steps (the same windows the local rule uses), with the same optimiser and no
# > gradient clipping. A run that diverges stops with an error naming the epoch and step
# > (`tlr.train`); at paper scale that happened on two of three seeds (below). Clipping might
# > tame the divergence; it would not change what the objective rewards.

# %% [markdown]
# ## Table 1 at paper scale
#
# The `paper` preset trains each VAE for 240 epochs (Adam $10^{-3}$, divided by 1.02 per
# epoch), on three seeds. Regenerate with
#
# ```
# python -m tlr run ppc --preset paper --models "KF-1,rVAE,TVAE,rVAE-BPTT" --seed S \
#     --json results/ppc/paper_seedS_vae.json
# ```
#
# The table collects these files with the harmonium and Kalman runs of {doc}`refh_dynamics`;
# each column is mean ± sd over the seeds found.

# %%
saved: dict[str, list[float]] = {}
diverged: dict[str, list[str]] = {}
provenance = []
for run_name in tlr.results.available("ppc/paper_seed*"):
    res = tlr.results.load(run_name)
    provenance.append(f"{run_name}: seed {res['seed']}, git {res['provenance']['git']}")
    for name, r in res["results"].items():
        if not (name == "KF-1" and run_name.endswith("_vae")):  # KF-1 once per seed
            saved.setdefault(name, []).append(r["mse"])
    for name, err in res.get("failed", {}).items():  # training diverged: no score
        diverged.setdefault(name, []).append(f"seed {res['seed']}: {err}")
ORDER = ["ORDER 0", "KF-1", "KF-2", "KF-true", "rEFH", "TRBM", "RTRBM", "rVAE", "TVAE",
         "rVAE-BPTT"]
POSTER_ALL = {"ORDER 0": 12e-4, "KF-1": 5.8e-4, "KF-2": 2.2e-4, "KF-true": None, "rEFH": 3.3e-4,
              "TRBM": 6.0e-4, "RTRBM": 3.1e-4, **POSTER}
rows = ["| model | paper preset, mean ± sd | seeds | diverged | poster |",
        "|---|---:|---:|---:|---:|"]
for name in ORDER:
    if name in saved or name in diverged:
        x = torch.tensor(saved.get(name, []), dtype=torch.float64) * 1e4
        mean = f"{x.mean():.2f}" if len(x) else "—"
        sd = f" ± {x.std():.2f}" if len(x) > 1 else ""
        rows.append(f"| {name} | {mean}{sd} | {len(x)} | {len(diverged.get(name, []))} | "
                    f"{fmt(POSTER_ALL[name], 1e4, 1)} |")
display(Markdown("MSE in units of $10^{-4}$ rad²\n\n" + "\n".join(rows)))
print("\n".join(provenance))
for name, errs in diverged.items():
    print(f"{name} diverged: " + "; ".join(errs))

# %% [markdown]
# Seed by seed, each VAE against KF-1 fitted in the same run (the same test set):

# %%
per_seed = {}
for run_name in tlr.results.available("ppc/paper_seed*_vae"):
    res = tlr.results.load(run_name)
    kf1_seed = res["results"]["KF-1"]["mse"]
    per_seed[res["seed"]] = {n: res["results"][n]["mse"] / kf1_seed - 1
                             for n in ("rVAE", "TVAE", "rVAE-BPTT") if n in res["results"]}
    per_seed[res["seed"]]["KF-1 × 1e4"] = kf1_seed * 1e4
rows = ["| seed | KF-1 / $10^{-4}$ | rVAE vs KF-1 | TVAE vs KF-1 | rVAE-BPTT vs KF-1 |",
        "|---:|---:|---:|---:|---:|"]
for seed, d in per_seed.items():
    rel = [f"{d[n]:+.1%}" if n in d else "diverged" for n in ("rVAE", "TVAE", "rVAE-BPTT")]
    rows.append(f"| {seed} | {d['KF-1 × 1e4']:.2f} | " + " | ".join(rel) + " |")
display(Markdown("\n".join(rows)))
assert sorted(per_seed) == [0, 1, 2]  # the three seeds
assert all(d["TVAE"] < 0 for d in per_seed.values())  # the TVAE beats KF-1 in every seed
assert sum(d["rVAE"] < 0 for d in per_seed.values()) >= len(per_seed) - 1

# %% [markdown]
# At paper scale the picture is the quick run's, with less margin. The rVAE beats KF-1 by a few
# per cent on two seeds and ties it on the third (a fraction of a per cent worse): it is a
# first-order filter whose small advantage is the gain-awareness measured above, and seed-to-
# seed variation is of the same size. It is nowhere near the rEFH, and above the poster's
# 5.3e-4 on average. The TVAE beats KF-1 in every seed. The rVAE-BPTT diverged on two of the
# three seeds (the error, naming the epoch and step, is printed under the table) and was three
# times worse than KF-1 on the third.
#
# > **What we could not reproduce.** The poster puts the TVAE at 9.5e-4, near ORDER 0, and
# > the rVAE clearly ahead of it. Our TVAE, read as the transition-only control, learns the
# > same first-order dynamics the rVAE does and is at least as good. Either the poster's TVAE
# > is a different model ({ref}`Sources §7.4 <sources-7-4>` lists the alternatives) or it was trained differently;
# > the poster does not say.
#
# ## Summary
#
# - The rVAE is the rEFH's idea in a VAE: the negative ELBO of the joint $(u_{t-1}, y_t)$, with
#   $u_{t-1}$ detached. Detaching drops exactly the through-time part of the derivative.
# - Late fusion mirrors the additive form of the exact posterior that the generative model's
#   conditional independence implies.
# - On LTI + PPC our rVAE beats KF-1 on two of three paper-scale seeds and ties it on the
#   third (and beats it at the quick preset), but it is a first-order filter: the probes
#   that found a velocity in the rEFH find none here, and a gain-aware first-order Kalman
#   filter explains its advantage. With a two-dimensional latent and a KL price on every nat,
#   the joint objective gives it almost no reason to carry a velocity.
# - Letting gradients flow through $u_{t-1}$ (rVAE-BPTT) lets the encoder make its own past
#   easy to reconstruct, and the position estimate suffers.
