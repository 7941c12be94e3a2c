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
# The rEFH of {doc}`harmoniums` is an undirected model trained by contrastive divergence. The
# poster's second architecture carries the same idea into a directed model trained by gradient
# descent on a variational bound: the **recurrent variational autoencoder (rVAE)**
# {ref}`[P] <ref-poster>`. As in the rEFH, the model's own previous state $u_{t-1}$ is treated
# as *data*: the model learns the joint distribution of $u_{t-1}$ and the current observation
# $y_t$, and no gradient flows back in time.
#
# This chapter writes the rVAE's loss out as code, shows that cutting the graph at $u_{t-1}$ is
# the poster's "letting the derivative pass through the expectation", and explains why the
# recognition model fuses $u_{t-1}$ only *after* encoding $y_t$. It then trains the rVAE and its
# transition-only control, the TVAE, on the population-code data of {doc}`lti_ppc`, asks the
# question of {doc}`refh_dynamics` (which order of dynamics did each learn?), and compares the
# rVAE with its BPTT twin, the rVAE-BPTT. Finally it prices the KL term below 1, the
# rVAE-β, and reads saved paper-scale runs in which the rVAE's state carries a velocity in
# some seeds, while its error stays far from a fitted second-order filter's. Two further
# experiments probe that velocity: scoring $u_{t-1}$ as the uncertain data it is, and *free
# bits*, which make a latent's first nat free instead of discounting every nat.
#
# **What you will learn**
#
# - the rVAE's generative and recognition models, and its loss: the negative ELBO of the pair
#   $(u_{t-1}, y_t)$, summed over time, written in the page and checked against `tlr`;
# - why detaching $u_{t-1}$ drops exactly the through-time part of the gradient, checked by
#   turning the detach off and recovering the rVAE-BPTT's gradient;
# - what late fusion is (a $y$-only encoder, then a small network on $[h_t; u_{t-1}]$), and why
#   it is an inductive bias suggested by the exact posterior rather than its exact form;
# - how to tell a first-order from a second-order filter with a velocity probe and a lag, and
#   how much of a learned filter's advantage over KF-1 a gain-aware first-order Kalman filter
#   explains;
# - an information budget that accounts for why the joint objective gives a two-dimensional
#   VAE almost no reason to carry a velocity;
# - what BPTT does to the same objective: the encoder learns to make its own past easy to
#   reconstruct;
# - what a KL weight $\beta < 1$ does to the loss (a rate–distortion Lagrangian instead of a
#   likelihood bound) and to the information budget, and how far a warmed-up $\beta$ takes the
#   rVAE towards second-order dynamics, seed by seed;
# - how a few initialisations, one kept on a validation score, change the seed-by-seed outcome,
#   and where a validation score picks the wrong one;
# - what scoring $u_{t-1}$ as uncertain data (the expected $u$-term under the previous
#   posterior) does to the rVAE-β's velocity, and what that test cannot tell apart;
# - what free bits change in the price of a memory, and how far they take the rVAE at
#   $\beta = 1$, with one and with three initialisations per seed.
#
# **Prerequisites.** {doc}`The LTI system <lti_ppc>` (the data, KF-1, KF-2, KF-true and the
# centre-of-mass readout), {doc}`Harmoniums <harmoniums>` (the rEFH and its local rule),
# {doc}`rEFH dynamics <refh_dynamics>` (the probes for the order of the dynamics), and a first
# acquaintance with variational autoencoders ({ref}`Kingma & Welling 2014 <ref-kingma2014>`).
# The symbols are those of the {doc}`notation <notation>` page.
#
# **Run time.** About a minute and a half on one CPU core, exercises included (the last cell
# before the exercises prints the chapter body's own time). The rVAE and the TVAE are trained
# live for 24 epochs, a fifth of the `quick` preset's 120 (under half a minute each; the table of
# the live run gives the times); the tables at paper scale (240 epochs, minutes per model and
# seed), the rVAE-β's included, are loaded from saved runs through `tlr.results`, and only the
# Kalman filters they are compared with are refitted (a few seconds per seed). The text says
# which numbers are live and which are loaded. `TLR_FULL=1` trains the live models at the full
# `quick` preset instead (a few minutes).
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
# The models, the data and the filters come from `tlr`; the rVAE's loss and its two gradients
# are also written in the page and checked against it.

# %% tags=["exercise-setup"]
import math
import os
import statistics
import tempfile
import time
from dataclasses import replace

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display
from torch.distributions import kl_divergence

from tlr.provenance import short_command, short_commit
import tlr.results
from tlr.diagrams import draw_model
from tlr.evaluation import torus_mse, wrap_error
from tlr.evaluation.order import gap_fraction as order_gap_fraction
from tlr.evaluation.order import gap_slope, lag_steps, velocity_r2, withhold
from tlr.evaluation.readout import com_readout
from tlr.experiments.common import checkpoint_path
from tlr.experiments.ppc import PRESETS, epoch_data, run, test_data, train_data
from tlr.filters import fit_kf, kf_states, run_kf
from tlr.filters.baselines import centred_observations
from tlr.models import build_model, load_model
from tlr.models.registry import RVAE_BETA
from tlr.models.rvae import RVAE, RVAEConfig
from tlr.models.tvae import TVAE, TVAEConfig
from tlr.poster import TABLE_1
from tlr.rng import make_generator
from tlr.sweep import summary_rows
from tlr.train import OptimConfig, fit

torch.set_num_threads(1)  # small tensors in Python loops: extra threads only add overhead
SEED = 0
torch.manual_seed(SEED)  # tlr takes explicit seeds; this only pins anything else
plt.rcParams["figure.dpi"] = 110
T_START = time.perf_counter()
FULL = os.environ.get("TLR_FULL") == "1"
quick = PRESETS["quick"]
lti, ppc = quick.lti, quick.ppc
# The live setting: the quick preset's data and models, 24 epochs with a faster learning-rate
# decay (the full quick preset: 120 epochs, decay 1.025 per epoch).
LIVE = quick if FULL else replace(
    quick, name="live", vae=replace(quick.vae, n_epochs=24, optim=OptimConfig("adam", lr=1e-3,
                                                                               decay=1.1)))
print(f"live setting: {LIVE.vae.n_epochs} epochs of {LIVE.vae.n_traj} trajectories x "
      f"{LIVE.vae.T} steps, windows of {LIVE.vae.window}, {LIVE.vae.optim}")

# %% [markdown]
# ## The model
#
# The generative model has a latent $x_t$ with two children, the previous state $u_{t-1}$ and
# the current observation $y_t$ ({ref}`Sources §7.1 <sources-7-1>`):
#
# $$
# \hat p(x_t) = \mathcal N(0, I), \qquad
# \hat p(u_{t-1} \mid x_t) = \mathcal N\big(\mu_u(x_t), \Sigma_u\big),
# $$
#
# and $\hat p(y_t \mid x_t)$, the observation model (Poisson counts here, Bernoulli pixels for
# video).
#
# The recognition model infers $x_t$ from both,
# $\check q(x_t \mid u_{t-1}, y_t) = \mathcal N(\nu_t, \Upsilon_t)$ with a diagonal $\Upsilon_t$,
# and the state handed to the next step is its mean, $u_t = \nu_t$. The loss is the negative
# evidence lower bound (ELBO) of the **pair** $(u_{t-1}, y_t)$, summed over time,
# $\mathcal L_{\text{rVAE}} = \sum_t \ell_t$ with
#
# $$
# \ell_t = \mathbb E_{x_t \sim \check q}\Big[
#   \underbrace{-\log \hat p(u_{t-1} \mid x_t)}_{\text{reconstruct the past}}
#   \;\underbrace{-\log \hat p(y_t \mid x_t)}_{\text{reconstruct the present}}
#   \Big] + \mathrm{KL}\big(\check q(x_t \mid u_{t-1}, y_t)\,\big\|\,\hat p(x_t)\big),
# $$
#
# estimated with one reparameterised sample $x_t = \nu_t + \Upsilon_t^{1/2} \times$ (standard
# normal noise) per step, as in {ref}`Kingma & Welling 2014 <ref-kingma2014>`. Each $\ell_t$ is
# the ordinary ELBO of a VAE whose "observation" is the pair $(u_{t-1}, y_t)$: the only thing
# recurrent about the model is where $u_{t-1}$ comes from. The graphical model, in the book's
# visual language:

# %%
draw_model("rVAE")
plt.show()

# %% [markdown]
# ### The loss, written out
#
# With the choices of this book for spike counts (a Poisson $\hat p(y_t \mid x_t)$ with log-rates
# $\eta(x_t)$, counts entering the encoder as $\log(1 + y_t)$; both are in the table of choices
# further down), the three terms of $\ell_t$ are, with $j$ indexing the latent dimensions,
#
# $$
# \mathrm{KL} = \tfrac12 \sum_j \big(\nu_t^{j\,2} + \Upsilon_t^{jj} - \log \Upsilon_t^{jj} - 1\big),
# \qquad
# -\log \hat p(y_t \mid x_t) = \sum_i \big(e^{\eta^i(x_t)} - y_t^i \eta^i(x_t) + \log y_t^i!\big),
# $$
#
# and $-\log \hat p(u_{t-1} \mid x_t)$, a Gaussian log-density whose mean and covariance the
# $u$-decoder outputs (`model.u_dist(x)`). The recognition model encodes $y_t$ alone first,
# $h_t = \operatorname{enc}(y_t)$; a small fusion head, a network with one hidden layer, then
# maps $[h_t; u_{t-1}]$ to $\nu_t$ and $\log \operatorname{diag} \Upsilon_t$ (late fusion,
# explained below). In code:

# %%
def rvae_step_terms(model: RVAE, y_t, u_prev, eps):
    """(KL, -log p(u_{t-1} | x_t), -log p(y_t | x_t)) per sequence (B,) and the posterior
    mean ν_t, for given standard normal noise eps."""
    h = model.rec_y(torch.log1p(y_t))                         # h_t = enc(y_t): never sees u
    nu, logvar = model.rec_head(torch.cat([h, u_prev], -1)).chunk(2, -1)   # late fusion
    logvar = logvar.clamp(-12.0, 6.0)                         # log diag Υ_t, kept in range
    x = nu + torch.exp(0.5 * logvar) * eps                    # x_t ~ q(x_t | u_{t-1}, y_t)
    kl = 0.5 * (nu**2 + logvar.exp() - logvar - 1).sum(-1)    # KL(q ‖ N(0, I))
    nll_u = -model.u_dist(x).log_prob(u_prev)                 # -log p(u_{t-1} | x_t)
    eta = model.gen_y(x).clamp(max=20.0)                      # log-rates η(x_t)
    nll_y = (eta.exp() - y_t * eta + torch.lgamma(y_t + 1)).sum(-1)   # -log Pois(y_t; e^η)
    return kl, nll_u, nll_y, nu


def rvae_step_loss(model: RVAE, y_t, u_prev, eps):
    """ℓ_t per sequence (B,) and the posterior mean ν_t."""
    kl, nll_u, nll_y, nu = rvae_step_terms(model, y_t, u_prev, eps)
    return kl + nll_u + nll_y, nu


def rvae_window_loss(model: RVAE, y, u0, eps, detach: bool = True):
    """Σ_t ℓ_t over a window y (T, B, n_y) from u0, averaged over the batch.

    detach=True: u_{t-1} is data (the rVAE's local rule); False: the graph runs back in time.
    """
    u, total = u0, 0.0
    for t in range(y.shape[0]):
        loss_t, u = rvae_step_loss(model, y[t], u.detach() if detach else u, eps[t])
        total = total + loss_t
    return total.mean()

# %% [markdown]
# The library's `RVAE.sequence_loss` computes the same number differently: it runs the filter
# first without a graph and then scores all steps in one batched pass. We check the page's
# loss against it on an untrained rVAE and eight steps of data, with the same noise: the library
# draws all of it in one call, `(T, B, n_x)` standard normals from the generator it is given, so
# the page draws the same tensor from a generator with the same seed.

# %%
model = RVAE(RVAEConfig(n_obs=ppc.n_neurons), generator=make_generator(SEED, "book/rvae/init"))
y_win = test_data(quick, SEED).y[100:108, :6]                 # T = 8 steps, B = 6 sequences
u0 = model.start_state(y_win[0])
noise_seed = make_generator(SEED, "book/rvae/noise").initial_seed()


def gen():
    """The same stream of noise every time it is called."""
    return torch.Generator().manual_seed(noise_seed)


eps = torch.randn((*y_win.shape[:2], model.config.n_latent), generator=gen())
loss_page = rvae_window_loss(model, y_win, u0, eps)
loss_lib, _ = model.sequence_loss(y_win, u0, gen())
torch.testing.assert_close(loss_page, loss_lib)
print(f"Σ_t ℓ_t over 8 steps, mean over 6 sequences: page {loss_page.item():.6f}, "
      f"library {loss_lib.item():.6f}")

# %% [markdown]
# ### Detaching $u_{t-1}$ is "letting the derivative pass through the expectation"
#
# Write the previous state as a function of the recognition parameters $\phi$,
# $u_{t-1} = \nu^\phi_{t-1}(y_{1:t-1})$. The total derivative of one step's loss has two parts:
#
# $$
# \frac{d\,\ell_t}{d\phi}
# = \underbrace{\frac{\partial \ell_t}{\partial \phi}\Big|_{u_{t-1}\ \text{fixed}}}_{\text{local}}
# + \underbrace{\frac{\partial \ell_t}{\partial u_{t-1}}
#   \frac{d\,\nu^{\phi}_{t-1}}{d\phi}}_{\text{through time}},
# \qquad
# \frac{d\,\nu^{\phi}_{t-1}}{d\phi} = \frac{\partial \nu_{t-1}}{\partial \phi}
# + \frac{\partial \nu_{t-1}}{\partial u_{t-2}} \frac{d\,\nu^{\phi}_{t-2}}{d\phi} .
# $$
#
# The second part unrolls through every earlier step: it is backpropagation through time. The
# poster reads the loss as an expectation of $\ell_t$ under the distribution of the pairs
# $(U_{t-1}, Y_t)$ that the filter produces, and moves the derivative inside it
# ({ref}`Sources §7.1 <sources-7-1>`). That ignores that the distribution depends on $\phi$,
# which is exactly the second part: what remains is the local gradient. In code it is one call,
# `u.detach()`. The generative parameters $\theta$ (the decoders) do not shape $u_{t-1}$, so
# their gradient has no through-time part at all.
#
# The check: the page's loss with the detach gives the gradient of the library's rVAE update
# (`RVAE.update`, which back-propagates into `p.grad`), and without it the gradient that
# `local_and_bptt_gradients` computes for the rVAE-BPTT.

# %%
params = dict(model.named_parameters())
g_local = torch.autograd.grad(rvae_window_loss(model, y_win, u0, eps, detach=True),
                              list(params.values()))
g_bptt = torch.autograd.grad(rvae_window_loss(model, y_win, u0, eps, detach=False),
                             list(params.values()))
model.zero_grad()
model.update(y_win, u0, gen())                                 # the library's local update
lib_local, lib_bptt = model.local_and_bptt_gradients(y_win, u0, gen())
for name, mine, lib in zip(params, g_local, lib_local, strict=True):
    torch.testing.assert_close(mine, params[name].grad)        # detach: the rVAE's update
    torch.testing.assert_close(mine, lib)
for mine, lib in zip(g_bptt, lib_bptt, strict=True):
    torch.testing.assert_close(mine, lib)                      # no detach: the rVAE-BPTT's


def cosine(a, b) -> float:
    a, b = torch.cat([x.flatten() for x in a]), torch.cat([x.flatten() for x in b])
    return (a @ b / (a.norm() * b.norm())).item()


enc = [i for i, n in enumerate(params) if n.startswith("rec_")]    # φ: the recognition model
dec = [i for i, n in enumerate(params) if not n.startswith("rec_")]  # θ: the decoders
for i in dec:
    torch.testing.assert_close(g_local[i], g_bptt[i])          # θ: no through-time part
cos_enc = cosine([g_local[i] for i in enc], [g_bptt[i] for i in enc])
cos_dec = cosine([g_local[i] for i in dec], [g_bptt[i] for i in dec])
print(f"cosine(local, BPTT) on this window: encoder {cos_enc:.3f}, decoders {cos_dec:.3f}")

# %% [markdown]
# Both gradients agree with the library's, parameter by parameter, and the decoders' gradients
# are the same with and without the detach. How far apart the encoder's two gradients drift
# during training is measured in {doc}`local_vs_bptt`.
#
# The local rule is a fixed-point method, as in the rEFH: the model is fitted to the states the
# filter produces, which changes the filter, which changes the states. It is not the gradient
# of any single objective, so nothing guarantees that it settles where BPTT would; the sections
# *What BPTT does to the rVAE* and *Table 1 at paper scale* compare the two.
#
# ### Why late fusion
#
# The generative model makes $U_{t-1}$ and $Y_t$ conditionally independent given $X_t$, so the
# exact posterior is additive in the two pieces of evidence:
#
# $$
# \log \hat p(x_t \mid u_{t-1}, y_t) = \log \hat p(x_t) + \log \hat p(u_{t-1} \mid x_t)
#   + \log \hat p(y_t \mid x_t) + \text{const}.
# $$
#
# The rEFH's posterior has this form, $\sigma(W_u u_{t-1} + W_y y_t + b_x)$. The poster
# "concatenates $U_{t-1}$ with $Y_t$ only after encoding" ({ref}`Sources §7.1 <sources-7-1>`):
# $y_t$ passes through its own encoder trunk, $h_t = \operatorname{enc}(y_t)$, which never sees
# $u_{t-1}$, and a fusion head maps $[h_t; u_{t-1}]$ to $\nu_t$ and
# $\log \operatorname{diag} \Upsilon_t$. In `tlr` the head (`RVAE.rec_head`) is a network with
# one hidden layer: linear, ELU, linear, where an ELU is an exponential linear unit of
# Clevert et al. (2016). It is nonlinear in $[h_t; u_{t-1}]$, so it can model interactions
# between $u_{t-1}$ and $y_t$, and the Gaussian it outputs need not have the additive form above.
# Late fusion is an inductive bias, not that form. The trunk summarises $y_t$ into $h_t$ before
# $y_t$ meets $u_{t-1}$, as the exact posterior's $\log \hat p(y_t \mid x_t)$ term summarises
# the evidence of $y_t$ alone. Interactions must then pass through $h_t$ and the head's one
# hidden layer: late fusion limits them but does not remove them. A practical bonus: the trunk
# does not depend on $u_{t-1}$, so at test time it runs on all steps at once and only the small
# fusion head is recurrent (`RVAE.filter`).

# %% [markdown]
# ### What the poster leaves open, and what `tlr` chooses
#
# The poster gives no sizes, no $\sigma$'s, no likelihood for spike counts and no training
# schedule ({ref}`Sources §7.2 <sources-7-2>`). The defaults of `RVAEConfig` and of the presets
# of the probabilistic population code (PPC) experiment, and why:
#
# | choice | poster | `tlr` | why |
# |---|---|---|---|
# | $\hat p(y_t \mid x_t)$ | Gaussian | Poisson, rate $e^{\eta(x_t)}$ | spike counts; the rEFH's choice |
# | encoder input | — | $\log(1 + y_t)$ | a fixed, invertible squashing of the counts' scale |
# | size of $x_t$ ($n_x$) | — | 2 | a position on a ring |
# | $\Sigma_u$ | $\sigma_x^2 I$, fixed | full $\Sigma_u(x_t)$, learned | see below |
# | $u_t$ | — | the posterior mean $\nu_t$ | as the rEFH's hidden means ({ref}`Sources §7.3 <sources-7-3>`) |
# | $u_0$ | — | the fixed point of $\nu = \nu(y_1, \nu)$ | in a VAE's latent space 0 is a definite state |
# | networks | — | one hidden layer of 128 ELUs per map | small inputs and outputs (15 counts, 2 latents) |
# | training | Adam, $10^{-4}$ | Adam $10^{-3}$, decayed, windows of 10 steps | $10^{-4}$ is very slow |
#
# > **$\Sigma_u$ decides whether the rVAE works at all.** With a small fixed $\sigma_u$, copying
# > $u_{t-1}$ into $x_t$ is cheap, and the latent fills with a self-sustaining memory of its own
# > past that drifts away from the data; with a large one the model ignores $u_{t-1}$ and
# > becomes ORDER 0. A learned $\sigma_u$ anneals itself between the two. A point on a ring needs
# > two latents, and the posterior mean then also scatters *across* the ring (a direction the
# > $y$-decoder ignores); with one $\sigma$ per axis that scatter swamps the precise along-ring
# > part of $u_{t-1}$, so the $u$-decoder outputs a full covariance $\Sigma_u(x_t)$
# > (`learn_sigma="cond"`).

# %%
print(RVAEConfig())
assert (RVAEConfig().n_obs, RVAEConfig().n_latent, RVAEConfig().n_units) == (15, 2, 128)  # table
for preset in (quick, PRESETS["paper"]):  # the table's Adam 1e-3 and windows of 10 steps
    assert (preset.vae.optim.name, preset.vae.optim.lr, preset.vae.window) == ("adam", 1e-3, 10)
print(quick.vae)  # the beta_* fields and restarts belong to the rVAE-β of the last sections

# %% [markdown]
# ### The TVAE: the transition-only control
#
# The poster's Table 1 has a "TVAE" row (9.5e-4) that it never defines. Its most plausible
# reading ({ref}`Sources §7.4 <sources-7-4>`) is the VAE analogue of the TRBM: the same encoder
# and $y$-decoder, but $u_{t-1}$ is a *conditioning input* to a learned prior instead of data to
# reconstruct,
#
# $$
# \hat p(x_t \mid u_{t-1}) = \mathcal N\big(\mu_p(u_{t-1}), \Sigma_p(u_{t-1})\big), \qquad
# \mathcal L_{\text{TVAE}} = \sum_t \mathbb E\big[-\log \hat p(y_t \mid x_t)\big]
#   + \mathrm{KL}\big(\check q(x_t \mid u_{t-1}, y_t)\,\big\|\,\hat p(x_t \mid u_{t-1})\big),
# $$
#
# trained with the same detached $u_{t-1}$. It models "merely the transition probabilities", the
# thing the poster's abstract contrasts its method with, and it is a deep Kalman filter
# ({ref}`Krishnan, Shalit & Sontag 2015 <ref-krishnan2015>`) truncated to one step. Two other
# readings are possible ({ref}`Sources §7.4 <sources-7-4>`): a sequential VAE trained *with*
# BPTT, or a VAE conditioned on the previous observation $y_{t-1}$. The TVAE of `tlr` is the
# first reading.
#
# ### The rVAE-BPTT: the same loss through time
#
# `RVAEConfig(bptt=True)` keeps the graph through $u_{t-1}$ inside each training window of 10
# steps (truncated BPTT; the state is detached between windows). Same networks, same loss, same
# data: the only difference is the through-time part of the gradient checked above. It is a
# control of this book, not a row of the poster.

# %% [markdown]
# ## Training on the population code (live)
#
# `run` trains and scores models on one seed; it is what the command line
# `python -m tlr run ppc --preset quick --seed 0 --models "KF-1,rVAE,TVAE"` calls, and here it
# runs with the live setting printed at the top. Each VAE sees
# 40 fresh trajectories of 1000 steps per epoch, cut into windows of 10 steps, one Adam update
# per window (the loss of {ref}`Sources §7.1 <sources-7-1>` summed over the window, averaged
# over the 40 trajectories). The position estimate is read out as for the rEFH: the circular
# centre of mass of the rates that the $y$-decoder predicts from $\nu_t$
# ({ref}`Sources §5.5 <sources-5-5>`). Here the rVAE and the TVAE train for the live setting's
# epochs; KF-1 is fitted by EM as in {doc}`lti_ppc`, and KF-true needs no fitting.

# %%
LIVE_MODELS = ["KF-1", "KF-true", "rVAE", "TVAE"]
ckpt_dir = tempfile.TemporaryDirectory()
results = run(LIVE_MODELS, LIVE, seed=SEED, progress=False, checkpoint_dir=ckpt_dir.name)
mse = {name: r["mse"] for name, r in results.items()}


def fmt(x: float | None, scale: float = 1e4, digits: int = 2) -> str:
    return "—" if x is None else f"{x * scale:.{digits}f}"


rows = ["| model | test MSE ($10^{-4}$ rad², live) | training s |", "|---|---:|---:|"]
rows += [f"| {name} | {fmt(r['mse'])} | {r['train_s']:.1f} |" for name, r in results.items()]
display(Markdown("\n".join(rows)))
assert mse["KF-true"] < mse["rVAE"] < 1.05 * mse["KF-1"]   # at KF-1's level, far from KF-true
assert mse["KF-true"] < mse["TVAE"] < 1.05 * mse["KF-1"]
# the numbers typed in the text: the poster's TVAE, the live setting and the data per epoch
assert TABLE_1["TVAE"] == 9.5e-4 and quick.vae.n_epochs == 120
assert FULL or LIVE.vae.n_epochs == 24
assert (LIVE.vae.n_traj, LIVE.vae.T, LIVE.vae.window) == (40, 1000, 10)

# %% [markdown]
# The learning curves (validation error, evaluated every few epochs) show where the short live
# run stands:

# %%
fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
for name, colour in (("rVAE", "C0"), ("TVAE", "C2")):
    info = results[name]["info"]
    ax.plot(info["epochs"], [m * 1e4 for m in info["curve"]], "o-", ms=3, color=colour,
            label=name)
for name, style in (("KF-1", "--"), ("KF-true", ":")):
    ax.axhline(mse[name] * 1e4, color="k", ls=style, lw=1, label=f"{name} (test)")
ax.set(xlabel="epoch", ylabel="validation MSE ($10^{-4}$ rad²)", ylim=(0, None))
ax.legend(fontsize=8, frameon=False, ncol=2)
plt.show()
display(Markdown(
    f"Both VAEs reach KF-1's level within the live run: the rVAE ends at "
    f"{mse['rVAE'] / mse['KF-1'] - 1:+.1%} and the TVAE at {mse['TVAE'] / mse['KF-1'] - 1:+.1%} "
    f"relative to KF-1 on the test set, and both stay about "
    f"{min(mse['rVAE'], mse['TVAE']) / mse['KF-true']:.1f} times above KF-true. The analyses "
    f"below use these live models; the paper-scale numbers are loaded at the end."))

# %% [markdown]
# We rebuild the two VAEs from their training checkpoints and check that they reproduce the
# table, so that the analysis below is about the models that were scored:

# %%
def load_vae(name: str) -> torch.nn.Module:
    """The trained model `run` checkpointed for ``name`` (the checkpoint records its config)."""
    return load_model(checkpoint_path(ckpt_dir.name, "ppc", LIVE, SEED, name)).eval()


vaes = {name: load_vae(name) for name in ("rVAE", "TVAE")}
test = test_data(quick, SEED)
s_hat = {name: com_readout(m, test.y, ppc) for name, m in vaes.items()}
for name, s in s_hat.items():
    assert math.isclose(torus_mse(s, test.position, ppc.period), mse[name], rel_tol=1e-9)
print("the loaded models reproduce the table")

# %% [markdown]
# ## Which order was learned?
#
# We run the probes of {doc}`refh_dynamics` on the two VAEs, next to KF-1 (first order) and
# KF-true (second order): a linear readout of the velocity $\dot s_t$ from each filter's state,
# fitted on one set of trajectories and scored by $R^2$ on the test set, and the lag $\tau$ of
# each position estimate, $\tilde s_t - s_t \approx -\tau \dot s_t \Delta t$. KF-1 is refitted
# exactly as `run` fits it.

# %%
train = train_data(quick, SEED)
kf1 = fit_kf(train.y, 1, lti, ppc, n_iter=LIVE.em_max_iter, tol=LIVE.em_tol,
             generator=make_generator(SEED, "ppc/em1-init"))
estimates = {"KF-1": run_kf(kf1.params, test.y, lti, ppc),
             "KF-true": kf_states(test.y, lti, ppc)[..., 0], **s_hat}
assert math.isclose(torus_mse(estimates["KF-1"], test.position, ppc.period), mse["KF-1"],
                    rel_tol=1e-9)
fit_set = train_data(quick, SEED, stream="ppc/rVAE/readout")
states = {
    "KF-1": (kf_states(fit_set.y, lti, ppc, kf1.params), kf_states(test.y, lti, ppc, kf1.params)),
    "KF-true": (kf_states(fit_set.y, lti, ppc), kf_states(test.y, lti, ppc)),
    **{name: (m.filter(fit_set.y), m.filter(test.y)) for name, m in vaes.items()},
}
v_r2 = {name: velocity_r2(f, fit_set.z[..., 1], t, test.z[..., 1])
        for name, (f, t) in states.items()}
lag = {name: lag_steps(s, test.position, test.z[..., 1], ppc.period, lti.dt)
       for name, s in estimates.items()}

GAP, STARTS = 20, (200, 450, 700, 950)             # silent gaps of 20 steps


def withheld(name: str, y: torch.Tensor) -> torch.Tensor:
    if name == "KF-1":
        return run_kf(kf1.params, y, lti, ppc)
    if name == "KF-true":
        return kf_states(y, lti, ppc)[..., 0]
    return com_readout(vaes[name], y, ppc)


slope, end_err = {}, {}
for name in estimates:
    gap_runs = [(t0, withheld(name, withhold(test.y, t0, GAP))) for t0 in STARTS]
    slope[name] = torch.tensor([gap_slope(s, test.position, t0, GAP, ppc.period)
                                for t0, s in gap_runs])
    end_err[name] = torch.cat([wrap_error(s[t0 + GAP - 1] - test.position[t0 + GAP - 1],
                                          ppc.period).abs() for t0, s in gap_runs])
rows = ["| filter | state size | velocity $R^2$ | lag $\\tau$ (steps) | gap slope | error at "
        "gap end (rad, median) |", "|---|---:|---:|---:|---:|---:|"]
rows += [f"| {n} | {states[n][1].shape[-1]} | {v_r2[n]:.3f} | {lag[n]:+.2f} | "
         f"{slope[n].mean():.2f} ± {slope[n].std():.2f} | {end_err[n].median():.2f} |"
         for n in estimates]
display(Markdown("\n".join(rows)))
assert max(abs(v_r2[n]) for n in vaes) < 0.1 and v_r2["KF-true"] > 0.9  # no velocity in the VAEs
assert min(lag[n] for n in vaes) > lag["KF-1"] - 0.1 > lag["KF-true"]     # they lag like KF-1
assert slope["KF-true"].mean() > 0.9
assert min(end_err[n].median() for n in vaes) > end_err["KF-1"].median()  # they drift off

# %% [markdown]
# A stretch of one test trajectory shows the lag: the VAEs' estimates trail the true position
# like KF-1's, where KF-true's keeps up.

# %%
t0, t1, b = 300, 420, 0
fig, ax = plt.subplots(figsize=(7, 3), layout="constrained")
ax.plot(range(t0, t1), test.position[t0:t1, b], "k", lw=2, label="true position $s_t$")
for name, style in (("KF-1", ":"), ("KF-true", "--"), ("rVAE", "-"), ("TVAE", "-")):
    s = test.position[t0:t1, b] + wrap_error(estimates[name][t0:t1, b] - test.position[t0:t1, b],
                                             ppc.period)  # the estimate's image nearest the truth
    ax.plot(range(t0, t1), s, style, lw=1.2, label=name)
ax.set(xlabel="step $t$", ylabel="position (rad)", title=f"test trajectory {b}")
ax.legend(fontsize=8, ncol=3)
plt.show()

# %% [markdown]
# Both VAEs behave as **first-order filters**. No linear map recovers the velocity from their
# state (the rEFH's state carries it, {doc}`refh_dynamics`), and they lag behind
# the moving mass at least as much as KF-1 does, where a filter that knew the velocity would not
# lag at all (KF-true).
#
# > The gap probe, which worked for the rEFH, says little here: the VAEs' gap slopes vary
# > widely from gap to gap (the ± is their standard deviation over four gaps). A silent step
# > lies far outside the training data, and the VAEs do not hold their estimate through it: by
# > the end of the gap they are further from the truth than KF-1, which simply stands still
# > (last column). Their encoders answer an input they never saw with a state that carries
# > them away. The velocity probe is linear and the state two-dimensional, so a velocity coded
# > non-linearly could escape it, but the lag cannot: a filter that used a velocity would not
# > lag.
#
# ### Where the advantage over KF-1 comes from
#
# KF-1 assumes the same observation noise at every step, but the population's gain $g_t$ varies
# from step to step, and the total spike count tells how reliable each step's centre of mass is
# ({ref}`Sources §2.5 <sources-2-5>`). A filter of the *same order* as KF-1 that knows this,
# KF-1's dynamics with KF-true's per-step noise $R_t = \sigma_{\text{tc}}^2/\sum_i y_t^i$
# (`run_kf(..., gain_aware=True)`), shows how much that alone is worth. Its process noise $Q$ is
# chosen on the training set from a grid around KF-1's:

# %%
q_grid = (kf1.params.Q[0, 0].item() * torch.logspace(-1, 1.5, 11)).tolist()


def kf1_gain_aware(q: float, y: torch.Tensor) -> torch.Tensor:
    params = kf1.params._replace(Q=torch.full_like(kf1.params.Q, q))
    return run_kf(params, y, lti, ppc, gain_aware=True)


train_mse = [torus_mse(kf1_gain_aware(q, train.y), train.position, ppc.period) for q in q_grid]
q_best = q_grid[min(range(len(q_grid)), key=train_mse.__getitem__)]
mse["KF-1 + R_t"] = torus_mse(kf1_gain_aware(q_best, test.y), test.position, ppc.period)
q_same = math.isclose(q_best, kf1.params.Q[0, 0].item(), rel_tol=1e-6)
print(f"KF-1: Q = {kf1.params.Q[0, 0].item():.2e}; gain-aware KF-1: Q = {q_best:.2e} "
      f"(best of {len(q_grid)} on the training set" + (": KF-1's own)" if q_same else ")"))
display(Markdown("\n".join(["| filter | order | test MSE ($10^{-4}$ rad², live) |",
                            "|---|---:|---:|"] + [
    f"| {n} | {o} | {fmt(mse[n])} |" for n, o in
    (("KF-1", 1), ("KF-1 + R_t", 1), ("rVAE", 1), ("TVAE", 1), ("KF-true", 2))])))
assert mse["KF-1 + R_t"] < min(mse["rVAE"], mse["TVAE"]) * 1.02
assert q_same                      # the text below: the grid keeps KF-1's own Q

# %% [markdown]
# The grid keeps KF-1's own $Q$, so the gain-aware filter differs from KF-1 only in its per-step
# $R_t$. It is at least as good as either VAE: their whole advantage over KF-1 lies within what
# a first-order filter gains from weighting each step by its spike count, and none of it needs
# dynamics. The TVAE's learned prior $\hat p(x_t \mid u_{t-1})$ *is*
# a first-order transition model, which is all either of them learned, and it gets it without
# having to reconstruct $u_{t-1}$ through a noisy decoder.

# %% [markdown]
# ## Why the rVAE does not learn the velocity
#
# The rEFH learned the velocity from the same kind of objective, the joint of $u_{t-1}$ and
# $y_t$; why not the rVAE? Look at what the velocity would buy it. The rVAE's only reward for
# carrying information about the past is the term $-\log \hat p(u_{t-1} \mid x_t)$. Given a
# latent that codes the current position, the rest of $u_{t-1}$ is the previous position
# estimate: the current one minus about one step of motion, plus the filter's own noise. A
# velocity in $x_t$ would predict the motion part. How large is it? We measure it on the trained
# rVAE: the residual of its $u$-decoder, $\Delta u_t = u_{t-1} - \mu_u(\nu_t)$, regressed on the
# true velocity $\dot s_t$ (an upper bound on what any velocity code could explain), and compare
# its information value with the per-step terms of the loss.

# %%
rvae = vaes["rVAE"]
with torch.no_grad():
    nu = rvae.filter(test.y)                                  # (T, B, 2)
    u_prev, x = nu[:-1], nu[1:]
    du = u_prev - rvae.u_dist(x).mean                         # Δu_t: what μ_u(x_t) misses
    v = test.z[1:, :, 1]                                      # the true velocity
    feats = torch.stack([v, torch.ones_like(v)], -1).reshape(-1, 2).double()
    target = du.reshape(-1, 2).double()
    coef = torch.linalg.lstsq(feats, target).solution
    explained = 1 - (target - feats @ coef).var(0) / target.var(0)  # per latent dimension
    # Gaussian residuals: explaining a fraction R² of a variance saves -½ log(1 - R²) nats
    nats_velocity = (-0.5 * torch.log1p(-explained.clamp(max=0.999))).sum().item()
    out = rvae.window(test.y[1:], nu[0], make_generator(SEED, "chapter/elbo"))[0]
terms = {k: getattr(out, k).mean().item() for k in ("kl", "nll_u", "nll_y")}
step = (test.z[..., 1].pow(2).mean().sqrt() * lti.dt).item()  # rms motion per step (rad)
display(Markdown(
    f"- the velocity explains {', '.join(f'{e:.1%}' for e in explained.tolist())} of the "
    f"variance of $\\Delta u_t$ (per latent dimension), worth at most {nats_velocity:.3f} nats "
    f"per step;\n- the loss terms per step: KL {terms['kl']:.2f}, "
    f"$-\\log \\hat p(u_{{t-1}} \\mid x_t)$ {terms['nll_u']:.2f}, "
    f"$-\\log \\hat p(y_t \\mid x_t)$ {terms['nll_y']:.2f} nats;\n"
    f"- the rms motion in one step is {step:.4f} rad, the rVAE's rms error "
    f"{math.sqrt(mse['rVAE']):.4f} rad."))
assert nats_velocity < 0.01 * terms["kl"] and step < math.sqrt(mse["rVAE"])
assert PRESETS["paper"].refh.n_hidden == 240     # the rEFH's u_{t-1} in the text below

# %% [markdown]
# The velocity explains a few per cent of what the $u$-decoder cannot predict, worth a few
# hundredths of a nat per step or less: under a hundredth of the KL term the model pays every
# step. The motion in one step is smaller than the filter's own error, so $u_{t-1}$ is mostly
# noise around the current position, and the objective offers a velocity almost nothing. With
# a two-dimensional latent there is also no spare dimension for it.
#
# > Compare the rEFH. Its $u_{t-1}$ is 240 hidden-unit probabilities, not a two-number
# > position estimate, and reconstructing it rewards $x_t$ for everything the previous state
# > knew, including how it was moving; and its prior has no KL price per unit of information.
# > That asymmetry, rather than the local rule, is the best account we have of why one learned
# > second-order dynamics and the other did not. {ref}`A later section <rvae-second-order>`
# > changes the price of the KL and finds one that puts a velocity into the state, in some
# > seeds.

# %% [markdown]
# ## What BPTT does to the rVAE
#
# BPTT adds one thing to the local gradient: the encoder is now rewarded for making the *next*
# step's loss small through $u_{t-1}$. The cheapest way to make $-\log \hat p(u_{t-1} \mid x_t)$
# small is to make $u_{t-1}$ easy to predict, and the encoder controls that directly, since
# $u_{t-1} = \nu_{t-1}$ is its own output. To the local rule $u_{t-1}$ is data, which the model
# cannot change to fit itself.
#
# A controlled experiment shows it. From the live rVAE above, we train two copies for a few more
# epochs on the same fresh data, at the learning rate where the live run stopped: one with the
# local rule, one with BPTT inside each window of 10 steps. Both start from the same parameters;
# only the through-time part of the gradient differs.

# %%
N_MORE, N_TRAJ_MORE = 6, 20
lr_end = LIVE.vae.optim.lr / LIVE.vae.optim.decay ** (LIVE.vae.n_epochs - 1)


def continued(bptt: bool) -> RVAE:
    m = RVAE(replace(rvae.config, bptt=bptt))
    m.load_state_dict(rvae.state_dict())
    fit(m, lambda e: epoch_data(LIVE, SEED, "rVAE-continued", e, N_TRAJ_MORE, LIVE.vae.T),
        N_MORE, OptimConfig("adam", lr=lr_end), make_generator(SEED, "book/rvae/continued"),
        window=LIVE.vae.window, progress=False)
    return m.eval()


def per_step_terms(m: RVAE) -> dict[str, float]:
    with torch.no_grad():
        nu_m = m.filter(test.y)
        o = m.window(test.y[1:], nu_m[0], make_generator(SEED, "chapter/elbo"))[0]
        du_m = nu_m[:-1] - m.u_dist(nu_m[1:]).mean
    return {"nll_u": o.nll_u.mean().item(), "kl": o.kl.mean().item(),
            "nll_y": o.nll_y.mean().item(), "du": du_m.pow(2).sum(-1).mean().sqrt().item(),
            "mse": torus_mse(com_readout(m, test.y, ppc), test.position, ppc.period)}


arms = {"start (live rVAE)": rvae, "+ local rule": continued(False), "+ BPTT": continued(True)}
terms_arm = {name: per_step_terms(m) for name, m in arms.items()}
rows = ["| model | $-\\log \\hat p(u_{t-1} \\mid x_t)$ | KL | $-\\log \\hat p(y_t \\mid x_t)$ "
        "| rms $\\Delta u_t$ | test MSE ($10^{-4}$) |", "|---|---:|---:|---:|---:|---:|"]
rows += [f"| {n} | {d['nll_u']:.2f} | {d['kl']:.2f} | {d['nll_y']:.2f} | {d['du']:.4f} | "
         f"{fmt(d['mse'])} |" for n, d in terms_arm.items()]
drop = terms_arm["+ local rule"]["nll_u"] - terms_arm["+ BPTT"]["nll_u"]
mse_arm = {n: d["mse"] for n, d in terms_arm.items()}
display(Markdown(
    f"Per-step averages on the test set after {N_MORE} more epochs of {N_TRAJ_MORE} "
    "trajectories (live)\n\n" + "\n".join(rows) + "\n\n"
    f"From the same start, the $u$-term after BPTT is {drop:.2f} nats per step lower than after "
    f"the local rule. Both arms end with a higher test MSE than their start "
    f"({fmt(mse_arm['+ local rule'])} with the local rule, {fmt(mse_arm['+ BPTT'])} with BPTT, "
    f"from {fmt(mse_arm['start (live rVAE)'])}), and both above KF-1's {fmt(mse['KF-1'])}."))
assert drop > 0.3                       # BPTT makes the past easier to reconstruct
assert N_MORE == 6 and LIVE.vae.window == 10   # the text: windows of 10 steps, "six epochs"
assert terms_arm["+ BPTT"]["du"] < terms_arm["+ local rule"]["du"]
assert min(mse_arm["+ local rule"], mse_arm["+ BPTT"]) > max(mse_arm["start (live rVAE)"],
                                                               mse["KF-1"])  # both got worse

# %%
fig, ax = plt.subplots(figsize=(5.5, 2.8), layout="constrained")
names = list(terms_arm)
for k, (key, label) in enumerate((("nll_u", r"$-\log \hat p(u_{t-1} \mid x_t)$"),
                                  ("kl", "KL"))):
    ax.bar([i + 0.38 * k for i in range(len(names))], [terms_arm[n][key] for n in names],
           width=0.36, label=label, color=f"C{k + 3}")
ax.axhline(0, color="k", lw=0.6)
ax.set_xticks([i + 0.19 for i in range(len(names))], names)
ax.set_ylabel("nats per step (test set)")
ax.legend(fontsize=8, frameon=False)
plt.show()

# %% [markdown]
# With BPTT the $u$-term falls well below where the local rule keeps it (the drop is stated
# under the table), and the residual $\Delta u_t$ shrinks: the encoder has made its own past
# easier to reconstruct. That is a legitimate way to lower the joint loss, which never asked
# $u_{t-1}$ to be a good *position* estimate, only a predictable one.
#
# Neither arm improved the position. Both ended with a higher test error than the live rVAE
# they started from, and both above KF-1. Six epochs at the live run's last learning rate
# therefore cannot show what BPTT does to the position error; the saved paper-scale runs below
# show it.

# %% [markdown]
# ## Table 1 at paper scale (loaded)
#
# The `paper` preset trains each VAE for 240 epochs (Adam $10^{-3}$, divided by 1.02 per epoch);
# the table gives each model's median training time per seed on one CPU core. It collects the
# saved runs of the VAEs with the harmonium and Kalman runs of {doc}`refh_dynamics`, every seed
# saved, through `tlr.sweep.summary_rows` ({doc}`reproducing`); each column is the mean ± sd
# over the seeds found. A VAE run that diverged has no score; its error names the
# epoch and the update (`tlr.train`). The commands that regenerate the files are in the
# collapsed cell below the table.

# %%
ppc_root = tlr.results.root() / "ppc"
paper = summary_rows(ppc_root, "ppc", preset="paper")
paper_s = summary_rows(ppc_root, "ppc", preset="paper", metric="train_s", agree=False)
VAES = ("rVAE", "TVAE", "rVAE-BPTT")
runs = {name: saved for name in tlr.results.available("ppc/*")
        if (saved := tlr.results.load(name)).get("preset") == "paper"
        and not saved.get("overrides")
        and any(m in saved.get("results", {}) or m in saved.get("failed", {}) for m in VAES)}
diverged = {m: [f"seed {saved['seed']}: {saved['failed'][m]}" for saved in runs.values()
                if m in saved.get("failed", {})] for m in VAES}
rows = ["| model | paper preset, mean ± sd | seeds | diverged | train min (median) | poster |",
        "|---|---:|---:|---:|---:|---:|"]
for name in [*TABLE_1, "KF-true", "rVAE-BPTT"]:
    if name in paper:
        r = paper[name]
        sd = f" ± {fmt(r['sd'])}" if r["sd"] is not None else ""
        median_min = statistics.median(paper_s[name]["values"]) / 60
        rows.append(f"| {name} | {fmt(r['mean'])}{sd} | {r['n']} | "
                    f"{len(diverged.get(name, []))} | {median_min:.1f} | "
                    f"{fmt(TABLE_1.get(name), 1e4, 1)} |")
display(Markdown("MSE in units of $10^{-4}$ rad² (loaded; `tlr.sweep.summary_rows` over every "
                 "saved seed)\n\n" + "\n".join(rows)))
for name, errs in diverged.items():
    if errs:
        print(f"{name} diverged: " + "; ".join(errs))
paper_vae = PRESETS["paper"].vae     # the text above: 240 epochs, Adam 1e-3 divided by 1.02
assert (paper_vae.n_epochs, paper_vae.optim.lr, paper_vae.optim.decay) == (240, 1e-3, 1.02)

# %% tags=["hide-cell"]
# Provenance of the saved runs (collapsed in the book).
rows = ["| file | seed | git | started | wall time (min) | command |",
        "|---|---:|---|---|---:|---|"]
for run_name, res in runs.items():
    p = res["provenance"]
    command = short_command(p["command"], json=f"results/{run_name}.json",
                            checkpoint_dir="runs/ckpt")
    rows.append(f"| `{run_name}` | {res['seed']} | `{short_commit(p['git'])}` | "
                f"{p['started'][:10]} | "
                f"{p.get('wall_s', float('nan')) / 60:.1f} | `{command}` |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# Seed by seed, each VAE against KF-1 on the same seed (a seed fixes the test set):

# %%
seed_mse = {m: dict(zip(r["seeds"], r["values"], strict=True)) for m, r in paper.items()}
per_seed = {}
for seed, kf1_seed in seed_mse["KF-1"].items():  # a seed fixes the test set: same trajectories
    if seed in seed_mse["rVAE"]:
        per_seed[seed] = {n: seed_mse[n][seed] / kf1_seed - 1 for n in VAES
                          if seed in seed_mse.get(n, {})} | {"KF-1": kf1_seed}
rows = ["| seed | KF-1 ($10^{-4}$) | rVAE vs KF-1 | TVAE vs KF-1 | rVAE-BPTT vs KF-1 (— not run) |",
        "|---:|---:|---:|---:|---:|"]
for seed, d in sorted(per_seed.items()):
    failed = {n for n in VAES if any(e.startswith(f"seed {seed}:") for e in diverged[n])}
    rel = [f"{d[n]:+.1%}" if n in d else "diverged" if n in failed else "—" for n in VAES]
    rows.append(f"| {seed} | {fmt(d['KF-1'])} | " + " | ".join(rel) + " |")
display(Markdown("\n".join(rows)))
assert len(per_seed) >= 3
rvae_wins = sum(d["rVAE"] < 0 for d in per_seed.values())
tvae_wins = sum(d["TVAE"] < 0 for d in per_seed.values() if "TVAE" in d)
assert all(d["rVAE"] > -0.1 for d in per_seed.values())  # never 10% better than KF-1
bptt_scored = [d["rVAE-BPTT"] for d in per_seed.values() if "rVAE-BPTT" in d]
assert all(r > 1 for r in bptt_scored)  # where it trained, more than twice KF-1's error
rvae_mean = paper["rVAE"]["mean"]
rel = [d["rVAE"] for d in per_seed.values()]
assert rvae_mean > paper["KF-1"]["mean"] and rvae_mean > TABLE_1["rVAE"]  # the prose below
assert TABLE_1["rVAE"] == 5.3e-4 and TABLE_1["TVAE"] == 9.5e-4            # typed below
display(Markdown(
    f"At paper scale the rVAE beats KF-1 on {rvae_wins} of {len(per_seed)} seeds, by at most "
    f"{-min(rel):.1%}; on the others its error is up to {max(rel):.1%} above KF-1's. It never "
    f"beats the first-order filter by a tenth. Its mean, {rvae_mean * 1e4:.2f}e-4, is "
    f"{'above' if rvae_mean > TABLE_1['rVAE'] else 'below'} the poster's "
    f"{TABLE_1['rVAE'] * 1e4:.1f}e-4. The TVAE beats KF-1 on {tvae_wins} of "
    f"{sum('TVAE' in d for d in per_seed.values())} seeds. The rVAE-BPTT diverged on "
    f"{len(diverged.get('rVAE-BPTT', []))} of {len(diverged.get('rVAE-BPTT', [])) + len(bptt_scored)}"
    f" seeds and ended at "
    + ", ".join(f"{1 + r:.1f}" for r in bptt_scored)
    + " times KF-1's error where it trained."))

# %% [markdown]
# At paper scale the rVAE is no better than KF-1: worse on average, with the widest spread of
# any row, and far from the rEFH; its state holds no velocity (the rVAE-β table below). The
# BPTT twin, which can shape its own past, is much worse where it trains at all.
#
# > Three findings differ from the poster's Table 1. Our rVAE lies above KF-1 on average, its
# > mean above the poster's 5.3e-4 and its spread the widest of the table. The poster puts the
# > TVAE at 9.5e-4, near
# > ORDER 0, with the rVAE clearly ahead of it; the TVAE of `tlr`, read as the transition-only
# > control, learns the same first-order filter as the rVAE and is at least as good. Either the
# > poster's TVAE is a different model ({ref}`Sources §7.4 <sources-7-4>` lists the
# > alternatives) or it was trained differently; the poster does not say. And no rVAE trained
# > on the poster's objective learns second-order dynamics here; the next section changes the
# > objective. The verdicts on the poster's claims, with the evidence of the other chapters, are
# > collected in the {doc}`scorecard`.

# %% [markdown]
# (rvae-second-order)=
# ## Pricing the KL below 1: a velocity in the rVAE's state (rVAE-β)
#
# This section, up to the summary, is a sequence of experiments on the price of the KL term,
# each closed by its finding: the β-weighted loss and its runs on five seeds at paper scale;
# three initialisations per seed, one kept on validation; the constant-β runs that the schedule
# is compared with; $u_{t-1}$ scored as uncertain data, which asks what carries the velocity;
# and free bits, with one and with three initialisations per seed. A first reading can skip
# to the {ref}`summary <rvae-summary>`.
#
# The information budget prices every nat the latent carries at one nat of reconstruction, the
# ELBO's exchange rate, and at that rate a velocity does not pay. The rate is a choice. The
# β-VAE of Higgins et al. (2017) weights the KL term by a constant $\beta$. The **rVAE-β** of
# `tlr` does the same to the rVAE and keeps everything else: the local rule, the Poisson
# likelihood, the learned $\Sigma_u$, the training data and the optimiser. This section derives
# what the weight changes, checks the library's rVAE-β against a loss written in the page, and
# reads its saved paper-scale runs seed by seed, with the plain rVAE as the reference.
#
# ### The β-weighted loss
#
# Write the two parts of $\ell_t$ as a *distortion* and a *rate* (calligraphic letters, not the
# Kalman filter's $R_t$):
#
# $$
# \mathcal D_t = \mathbb E_{x_t \sim \check q}\big[-\log \hat p(u_{t-1}, y_t \mid x_t)\big]
#   = \mathbb E_{x_t \sim \check q}\big[-\log \hat p(u_{t-1} \mid x_t)
#     - \log \hat p(y_t \mid x_t)\big],
# \qquad
# \mathcal R_t = \mathrm{KL}\big(\check q(x_t \mid u_{t-1}, y_t)\,\big\|\,\hat p(x_t)\big),
# $$
#
# where the pair's likelihood factorises because $U_{t-1}$ and $Y_t$ are conditionally
# independent given $X_t$; the ELBO's step loss is $\ell_t = \mathcal D_t + \mathcal R_t$. The
# rVAE-β weights the rate:
#
# $$
# \ell_t^\beta = \mathcal D_t + \beta(n)\, \mathcal R_t,
# \qquad
# \beta(n) = \beta_{\text{start}} + (\beta_{\text{end}} - \beta_{\text{start}})
#   \min\!\Big(1, \frac{n}{n_\beta}\Big),
# $$
#
# where $n = 0, 1, \dots$ counts the updates made before the current one: $\beta$ rises linearly
# from $\beta_{\text{start}}$ to $\beta_{\text{end}}$ over the first $n_\beta$ updates and then
# stays at $\beta_{\text{end}}$ ($n_\beta = 0$ means a constant $\beta_{\text{end}}$). In
# `RVAEConfig` these are `kl_weight0`, `kl_weight` and `kl_warmup`; the counter $n$ is the
# model's buffer `n_updates`, which `update` advances and a checkpoint keeps. This $\beta$ is not
# Adam's $\beta_1$, $\beta_2$. The terms are those of the loss written out above, $u_{t-1}$ is
# still detached, and the state handed on is still $\nu_t$.
#
# **What the weight does to the bound.** Since $\mathcal R_t \ge 0$,
# $\ell_t^\beta = \ell_t - (1 - \beta)\,\mathcal R_t \le \ell_t$ for $\beta \le 1$. The ELBO
# guarantees $\ell_t \ge -\log \hat p(u_{t-1}, y_t)$, but $\ell_t^\beta$ can fall below that: for
# $\beta < 1$ it is no longer a bound on the negative log-likelihood of the pair, and its minimum
# is not a maximum-likelihood fit. It is the Lagrangian of a constrained problem, the least
# distortion at a given rate budget $\mathcal R_{\max}$ (a constant, not the rate of a step),
#
# $$
# \min_{\theta, \phi}\ \mathcal D_t \ \ \text{subject to}\ \ \mathcal R_t \le \mathcal R_{\max}
# \qquad\longrightarrow\qquad
# \mathcal D_t + \beta\,(\mathcal R_t - \mathcal R_{\max}),
# $$
#
# with $\beta$ as the multiplier: at an optimum, one more nat of rate lowers the distortion by
# $\beta$ nats, the slope of the rate–distortion curve. This is the reading of Alemi et al.
# (2018), and the form of the information bottleneck of Tishby et al. (1999). For fixed
# decoders, completing the KL,
# $\ell_t^\beta = \beta\,\mathrm{KL}\big(\check q \,\big\|\, \hat p(x_t)\,
# \hat p(u_{t-1}, y_t \mid x_t)^{1/\beta} / Z\big) - \beta \log Z$, shows which recognition
# model minimises it:
#
# $$
# \check q^\ast(x_t) \propto \hat p(x_t)\,\big[\hat p(u_{t-1} \mid x_t)\,
#   \hat p(y_t \mid x_t)\big]^{1/\beta},
# $$
#
# the posterior with both likelihoods raised to the power $1/\beta > 1$. It trusts its evidence,
# its own past $u_{t-1}$ included, more than Bayes' rule would.
#
# **The information budget at price $\beta$.** A feature is worth coding in $x_t$ when the
# distortion it saves exceeds $\beta$ times the rate it costs. The budget above measured the first
# kind of saving a velocity offers: what it predicts about the present and about the position
# part of the past, a few hundredths of a nat per step: a weak incentive at any $\beta$. The second kind of saving is where
# $\beta$ matters. A velocity has to be carried from step to step, and the previous state
# $u_{t-1} = \nu_{t-1}$ already holds the previous velocity estimate, which barely changes in one
# step. A coordinate $j$ of $x_t$ that copies it with posterior variance $\Upsilon_t^{jj}$ costs
# about $\mathcal R_t^j = -\frac12 \log \Upsilon_t^{jj}$ nats of rate, its part of
# $\mathcal R_t$ (when its mean is spread like the prior), and the $u$-decoder reads it back off
# $x_t$, which saves about the same $\mathcal R_t^j$ nats of $-\log \hat p(u_{t-1} \mid x_t)$.
# At $\beta = 1$ such a memory is neutral: the model gains nothing by carrying a velocity and
# loses nothing by dropping it, so the local rule has a fixed point without one, where the rVAEs
# above ended. At price $\beta$ the same memory earns $(1 - \beta) \mathcal R_t^j$ nats per step.
# Lowering $\beta$ lowers the price of a velocity, and of every other memory.
#
# **Why a warm-up, and why three latents.** A low $\beta$ pays for any self-sustaining memory,
# not only a correct one. The sharpened posterior $\check q^\ast$ leans on $u_{t-1}$ more than the
# data warrant, the latent fills with a memory of its own past that drifts from the data (the
# failure of a small fixed $\sigma_u$ described above), and the position estimate suffers. The
# intent of the schedule is to use a low $\beta$ only to get started: at $\beta_{\text{start}}$ carrying a velocity
# pays well while the encoder is still forming; $\beta$ then rises towards 1, where the KL prices
# drift almost as the ELBO does and the position regains its precision; and it stays at
# $\beta_{\text{end}}$, just below 1, so that the velocity still earns
# $(1 - \beta_{\text{end}}) \mathcal R_t^j$. Annealing a KL weight is the practice of
# Bowman et al. (2016), who raise it from 0 to 1 so that a text VAE's decoder does not learn to
# ignore its latent; here the end point stays below 1. The latent has three dimensions: the
# position on the ring takes two (the plain rVAE's $n_x = 2$), and a velocity needs a third.
#
# The setting that the name `"rVAE-β"` stands for is the dictionary `RVAE_BETA` of the model
# registry, `tlr.models.registry`, which `build_model("rVAE-β")` applies to `RVAEConfig`; "the
# registry's" setting, schedule or rVAE-β means it below. The setting, and where its warm-up
# ends in the two presets (an epoch has one update per training window of each batch of
# trajectories):

# %%
beta_model = build_model("rVAE-β", generator=make_generator(SEED, "book/rvae/beta-init"),
                         n_obs=ppc.n_neurons)                 # untrained, for the check below
beta_cfg = beta_model.config
assert beta_cfg == RVAEConfig(n_obs=ppc.n_neurons, **RVAE_BETA)


def updates_per_epoch(preset) -> int:
    """Adam updates per epoch of a PPC preset's VAEs: one per window of each trajectory batch."""
    return preset.vae.T // preset.vae.window


paper_preset = PRESETS["paper"]
n_paper = paper_preset.vae.n_epochs * updates_per_epoch(paper_preset)
display(Markdown(
    f"$n_x = {beta_cfg.n_latent}$, $\\beta_{{\\text{{start}}}} = {beta_cfg.kl_weight0}$, "
    f"$\\beta_{{\\text{{end}}}} = {beta_cfg.kl_weight}$, $n_\\beta = {beta_cfg.kl_warmup}$ "
    f"updates, free bits {beta_cfg.free_bits} (off). The warm-up ends at epoch "
    f"{beta_cfg.kl_warmup // updates_per_epoch(paper_preset)} of the `paper` preset's "
    f"{paper_preset.vae.n_epochs} ({beta_cfg.kl_warmup / n_paper:.0%} of its {n_paper} updates) "
    f"and at epoch {beta_cfg.kl_warmup // updates_per_epoch(quick)} of the `quick` preset's "
    f"{quick.vae.n_epochs}."))

# %% [markdown]
# In code, the β-weighted step loss reuses the terms of `rvae_step_terms` above; only the weight
# of the KL changes:

# %%
def beta_at(n: int, beta_start: float, beta_end: float, n_beta: int) -> float:
    """β(n): linear from beta_start to beta_end over the first n_beta updates, then beta_end."""
    if n_beta == 0:
        return beta_end
    return beta_start + (beta_end - beta_start) * min(1.0, n / n_beta)


def rvae_beta_step_loss(model: RVAE, y_t, u_prev, eps, beta: float):
    """ℓ_t^β = D_t + β R_t per sequence (B,), and ν_t."""
    kl, nll_u, nll_y, nu = rvae_step_terms(model, y_t, u_prev, eps)
    return nll_u + nll_y + beta * kl, nu


def rvae_beta_window_loss(model: RVAE, y, u0, eps, beta: float):
    """Σ_t ℓ_t^β over a window y (T, B, n_y) from u0, u_{t-1} detached, batch mean."""
    u, total = u0, 0.0
    for t in range(y.shape[0]):
        loss_t, u = rvae_beta_step_loss(model, y[t], u.detach(), eps[t], beta)
        total = total + loss_t
    return total.mean()

# %% [markdown]
# We check it against the library on an untrained rVAE-β built with the registry's setting, on
# the eight steps and six sequences used above, with the model's update counter set to the start
# of the warm-up, its middle, its end and the end of paper-scale training. At the start we also
# check the gradient of one update, which must advance the counter by one.

# %%
schedule = (beta_cfg.kl_weight0, beta_cfg.kl_weight, beta_cfg.kl_warmup)
u0_beta = beta_model.start_state(y_win[0])
eps_beta = torch.randn((*y_win.shape[:2], beta_cfg.n_latent), generator=gen())
rows = ["| update $n$ | paper epoch | $\\beta(n)$, page | `kl_weight()`, library | "
        "$\\sum_t \\ell_t^\\beta$, page | page $-$ library |", "|---:|---:|---:|---:|---:|---:|"]
for n in (0, beta_cfg.kl_warmup // 2, beta_cfg.kl_warmup, n_paper):
    beta_model.n_updates.fill_(n)
    beta = beta_at(n, *schedule)
    assert math.isclose(beta_model.kl_weight(), beta, rel_tol=1e-12)
    page = rvae_beta_window_loss(beta_model, y_win, u0_beta, eps_beta, beta)
    lib, _ = beta_model.sequence_loss(y_win, u0_beta, gen())
    torch.testing.assert_close(page, lib)
    rows.append(f"| {n} | {n / updates_per_epoch(paper_preset):.0f} | {beta:.4f} | "
                f"{beta_model.kl_weight():.4f} | {page.item():.3f} | {(page - lib).item():+.0e} |")
    if n == 0:  # one library update: the page's gradient, and the clock moves on
        grads = torch.autograd.grad(page, list(beta_model.parameters()))
        beta_model.zero_grad()
        beta_model.update(y_win, u0_beta, gen())
        assert int(beta_model.n_updates) == 1
        for mine, p in zip(grads, beta_model.parameters(), strict=True):
            torch.testing.assert_close(mine, p.grad)
display(Markdown("\n".join(rows)))

# %% [markdown]
# The page's $\beta(n)$ and loss agree with the library's at every point of the schedule, and so
# does the gradient of an update.
#
# ### Five seeds at paper scale (loaded)
#
# The rVAE-β was trained with the `paper` preset (240 epochs, the same data, optimiser and
# learning-rate decay as the plain rVAE) on the five seeds of Table 1, each run with KF-1 and
# KF-true on the same test set. Its runs record the velocity probe of the section "Which order
# was learned?" (`velocity_r2` in each file's details). Next to them: KF-1, the plain rVAE and
# the rEFH from the Table 1 runs above, and the gain-aware KF-1 of "Where the advantage over KF-1
# comes from", refitted here on each seed's training set (a few seconds per seed).
#
# What the rest of the chapter calls **the velocity target** is a velocity $R^2 \ge 0.5$ **and**
# a test MSE below KF-1's, on the same seed: the state carries a velocity, and the filter beats
# the fitted first-order one. It is weaker than the {doc}`scorecard`'s test of second-order
# dynamics, which asks that a model close at least half of the gap between KF-1 and the fitted
# second-order filter KF-2 in every seed, $f_{\text{gap}} \ge 1/2$ with
#
# $$
# f_{\text{gap}} = \frac{\mathrm{MSE}_{\text{KF-1}} - \mathrm{MSE}}
#          {\mathrm{MSE}_{\text{KF-1}} - \mathrm{MSE}_{\text{KF-2}}} .
# $$
#
# A run whose state carries a velocity meets the velocity target with any
# $f_{\text{gap}} > 0$. The per-seed tables below give $f_{\text{gap}}$ beside it.

# %%
R2_TARGET = 0.5


def gap_fraction(mse_model: float, seed: int) -> float:
    """f: the fraction of the KF-1-to-KF-2 gap that a test MSE closes on a paper seed, against
    the Table 1 runs' KF-1 and KF-2 of the same test set (`tlr.evaluation.order.gap_fraction`,
    the scorecard's f)."""
    return order_gap_fraction(mse_model, seed_mse["KF-1"][seed], seed_mse["KF-2"][seed])


beta_files = {name: tlr.results.load(name) for name in tlr.results.available("ppc/rvae_beta/*")}
beta_paper = {r["seed"]: r for r in beta_files.values()
              if r["preset"] == "paper" and not r["overrides"]}
beta_variants = [r for r in beta_files.values() if r["preset"] == "paper" and r["overrides"]]
beta_quick = {r["seed"]: r for r in beta_files.values() if r["preset"] == "quick"}
seeds = sorted(beta_paper)
assert paper_preset.lti == lti and paper_preset.ppc == ppc  # the same data model as above
assert paper_preset.vae.n_epochs == 240                     # the text above
for s, r in beta_paper.items():
    assert r["details"]["rVAE-β"]["updates"] == n_paper
    # the same test set and the same EM fit as the Table 1 runs: the same KF-1 error
    assert math.isclose(r["results"]["KF-1"]["mse"], seed_mse["KF-1"][s], rel_tol=1e-9)
    assert r["results"]["rVAE-β"]["mse"] == seed_mse["rVAE-β"][s]   # what summary_rows read


def gain_aware_kf1_mse(seed: int) -> float:
    """Test MSE of the gain-aware KF-1 on a paper seed, Q re-tuned on its training set as above."""
    tr, te = train_data(paper_preset, seed), test_data(paper_preset, seed)
    params = fit_kf(tr.y, 1, lti, ppc, n_iter=paper_preset.em_max_iter, tol=paper_preset.em_tol,
                    generator=make_generator(seed, "ppc/em1-init")).params
    assert math.isclose(torus_mse(run_kf(params, te.y, lti, ppc), te.position, ppc.period),
                        seed_mse["KF-1"][seed], rel_tol=1e-6)  # the saved KF-1, refitted

    def aware(q: float, y: torch.Tensor) -> torch.Tensor:
        return run_kf(params._replace(Q=torch.full_like(params.Q, q)), y, lti, ppc,
                      gain_aware=True)

    grid = (params.Q[0, 0].item() * torch.logspace(-1, 1.5, 11)).tolist()
    fit_mse = [torus_mse(aware(q, tr.y), tr.position, ppc.period) for q in grid]
    best = min(range(len(grid)), key=fit_mse.__getitem__)
    assert 0 < best < len(grid) - 1                           # not at the edge of the grid
    return torus_mse(aware(grid[best], te.y), te.position, ppc.period)


def rerun_state(folder: str, name: str, seed: int) -> tuple[float, float]:
    """(velocity R², lag) of ``name``'s paper run of ``seed``, repeated with the velocity probe
    and the lag (the same test MSE as the Table 1 run, bit for bit)."""
    rerun = tlr.results.load(f"ppc/{folder}/paper_seed{seed}")
    assert rerun["results"][name]["mse"] == seed_mse[name][seed]
    return rerun["details"][name]["velocity_r2"], rerun["details"][name]["lag_steps"]


plain_probe, plain_lag, refh_probe, refh_lag = {}, {}, {}, {}
for s in seeds:
    plain_probe[s], plain_lag[s] = rerun_state("rvae_paper", "rVAE", s)
    refh_probe[s], refh_lag[s] = rerun_state("refh_paper", "rEFH", s)

seed_rows = {}
for s in seeds:
    r = beta_paper[s]
    seed_rows[s] = {"KF-1": seed_mse["KF-1"][s], "KF-1 + R_t": gain_aware_kf1_mse(s),
                    "rVAE": seed_mse["rVAE"][s], "rVAE-β": r["results"]["rVAE-β"]["mse"],
                    "rEFH": seed_mse["rEFH"][s], "KF-true": r["results"]["KF-true"]["mse"],
                    "r2": r["details"]["rVAE-β"]["velocity_r2"], "r2 rVAE": plain_probe[s],
                    "r2 rEFH": refh_probe[s],
                    "r2 KF-1": r["details"]["KF-1"]["velocity_r2"],
                    "r2 KF-true": r["details"]["KF-true"]["velocity_r2"],
                    "train_s": r["results"]["rVAE-β"]["train_s"]}


def target_mark(r2: float, mse_model: float, mse_kf1: float) -> str:
    misses = [what for what, ok in (("R²", r2 >= R2_TARGET), ("MSE", mse_model < mse_kf1))
              if not ok]
    return "✓" if not misses else "✗ " + " and ".join(misses)


MSE_COLS = ("KF-1", "KF-1 + R_t", "rVAE", "rVAE-β", "rEFH", "KF-true")
for s, d in seed_rows.items():
    d["f"] = gap_fraction(d["rVAE-β"], s)
rows = ["| seed | " + " | ".join(MSE_COLS) + " | velocity $R^2$, rVAE | velocity $R^2$, rVAE-β "
        "| velocity $R^2$, rEFH | rVAE-β training (min) | $f_{\\text{gap}}$, rVAE-β | velocity target met |",
        "|---:|" + "---:|" * (len(MSE_COLS) + 5) + ":---:|"]
for s, d in seed_rows.items():
    rows.append(f"| {s} | " + " | ".join(fmt(d[c]) for c in MSE_COLS)
                + f" | {d['r2 rVAE']:.3f} | {d['r2']:.2f} | {d['r2 rEFH']:.2f} | "
                + f"{d['train_s'] / 60:.1f} | {d['f']:.2f} | "
                + target_mark(d["r2"], d["rVAE-β"], d["KF-1"]) + " |")
rows.append("| mean | " + " | ".join(fmt(statistics.mean(d[c] for d in seed_rows.values()))
                                     for c in MSE_COLS)
            + f" | {statistics.mean(d['r2 rVAE'] for d in seed_rows.values()):.3f}"
            + f" | {statistics.mean(d['r2'] for d in seed_rows.values()):.2f}"
            + f" | {statistics.mean(d['r2 rEFH'] for d in seed_rows.values()):.2f} | "
            + f"{statistics.mean(d['train_s'] for d in seed_rows.values()) / 60:.1f} | "
            + f"{statistics.mean(d['f'] for d in seed_rows.values()):.2f} | |")
display(Markdown("Test MSE in units of $10^{-4}$ rad² per seed (paper preset, loaded; "
                 "KF-1 + R_t refitted here); $f_{\\text{gap}}$: the fraction of the KF-1-to-KF-2 gap closed; "
                 f"velocity target: velocity $R^2 \\ge {R2_TARGET}$ and MSE below KF-1's"
                 "\n\n" + "\n".join(rows)))

# %% tags=["hide-cell"]
# Provenance of the saved rVAE-β runs (collapsed in the book).
rows = ["| file | preset | seed | overrides | git | started | wall time (min) | command |",
        "|---|---|---:|---|---|---|---:|---|"]
for run_name, res in sorted(beta_files.items()):
    p = res["provenance"]
    command = short_command(p["command"], json=f"results/{run_name}.json", checkpoint_dir=None)
    over = ", ".join(f"{k}={v}" for k, v in res["overrides"].items()) or "—"
    rows.append(f"| `{run_name}` | {res['preset']} | {res['seed']} | {over} | "
                f"`{short_commit(p['git'])}` | {p['started'][:10]} | "
                f"{p.get('wall_s', float('nan')) / 60:.1f} | `{command}` |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# Per seed, the error relative to KF-1 against the velocity $R^2$ of the state (right) shows
# whether a seed's advantage comes with a velocity. The plain rVAE's points come from its
# paper runs, repeated with the velocity probe
# (`tlr.results.load(f"ppc/rvae_paper/paper_seed{seed}")`: the same test errors, to the last
# bit, as the Table 1 runs). The open circles are the same rVAE-β setting trained with the
# `quick` preset (120 epochs, so the warm-up is half of training), against the paper KF-1 of
# the same seed and test set.

# %%
def rel_kf1(mse_value: float, seed: int) -> float:
    return mse_value / seed_rows[seed]["KF-1"]


# the text above: the quick preset's 120 epochs, the warm-up half of them
assert quick.vae.n_epochs == 120 and 2 * beta_cfg.kl_warmup == 120 * updates_per_epoch(quick)


quick_pts = {s: (r["details"]["rVAE-β"]["velocity_r2"], r["results"]["rVAE-β"]["mse"])
             for s, r in beta_quick.items() if s in seed_rows}
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained",
                               gridspec_kw={"width_ratios": [1, 1.15]})
styles = {"KF-1": ("k", "_", 14), "KF-1 + R_t": ("0.45", "_", 14), "rVAE": ("C0", "o", 6),
          "rVAE-β": ("C3", "D", 6), "rEFH": ("C2", "s", 6), "KF-true": ("k", "x", 6)}
for k, (name, (colour, marker, size)) in enumerate(styles.items()):
    ax0.plot([s + 0.06 * (k - 2.5) for s in seeds], [seed_rows[s][name] * 1e4 for s in seeds],
             marker, color=colour, ms=size, mew=2 if marker in "_x" else 1, ls="none",
             label=name)
ax0.set(xlabel="seed", ylabel="test MSE ($10^{-4}$ rad²)", xticks=seeds, ylim=(0, None),
        title="paper preset, per seed")
ax0.legend(fontsize=7, frameon=False, ncol=3, loc="lower center")
ax1.axvspan(R2_TARGET, 1.02, ymax=0.5, color="C3", alpha=0.08, lw=0)
ax1.axhline(1, color="k", ls="--", lw=1, label="KF-1")
ax1.axhline(statistics.mean(rel_kf1(seed_rows[s]["KF-1 + R_t"], s) for s in seeds), color="0.45",
            ls="-.", lw=1, label="KF-1 + $R_t$ (mean over seeds)")
ax1.axvline(R2_TARGET, color="C3", ls=":", lw=1)
for s in seeds:
    d = seed_rows[s]
    ax1.plot(d["r2"], rel_kf1(d["rVAE-β"], s), "D", color="C3", ms=7,
             label="rVAE-β, paper" if s == seeds[0] else None)
    ax1.annotate(f"seed {s}", (d["r2"], rel_kf1(d["rVAE-β"], s)), xytext=(5, 4),
                 textcoords="offset points", fontsize=7)
for s, (r2, m) in quick_pts.items():
    ax1.plot(r2, rel_kf1(m, s), "o", mfc="none", color="C3", ms=6,
             label="rVAE-β, quick" if s == min(quick_pts) else None)
for r in beta_variants:
    ax1.plot(r["details"]["rVAE-β"]["velocity_r2"],
             rel_kf1(r["results"]["rVAE-β"]["mse"], r["seed"]), "X", color="C1", ms=8,
             label=f"rVAE-β, paper, warm-up {r['overrides']['vae.beta_kl_warmup']} "
                   f"(seed {r['seed']})")
for s in seeds:
    ax1.plot(seed_rows[s]["r2 rVAE"], rel_kf1(seed_rows[s]["rVAE"], s), "o", color="C0", ms=7,
             label="rVAE, paper" if s == seeds[0] else None)
ax1.set(xlabel="velocity $R^2$ of the state (test set)", ylabel="test MSE / KF-1's (same seed)",
        xlim=(-0.02, 1.02), ylim=(0.5, 1.5), title="order against error")
ax1.legend(fontsize=7, frameon=False, loc="upper right")
plt.show()

# %%
n_seeds = len(seed_rows)
rel_beta = {s: d["rVAE-β"] / d["KF-1"] - 1 for s, d in seed_rows.items()}
beats_kf1 = [s for s, d in seed_rows.items() if d["rVAE-β"] < d["KF-1"]]
beats_aware = [s for s, d in seed_rows.items() if d["rVAE-β"] < d["KF-1 + R_t"]]
beats_rvae = [s for s, d in seed_rows.items() if d["rVAE-β"] < d["rVAE"]]
rvae_beats_aware = [s for s, d in seed_rows.items() if d["rVAE"] < d["KF-1 + R_t"]]
above_refh = [s for s, d in seed_rows.items() if d["rVAE-β"] > d["rEFH"]]
second_order = [s for s, d in seed_rows.items() if d["r2"] >= R2_TARGET]
met = [s for s, d in seed_rows.items()
       if target_mark(d["r2"], d["rVAE-β"], d["KF-1"]) == "✓"]
low_r2 = min(seed_rows, key=lambda s: seed_rows[s]["r2"])
quick_met = [s for s, (r2, m) in quick_pts.items()
             if target_mark(r2, m, seed_rows[s]["KF-1"]) == "✓"]
train_min = [d["train_s"] / 60 for d in seed_rows.values()]
rvae_train_min = [v / 60 for s, v in zip(paper_s["rVAE"]["seeds"], paper_s["rVAE"]["values"],
                                         strict=True) if s in seed_rows]


def seed_list(ss: list[int]) -> str:
    return ", ".join(map(str, ss)) if ss else "none"


display(Markdown(
    f"- The rVAE-β beats KF-1 on {len(beats_kf1)} of {n_seeds} seeds, by "
    f"{-max(rel_beta.values()):.1%} to {-min(rel_beta.values()):.1%}, and the plain rVAE on "
    f"{len(beats_rvae)} of {n_seeds}: mean MSE "
    f"{statistics.mean(d['rVAE-β'] for d in seed_rows.values()) * 1e4:.2f}e-4 against "
    f"{statistics.mean(d['rVAE'] for d in seed_rows.values()) * 1e4:.2f}e-4.\n"
    f"- It beats the gain-aware KF-1, the best first-order Kalman filter here, on "
    f"{len(beats_aware)} of {n_seeds} seeds (seeds {seed_list(beats_aware)}); the plain rVAE "
    f"does on {len(rvae_beats_aware)}. It stays above the rEFH on {len(above_refh)} of "
    f"{n_seeds}.\n"
    f"- Its state carries the velocity ($R^2 \\ge {R2_TARGET}$) on {len(second_order)} of "
    f"{n_seeds} seeds (seeds {seed_list(second_order)}; $R^2$ from "
    f"{min(d['r2'] for d in seed_rows.values()):.2f} to "
    f"{max(d['r2'] for d in seed_rows.values()):.2f}), where KF-1's state gives at most "
    f"{max(d['r2 KF-1'] for d in seed_rows.values()):.3f}, KF-true's at least "
    f"{min(d['r2 KF-true'] for d in seed_rows.values()):.3f}, and the plain rVAE's at most "
    f"{max(d['r2 rVAE'] for d in seed_rows.values()):.3f}. The seed with the least velocity "
    f"(seed {low_r2}, $R^2$ "
    f"{seed_rows[low_r2]['r2']:.2f}) is the one closest to KF-1 ({rel_beta[low_r2]:+.1%}).\n"
    f"- **The velocity target is met on {len(met)} of {n_seeds} seeds** (seeds "
    f"{seed_list(met)}), but $f_{{\\text{{gap}}}}$ is {min(d['f'] for d in seed_rows.values()):.2f} to "
    f"{max(d['f'] for d in seed_rows.values()):.2f}: below the scorecard's 1/2 on every seed. "
    f"With the `quick` preset the same setting met it on {len(quick_met)} of {len(quick_pts)} "
    f"seeds "
    f"(velocity $R^2$ {min(r2 for r2, _ in quick_pts.values()):.2f} to "
    f"{max(r2 for r2, _ in quick_pts.values()):.2f}).\n"
    f"- Training took {min(train_min):.1f} to {max(train_min):.1f} min per seed on one CPU "
    f"thread, against {min(rvae_train_min):.1f} to {max(rvae_train_min):.1f} min for the plain "
    f"rVAE."))
assert len(beats_kf1) == n_seeds == 5 and len(beats_rvae) == n_seeds
assert 0 < len(met) < n_seeds                   # the velocity target in some seeds, not all
assert max(d["f"] for d in seed_rows.values()) < 0.5
assert len(above_refh) == n_seeds               # still short of the rEFH
assert len(rvae_beats_aware) == 0 < len(beats_aware)
assert len(quick_met) > len(met)                # the quick preset's runs met it more often
assert seed_rows[low_r2]["rVAE-β"] / seed_rows[low_r2]["KF-1"] == max(
    d["rVAE-β"] / d["KF-1"] for d in seed_rows.values())

# %% [markdown]
# ### Three initialisations, one kept on validation
#
# The seeds that miss the velocity target are not a different problem from those that meet it.
# The runs of the section "The schedule against constant β, on one seed" below show it: one
# constant $\beta$ of 0.75, four initialisations, one seed, and the velocity $R^2$ ranges from
# nearly 0 to above 0.5. Which end state the local rule reaches depends on the initialisation,
# and a state with a velocity is expected to be the better filter, so it should show on held-out
# data as a lower position error, with no velocity probe and no test set. When the outcome
# depends on the initialisation, the usual remedy is to train a few and keep the one the
# validation data prefer. That is a protocol, not a new model:
#
# 1. train restarts 0, 1 and 2 of a seed, where a *restart* is an independent initialisation
#    of the same setting on the same seed and data: restart 0 draws the initial weights and
#    training noise of the single run above, and each later restart reseeds both from the seed
#    and its own number;
# 2. keep the restart with the lowest validation score at the end of training, the mean of the
#    last three points of its learning curve (epochs 192, 216 and 240, on the 10 validation
#    trajectories): the score by which {doc}`reproducing` chooses the rEFH's learning rate;
# 3. report the kept restart's test MSE and velocity $R^2$. Training costs three times as much.
#
# The runner does this for every VAE of the PPC experiment with `--set vae.restarts=3`, e.g.
# `python -m tlr run ppc --preset paper --models "KF-1,rVAE-β" --seed 0 --set vae.restarts=3`;
# the saved sweep `python -m tlr sweep --grid rvae_beta_restarts --out DIR` ran it on the five
# seeds. Each run lists every restart's test MSE and velocity $R^2$ beside the choice, as a
# diagnostic: the choice itself reads only the validation curves. The page makes the choice
# again from those curves:

# %%
def keep_restart(listed: list[dict]) -> int:
    """The page's rule: the restart with the lowest validation score."""
    return min(listed, key=lambda r: r["val"])["restart"]


def load_restarts(sweep: str, overrides: dict, single: dict[int, float]
                  ) -> tuple[dict[int, dict], dict[int, dict]]:
    """Per seed, a saved restart sweep's rVAE-β run and its kept restart, the choice made
    again here; ``single``: the test MSE of the single run that restart 0 repeats."""
    files = [tlr.results.load(n) for n in tlr.results.available(f"ppc/{sweep}/ppc_*")]
    runs = {r["seed"]: r for r in files if "rVAE-β" in r["results"]}
    kf1 = {r["seed"]: r["results"]["KF-1"]["mse"] for r in files if "KF-1" in r["results"]}
    assert sorted(runs) == seeds, sweep                     # the five seeds of the table above
    best = {}
    for s, r in runs.items():
        d = r["details"]["rVAE-β"]
        assert r["overrides"] == overrides and r["preset"] == "paper"
        listed = d["restarts"]
        assert [x["restart"] for x in listed] == [0, 1, 2]
        kept = keep_restart(listed)
        assert kept == d["kept_restart"]                    # the page's choice is the runner's
        assert listed[kept]["val"] == statistics.mean(d["curve"][-3:])  # ... by the stated score
        assert d["epochs"][-3:] == [192, 216, 240]          # ... the epochs the text names
        assert r["results"]["rVAE-β"]["mse"] == listed[kept]["mse"]
        assert listed[0]["mse"] == single[s]                # restart 0 is the single run, again
        assert math.isclose(kf1[s], seed_rows[s]["KF-1"], rel_tol=1e-9)  # same test set
        best[s] = {"listed": listed, "kept": kept, "mse": listed[kept]["mse"],
                   "r2": listed[kept]["velocity_r2"], "train_s": r["results"]["rVAE-β"]["train_s"]}
    return runs, best


def restart_table(best: dict[int, dict], label: str) -> None:
    """Every restart of every seed, the kept one, its f and the velocity target."""
    rows = ["| seed | KF-1 | restart 0 (the single run) | restart 1 | restart 2 | kept | "
            f"{label}, best of 3 | velocity $R^2$ | $f_{{\\text{{gap}}}}$ | rEFH | velocity target met |",
            "|---:|---:|---|---|---|---:|---:|---:|---:|---:|:---:|"]
    for s, b in best.items():
        cells = [f"{fmt(x['mse'])} ({x['velocity_r2']:.2f}) [val {fmt(x['val'])}]"
                 for x in b["listed"]]
        rows.append(f"| {s} | {fmt(seed_rows[s]['KF-1'])} | " + " | ".join(cells)
                    + f" | {b['kept']} | {fmt(b['mse'])} | {b['r2']:.2f} | "
                    + f"{gap_fraction(b['mse'], s):.2f} | {fmt(seed_rows[s]['rEFH'])} | "
                    + target_mark(b["r2"], b["mse"], seed_rows[s]["KF-1"]) + " |")
    rows.append("| mean | " + fmt(statistics.mean(seed_rows[s]["KF-1"] for s in seeds))
                + " | | | | | " + fmt(statistics.mean(b["mse"] for b in best.values()))
                + f" | {statistics.mean(b['r2'] for b in best.values()):.2f} | "
                + f"{statistics.mean(gap_fraction(b['mse'], s) for s, b in best.items()):.2f} | "
                + fmt(statistics.mean(seed_rows[s]["rEFH"] for s in seeds)) + " | |")
    display(Markdown("Test MSE in units of $10^{-4}$ rad² (velocity $R^2$ of the state) "
                     "[validation score, $10^{-4}$ rad²] of every restart, paper preset; the "
                     "kept restart has the lowest validation score; $f_{\\text{gap}}$: the fraction of the "
                     "KF-1-to-KF-2 gap that the kept restart closes\n\n" + "\n".join(rows)))


restart_runs, best_of_3 = load_restarts("rvae_beta_restarts", {"vae.restarts": "3"},
                                        {s: seed_rows[s]["rVAE-β"] for s in seeds})
assert paper_preset.n_val == 10                             # the 10 validation trajectories
restart_table(best_of_3, "rVAE-β")

# %% tags=["hide-cell"]
# Provenance of the restart sweep (collapsed in the book).
def restart_provenance(runs: dict[int, dict]) -> None:
    rows = ["| seed | git | started | wall time (min) | command |", "|---:|---|---|---:|---|"]
    for s, r in runs.items():
        p = r["provenance"]
        rows.append(f"| {s} | `{short_commit(p['git'])}` | {p['started'][:10]} | "
                    f"{p['wall_s'] / 60:.1f} | "
                    f"`{short_command(p['command'], checkpoint_dir=None)}` |")
    display(Markdown("\n".join(rows)))


restart_provenance(restart_runs)

# %% [markdown]
# Does the validation score see the velocity? Every restart of every seed, its validation score
# against its test error relative to KF-1's (left), and its velocity $R^2$ (right); the kept
# restarts are ringed:

# %%
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
for s, b in best_of_3.items():
    for x in b["listed"]:
        second = x["velocity_r2"] >= R2_TARGET
        style = dict(color=f"C{s}", ms=7, mfc=f"C{s}" if second else "none")
        ax0.plot(x["val"] * 1e4, x["mse"] / seed_rows[s]["KF-1"], "o", **style)
        ax1.plot(x["val"] * 1e4, x["velocity_r2"], "o", **style)
        if x["restart"] == b["kept"]:
            for ax, yv in ((ax0, x["mse"] / seed_rows[s]["KF-1"]), (ax1, x["velocity_r2"])):
                ax.plot(x["val"] * 1e4, yv, "o", ms=14, mfc="none", color="k", lw=0.8)
    ax0.plot([], [], "o", color=f"C{s}", label=f"seed {s}")
ax0.axhline(1, color="k", ls="--", lw=1)
ax1.axhline(R2_TARGET, color="C3", ls=":", lw=1)
ax0.set(xlabel="validation score ($10^{-4}$ rad²)", ylabel="test MSE / KF-1's (same seed)",
        title="filled: velocity $R^2 \\geq$ 0.5; ringed: kept")
ax1.set(xlabel="validation score ($10^{-4}$ rad²)", ylabel="velocity $R^2$ of the state",
        ylim=(-0.05, 1.0), title="the velocity of each restart")
ax0.legend(fontsize=7, frameon=False)
plt.show()

# %%
all_restarts = [(s, x) for s, b in best_of_3.items() for x in b["listed"]]
n_second = sum(x["velocity_r2"] >= R2_TARGET for _, x in all_restarts)
met_b3 = [s for s, b in best_of_3.items()
          if target_mark(b["r2"], b["mse"], seed_rows[s]["KF-1"]) == "✓"]
kept_lowest_test = [s for s, b in best_of_3.items()
                    if b["mse"] == min(x["mse"] for x in b["listed"])]
mean_b3 = statistics.mean(b["mse"] for b in best_of_3.values())
mean_refh = statistics.mean(seed_rows[s]["rEFH"] for s in seeds)
above_refh_b3 = [s for s, b in best_of_3.items() if b["mse"] > seed_rows[s]["rEFH"]]
first_order_val = [x["val"] for _, x in all_restarts if x["velocity_r2"] < R2_TARGET]
second_order_val = [x["val"] for _, x in all_restarts if x["velocity_r2"] >= R2_TARGET]
display(Markdown(
    f"- Of the {len(all_restarts)} restarts, {n_second} carry the velocity "
    f"($R^2 \\ge {R2_TARGET}$); every seed has at least one such restart.\n"
    f"- On average the validation score is lower for the restarts with a velocity: "
    f"{statistics.mean(second_order_val) * 1e4:.2f}e-4 over the restarts whose state carries "
    f"the velocity and {statistics.mean(first_order_val) * 1e4:.2f}e-4 over the others, and "
    f"the kept restart carries it on {sum(b['r2'] >= R2_TARGET for b in best_of_3.values())} of "
    f"{n_seeds} seeds (the lowest test error of its seed on {len(kept_lowest_test)}).\n"
    f"- **With three restarts the velocity target is met on {len(met_b3)} of {n_seeds} seeds** "
    f"(seeds {seed_list(met_b3)}; one run per seed: {len(met)} of {n_seeds}). The mean test "
    f"MSE is {mean_b3 * 1e4:.2f}e-4, against KF-1's "
    f"{statistics.mean(seed_rows[s]['KF-1'] for s in seeds) * 1e4:.2f}e-4 and the rEFH's "
    f"{mean_refh * 1e4:.2f}e-4; the rVAE-β stays above the rEFH on {len(above_refh_b3)} of "
    f"{n_seeds} seeds.\n"
    f"- The protocol trains three networks per seed: "
    f"{min(b['train_s'] for b in best_of_3.values()) / 60:.0f} to "
    f"{max(b['train_s'] for b in best_of_3.values()) / 60:.0f} min of one CPU thread per "
    f"seed."))
assert n_seeds > len(met_b3) > len(met)        # more seeds than one run per seed, not all
assert all(any(x["velocity_r2"] >= R2_TARGET for x in b["listed"]) for b in best_of_3.values())
assert all(b["mse"] < seed_rows[s]["KF-1"] for s, b in best_of_3.items())
assert statistics.mean(second_order_val) < statistics.mean(first_order_val)
assert len(above_refh_b3) == n_seeds            # the poster's "worse than rEFH" still holds

# %%
missed = [s for s in seeds if s not in met_b3]
for s in missed:
    b = best_of_3[s]
    kept_x = b["listed"][b["kept"]]
    alt = min((x for x in b["listed"] if x["velocity_r2"] >= R2_TARGET), key=lambda x: x["mse"])
    display(Markdown(
        f"Seed {s} is the miss. Its validation score kept restart {b['kept']} (velocity "
        f"$R^2$ {kept_x['velocity_r2']:.2f}, validation {fmt(kept_x['val'])}, test "
        f"{fmt(kept_x['mse'])}) over restart {alt['restart']} ($R^2$ "
        f"{alt['velocity_r2']:.2f}, validation {fmt(alt['val'])}, test {fmt(alt['mse'])}): "
        f"test errors {abs(alt['mse'] / kept_x['mse'] - 1):.0%} apart, ranked the other way "
        "round by the validation score. Both restarts are below KF-1; the kept one carries "
        "less of the velocity."))
    assert kept_x["mse"] < seed_rows[s]["KF-1"] and kept_x["velocity_r2"] < R2_TARGET
    assert alt["mse"] < kept_x["mse"] and alt["val"] > kept_x["val"]
assert len(missed) == 1

# %% [markdown]
# If ten validation trajectories are the reason, forty should choose better. The sweep
# `python -m tlr sweep --grid rvae_beta_restarts_val40 --out DIR` repeats the restarts with
# `--set n_val=40`, as many validation trajectories as the test set has. Training never reads
# the validation set, so each restart is the same network as above, with the same test error
# and velocity, to the last bit; only the scores the choice is made on change:

# %%
val40_runs = {r["seed"]: r for r in map(tlr.results.load, tlr.results.available(
    "ppc/rvae_beta_restarts_val40/ppc_*")) if "rVAE-β" in r["results"]}
assert sorted(val40_runs) == seeds
best_val40 = {}
for s, r in val40_runs.items():
    d = r["details"]["rVAE-β"]
    assert r["overrides"] == {"vae.restarts": "3", "n_val": "40"}
    assert paper_preset.n_test == 40 and d["epochs"][-3:] == [192, 216, 240]  # the text
    for a, b in zip(d["restarts"], best_of_3[s]["listed"], strict=True):  # the same networks
        assert a["mse"] == b["mse"] and a["velocity_r2"] == b["velocity_r2"]
    kept = keep_restart(d["restarts"])
    assert kept == d["kept_restart"]
    best_val40[s] = d["restarts"][kept]
met_val40 = [s for s, x in best_val40.items()
             if target_mark(x["velocity_r2"], x["mse"], seed_rows[s]["KF-1"]) == "✓"]
rows = ["| seed | kept on 10 trajectories | kept on 40 | validation scores on 40 "
        "($10^{-4}$ rad²) | rVAE-β, best of 3 on 40 | velocity $R^2$ | $f_{\\text{gap}}$ | "
        "velocity target met |", "|---:|---:|---:|---|---:|---:|---:|:---:|"]
for s, x in best_val40.items():
    scores = ", ".join(fmt(y["val"]) for y in val40_runs[s]["details"]["rVAE-β"]["restarts"])
    rows.append(f"| {s} | {best_of_3[s]['kept']} | {x['restart']} | {scores} | {fmt(x['mse'])} "
                f"| {x['velocity_r2']:.2f} | {gap_fraction(x['mse'], s):.2f} | "
                + target_mark(x["velocity_r2"], x["mse"], seed_rows[s]["KF-1"]) + " |")
display(Markdown("\n".join(rows)))
changed = [s for s in seeds if best_val40[s]["restart"] != best_of_3[s]["kept"]]
print(f"choices changed on seeds {seed_list(changed)}; velocity target met on "
      f"{len(met_val40)} of {n_seeds} seeds (on 10 trajectories: {len(met_b3)})")

# %%
swing = {}
for s, r in val40_runs.items():
    last3 = r["details"]["rVAE-β"]["curve"][-3:]
    swing[s] = max(last3) / min(last3) - 1
same_choice = n_seeds - len(changed)
display(Markdown(
    f"Forty trajectories make the same choice on {same_choice} of {n_seeds} seeds, and the "
    f"target is met on {len(met_val40)} of {n_seeds}: the size of the validation set is not "
    f"why seed{'s' if len(missed) > 1 else ''} {seed_list(missed)} "
    f"{'were' if len(missed) > 1 else 'was'} missed. The score averages the last three "
    f"evaluations (epochs 192, 216 and 240), and the rVAE-β's validation error still swings "
    f"between them, by {min(swing.values()):.0%} to {max(swing.values()):.0%} within a kept "
    f"run's last three on forty trajectories. The score ranks runs by where they were over the "
    f"last fifth of training; the test set scores where they ended. A score of the final "
    f"network alone would be another rule; it is not tried here, since a rule chosen after "
    f"seeing the test results would be fitted to the test set."))
assert set(missed) <= set(seeds) - set(met_val40)     # the miss stays a miss
assert max(swing.values()) > 0.05

# %% [markdown]
# ### The schedule against constant β, on one seed
#
# The registry's schedule was chosen on the `quick` preset's seed 0, by its test error; that is
# also the paper runs' seed-0 test set, and seeds 1–4 played no part in the choice. The sweep
# `python -m tlr sweep --grid rvae_beta_constant --out DIR` trains the constant-$\beta$
# alternatives with the library's rVAE-β and the `quick` preset's own optimiser, four
# initialisations each (initialisation 0 is the single run of the seed; all four are trained,
# and the table lists them all, whichever the validation score would keep). The last rows are
# the registry's schedule and the longer warm-up of the paper runs, from the files above.

# %%
const_files = [tlr.results.load(n) for n in tlr.results.available("ppc/rvae_beta_constant/ppc_*")]
const_kf1 = {r["results"]["KF-1"]["mse"] for r in const_files if "KF-1" in r["results"]}
assert len(const_kf1) == 1                                 # quick preset, seed 0: one test set
const_kf1 = const_kf1.pop()


def constant_setting(r: dict) -> tuple[float, float]:
    """(β, free bits) of a run of the constant-β sweep."""
    o = r["overrides"]
    assert r["preset"] == "quick" and r["seed"] == 0 and o["vae.beta_kl_warmup"] == "0"
    return float(o["vae.beta_kl_weight"]), float(o.get("vae.beta_free_bits", 0))


const_runs = {constant_setting(r): r["details"]["rVAE-β"]["restarts"]
              for r in const_files if "rVAE-β" in r["results"]}
assert set(const_runs) == {(1.0, 0.0), (0.75, 0.0), (0.5, 0.0), (1.0, 1.0)}
rows = ["| setting | test MSE ($10^{-4}$ rad²) | velocity $R^2$ | velocity target met | source |",
        "|---|---|---|---|---|"]
for (b, fb), listed in sorted(const_runs.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
    assert [x["restart"] for x in listed] == [0, 1, 2, 3]
    name = f"constant β = {b:g}" + (" (the ELBO)" if b == 1 and not fb else "") + (
        f", free bits {fb:g} nat per latent dimension" if fb else "")
    met_c = sum(target_mark(x["velocity_r2"], x["mse"], const_kf1) == "✓" for x in listed)
    mses = ", ".join(fmt(x["mse"]) for x in listed)
    r2s = ", ".join(f"{x['velocity_r2']:.2f}" for x in listed)
    rows.append(f"| {name}, `quick` preset, seed 0, four initialisations | {mses} (KF-1 "
                f"{fmt(const_kf1)}) | {r2s} | {met_c} of {len(listed)} | saved |")
q_mse = [m for _, m in quick_pts.values()]
q_r2 = [r2 for r2, _ in quick_pts.values()]
rows.append(f"| registry schedule, `quick` preset, seeds {seed_list(sorted(quick_pts))} | "
            f"{min(q_mse) * 1e4:.2f}–{max(q_mse) * 1e4:.2f} | "
            f"{min(q_r2):.2f}–{max(q_r2):.2f} | "
            f"{len(quick_met)} of {len(quick_pts)} seeds (against the paper KF-1 of "
            f"the same seed) | saved |")
for r in beta_variants:
    s, d, res = r["seed"], r["details"]["rVAE-β"], r["results"]
    over = ", ".join(f"{k.removeprefix('vae.beta_')} = {v}" for k, v in r["overrides"].items())
    rows.append(f"| registry schedule with {over}, `paper` preset, seed {s} | "
                f"{fmt(res['rVAE-β']['mse'])} (KF-1 {fmt(res['KF-1']['mse'])}; "
                f"{fmt(seed_rows[s]['rVAE-β'])} with the registry's warm-up) | "
                f"{d['velocity_r2']:.2f} ({seed_rows[s]['r2']:.2f}) | "
                f"{target_mark(d['velocity_r2'], res['rVAE-β']['mse'], res['KF-1']['mse'])} | "
                "saved |")
display(Markdown("\n".join(rows)))
for r in beta_quick.values():     # the quick runs set the registry's schedule explicitly
    assert all(float(v) == getattr(quick.vae, k.removeprefix("vae."))
               for k, v in r["overrides"].items())
for r in beta_variants:
    assert set(r["overrides"]) == {"vae.beta_kl_warmup"}
    assert r["results"]["rVAE-β"]["mse"] > r["results"]["KF-1"]["mse"]  # the longer warm-up: worse

# %%
worst = {k: max(x["mse"] for x in v) for k, v in const_runs.items()}
best_r2 = {k: max(x["velocity_r2"] for x in v) for k, v in const_runs.items()}
least_r2 = {k: min(x["velocity_r2"] for x in v) for k, v in const_runs.items()}
fb_met = [x for x in const_runs[(1.0, 1.0)]
          if target_mark(x["velocity_r2"], x["mse"], const_kf1) == "✓"]
assert best_r2[(1.0, 0.0)] < 0.1                                        # the ELBO: first order
assert least_r2[(0.75, 0.0)] < 0.1 < R2_TARGET <= best_r2[(0.75, 0.0)]  # the text above
assert best_r2[(0.5, 0.0)] >= R2_TARGET and worst[(0.5, 0.0)] > 3 * const_kf1
assert len(fb_met) >= 3
c75, c50 = const_runs[(0.75, 0.0)], const_runs[(0.5, 0.0)]
vel75 = [x for x in c75 if x["velocity_r2"] >= R2_TARGET]
vel50 = [x for x in c50 if x["velocity_r2"] >= R2_TARGET]
rest50 = [x["mse"] / const_kf1 for x in c50 if x["velocity_r2"] < R2_TARGET]
assert len(vel75) == len(vel50) == 1                  # "the initialisation with the velocity"
assert min(x["mse"] for x in c75) > const_kf1          # at 0.75 every one above KF-1 ...
assert max(c75, key=lambda x: x["mse"]) is vel75[0]    # ... the worst the one with the velocity
assert max(rest50) > vel50[0]["mse"] / const_kf1 > 3   # at 0.5 far above KF-1, with or without
display(Markdown(
    f"At $\\beta = 1$ no initialisation carries a velocity (largest $R^2$ "
    f"{best_r2[(1.0, 0.0)]:.2f}). A constant $\\beta$ of 0.75 gives a velocity to "
    f"{len(vel75)} of {len(c75)} initialisations ($R^2$ from {least_r2[(0.75, 0.0)]:.2f} to "
    f"{best_r2[(0.75, 0.0)]:.2f}) and costs position in all of them: their errors, "
    f"{fmt(min(x['mse'] for x in c75))} to {fmt(max(x['mse'] for x in c75))} "
    f"$\\times 10^{{-4}}$ rad², are all above KF-1's {fmt(const_kf1)}, and the largest is the "
    f"one with the velocity. At 0.5 the initialisation with a velocity ends at "
    f"{vel50[0]['mse'] / const_kf1:.0f} times KF-1's error and the others at up to "
    f"{max(rest50):.0f} times, the drift that the sharpened posterior predicts. The warm-up "
    f"from a low to a high $\\beta$ is the compromise the registry keeps; a warm-up twice as "
    f"long moved seed 0 over the velocity threshold but lost the position precision. **Free "
    f"bits at $\\beta = 1$ meet the velocity target in {len(fb_met)} of "
    f"{len(const_runs[(1.0, 1.0)])} initialisations** here: the section on free bits below "
    f"takes them to the paper preset."))

# %%
gap_f = {name: [gap_fraction(v(s), s) for s in seeds]
         for name, v in (("one run", lambda s: seed_rows[s]["rVAE-β"]),
                         ("best of 3", lambda s: best_of_3[s]["mse"]),
                         ("rEFH", lambda s: seed_rows[s]["rEFH"]))}
assert max(gap_f["one run"] + gap_f["best of 3"]) < 0.5 <= min(gap_f["rEFH"])
assert (rvae_wins, len(per_seed)) == (2, 5) and tvae_wins == 5  # the summary's counts
assert (len(diverged["rVAE-BPTT"]), len(bptt_scored)) == (2, 1)  # "diverged on 2 of the 3 seeds"
assert len(met_b3) == 4                          # the exercise's "four seeds of five"
display(Markdown(
    f"**The finding.** Under the temporally local rule, pricing the KL below 1 puts a velocity "
    f"into the rVAE's state in some seeds. At paper scale the rVAE-β beats KF-1 on "
    f"{len(beats_kf1)} of {n_seeds} seeds and the plain rVAE on {len(beats_rvae)} of {n_seeds}, "
    f"and beats the gain-aware first-order filter on {len(beats_aware)} of {n_seeds}; one run "
    f"per seed meets the velocity target (a velocity $R^2 \\ge {R2_TARGET}$ with an error below "
    f"KF-1's) on {len(met)} of {n_seeds} (with the `quick` preset's shorter training, on "
    f"{len(quick_met)} of {len(quick_pts)}). Three initialisations per seed, the one with the "
    f"best validation score kept, meet it on {len(met_b3)} of {n_seeds}, every one below KF-1; "
    f"robustness across seeds is not complete (the sections after this one test what carries "
    f"the velocity, and whether making its first nat free makes it robust). "
    f"It stays above the rEFH on every seed, and it closes "
    f"{min(gap_f['one run'] + gap_f['best of 3']):.2f} to "
    f"{max(gap_f['one run'] + gap_f['best of 3']):.2f} of the KF-1-to-KF-2 gap (the rEFH: "
    f"{min(gap_f['rEFH']):.2f} to {max(gap_f['rEFH']):.2f}), below the 1/2 that the "
    f"{{doc}}`scorecard` asks of a second-order filter."))

# %% [markdown]
# > This bears on the question the information budget left. With the same detached $u_{t-1}$
# > and the same joint objective, only reweighted, the velocity can emerge in an rVAE: what
# > kept the plain rVAE first order is at least in part the price of the KL, not the local rule
# > itself. Whether the emergence needs the $u$-term (a TVAE with the same $\beta$ would tell)
# > is not tested here; the next section tests what carries the velocity once it is there.

# %% [markdown]
# ### Where the velocity lives: along training, and with $u_{t-1}$ scored as uncertain data
#
# The runs above record the velocity $R^2$ of the state on the validation trajectories at every
# point of the learning curve (`velocity_r2_curve` in each file's details; the readout is fitted
# on the readout set, as for the final number). Following it through training shows when the
# velocity appears and whether it stays.
#
# That question has a sharper form. The $u$-term scores $\nu_{t-1}$ as if it were known
# exactly, but it is only the mean of the previous posterior
# $\check q(x_{t-1}) = \mathcal N(\nu_{t-1}, \Upsilon_{t-1})$. Scoring the whole posterior as the
# data, the expected complete-data term of EM, gives, for the Gaussian
# $\hat p(u_{t-1} \mid x_t) = \mathcal N(\mu_u(x_t), \Sigma_u(x_t))$,
#
# $$
# \mathbb E_{x' \sim \mathcal N(\nu_{t-1}, \Upsilon_{t-1})}\big[-\log \hat p(x' \mid x_t)\big]
# = -\log \hat p(\nu_{t-1} \mid x_t)
#   + \tfrac12 \operatorname{tr}\!\big(\Sigma_u(x_t)^{-1}\, \Upsilon_{t-1}\big),
# $$
#
# because, with $\mu_u = \mu_u(x_t)$ and $\Sigma_u = \Sigma_u(x_t)$,
# $\mathbb E[(x' - \mu_u)^\top \Sigma_u^{-1} (x' - \mu_u)] = (\nu_{t-1} - \mu_u)^\top
# \Sigma_u^{-1} (\nu_{t-1} - \mu_u) + \operatorname{tr}(\Sigma_u^{-1} \Upsilon_{t-1})$.
# $\Upsilon_{t-1}$ is detached like $\nu_{t-1}$, so the rule stays temporally local; in
# `RVAEConfig` this is `u_uncertain=True`, and on the command line
# `--set vae.beta_u_uncertain=true`.
#
# **What the extra term does.** For fixed means, the $\Sigma_u$ that minimises the expected term
# is $\mathbb E\big[(\nu_{t-1} - \mu_u)(\nu_{t-1} - \mu_u)^\top\big] + \mathbb E[\Upsilon_{t-1}]$:
# the $u$-likelihood can be no sharper than the previous posterior was. Without the term,
# nothing stops $\Sigma_u$ from shrinking along a coordinate that $x_t$ copies from $u_{t-1}$,
# and the copy becomes the near-lossless memory of the budget above: neutral at $\beta = 1$,
# paid $(1 - \beta)\,\mathcal R_t^j$ nats per step below it, whatever it remembers, a velocity
# or a drift. With the term, a coordinate can be read back only as precisely as the last
# posterior knew it.
#
# **The prediction.** If the rVAE-β carries its velocity because the spikes keep supplying it,
# the extra term leaves it in place: the evidence about the velocity is unchanged. If the
# velocity is a memory that survives only because it is copied without loss, it disappears.
# The term prices every coordinate read back from $u_{t-1}$, though, not only a velocity, so the
# test also has to show what else the variant loses.
#
# The expected term, written in the page, against the library's $u$-term for the same network,
# inputs and noise:

# %%
unc = RVAE(replace(beta_cfg, u_uncertain=True), generator=make_generator(SEED, "book/rvae/unc"))
y_u, u_u, eps_u = (torch.poisson(torch.full((4, 6, ppc.n_neurons), 3.0), generator=gen()),
                   torch.randn(4, 6, beta_cfg.n_latent, generator=gen()),
                   torch.randn(4, 6, beta_cfg.n_latent, generator=gen()))
var_u = 0.2 * torch.rand(4, 6, beta_cfg.n_latent, generator=gen())  # the previous Υ (diagonal)
with torch.no_grad():
    lib = unc.score(y_u, u_u, eps_u, var_u)
    nu_u, logvar_u = unc.encode(y_u, u_u)
    p_u = unc.u_dist(nu_u + torch.exp(0.5 * logvar_u) * eps_u)  # p̂(u | x) at the sample x
    Sigma_inv = torch.linalg.inv(p_u.covariance_matrix)
    trace = (Sigma_inv.diagonal(dim1=-2, dim2=-1) * var_u).sum(-1)   # tr(Σ⁻¹ diag Υ)
    page = -p_u.log_prob(u_u) + 0.5 * trace
torch.testing.assert_close(lib.nll_u, page, rtol=1e-4, atol=1e-4)
assert (trace > 0).all()
print(f"expected u-term, page vs library: max |difference| = {(lib.nll_u - page).abs().max():.1e};"
      f" the trace adds {(0.5 * trace).mean():.2f} nats per step here")

# %% [markdown]
# The five seeds were trained with the registry's rVAE-β and this one change, by
# `python -m tlr sweep --grid rvae_beta_uncertain --out DIR` (each with KF-1 on the same test
# set). Both variants' velocity $R^2$ along training, the end of the $\beta$ warm-up dashed:

# %%
def load_variant(sweep: str, overrides: dict) -> dict[int, dict]:
    """Per seed: the rVAE-β row of a saved paper-preset PPC sweep (test MSE, velocity R², lag,
    curve) and its KF-1's lag, the KF-1 checked against the Table 1 KF-1 of the seed (the same
    test set)."""
    files = [tlr.results.load(n) for n in tlr.results.available(f"ppc/{sweep}/ppc_*")]
    vae = {r["seed"]: r for r in files if "rVAE-β" in r["results"]}
    kf1 = {r["seed"]: r for r in files if "KF-1" in r["results"]}
    assert sorted(vae) == sorted(kf1) == seeds, sweep
    out = {}
    for s in seeds:
        assert vae[s]["preset"] == "paper" and vae[s]["overrides"] == overrides
        assert math.isclose(kf1[s]["results"]["KF-1"]["mse"], seed_rows[s]["KF-1"], rel_tol=1e-9)
        d = vae[s]["details"]["rVAE-β"]
        out[s] = {"mse": vae[s]["results"]["rVAE-β"]["mse"], "r2": d["velocity_r2"],
                  "lag": d.get("lag_steps"),  # runs before the lag was recorded: None
                  "lag KF-1": kf1[s]["details"]["KF-1"].get("lag_steps"),
                  "train_s": vae[s]["results"]["rVAE-β"]["train_s"], "epochs": d["epochs"],
                  "curve": d["velocity_r2_curve"]}
    return out


def plot_curves(panels: dict[str, dict[int, dict]], warmup: float | None = None) -> None:
    """The velocity R² along training, one panel per variant, one line per seed."""
    fig, axes = plt.subplots(1, len(panels), figsize=(10, 3.4), sharey=True,
                             layout="constrained")
    for ax, (title, rows_v) in zip(axes, panels.items(), strict=True):
        for s in seeds:
            ax.plot(rows_v[s]["epochs"], rows_v[s]["curve"], "o-", ms=3, color=f"C{s}",
                    label=f"seed {s}")
        if warmup is not None:
            ax.axvline(warmup, color="grey", ls="--", lw=1, label="end of the β warm-up")
        ax.axhline(R2_TARGET, color="C3", ls=":", lw=1, label=f"$R^2$ = {R2_TARGET}")
        ax.set(xlabel="epoch", title=title, ylim=(-0.35, 1.0))
    axes[0].set_ylabel("velocity $R^2$ of the state (validation)")
    axes[0].legend(fontsize=7, frameon=False, ncol=2)
    plt.show()


unc_rows = load_variant("rvae_beta_uncertain", {"vae.beta_u_uncertain": "true"})
plain_rows = {}
for s in seeds:
    d = beta_paper[s]["details"]["rVAE-β"]
    plain_rows[s] = {"r2": d["velocity_r2"], "curve": d["velocity_r2_curve"], "epochs": d["epochs"]}
plot_curves({"rVAE-β (the registry's)": plain_rows,
             "rVAE-β, $u_{t-1}$ scored as uncertain data": unc_rows},
            warmup=beta_cfg.kl_warmup / updates_per_epoch(paper_preset))

# %%
rows = ["| seed | KF-1 | rVAE-β: MSE | velocity $R^2$ | max $R^2$ in training | "
        "with uncertain $u_{t-1}$: MSE | velocity $R^2$ | max $R^2$ in training |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|"]
for s in seeds:
    a, b = plain_rows[s], unc_rows[s]
    rows.append(f"| {s} | {fmt(seed_rows[s]['KF-1'])} | {fmt(seed_rows[s]['rVAE-β'])} | "
                f"{a['r2']:.2f} | {max(a['curve']):.2f} | {fmt(b['mse'])} | "
                f"{b['r2']:.2f} | {max(b['curve']):.2f} |")
display(Markdown("Test MSE [$10^{-4}$ rad²] and the test velocity $R^2$ of the state, paper "
                 "preset, one run per seed; the maximum of the validation curve beside it\n\n"
                 + "\n".join(rows)))

# %%
unc_vel = [s for s in seeds if unc_rows[s]["r2"] >= R2_TARGET]
unc_above_kf1 = [s for s in seeds if unc_rows[s]["mse"] > seed_rows[s]["KF-1"]]
unc_peak = max(max(unc_rows[s]["curve"]) for s in seeds)
plain_steady = [s for s in seeds if min(plain_rows[s]["curve"][-3:]) >= R2_TARGET]
plain_never = [s for s in seeds if max(plain_rows[s]["curve"]) < R2_TARGET]
plain_swing = {s: plain_rows[s]["curve"][-4:] for s in seeds
               if s not in plain_steady + plain_never}
unc_above_rvae = [s for s in seeds if unc_rows[s]["mse"] > seed_rows[s]["rVAE"]]
excess = [unc_rows[s]["mse"] / seed_rows[s]["KF-1"] - 1 for s in seeds]
assert not unc_vel and unc_peak < 0.2 and len(unc_above_kf1) == n_seeds
assert len(unc_above_rvae) == 4                 # the summary's "four of five"
assert plain_steady and plain_never
for s in seeds:   # the runs that record the curve are the runs of the table above
    assert plain_rows[s]["r2"] == seed_rows[s]["r2"]
display(Markdown(
    f"**The finding.** With $u_{{t-1}}$ scored as uncertain data, no seed carries a velocity: "
    f"the largest velocity $R^2$ anywhere along training, on any of the {n_seeds} seeds, is "
    f"{unc_peak:.2f}. The test error is above KF-1's on {len(unc_above_kf1)} of {n_seeds} "
    f"seeds (by {min(excess):.0%} to {max(excess):.0%}), and above the plain rVAE's "
    f"($\\beta = 1$, no trace term) on {len(unc_above_rvae)} of {n_seeds}. The loss of the "
    f"velocity is what the lossless copy predicts: a velocity that lives on reading $u_{{t-1}}$ "
    f"back more precisely than the previous posterior knew it, the channel that also carries "
    f"the drift of a low $\\beta$. But the variant loses more than the velocity, so this test "
    f"cannot tell that account from a simpler one: the trace term may remove every memory "
    f"carried through $u_{{t-1}}$, including the first-order smoothing of the position that the "
    f"plain rVAE gets from it. The control that would separate the two is the plain rVAE with "
    f"$u_{{t-1}}$ scored the same way (`u_uncertain=True` at $\\beta = 1$ with two latents); it "
    f"is not tested here. "
    f"Along training, the registry's rVAE-β holds a velocity on the validation trajectories "
    f"through the last three evaluations on seeds {seed_list(plain_steady)}; on "
    f"seed{'s' if len(plain_never) > 1 else ''} {seed_list(plain_never)} the probe never "
    f"reaches {R2_TARGET}"
    + "".join(f"; on seed {s} it swings between {min(v):.2f} and {max(v):.2f} over the last "
              f"four evaluations (the test probe reads {plain_rows[s]['r2']:.2f}), a "
              f"velocity that a linear readout does not hold from one set of trajectories to "
              f"the next" for s, v in plain_swing.items())
    + ". If the velocity is a memory of that kind, its reward does not depend on what it "
    "remembers. That would explain why whether a seed keeps a velocity depends on its "
    "initialisation."))

# %% [markdown]
# (rvae-free-bits)=
# ### Free bits: a subsidy for the low-rate coordinates only
#
# The constant-β runs above found one setting at $\beta = 1$ that carries a velocity: *free
# bits*, from Kingma et al. (2016). The rate is counted per latent dimension $j$, and a dimension
# whose rate, averaged over the batch, is below a floor of $\mathcal R_{\min}$ nats is charged
# $\mathcal R_{\min}$, a constant:
#
# $$
# \ell_t^{\mathrm{fb}} = \mathcal D_t
#   + \sum_{j=1}^{n_x} \max\big(\mathcal R_{\min},\ \bar{\mathcal R}_t^j\big),
# \qquad
# \bar{\mathcal R}_t^j = \frac1B \sum_{b=1}^{B} \mathrm{KL}\big(\check q(x_{t,b}^j)
#   \,\big\|\, \mathcal N(0, 1)\big),
# $$
#
# where $x_{t,b}^j$ is dimension $j$ of the latent of sequence $b$ of the batch, with
# $\beta = 1$ and no warm-up. Here $\mathcal R_{\min} = 1$ nat (`free_bits=1.0`,
# `kl_weight=1.0`, `kl_warmup=0`; on the command line `--set vae.beta_kl_weight=1.0
# --set vae.beta_kl_warmup=0 --set vae.beta_free_bits=1.0`). Below the floor the rate has no
# gradient.
#
# **What it changes in the budget.** A coordinate $j$ that $x_t$ copies from $u_{t-1}$ costs
# its rate $\mathcal R_t^j$ and earns about $\mathcal R_t^j$ back in $u$-distortion. Above the
# floor that is the ELBO's neutral trade; below it the copy costs nothing, so a memory of less
# than $\mathcal R_{\min}$ nats per step pays in full, not $(1 - \beta) \mathcal R_t^j$. The
# subsidy is capped: the two coordinates of the position on the ring carry about 2 nats each
# (the live rVAE's KL term per step, shared by its two latents), above the floor, and stay
# priced as in the ELBO, so their posterior is not sharpened and nothing invites them to drift,
# unlike a $\beta$ below 1, which subsidises every nat. A velocity fits under the floor. A
# coordinate whose posterior means spread like the prior has a rate of
# $\mathbb E[\mathrm{KL}] = -\frac12 \log \Upsilon_t^{jj}$ for a posterior variance
# $\Upsilon_t^{jj}$ (in units of the prior's), so 1 nat buys a posterior standard deviation
# $(\Upsilon_t^{jj})^{1/2} = e^{-1} \approx 0.37$: a velocity known to about a third of its
# prior standard deviation.
#
# **The prediction.** The memory of a velocity pays whatever the seed, the position keeps the
# ELBO's precision: a velocity and an error below KF-1's on every seed.
#
# The free-bits term, written in the page, against the library's for the same network, inputs
# and noise:

# %%
fb_cfg = replace(beta_cfg, kl_weight=1.0, kl_warmup=0, kl_weight0=0.0, free_bits=1.0)
fb_model = RVAE(fb_cfg, generator=make_generator(SEED, "book/rvae/free-bits"))
with torch.no_grad():
    nu_f, logvar_f = fb_model.encode(y_u, u_u)
    kl_j = 0.5 * (nu_f**2 + logvar_f.exp() - 1 - logvar_f)   # (T, B, n_x): KL per dimension
    # an untrained network's rates are all far below 1 nat: for the check, a floor that some
    # (step, dimension) rates exceed, so that both branches of the max are exercised. It lies
    # halfway between the two middle rates, not on one: a rate equal to the floor could fall
    # on either side of it in the library's rounding
    rates = kl_j.mean(1).flatten().sort().values
    below, above = rates[len(rates) // 2 - 1].item(), rates[len(rates) // 2].item()
    floor = (below + above) / 2
    assert above - below > 1e-4 * floor  # a clear gap
    check_model = RVAE(replace(fb_cfg, free_bits=floor))
    check_model.load_state_dict(fb_model.state_dict())
    lib = check_model.score(y_u, u_u, eps_u)
    charged = torch.where(kl_j.mean(1, keepdim=True) < floor, torch.full_like(kl_j, floor), kl_j)
    page = charged.sum(-1) + lib.nll_u + lib.nll_y                     # per step and sequence
torch.testing.assert_close(lib.loss, page, rtol=1e-5, atol=1e-5)
torch.testing.assert_close(lib.kl, kl_j.sum(-1), rtol=1e-5, atol=1e-5)  # the ELBO's rate, unfloored
under = (kl_j.mean(1) < floor).float().mean().item()
assert 0 < under < 1
assert rvae.config.n_latent == 2 and 1.5 < terms["kl"] / 2 < 2.5  # "about 2 nats each" above
print(f"free-bits loss, page vs library: max |difference| = {(lib.loss - page).abs().max():.1e}, "
      f"with {under:.0%} of the (step, dimension) rates under a floor of {floor:.3f} nats")

# %% [markdown]
# The five paper seeds, from `python -m tlr sweep --grid rvae_free_bits --out DIR` (each with
# KF-1 on the same test set), and the same with Adam's learning rate decayed by 1.01 per epoch
# instead of the preset's 1.02 (`--grid rvae_free_bits_slow --out DIR`; after 240 epochs the
# rate is 0.09 of its start instead of 0.009), beside the plain rVAE, the registry's rVAE-β and
# the rEFH of the same seeds. The lag is the number of steps by which the position estimate
# trails the truth (`lag_steps` in each file's details; about 0 for an unbiased second-order
# filter; the rEFH's from its paper runs repeated with the probe and the lag,
# `tlr.results.load(f"ppc/refh_paper/paper_seed{seed}")`, the same test errors to the last bit).

# %%
FB_SET = {"vae.beta_kl_weight": "1.0", "vae.beta_kl_warmup": "0", "vae.beta_free_bits": "1.0"}


fb_variants = {"free bits": load_variant("rvae_free_bits", FB_SET),
               "free bits, slower decay": load_variant("rvae_free_bits_slow",
                                                       FB_SET | {"vae.optim.decay": "1.01"})}
rows = ["| seed | KF-1 | rEFH | rVAE | rVAE-β | free bits | free bits, slower decay | "
        "velocity $R^2$: rVAE | rVAE-β | free bits | slower decay | lag (steps): KF-1 | rEFH | "
        "rVAE | rVAE-β | free bits | slower decay |", "|---:|" + "---:|" * 16]
beta_lag = {s: beta_paper[s]["details"]["rVAE-β"]["lag_steps"] for s in seeds}
for s in seeds:
    a, f, g = seed_rows[s], fb_variants["free bits"][s], fb_variants["free bits, slower decay"][s]
    assert math.isclose(beta_paper[s]["details"]["KF-1"]["lag_steps"], f["lag KF-1"])
    rows.append(f"| {s} | {fmt(a['KF-1'])} | {fmt(a['rEFH'])} | {fmt(a['rVAE'])} | "
                f"{fmt(a['rVAE-β'])} | {fmt(f['mse'])} | {fmt(g['mse'])} | {a['r2 rVAE']:.2f} | "
                f"{a['r2']:.2f} | {f['r2']:.2f} | {g['r2']:.2f} | {f['lag KF-1']:.2f} | "
                f"{refh_lag[s]:.2f} | {plain_lag[s]:.2f} | {beta_lag[s]:.2f} | {f['lag']:.2f} | "
                f"{g['lag']:.2f} |")
display(Markdown("Test MSE [$10^{-4}$ rad²], paper preset, one run per seed\n\n"
                 + "\n".join(rows)))

# %%
plot_curves({f"rVAE, {label}": rows_v for label, rows_v in fb_variants.items()})

# %%
fb_summary = {}
for label, rows_v in fb_variants.items():
    fb_summary[label] = {
        "met": [s for s in seeds
                if target_mark(rows_v[s]["r2"], rows_v[s]["mse"], seed_rows[s]["KF-1"]) == "✓"],
        "below KF-1": [s for s in seeds if rows_v[s]["mse"] < seed_rows[s]["KF-1"]],
        "above rEFH": [s for s in seeds if rows_v[s]["mse"] > seed_rows[s]["rEFH"]]}
first_r2 = {s: next((e for e, v in zip(fb_variants["free bits"][s]["epochs"],
                                       fb_variants["free bits"][s]["curve"], strict=True)
                     if v >= R2_TARGET), None) for s in seeds}
reached = sorted(e for e in first_r2.values() if e is not None)


def lr_left(epoch: int) -> float:
    """The paper preset's Adam learning rate at ``epoch``, as a fraction of its start."""
    return paper_preset.vae.optim.decay ** -(epoch - 1)


fbs, slow = fb_summary["free bits"], fb_summary["free bits, slower decay"]
slow_end = 1.01 ** -(paper_preset.vae.n_epochs - 1)   # the slower decay's rate at the end
assert (paper_preset.vae.n_epochs, paper_preset.vae.optim.decay) == (240, 1.02)  # the text above
assert (f"{slow_end:.2f}", f"{lr_left(paper_preset.vae.n_epochs):.3f}") == ("0.09", "0.009")
fb_f = [gap_fraction(fb_variants["free bits"][s]["mse"], s) for s in seeds]
assert len(slow["met"]) < len(fbs["met"]) and max(fb_f) < 0.5
assert min(refh_probe.values()) > 0.9 and max(refh_lag.values()) < min(
    f["lag KF-1"] for f in fb_variants["free bits"].values())
display(Markdown(
    f"**The finding.** With free bits at $\\beta = 1$ the rVAE meets the velocity target on "
    f"{len(fbs['met'])} of {n_seeds} seeds (seeds {seed_list(fbs['met'])}), one run per seed, "
    f"and its error is below KF-1's on {len(fbs['below KF-1'])}; its $f_{{\\text{{gap}}}}$ is "
    f"{min(fb_f):.2f} to {max(fb_f):.2f}, below 1/2 on every seed. With the slower decay the "
    f"velocity target is met on {len(slow['met'])} of {n_seeds}"
    + (f" (seeds {seed_list(slow['met'])})" if slow["met"] else "")
    + f", and the error is below KF-1's on {len(slow['below KF-1'])}. Where the velocity forms, "
    f"it forms late: the "
    f"validation probe first reaches {R2_TARGET} at epoch "
    f"{', '.join(str(e) for e in reached)} of {paper_preset.vae.n_epochs}, when the learning "
    f"rate has fallen to {lr_left(reached[-1]):.2f}–{lr_left(reached[0]):.2f} of its start. "
    f"With the slower decay the rate ends at {slow_end:.2f} of its start, and the velocity forms "
    f"later, weaker or not at all: more learning at a higher rate does not help. Both variants "
    f"stay above the rEFH on every seed, whose state carries the velocity on every seed "
    f"($R^2$ {min(refh_probe.values()):.2f}–{max(refh_probe.values()):.2f}) and trails the "
    f"truth by {min(refh_lag.values()):.2f}–{max(refh_lag.values()):.2f} steps (KF-1: "
    f"{min(f['lag KF-1'] for f in fb_variants['free bits'].values()):.2f}–"
    f"{max(f['lag KF-1'] for f in fb_variants['free bits'].values()):.2f}). Free bits change "
    f"what the velocity costs, not how weakly "
    f"the spikes of one step speak for it: like the β schedule, they make a velocity possible "
    f"under the local rule and leave it to the initialisation whether it forms."))
n6 = {r["seed"]: r for r in map(tlr.results.load,
                                tlr.results.available("ppc/rvae_free_bits_n6/paper_seed*"))}
for s, r in n6.items():
    assert r["overrides"] == FB_SET | {"vae.beta_n_latent": "6"} and r["preset"] == "paper"
    assert r["results"]["KF-1"]["mse"] == seed_rows[s]["KF-1"] and s in fbs["met"]
n6_r2 = [r["details"]["rVAE-β"]["velocity_r2"] for r in n6.values()]
n6_above = [s for s, r in n6.items() if r["results"]["rVAE-β"]["mse"] > seed_rows[s]["KF-1"]]
assert max(n6_r2) < 0.1 and len(n6_above) == len(n6)
display(Markdown(
    f"More latents are not more chances. With six latents instead of three, on seeds "
    f"{seed_list(sorted(n6))}, where three met the velocity target, free bits give no velocity "
    f"($R^2$ "
    f"{', '.join(f'{x:.2f}' for x in n6_r2)}) and an error above KF-1's on {len(n6_above)} of "
    f"{len(n6)} (saved runs with `--set vae.beta_n_latent=6`; the other seeds were not run)."))
assert all(len(v["above rEFH"]) == n_seeds for v in fb_summary.values())
assert all(len(v["met"]) < n_seeds for v in fb_summary.values())      # "leave it to the seed"

# %% [markdown]
# ### Free bits, three initialisations
#
# The protocol of the section "Three initialisations, one kept on validation", applied to free
# bits: three restarts per seed, the one with the lowest validation score kept
# (`python -m tlr sweep --grid rvae_free_bits_restarts --out DIR`, i.e. the free-bits settings
# with `--set vae.restarts=3`). Restart 0 is the single run of the table above:

# %%
fb_restart_runs, fb_best = load_restarts(
    "rvae_free_bits_restarts", FB_SET | {"vae.restarts": "3"},
    {s: fb_variants["free bits"][s]["mse"] for s in seeds})
restart_table(fb_best, "free bits")

# %% tags=["hide-cell"]
# Provenance of the free-bits restart sweep (collapsed in the book).
restart_provenance(fb_restart_runs)

# %%
fb_all = [x for b in fb_best.values() for x in b["listed"]]
met_fb3 = [s for s, b in fb_best.items()
           if target_mark(b["r2"], b["mse"], seed_rows[s]["KF-1"]) == "✓"]
both = [s for s in seeds if s in met_fb3 or s in met_b3]
pooled = {s: min(fb_best[s]["listed"] + best_of_3[s]["listed"], key=lambda x: x["val"])
          for s in seeds}                                   # six networks, one kept on validation
met_pooled = [s for s, x in pooled.items()
              if target_mark(x["velocity_r2"], x["mse"], seed_rows[s]["KF-1"]) == "✓"]
display(Markdown(
    f"- **With three restarts, free bits meet the velocity target on {len(met_fb3)} of "
    f"{n_seeds} seeds** "
    f"(seeds {seed_list(met_fb3)}; one run per seed: {len(fbs['met'])}); the rVAE-β with three "
    f"restarts on {len(met_b3)} (seeds {seed_list(met_b3)}). Of the "
    f"{len(fb_all)} free-bits restarts, "
    f"{sum(x['velocity_r2'] >= R2_TARGET for x in fb_all)} carry the velocity.\n"
    f"- The kept restart is below KF-1 on "
    f"{sum(b['mse'] < seed_rows[s]['KF-1'] for s, b in fb_best.items())} of {n_seeds} seeds, "
    f"with a mean test MSE of {statistics.mean(b['mse'] for b in fb_best.values()) * 1e4:.2f}e-4 "
    f"(rVAE-β, best of 3: {mean_b3 * 1e4:.2f}e-4; rEFH: {mean_refh * 1e4:.2f}e-4).\n"
    f"- The two protocols miss different seeds, so every seed has a network among its six "
    f"(three of each) that meets the velocity target. Keeping the one of the six with the "
    f"lowest validation score meets it on {len(met_pooled)} of {n_seeds} seeds (seeds "
    f"{seed_list(met_pooled)}): the validation score, a position error, ranks a network with "
    f"little linearly readable velocity first wherever its error is lower."))
assert len(both) == n_seeds and len(met_pooled) < n_seeds
assert len(met_fb3) < n_seeds                  # not every seed, with either protocol
assert all(b["mse"] > seed_rows[s]["rEFH"] for s, b in fb_best.items())

# %% [markdown]
# (rvae-summary)=
# ## Summary
#
# - The rVAE is the rEFH's idea in a VAE: the negative ELBO of the pair $(u_{t-1}, y_t)$, summed
#   over time, with $u_{t-1}$ detached. Written in the page, the loss and its gradient equal the
#   library's; without the detach, the gradient equals the rVAE-BPTT's. The detach drops exactly
#   the through-time part, which touches only the encoder.
# - Late fusion, a $y$-only encoder followed by a one-hidden-layer head on $[h_t; u_{t-1}]$, is an
#   inductive bias suggested by the additive form of the exact posterior: $y_t$ is summarised
#   before it meets $u_{t-1}$, which limits the interactions between the two but does not remove
#   them.
# - On the population code the TVAE ends a little below KF-1, live and in every paper seed; the
#   rVAE is a little below KF-1 live, but at paper scale above it on average and on three seeds
#   of five. Both are first-order filters: no velocity in the state, a lag like KF-1's, and no
#   gain beyond what a gain-aware KF-1 gets from counting spikes.
# - With a two-dimensional latent and a KL price on every nat, the joint objective gives the
#   rVAE almost no reason to carry a velocity: one step of motion is smaller than the filter's
#   own noise.
# - Letting the gradient flow through $u_{t-1}$ (rVAE-BPTT) lets the encoder make its own past
#   easy to reconstruct; at paper scale it diverged on 2 of the 3 seeds it was run on and was far
#   worse than KF-1 where it trained.
# - Pricing the KL below 1 (the rVAE-β: $\ell_t^\beta = \mathcal D_t + \beta\,\mathcal R_t$,
#   $\beta$ warmed up from a low value to just under 1, three latents) turns the loss into a
#   rate–distortion Lagrangian, no longer a likelihood bound, in which a carried velocity earns
#   $(1 - \beta)$ of its rate back. Under the same local rule it puts a velocity into the
#   rVAE's state in some seeds. At paper scale it beats KF-1 and the plain rVAE on every seed,
#   but meets the velocity target (a velocity $R^2 \ge 0.5$ and an error below KF-1's) on only
#   some of them. It closes under half of the KF-1-to-KF-2 gap, so it fails the scorecard's
#   stricter test of second order, and it stays behind the rEFH on every seed. Which seeds
#   carry the velocity depends on the initialisation. Training three and keeping the one with
#   the best validation score meets the velocity target on more seeds, not all. The score, an
#   average over the last evaluations of training, does not always rank the final networks as
#   the test set does, with ten validation trajectories or forty.
# - Scoring $u_{t-1}$ as the uncertain data it is, the expected $u$-term under the previous
#   posterior, $-\log \hat p(\nu_{t-1} \mid x_t) + \tfrac12 \operatorname{tr}(\Sigma_u^{-1}
#   \Upsilon_{t-1})$, removes the velocity from every seed and puts the rVAE-β above KF-1 on
#   every seed, and above the plain rVAE on four of five. That fits a velocity copied from
#   $u_{t-1}$ without loss, but the test cannot tell it from a trace term that removes every
#   memory carried through $u_{t-1}$; the plain rVAE scored the same way would separate the two.
# - Free bits at $\beta = 1$ subsidise only the coordinates that carry less than 1 nat, which a
#   velocity does and the position does not. They meet the velocity target on some paper seeds,
#   with a velocity that forms late in training, but not on every seed, with the preset's
#   learning-rate decay or a slower one, nor with three initialisations kept on validation,
#   which miss a different seed than the rVAE-β's three. No change of the price tried here
#   makes the rVAE second order on every seed: a velocity is worth too little to the joint of
#   one step for the local rule to find it reliably. On Moving MNIST the same free bits
#   make the generated digits move on each of five seeds (quick preset, {doc}`moving_mnist`);
#   on the bouncing balls they do not ({doc}`balls`).

# %%
print(f"chapter body executed in {time.perf_counter() - T_START:.0f} s of wall time, "
      f"{time.process_time():.0f} s of CPU time, on {torch.get_num_threads()} thread")

# %% [markdown]
# ## Exercises
#
# Five exercises: four that code a derivation of the chapter and one open question. Each one
# gives its difficulty (★★ needs the derivations above, ★★★ open-ended) and a time estimate. The coding exercises are
# checked automatically: in the book, the check cell under each exercise runs the solution,
# which is hidden under "Solution"; in the student notebook made from this chapter it runs your
# own code and prints ✓ or ✗ with the reason. Every check runs in a few seconds.

# %%
from tlr.data.lds_ppc import simulate
from tlr.exercises import check
from tlr.models.rvae import scale_tril

ex_data = simulate(6, 300, seed=5, lti=lti, ppc=ppc)           # a short stream for the checks
kf1_ex = fit_kf(simulate(8, 1000, seed=6, lti=lti, ppc=ppc).y, 1, lti, ppc, n_iter=200,
                tol=1e-5, generator=make_generator(SEED, "book/rvae/exercise-kf1")).params
ex_model = RVAE(RVAEConfig(n_obs=ppc.n_neurons),
                generator=make_generator(SEED, "book/rvae/exercise-model"))
ex_tvae = TVAE(TVAEConfig(n_obs=ppc.n_neurons),
               generator=make_generator(SEED, "book/rvae/exercise-tvae"))

# %% [markdown]
# ```{exercise} The TVAE's KL in closed form
# :label: rvae-tvae-kl
# :nonumber:
#
# **★★ · 20 min · auto-graded**
#
# The rVAE's KL term compares $\check q = \mathcal N(\nu_t, \Upsilon_t)$ with the standard normal
# prior; the page writes it in one line. The TVAE compares the same diagonal $\check q$ with its
# learned prior $\hat p(x_t \mid u_{t-1}) = \mathcal N(\mu_p, \Sigma_p)$, which has a full
# covariance $\Sigma_p = \Gamma_p \Gamma_p^\top$ given by its lower-triangular Cholesky factor
# $\Gamma_p$ (the argument `L_p`). Write `kl_diag_full(nu, logvar, mu_p, L_p)` for
#
# $$
# \mathrm{KL}\big(\mathcal N(\nu, \Upsilon) \,\big\|\, \mathcal N(\mu_p, \Sigma_p)\big)
# = \tfrac12\Big[\operatorname{tr}(\Sigma_p^{-1}\Upsilon)
#   + (\mu_p - \nu)^\top \Sigma_p^{-1} (\mu_p - \nu) - n_x
#   + \log\det\Sigma_p - \log\det\Upsilon\Big],
# $$
#
# batched over any leading dimensions (`nu`, `logvar`, `mu_p`: `(..., n)`; `L_p`:
# `(..., n, n)`), without forming $\Sigma_p^{-1}$: use triangular solves with $\Gamma_p$ and
# $\log\det\Sigma_p = 2\sum_j \log \Gamma_p^{jj}$. Do not call `torch.distributions`. The check
# compares your function with `torch.distributions.kl_divergence` and with the `kl` that the
# library's TVAE scores.
# ```

# %% [markdown]
# ```{solution-start} rvae-tvae-kl
# :class: dropdown
# ```

# %% tags=["solution"]
def kl_diag_full(nu, logvar, mu_p, L_p):
    """KL(N(nu, diag exp(logvar)) ‖ N(mu_p, L_p L_p^T)), shape (...)."""
    # BEGIN SOLUTION
    n = nu.shape[-1]
    std = torch.exp(0.5 * logvar)
    M = torch.linalg.solve_triangular(L_p, torch.diag_embed(std), upper=False)  # L⁻¹ Υ^½
    w = torch.linalg.solve_triangular(L_p, (mu_p - nu)[..., None], upper=False)[..., 0]
    logdet_p = 2 * torch.log(torch.diagonal(L_p, dim1=-2, dim2=-1)).sum(-1)
    return 0.5 * (M.pow(2).sum((-2, -1)) + w.pow(2).sum(-1) - n + logdet_p - logvar.sum(-1))
    # END SOLUTION


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["check"]
@check("rvae-tvae-kl")
def _():
    g = make_generator(SEED, "book/rvae/exercise-kl")
    nu, logvar, mu = (torch.randn(5, 2, generator=g, dtype=torch.float64) for _ in range(3))
    L = (torch.tril(torch.randn(5, 2, 2, generator=g, dtype=torch.float64), -1)
         + torch.diag_embed(torch.rand(5, 2, generator=g, dtype=torch.float64) + 0.3))
    ref = kl_divergence(torch.distributions.MultivariateNormal(
        nu, scale_tril=torch.diag_embed(torch.exp(0.5 * logvar))),
        torch.distributions.MultivariateNormal(mu, scale_tril=L))
    mine = kl_diag_full(nu, logvar, mu, L)
    assert tuple(mine.shape) == (5,), f"shape {tuple(mine.shape)}, expected (5,)"
    err = (mine - ref).abs().max().item()
    assert err < 1e-9, f"max |your KL - torch.distributions| = {err:.2e}"
    # the TVAE's own KL term, on an untrained TVAE
    y_t, u_prev = ex_data.y[10], torch.randn(6, 2, generator=g)
    eps_t = torch.randn(6, 2, generator=g)
    with torch.no_grad():
        out = ex_tvae.score(y_t, u_prev, eps_t)
        prior = ex_tvae.prior_dist(u_prev)
        mine = kl_diag_full(out.nu, out.logvar, prior.mean, prior.scale_tril)
    err = (mine - out.kl).abs().max().item()
    assert err < 1e-4, f"max |your KL - the TVAE's kl term| = {err:.2e} nats"


# %% tags=["hidden-check", "remove-cell"]
@check("rvae-tvae-kl", hidden=True)
def _():
    g = make_generator(SEED, "book/rvae/exercise-kl-hidden")
    nu, logvar, mu = (torch.randn(4, 3, 3, generator=g, dtype=torch.float64) for _ in range(3))
    L = scale_tril(torch.randn(4, 3, 6, generator=g, dtype=torch.float64), 3)
    ref = kl_divergence(torch.distributions.MultivariateNormal(
        nu, scale_tril=torch.diag_embed(torch.exp(0.5 * logvar))),
        torch.distributions.MultivariateNormal(mu, scale_tril=L))
    mine = kl_diag_full(nu, logvar, mu, L)
    assert tuple(mine.shape) == (4, 3), f"batched shape {tuple(mine.shape)}, expected (4, 3)"
    err = (mine - ref).abs().max().item()
    assert err < 1e-9, f"three latents, batched: max |your KL - reference| = {err:.2e}"
    same = kl_diag_full(mu, 2 * torch.log(torch.ones_like(mu)), mu,
                        torch.eye(3, dtype=torch.float64).expand(4, 3, 3, 3))
    assert same.abs().max().item() < 1e-12, "KL of a distribution with itself must be 0"


# %% [markdown]
# ```{exercise} What the detach drops
# :label: rvae-through-time
# :nonumber:
#
# **★★ · 20 min · auto-graded**
#
# Write `through_time_part(model, y, u0, eps)`: the part of the gradient that the rVAE's local
# rule drops, $\nabla_{\text{BPTT}} - \nabla_{\text{local}}$ of the window loss
# $\frac1B \sum_b \sum_t \ell_t$ over `y` (`(T, B, n_y)`) from `u0`, with the standard normal
# noise `eps` (`(T, B, n_x)`), as a dict from each parameter's name (`model.named_parameters()`)
# to a tensor of its shape. Score each step with `model.score(y[t], u_prev, eps[t])` (its
# `.loss` is $\ell_t$ per sequence and its `.u` is $u_t$); run the loop twice, with and without
# `detach`, and differentiate with `torch.autograd.grad`. Do not call
# `local_and_bptt_gradients`: the check compares your result with it. Which parameters get a
# zero through-time part, and why?
# ```

# %% [markdown]
# ```{solution-start} rvae-through-time
# :class: dropdown
# ```

# %% tags=["solution"]
def through_time_part(model, y, u0, eps):
    """{name: ∇_BPTT − ∇_local} of the window's summed loss (batch mean)."""
    # BEGIN SOLUTION
    names, params = zip(*model.named_parameters(), strict=True)
    grads = []
    for detach in (True, False):
        u, total = u0, 0.0
        for t in range(y.shape[0]):
            out = model.score(y[t], u.detach() if detach else u, eps[t])
            total = total + out.loss.mean()
            u = out.u
        grads.append(torch.autograd.grad(total, params, allow_unused=True))
    return {n: (torch.zeros_like(p) if gb is None else gb) - (0 if gl is None else gl)
            for n, p, gl, gb in zip(names, params, *grads, strict=True)}
    # END SOLUTION


# %% [markdown]
# The decoders' entries are zero: $u_{t-1}$ depends only on the recognition parameters, so
# only they have a path back in time. For the encoder of an untrained rVAE, on 20 steps, the
# dropped part is about as large as the BPTT gradient itself ({doc}`local_vs_bptt` follows it
# through training):

# %%
def dropped_share(m: RVAE) -> float:
    """|∇_BPTT − ∇_local| / |∇_BPTT| for the encoder, on 20 steps of 6 sequences."""
    y, start = ex_data.y[200:220], m.start_state(ex_data.y[200])
    e = torch.randn(20, 6, 2, generator=make_generator(SEED, "book/rvae/exercise-demo"))
    diff = through_time_part(m, y, start, e)
    _, bptt = m.local_and_bptt_gradients(y, start, torch.Generator().manual_seed(0))
    enc_names = [n for n, _ in m.named_parameters() if n.startswith("rec_")]
    d = torch.cat([diff[n].flatten() for n in enc_names])
    b = torch.cat([g.flatten() for (n, _), g in zip(m.named_parameters(), bptt, strict=True)
                   if n.startswith("rec_")])
    return (d.norm() / b.norm()).item()


share = dropped_share(ex_model)
print(f"encoder of an untrained rVAE: |dropped part| / |BPTT gradient| = {share:.2f}")
assert 0.8 < share < 1.25                  # "about as large as the BPTT gradient" above

# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["check"]
@check("rvae-through-time")
def _():
    y = ex_data.y[50:56, :4]
    u0_ = ex_model.start_state(y[0])
    eps_ = torch.randn(6, 4, 2, generator=torch.Generator().manual_seed(1))
    mine = through_time_part(ex_model, y, u0_, eps_)
    names = [n for n, _ in ex_model.named_parameters()]
    assert isinstance(mine, dict) and sorted(mine) == sorted(names), (
        "return a dict with one entry per named parameter")
    local, bptt = ex_model.local_and_bptt_gradients(y, u0_, torch.Generator().manual_seed(1))
    for n, gl, gb in zip(names, local, bptt, strict=True):
        torch.testing.assert_close(mine[n], gb - gl, msg=lambda m, n=n: f"{n}: {m}")
    assert any(mine[n].abs().max() > 0 for n in names if n.startswith("rec_")), (
        "the encoder's through-time part should not be zero")


# %% tags=["hidden-check", "remove-cell"]
@check("rvae-through-time", hidden=True)
def _():
    y = ex_data.y[120:131, 2:5]
    u0_ = torch.randn(3, 2, generator=torch.Generator().manual_seed(2))
    eps_ = torch.randn(11, 3, 2, generator=torch.Generator().manual_seed(3))
    for m in (ex_model, ex_tvae):
        mine = through_time_part(m, y, u0_, eps_)
        local, bptt = m.local_and_bptt_gradients(y, u0_, torch.Generator().manual_seed(3))
        for (n, _), gl, gb in zip(m.named_parameters(), local, bptt, strict=True):
            torch.testing.assert_close(mine[n], gb - gl,
                                       msg=lambda s, n=n, m=m: f"{m.name}, {n}: {s}")
            if not n.startswith("rec_"):
                assert mine[n].abs().max() == 0, f"{m.name}, {n}: a decoder has no path back"


# %% [markdown]
# ```{exercise} A gain-aware KF-1
# :label: rvae-gain-aware-kf1
# :nonumber:
#
# **★★ · 25 min · auto-graded**
#
# The chapter explains the VAEs' advantage over KF-1 with a first-order Kalman filter told each
# step's reliability. Write it: `gain_aware_kf1(s_obs, total, a, c, q, mu0, p0, tuning_std,
# period)` filters the centre-of-mass observations `s_obs` (`(T, B)`, from
# `centred_observations`) with KF-1's scalar model ($n_z = 1$) $z_{t+1} = A z_t + w_t$,
# $w_t \sim \mathcal N(0, Q)$, $\bar s_t = C z_t + \epsilon_t$ (the arguments `a`, `q`, `c`),
# where the observation noise variance is $R_t = \sigma_{\text{tc}}^2 / \sum_i y_t^i$, from the
# total count `total` (`(T, B)`); a step without spikes carries no information and makes no
# update. Start from the prior $\mathcal N(\mu_{1 \mid 0}, P_{1 \mid 0})$ of $z_1$ (the arguments
# `mu0`, `p0`) at the first step (no prediction, innovation not wrapped); from the second step
# on, predict, then update with the innovation wrapped onto the ring (`wrap_error(..., period)`).
# Return the position estimates $C\mu_{t \mid t}$, `(T, B)`.
#
# The check compares your filter with `run_kf(..., gain_aware=True)` and asks that, with KF-1's
# fitted $A$, $C$ and $Q$, it beats KF-1 on a test stream.
# ```

# %% [markdown]
# ```{solution-start} rvae-gain-aware-kf1
# :class: dropdown
# ```

# %% tags=["solution"]
def gain_aware_kf1(s_obs, total, a, c, q, mu0, p0, tuning_std, period):
    """Positions c μ_{t|t} (T, B) of a scalar Kalman filter with R_t = σ_tc²/Σ_i y_t^i."""
    # BEGIN SOLUTION
    T, B = s_obs.shape
    mu = torch.full((B,), float(mu0), dtype=torch.float64)
    P = torch.full((B,), float(p0), dtype=torch.float64)
    R = torch.where(total > 0, tuning_std**2 / total.clamp(min=1).double(), torch.inf)
    out = []
    for t in range(T):
        if t > 0:
            mu, P = a * mu, a * a * P + q                          # predict
        ds = s_obs[t] - c * mu
        if t > 0:
            ds = wrap_error(ds, period)
        K = torch.where(torch.isfinite(R[t]), P * c / (c * c * P + R[t]), 0.0)
        mu, P = mu + K * ds, (1 - K * c) * P                       # update
        out.append(c * mu)
    return torch.stack(out)
    # END SOLUTION


# %% [markdown]
# On a fresh stream of 10 trajectories of 1000 steps, with the KF-1 fitted above, the
# hand-written filter gives the library's gain-aware number and beats KF-1:

# %%
demo = simulate(10, 1000, seed=8, lti=lti, ppc=ppc)
s_demo, _ = centred_observations(demo.y, lti, ppc)
mine = gain_aware_kf1(s_demo, demo.y.sum(-1), kf1_ex.A.item(), kf1_ex.C.item(), kf1_ex.Q.item(),
                      kf1_ex.init_mean.item(), kf1_ex.init_cov.item(), ppc.tuning_std,
                      ppc.period)
lib = run_kf(kf1_ex, demo.y, lti, ppc, gain_aware=True)
plain = run_kf(kf1_ex, demo.y, lti, ppc)
print(f"MSE: hand-written {torus_mse(mine, demo.position, ppc.period):.4e}, library "
      f"{torus_mse(lib, demo.position, ppc.period):.4e}, "
      f"KF-1 {torus_mse(plain, demo.position, ppc.period):.4e} rad²")

# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["check"]
@check("rvae-gain-aware-kf1")
def _():
    a, c, q = (kf1_ex.A.item(), kf1_ex.C.item(), kf1_ex.Q.item())
    s, _ = centred_observations(ex_data.y, lti, ppc)
    mine = gain_aware_kf1(s, ex_data.y.sum(-1), a, c, q, kf1_ex.init_mean.item(),
                          kf1_ex.init_cov.item(), ppc.tuning_std, ppc.period)
    ref = run_kf(kf1_ex, ex_data.y, lti, ppc, gain_aware=True)
    assert tuple(mine.shape) == tuple(ref.shape), (
        f"shape {tuple(mine.shape)}, expected {tuple(ref.shape)}")
    err = (mine - ref).abs().max().item()
    assert err < 1e-6, f"max |your filter - run_kf(gain_aware=True)| = {err:.2e} rad"
    plain = torus_mse(run_kf(kf1_ex, ex_data.y, lti, ppc), ex_data.position, ppc.period)
    aware = torus_mse(mine, ex_data.position, ppc.period)
    assert aware < plain, f"gain-aware MSE {aware:.3e} should beat KF-1's {plain:.3e}"


# %% tags=["hidden-check", "remove-cell"]
@check("rvae-gain-aware-kf1", hidden=True)
def _():
    d = simulate(3, 200, seed=7, lti=lti, ppc=ppc)
    y = withhold(d.y, 60, 15)                                  # silent steps: no update
    s, _ = centred_observations(y, lti, ppc)
    prm = kf1_ex._replace(Q=kf1_ex.Q * 3)
    mine = gain_aware_kf1(s, y.sum(-1), prm.A.item(), prm.C.item(), prm.Q.item(),
                          prm.init_mean.item(), prm.init_cov.item(), ppc.tuning_std, ppc.period)
    ref = run_kf(prm, y, lti, ppc, gain_aware=True)
    err = (mine - ref).abs().max().item()
    assert err < 1e-6, f"with a silent gap and another q: max |your filter - run_kf| = {err:.2e}"


# %% [markdown]
# ```{exercise} The information budget, in full
# :label: rvae-velocity-nats
# :nonumber:
#
# **★★ · 30 min · auto-graded**
#
# The chapter values the velocity by summing $-\frac12\log(1 - R^2)$ over the two latent
# dimensions of $\Delta u_t$ separately, which ignores their correlation. For jointly Gaussian
# variables the information that a vector of regressors $l$ carries about a vector $d$ (two
# symbols local to this exercise) is
# $\mathbb I(d; l) = \frac12 \log\det \operatorname{Cov}(d) - \frac12 \log\det
# \operatorname{Cov}(d - \tilde d)$, where $\tilde d$ is the least-squares prediction of $d$
# from $l$ and a constant. Write `gaussian_information(r, v)` for paired samples of $d$ (`r`, a
# matrix with one sample per row) and of $l$ (`v`, likewise), in nats (work in float64).
# Then apply it to the data themselves: how many nats about the velocity $\dot s_t$ does the
# difference of two consecutive centre-of-mass observations,
# $\operatorname{wrap}(\bar s_{t-1} - \bar s_t)$, carry?
# ```

# %% [markdown]
# ```{solution-start} rvae-velocity-nats
# :class: dropdown
# ```

# %% tags=["solution"]
def gaussian_information(r, v):
    """I(r; v) in nats for jointly Gaussian samples r (n, d), v (n, k), by linear regression."""
    # BEGIN SOLUTION
    r, v = r.double(), v.double()
    X = torch.cat([v, torch.ones(len(v), 1, dtype=torch.float64)], -1)
    resid = r - X @ torch.linalg.lstsq(X, r).solution
    return 0.5 * (torch.logdet(torch.cov(r.T).reshape(r.shape[1], -1))
                  - torch.logdet(torch.cov(resid.T).reshape(r.shape[1], -1))).item()
    # END SOLUTION


# %%
s_demo, var_demo = centred_observations(demo.y, lti, ppc)
ok = torch.isfinite(var_demo[:-1]) & torch.isfinite(var_demo[1:])   # both steps have spikes
diff = wrap_error(s_demo[:-1] - s_demo[1:], ppc.period)[ok]
nats_data = gaussian_information(diff[:, None], demo.z[1:, :, 1][ok][:, None])
print(f"I(wrap(s̄_(t-1) - s̄_t); velocity) = {nats_data:.3f} nats per step")

# %% [markdown]
# Even the raw observations carry only a few hundredths of a nat per step about the velocity
# through one step of motion, the same order as the chapter's estimate for the rVAE's
# $\Delta u_t$: one step's motion is small next to the noise of one step's centre of mass. A
# filter learns the velocity by integrating over many steps, which is what the rVAE's
# one-step reconstruction term does not reward.
#
# ```{solution-end}
# ```

# %% tags=["check"]
@check("rvae-velocity-nats")
def _():
    g = make_generator(SEED, "book/rvae/exercise-info")
    n, a = 200_000, torch.tensor([0.5, -0.3], dtype=torch.float64)
    v_ = torch.randn(n, 1, generator=g, dtype=torch.float64)
    r = v_ * a + 0.7 * torch.randn(n, 2, generator=g, dtype=torch.float64) + 3.0
    exact = 0.5 * math.log(1 + (a @ a).item() / 0.49)  # ½ log det(I + a aᵀ / σ²)
    got = gaussian_information(r, v_)
    assert isinstance(got, float), f"return a float, got {type(got).__name__}"
    assert abs(got - exact) < 0.01, f"I(r; v) = {got:.4f} nats, expected {exact:.4f}"


# %% tags=["hidden-check", "remove-cell"]
@check("rvae-velocity-nats", hidden=True)
def _():
    g = make_generator(SEED, "book/rvae/exercise-info-hidden")
    n = 200_000
    v_ = torch.randn(n, 2, generator=g, dtype=torch.float64)
    M = torch.tensor([[1.0, 0.0], [0.9, 0.3]], dtype=torch.float64)
    a = torch.tensor([1.0, 0.9], dtype=torch.float64)
    noise = torch.randn(n, 2, generator=g, dtype=torch.float64) @ M   # correlated noise
    r = v_[:, :1] * a + noise
    cov_n = M.T @ M
    cov_r = cov_n + torch.outer(a, a)
    exact = 0.5 * (torch.logdet(cov_r) - torch.logdet(cov_n)).item()
    got = gaussian_information(r, v_)
    assert abs(got - exact) < 0.02, (
        f"correlated dimensions and a useless second regressor: {got:.4f}, expected {exact:.4f}")


# %% [markdown]
# ```{exercise} A cheaper KL: can a β-weighted rVAE learn the velocity?
# :label: rvae-beta
# :nonumber:
#
# **★★★ · 3–6 h · open research question, not auto-graded**
#
# The information budget says the velocity is not worth its KL price, and the section
# {ref}`The rVAE-β section <rvae-second-order>` changes the price: with a KL weight $\beta$
# warmed up from a low value to just under 1 and three latents, the rVAE-β learns the velocity
# in some paper seeds but not in all, and keeping the best of three initialisations on the
# validation set meets the velocity target on four seeds of five. Take it further, with the
# local rule throughout. Can a schedule of $\beta$, or a weight $\beta_u > 1$ on the past's
# reconstruction $-\log \hat p(u_{t-1} \mid x_t)$ instead (as $\beta$ weights the rate), make
# the rVAE a second-order filter on every seed: a velocity $R^2$ well above 0, a lag near 0, and
# a test MSE that closes at least half of the KF-1-to-KF-2 gap ($f_{\text{gap}} \ge 1/2$, the
# {doc}`scorecard`'s test)? How do the answers depend on the schedule (or $\beta_u$), on the
# size $n_x$ of the latent (2, 3, 4), on the length of training after the warm-up, and on the
# seed? What does the position readout lose as $\beta \to 0$?
# ```

# %% [markdown]
# ````{solution} rvae-beta
# :class: dropdown
#
# A starting point, not a result. The library's rVAE takes the weight and its schedule
# (`RVAEConfig.kl_weight`, `kl_warmup`, `kl_weight0`, `free_bits`; the registry name `"rVAE-β"`
# holds the section's setting), and the PPC runner trains and probes it from the command line,
# with the schedule changed by `--set`:
#
# ```bash
# python -m tlr run ppc --preset quick --models "KF-1,rVAE-β" --seed 1 \
#     --set vae.beta_kl_weight=0.95 --set vae.beta_kl_warmup=3000 --json results/mine.json
# ```
#
# The file records the test MSE and, in its details, `velocity_r2`; the lag and the gap probe of
# the chapter need the trained model (`--checkpoint-dir`, then `load_model`). A weight
# $\beta_u$ needs a subclass that scales `nll_u` in `_terms` (it returns `(kl, nll_u, nll_y)`
# per sequence), trained with `tlr.train.fit` on `epoch_data(...)` as `run` does:
#
# ```python
# class WeightedPastRVAE(RVAE):
#     u_weight = 4.0  # β_u
#
#     def _terms(self, y_t, u_prev, x, nu, std, u_var=None):
#         kl, nll_u, nll_y = super()._terms(y_t, u_prev, x, nu, std, u_var)
#         return kl, self.u_weight * nll_u, nll_y
# ```
#
# What to expect and why:
#
# - The velocity's own reward is small at any price: a few hundredths of a nat per step from
#   what it predicts. The lever is the memory dividend of the section: a coordinate $j$ copied
#   from $u_{t-1}$ at a rate of $\mathcal R_t^j$ nats earns $(1 - \beta) \mathcal R_t^j$ per step
#   under $\ell_t^\beta$, and $(\beta_u - 1) \mathcal R_t^j$ under a weight $\beta_u$ on the
#   $u$-term, which sharpens only the past's likelihood and leaves the present's alone.
# - Any memory earns that dividend, a drifting one too: as $\beta \to 0$ the encoder copies
#   $u_{t-1}$ into $x_t$ at almost no cost and the filter can turn into a self-sustaining memory
#   that drifts from the data (the failure the chapter describes for a small fixed $\sigma_u$).
#   Watch the gap probe and the position error for that.
# - With $n_x = 2$ both latents are used by the position on the ring; a velocity needs a third
#   dimension. Sweep $n_x \in \{2, 3, 4\}$ together with the schedule.
# - The section's setting met the velocity target with the `quick` preset's 120 epochs on more
#   seeds than with the `paper` preset's 240. Each saved paper run records the velocity $R^2$ along
#   training (`velocity_r2_curve` beside `curve` in its details): see where it appears and
#   where it is lost, against the schedule of $\beta$. The restart runs list every restart's
#   validation score, test MSE and velocity $R^2$ (`details["rVAE-β"]["restarts"]`): a rule
#   that chooses among restarts without the test set and never keeps a first-order one would
#   be a result in itself; state it before running it.
# - Compare with the rEFH, which has no KL at all and a 240-unit $u_{t-1}$: the closest VAE
#   analogue is a large $\beta_u$ with a wide latent.
# - Whatever lever you try, score $u_{t-1}$ as uncertain data too (`u_uncertain=True`, the
#   section on where the velocity lives): a velocity that survives it is sustained by the
#   spikes. One that does not may be a lossless copy of the past, or may have gone with every
#   other memory of $u_{t-1}$; the plain rVAE scored the same way tells the two apart.
#
# The open question behind it: is the rEFH's second-order learning a property of the local
# rule with a joint objective, or of the particular information economics of a harmonium's
# hidden layer? The section shows that the velocity can emerge in a VAE under the local rule
# once the KL is priced below 1. The control that would separate the two is the same schedule
# in a model without the $u$-term, a TVAE with its KL weighted the same way: if it stays first
# order, the $u$-term's memory dividend is the mechanism.
# ````

# %% [markdown]
# ## References
#
# - Alemi, A. A., Poole, B., Fischer, I., Dillon, J. V., Saurous, R. A. & Murphy, K. (2018).
#   Fixing a broken ELBO. *ICML 2018*. https://arxiv.org/abs/1711.00464
# - Bowman, S. R., Vilnis, L., Vinyals, O., Dai, A. M., Jozefowicz, R. & Bengio, S. (2016).
#   Generating sentences from a continuous space. *CoNLL 2016*. https://arxiv.org/abs/1511.06349
# - Clevert, D.-A., Unterthiner, T. & Hochreiter, S. (2016). Fast and accurate deep network
#   learning by exponential linear units (ELUs). *ICLR 2016*. https://arxiv.org/abs/1511.07289
# - Higgins, I., Matthey, L., Pal, A., Burgess, C., Glorot, X., Botvinick, M., Mohamed, S. &
#   Lerchner, A. (2017). β-VAE: learning basic visual concepts with a constrained variational
#   framework. *ICLR 2017*. https://openreview.net/forum?id=Sy2fzU9gl
# - Kingma, D. P., Salimans, T., Jozefowicz, R., Chen, X., Sutskever, I. & Welling, M. (2016).
#   Improved variational inference with inverse autoregressive flow. *NeurIPS 2016*.
#   https://arxiv.org/abs/1606.04934
# - Kingma, D. P. & Welling, M. (2014). Auto-encoding variational Bayes. *ICLR 2014*.
#   https://arxiv.org/abs/1312.6114
# - Krishnan, R. G., Shalit, U. & Sontag, D. (2015). Deep Kalman filters. arXiv:1511.05121.
#   https://arxiv.org/abs/1511.05121
# - Tishby, N., Pereira, F. C. & Bialek, W. (1999). The information bottleneck method.
#   *Proceedings of the 37th Allerton Conference on Communication, Control and Computing*.
#   https://arxiv.org/abs/physics/0004057
