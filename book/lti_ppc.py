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
# # The LTI system and its population code
#
# The poster's first experiment is a toy that can be solved exactly. A damped mass on a spring
# moves back and forth; fifteen model neurons report its position, and nothing else, as Poisson
# spike counts. Because the optimal filter for this system is known in closed form, we can
# measure how close a learned model comes to it, and so tell *what order of dynamics* the model
# has learned.
#
# This chapter builds the data set and the reference numbers of the poster's Table 1 that need no
# neural network: ORDER 0, KF-1, KF-2 and a Kalman filter with the true parameters. Statements
# quoted from the poster are in quotation marks; the rest of the text explains them and the code.
#
# > Our own commentary (judgements, caveats, disagreements with the sources) is set in
# > blockquotes like this one. "Sources §n" points to a section of the appendix
# > {ref}`Sources and protocols <sources>`, which traces each number to its primary source.

# %% tags=["remove-input"]
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "tlr @ git+https://github.com/tlr-book/tlr"], check=True)

# %% [markdown]
# Everything below comes from the `tlr` library; the chapter only calls it. Set the environment
# variable `TLR_FULL=1` to fit the EM baselines to the tighter tolerance of the `paper` preset.

# %% tags=["exercise-setup"]
import inspect
import math
import os
from dataclasses import replace

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from tlr.data import simulate, tuning_curves
from tlr.evaluation import center_of_mass, torus_mse, wrap_error
from tlr.evaluation.order import lag_steps
from tlr.experiments.ppc import PRESETS, run, test_data, train_data
from tlr.filters import (
    fit_kf,
    fit_lds_em,
    kalman_filter,
    kf_states,
    kf_true,
    order0,
    run_kf,
    unwrap_continuous,
)
from tlr.rng import make_generator
from tlr.viz import (
    plot_binned_variance,
    plot_estimates,
    plot_mse_vs_iterations,
    plot_raster,
    plot_trajectories,
    plot_tuning_curves,
)

FULL = os.environ.get("TLR_FULL") == "1"
preset = PRESETS["paper" if FULL else "quick"]
lti, ppc = preset.lti, preset.ppc
SEED = 0
torch.manual_seed(SEED)  # tlr takes explicit seeds; this only pins anything else
# The filters loop over time on tiny tensors: extra threads only add overhead, and on a busy
# 2-core machine they made this chapter ten times slower.
torch.set_num_threads(1)
plt.rcParams["figure.dpi"] = 110
print(f"preset {preset.name!r}, seed {SEED}")

# %% [markdown]
# ## A damped mass on a spring
#
# The poster writes the latent dynamics as
# "$p(z_{t+1}\mid z_t) = \mathcal{N}(\mathbf{A}z_t, \Sigma_{\hat{x}})$", and calls them
# "second-order (oscillatory!) dynamics, but only position is 'reported' by the neurons".
# The state $z = [x; v]$ is the position $x$ (rad) and velocity $v$ (rad/s) of a mass $m$ on a
# spring of stiffness $k$ with damping $b$, $m\dot v = -kx - bv$. One Euler step of length
# $\Delta t$ gives the transition matrix ({ref}`Sources §2.2 <sources-2-2>`, from Makin's `setDynamics.m`):
#
# $$
# z_{t+1} = A z_t + w_t, \qquad
# A = \begin{bmatrix} 1 & \Delta t \\ -\frac{k}{m}\Delta t & 1 - \frac{b}{m}\Delta t \end{bmatrix},
# \qquad w_t \sim \mathcal{N}(0, \Sigma_x),\quad \Sigma_x = \mathrm{diag}(5\times10^{-7},\,
# 5\times10^{-5}),
# $$
#
# with $\Delta t = 0.05$ s, $m = 5$, $b = 0.25$ and $k = 3$. `LTIConfig` holds these numbers and
# builds $A$ and $\Sigma_x$:

# %%
print(lti)
print("A =", lti.A.numpy().round(4).tolist())
print("Sigma_x =", lti.Q.diagonal().tolist())

# %% [markdown]
# The eigenvalues $\lambda = |\lambda| e^{\pm i\omega}$ of $A$ give the period $2\pi/\omega$ and
# the decay time $-1/\log|\lambda|$ of the oscillation, both in steps. The noise keeps it going:
# the stationary covariance $P_\infty$ solves the discrete Lyapunov equation
#
# $$
# P_\infty = A P_\infty A^\top + \Sigma_x
# \quad\Longleftrightarrow\quad
# \operatorname{vec} P_\infty = (I - A \otimes A)^{-1} \operatorname{vec} \Sigma_x .
# $$

# %%
A = lti.A
lam = torch.linalg.eigvals(A)
period_steps = 2 * math.pi / lam.angle().abs().max().item()
decay_steps = -1 / math.log(lam.abs().max().item())
P_inf = torch.linalg.solve(torch.eye(4, dtype=torch.float64) - torch.kron(A, A),
                           lti.Q.reshape(-1)).reshape(2, 2)
std_x, std_v = P_inf.diagonal().sqrt().tolist()
print(f"eigenvalues {lam[0].item():.5f}, {lam[1].item():.5f}  (|lambda| = {lam.abs()[0]:.5f})")
print(f"period {period_steps:.1f} steps = {period_steps * lti.dt:.2f} s; "
      f"amplitude decay time {decay_steps:.0f} steps = {decay_steps * lti.dt:.0f} s")
print(f"stationary std: position {std_x:.3f} rad, velocity {std_v:.3f} rad/s")
assert 161 < period_steps < 163 and abs(std_x - 0.20) < 0.01 and abs(std_v - 0.16) < 0.01
# Forward Euler: |lambda|^2 = det A = 1 - (b/m) dt + (k/m) dt^2, slower than exp(-(b/m) dt).
assert math.isclose(lam.abs()[0].item() ** 2, 1 - lti.damping / lti.mass * lti.dt
                    + lti.spring / lti.mass * lti.dt**2)
assert 1990 < decay_steps < 2010  # the continuous-time 2m/b is 800 steps

# %% [markdown]
# > The amplitude decays with a time constant of 2000 steps (100 s), not the continuous-time
# > $2m/b = 40$ s = 800 steps that the spec quotes (§2.2). The forward-Euler step adds a little
# > energy every step: $|\lambda|^2 = \det A = 1 - \frac{b}{m}\Delta t + \frac{k}{m}\Delta t^2$,
# > and the last term undoes 60 % of the damping. The period, 162 steps, is unaffected.
# >
# > The start position is drawn uniformly from $\pm(\pi/3 - 0.05) \approx \pm 1.0$ rad and the
# > start velocity is essentially zero ({ref}`Sources §2.3 <sources-2-3>`). That is five stationary standard deviations:
# > every trajectory begins as a large swing that shrinks only to about 60 % of its size over
# > the 1000 steps of a sequence, with the noise-driven jitter of about 0.2 rad on top.
#
# The book's test set is the spec's canonical one: 40 trajectories of 1000 steps, drawn from
# the test stream of the seed. Here are the first four:

# %%
data = test_data(preset, SEED)
print("z:", tuple(data.z.shape), " y:", tuple(data.y.shape), " gain:", tuple(data.gain.shape))
plot_trajectories(data.z, n_show=4);

# %% [markdown]
# ## Fifteen Poisson neurons on a ring
#
# The observation model is
# "$p(\mathbf{y}_t\mid z_t) = \prod_{i=1}^{15} \mathrm{Pois}(y_t^i \mid g_t f_i(z_t^1))$",
# "a crude biophysical model of neurons reporting a stimulus". Only the position
# $s_t = z_t^1$ is encoded. Neuron $i$ prefers $s_i = s_\min + i\Delta$ ($i = 0,\dots,14$),
# with $s_\min = -\pi/3$ and spacing $\Delta = (2\pi/3)/14$, and has a Gaussian tuning curve of
# width $\sigma_{tc}$ (a full width at half maximum of 1/6 of the range). The stimulus lives on
# a ring of period $L = N\Delta = \frac{15}{14}\cdot\frac{2\pi}{3}$, so that the last neuron and
# the first are neighbours, and each neuron sums the three images of the wrapped stimulus
# $s_w$ ({ref}`Sources §2.5 <sources-2-5>`):
#
# $$
# f_i(s) = \sum_{n \in \{-1, 0, 1\}} \exp\!\left(-\frac{(s_w + nL - s_i)^2}{2\sigma_{tc}^2}\right),
# \qquad s_w = \big((s - s_\min) \bmod L\big) + s_\min .
# $$

# %%
print(f"spacing {ppc.spacing:.4f} rad, ring period L = {ppc.period:.4f} rad, "
      f"sigma_tc = {ppc.tuning_std:.5f} rad")
assert math.isclose(ppc.period, 15 / 14 * 2 * math.pi / 3)
s_grid = torch.linspace(ppc.s_min - 0.4, ppc.s_min + ppc.period + 0.4, 2001, dtype=torch.float64)
f = tuning_curves(s_grid, ppc)  # (2001, 15): unit-gain rates
plot_tuning_curves(s_grid, f, ppc);

# %% [markdown]
# The dashed line is $\sum_i f_i(s)$. It is flat: with the tuning width about equal to the
# spacing, the sum of the tuning curves equals $\sqrt{2\pi}\,\sigma_{tc}/\Delta$ for every $s$ up
# to a ripple far below numerical noise. The next section relies on this.

# %%
total_f = f.sum(-1)
flat = math.sqrt(2 * math.pi) * ppc.tuning_std / ppc.spacing
print(f"sum_i f_i(s): min {total_f.min():.6f}, max {total_f.max():.6f}; "
      f"sqrt(2 pi) sigma_tc / spacing = {flat:.6f}")
assert (total_f - flat).abs().max() < 1e-6

# %% [markdown]
# Each step has its own gain $g_t \sim \mathcal{U}[6.4, 9.6]$, drawn independently for every step
# of every trajectory, and the counts are $y_t^i \sim \mathrm{Pois}(g_t f_i(s_t))$. A
# population therefore fires $g_t \sum_i f_i \approx 2.48\, g_t$ spikes per step, about 20 on
# average, but the number changes from step to step with the gain:

# %%
mean_total = data.y.sum(-1).mean().item()
print(f"mean total count {mean_total:.2f}; predicted {flat * data.gain.mean().item():.2f}")
assert abs(mean_total / (flat * data.gain.mean().item()) - 1) < 0.01
plot_raster(data.y[:, 0], data.position[:, 0], data.gain[:, 0], ppc, t_max=300);

# %% [markdown]
# The raster shows trajectory 0: the active neurons follow the position (red), and the bottom
# panel shows the gain and the total count divided by $\sum_i f_i$, a noisy estimate of it.
#
# ## What the spikes say about the position
#
# Ma et al. (2006) showed that for Gaussian tuning curves and Poisson counts the likelihood of
# the stimulus is Gaussian. Write one neuron's tuning curve near the stimulus as
# $f_i(s) = \exp(-(s - s_i)^2 / 2\sigma_{tc}^2)$. Then
#
# $$
# \log p(\mathbf{y}\mid s) = \sum_i \Big[ y_i \log\big(g f_i(s)\big) - g f_i(s) - \log y_i! \Big]
# = -\sum_i \frac{y_i\,(s - s_i)^2}{2\sigma_{tc}^2} \;-\; g\sum_i f_i(s) \;+\; \text{const}.
# $$
#
# The second term does not depend on $s$, because $\sum_i f_i(s)$ is flat (checked above).
# Completing the square in the first term gives
#
# $$
# p(\mathbf{y}\mid s) \;\propto\; \mathcal{N}\!\left(s;\ \hat s,\ \frac{\sigma_{tc}^2}{\sum_i y_i}
# \right), \qquad \hat s = \frac{\sum_i y_i\, s_i}{\sum_i y_i},
# $$
#
# the centre of mass of the counts. All that fifteen counts tell us about the position is two
# numbers: $\hat s$ and the total count $\sum_i y_i$.
#
# > The variance is $\sigma_{tc}^2/\sum_i y_i$, not $1/g$ and not $1/(g \sum_i y_i)$: the gain
# > enters only through the counts it produces. Because $\mathbb{E}\sum_i y_i \approx 2.48\,g$, the
# > *expected* precision grows in proportion to the gain, which is how Ma et al. state it.
#
# On the ring the preferred stimuli are not points on a line, so the centre of mass is taken
# relative to the most active neuron $j$ (Makin's `centerNoisyHills.m`, {ref}`Sources §3.3 <sources-3-3>`): index every
# neuron by its signed distance $d_i \in \{-7, \dots, 7\}$ from $j$ around the ring, then
#
# $$
# \hat s = s_j + \Delta\,\frac{\sum_i d_i\, y_i}{\sum_i y_i}, \qquad
# d_i = \big((i - j + \lfloor N/2 \rfloor) \bmod N\big) - \lfloor N/2 \rfloor,
# $$
#
# wrapped back onto the ring:

# %%
print(inspect.getsource(center_of_mass))

# %% [markdown]
# ## ORDER 0: the spikes of the current step alone
#
# ORDER 0 (Makin's "sensory" estimate) is $\hat s_t$ itself: a model with no dynamics at all.
# Every estimate is scored by the torus-wrapped squared error, averaged over all
# $40 \times 1000$ test steps including $t = 1$, in rad² ({ref}`Sources §5.6 <sources-5-6>`):
#
# $$
# \mathrm{MSE} = \frac{1}{TB} \sum_{t, b} \operatorname{wrap}\!\big(\hat s_{t,b} - s_{t,b}\big)^2,
# \qquad \operatorname{wrap}(e) = \big((e + L/2) \bmod L\big) - L/2 .
# $$
#
# The derivation predicts this number before we measure it: the mean of
# $\sigma_{tc}^2/\sum_i y_i$ over the test set.

# %%
com = center_of_mass(data.y, ppc)
mse_order0 = torus_mse(com.s_hat, data.position, ppc.period)
predicted = com.obs_var.mean().item()
print(f"ORDER 0 MSE {mse_order0:.3e} rad^2; predicted mean(sigma_tc^2 / sum_i y_i) "
      f"{predicted:.3e}")
assert abs(mse_order0 / predicted - 1) < 0.05
plot_estimates(data.position[:300, 0], {"ORDER 0 (centre of mass)": com.s_hat[:300, 0]},
               ppc.period);

# %% [markdown]
# A sharper check of the variance formula: group the test steps by their total count $n$ and
# compare the mean squared error in each group with $\sigma_{tc}^2 / n$.

# %%
err2 = wrap_error(com.s_hat - data.position, ppc.period).pow(2).flatten()
n = com.total.long().flatten()
groups = torch.bincount(n)
emp_var = torch.bincount(n, weights=err2) / groups.clamp(min=1)
keep = groups >= 200  # counts with enough samples for a stable variance
n_kept = keep.nonzero().squeeze(1)
theory = ppc.tuning_std**2 / n_kept
ratio = emp_var[keep] / theory
z = (ratio - 1) / (2 / (groups[keep] - 1)).sqrt()  # in standard errors of a variance
print(f"{int(keep.sum())} groups, n = {n_kept.min().item()}..{n_kept.max().item()}; "
      f"measured / predicted = {ratio.min():.2f}..{ratio.max():.2f}; "
      f"pooled mean of n e^2 / sigma_tc^2 = {(err2 * n / ppc.tuning_std**2).mean():.3f}")
assert z.abs().max() < 4 and abs((err2 * n / ppc.tuning_std**2).mean() - 1) < 0.05
plot_binned_variance(n_kept, emp_var[keep], ppc.tuning_std**2, groups[keep]);

# %% [markdown]
# ## A Kalman filter on the ring
#
# "Observation model is *nonlinear*, but a closed-form solution is still available (KF). This
# allows us to determine what order model was learned." The closed form is the result above:
# replace each step's counts by the linear-Gaussian observation
# $\hat s_t = C z_t + v_t$ with $C = [1, 0]$ and a noise variance that changes every step,
# $v_t \sim \mathcal{N}(0, R_t)$, $R_t = \sigma_{tc}^2/\sum_i y_t^i$. The Kalman filter then
# computes $p(z_t \mid \mathbf{y}_{1:t})$ exactly ({ref}`Sources §4.2 <sources-4-2>`):
#
# $$
# \begin{aligned}
# \text{predict:}\quad & z_t^- = A z_{t-1}, & P_t^- &= A P_{t-1} A^\top + \Sigma_x, \\
# \text{update:}\quad & e_t = \operatorname{wrap}(\hat s_t - C z_t^-), &
# K_t &= P_t^- C^\top \big(C P_t^- C^\top + R_t\big)^{-1}, \\
# & z_t = z_t^- + K_t e_t, & P_t &= (I - K_t C)\, P_t^- .
# \end{aligned}
# $$
#
# Only the innovation $e_t$ is wrapped onto the ring; the state stays unwrapped. The observation
# $\hat s_t$ is known only up to a multiple of $L$, so the innovation takes the image nearest the
# prediction. The state is a physical position, though: the spring pulls with force $-kx$ on the
# *unwrapped* $x$. Wrapping $\hat x$ when a trajectory crosses the ring's seam would move it by
# $L = 2.24$ rad and make the spring push the wrong way. The mean pass of `kalman_filter`:

# %%
src = inspect.getsource(kalman_filter)
print(src[src.index("    # Mean pass."):src.index("    e = torch.stack(innov)")])

# %% [markdown]
# > In a re-simulation behind the spec (§4.2), wrapping the state instead of the innovation
# > raised this filter's MSE from 1.48e-4 to 3.4e-4.
#
# KF-true runs this filter with the true $A$ and $\Sigma_x$, $R_t$ from the total count, and a
# flat prior on the first position (`kf_states` with no fitted parameters; `kf_true` returns
# its position component):

# %%
print(inspect.getsource(kf_states))

# %% [markdown]
# ## Learning the dynamics: KF-1 and KF-2
#
# KF-true is given $A$ and $\Sigma_x$. The models of the later chapters must learn the dynamics
# from spike counts alone, and two learned Kalman filters bracket what they can hope for
# (Makin et al. 2015; {ref}`Sources §4.4 <sources-4-4>`). Each fits a linear dynamical system with $n$ latent states and
# a constant observation noise $R$,
#
# $$
# z_{t+1} = A z_t + w_t,\ \ w_t \sim \mathcal{N}(0, Q), \qquad
# \hat s_t = C z_t + v_t,\ \ v_t \sim \mathcal{N}(0, R), \qquad z_t \in \mathbb{R}^n,
# $$
#
# by expectation-maximisation (E-step: Kalman filter and RTS smoother; M-step: closed form) to
# the centre-of-mass observations of a fresh training set of 40 × 1000 steps, and then runs the
# fitted model as a filter on the test set.
#
# - **KF-1** has one state, so its dynamics are at best a leaky random walk: it has no place to
#   keep a velocity. It is the best a model with *first-order* dynamics can do.
# - **KF-2** has two states, enough for the spring, but it has to discover the velocity, which
#   no neuron reports. It is the *second-order* target.
#
# `tlr.experiments.ppc.run` trains and scores the four baselines; it is what
# `python -m tlr run ppc --preset quick --models "ORDER 0,KF-1,KF-2,KF-true"` calls.

# %%
BASELINES = ["ORDER 0", "KF-1", "KF-2", "KF-true"]
results = run(BASELINES, preset, seed=SEED, progress=False)
mse = {name: r["mse"] for name, r in results.items()}
print({name: r["info"] for name, r in results.items() if r["info"]})
assert mse["KF-true"] < mse["KF-2"] < mse["KF-1"] < mse["ORDER 0"]
assert math.isclose(mse["ORDER 0"], mse_order0)  # run() scores the same test set

# %% [markdown]
# The poster's Table 1 has three of these rows; the spec's re-simulation (§12.3, a numpy
# implementation of the same settings, not a published result) has all four.

# %%
reference = {  # MSE in rad²: (Sources §12.3 re-simulation, poster Table 1)
    "ORDER 0": (11.9e-4, 12e-4),
    "KF-1": (6.26e-4, 5.8e-4),
    "KF-2": (1.61e-4, 2.2e-4),
    "KF-true": (1.47e-4, None),
}
rows = ["| model | this chapter | spec re-simulation | poster Table 1 |", "|---|---:|---:|---:|"]
for name, (resim, poster) in reference.items():
    poster_txt = "—" if poster is None else f"{poster * 1e4:.1f}"
    rows.append(f"| {name} | {mse[name] * 1e4:.2f} | {resim * 1e4:.2f} | {poster_txt} |")
display(Markdown("MSE in units of $10^{-4}$ rad²\n\n" + "\n".join(rows)))
assert abs(mse["ORDER 0"] / 12e-4 - 1) < 0.05 and abs(mse["KF-1"] / 5.8e-4 - 1) < 0.1
assert abs(mse["KF-true"] / 1.47e-4 - 1) < 0.1 and abs(mse["KF-2"] / 1.61e-4 - 1) < 0.1

# %% [markdown]
# > ORDER 0 and KF-1 agree with the poster to within a few per cent, which suggests the poster
# > used Makin's `LTI-PPC` settings, as we do. KF-2 does not: the poster's 2.2e-4 is about 40 %
# > above both our converged fit and the spec's re-simulation, and even further above KF-true.
# > The poster does not say how its KF-2 was fitted ({ref}`Sources §13 <sources-13>`, question 2).
#
# ## Why might the poster's KF-2 be higher?
#
# EM for a linear dynamical system is slow to converge, and the run above took over a hundred
# iterations to meet its tolerance (relative log-likelihood change below $10^{-5}$). Makin's
# `EM4LDS` stops after at most **50** iterations (`NepochsMax`), or earlier when the relative
# change falls below $10^{-4}$ ({ref}`Sources §4.4 <sources-4-4>`). To see what a cap does, we repeat the KF-2 fit of
# `run` (same training data, same random start) and score it on the test set after
# $k$ iterations. EM is deterministic given its data and starting point, so continuing a fit from
# the parameters of a shorter one gives exactly the iterates of one long run.

# %%
train = train_data(preset, SEED)  # what run() fits the Kalman filters on
s_train = unwrap_continuous(center_of_mass(train.y, ppc).s_hat, ppc.period, centre=0.0)
caps = [5, 10, 20, 30, 40, 50, 75, 100]
fit, done, loglik, mse_at = None, 0, [], {}
for cap in [*caps, preset.em_max_iter]:
    last = cap == preset.em_max_iter
    start = (dict(generator=make_generator(SEED, "ppc/em2-init")) if fit is None
             else dict(init=fit.params))  # run()'s EM initialisation stream, then continue
    fit = fit_lds_em(s_train[..., None], 2, n_iter=cap - done,
                     tol=preset.em_tol if last else 0.0, **start)
    done += fit.n_iter
    loglik += fit.loglik
    mse_at[done] = torus_mse(run_kf(fit.params, data.y, lti, ppc), data.position, ppc.period)
kf2 = fit
rel = [abs(b - a) / abs(a) for a, b in zip(loglik, loglik[1:], strict=False)]
makin_stop = next(k + 2 for k, r in enumerate(rel) if r < 1e-4)
print("EM iterations k:", *(f"{k:>5d}" for k in mse_at))
print("MSE / 1e-4:     ", *(f"{v * 1e4:5.2f}" for v in mse_at.values()))
print(f"converged after {done} iterations; Makin's 1e-4 tolerance would stop at {makin_stop}")
assert math.isclose(mse_at[done], mse["KF-2"], rel_tol=1e-9)  # the same fit as run()'s KF-2
assert all(a > b for a, b in zip(mse_at.values(), list(mse_at.values())[1:], strict=False))
assert mse_at[50] > 1.1 * mse["KF-2"]

# %%
plot_mse_vs_iterations(list(mse_at), list(mse_at.values()),
                       {"KF-1": mse["KF-1"], "poster KF-2": 2.2e-4, "KF-true": mse["KF-true"]});

# %% [markdown]
# > The cap matters. After 50 iterations our KF-2 is about 20 % worse than at convergence, and
# > the poster's 2.2e-4 is what this fit reaches after roughly 30–40 iterations. Makin's EM also
# > draws fresh training data at every iteration, which makes the log-likelihood noisy, so its
# > $10^{-4}$ stopping rule can fire earlier than in our fixed-data run, and it starts from a
# > different random point. A capped, not fully converged EM fit is therefore a plausible
# > reading of the poster's KF-2 row, not a proven one. We keep the converged KF-2 and KF-true
# > as separate reference lines in the rest of the book.
#
# ## Four filters on one trajectory
#
# The same stretch of test trajectory 0, decoded four ways. We refit KF-1 as `run` does (its
# training data and EM start) to get its estimates, and check that all four reproduce the table.

# %%
kf1 = fit_kf(train.y, 1, lti, ppc, n_iter=preset.em_max_iter, tol=preset.em_tol,
             generator=make_generator(SEED, "ppc/em1-init"))  # run()'s KF-1 initialisation
est = {
    "ORDER 0": order0(data.y, ppc),
    "KF-1": run_kf(kf1.params, data.y, lti, ppc),
    "KF-2": run_kf(kf2.params, data.y, lti, ppc),
    "KF-true": kf_true(data.y, lti, ppc),
}
for name, s_hat in est.items():
    assert math.isclose(torus_mse(s_hat, data.position, ppc.period), mse[name], rel_tol=1e-9)
t0, t1 = 100, 250
plot_estimates(data.position[t0:t1, 0], {k: v[t0:t1, 0] for k, v in est.items()}, ppc.period,
               t0=t0);

# %% [markdown]
# ORDER 0 jumps with the spike noise. KF-1 cannot predict the motion, so to keep up with the
# swing it must trust each new centre of mass heavily: it removes only part of the noise, and
# it still trails the mass. KF-2 and KF-true expect the mass to keep moving, average over many
# steps, and are hard to tell apart. The lag shows up as an error proportional to the velocity,
# $\hat s_t - s_t \approx -\tau v_t$; a least-squares fit of $\tau$, in steps:

# %%
lag = {name: lag_steps(s_hat, data.position, data.z[..., 1], ppc.period, lti.dt)
       for name, s_hat in est.items()}  # tau in steps
print("lag tau (steps): " + ", ".join(f"{k} {t:+.2f}" for k, t in lag.items()))
assert lag["KF-1"] > 0.3 and all(abs(lag[k]) < 0.1 for k in ("ORDER 0", "KF-2", "KF-true"))

# %% [markdown]
# ## Explore
#
# How do the spring and the gain change the picture? `explore` simulates eight short
# trajectories with a different spring constant $k$ and mean gain (the gain still varies by
# ±20 % from step to step) and compares ORDER 0 with KF-true. A stiffer spring makes the motion
# faster and harder to predict; a larger gain gives more spikes and a better ORDER 0.


# %%
def explore(spring: float = 3.0, gain: float = 8.0):
    lti_x = replace(lti, spring=spring)
    ppc_x = replace(ppc, gain_min=0.8 * gain, gain_max=1.2 * gain)
    d = simulate(8, 400, seed=1, lti=lti_x, ppc=ppc_x)
    s0, s_kf = order0(d.y, ppc_x), kf_true(d.y, lti_x, ppc_x)
    e0, ekf = (torus_mse(s, d.position, ppc_x.period) for s in (s0, s_kf))
    title = f"k = {spring:g}, mean gain {gain:g}: MSE ORDER 0 {e0:.1e}, KF-true {ekf:.1e}"
    return plot_estimates(d.position[:, 0], {"ORDER 0": s0[:, 0], "KF-true": s_kf[:, 0]},
                          ppc_x.period, title=title)


explore();

# %% [markdown]
# Opened in Jupyter or Colab (the launch button at the top of the page), the notebook has one
# more cell here, with sliders for $k$ and the gain.

# %% tags=["remove-cell", "nbval-skip", "skip-execution"]
# Sliders for the spring constant and the mean gain. Run this cell yourself: the book build and
# the tests skip it.
from ipywidgets import FloatSlider, interact

interact(explore, spring=FloatSlider(value=3.0, min=0.0, max=12.0, step=0.5),
         gain=FloatSlider(value=8.0, min=1.0, max=32.0, step=1.0));

# %% [markdown]
# ## The question for the rest of the book
#
# The two learned filters mark the scale on which the poster's models are placed. A model
# whose error is near KF-1 (5.9e-4 here, 5.8e-4 on the poster) has learned at most first-order
# dynamics: where the mass is, not where it is going. A model near KF-2 (1.5e-4) has learned
# the second-order dynamics, the velocity that no neuron reports. On the poster's Table 1 the
# TRBM (6.0e-4) sits at KF-1, while the rEFH (3.3e-4), trained without backpropagation through
# time, comes close to the RTRBM (3.1e-4), which needs it; the rVAE (5.3e-4) is only a little
# better than KF-1.
#
# So the rest of the book asks: **which models can learn second-order dynamics from
# position-only observations, and can they do it without backpropagation through time?**

# %% [markdown]
# ## Exercises
#
# Five exercises, from a warm-up to a small research question. Each one gives its difficulty
# (★ routine, ★★ needs the derivations above, ★★★ open-ended) and a time estimate. The coding
# exercises are checked automatically: in the book, the check cell under each exercise runs
# the solution, which is hidden under "Solution"; in the student notebook made from this chapter
# it runs your own code and prints ✓ or ✗ with the reason.

# %%
from tlr.exercises import check
from tlr.filters import LDSParams, centred_observations, kf_true_params

data = test_data(preset, SEED)  # the chapter's test set
true_params = kf_true_params(lti)  # KF-true's A, C, Q and flat prior

# %% [markdown]
# ```{exercise} The circular centre of mass by hand
# :label: lti-ppc-com
# :nonumber:
#
# **★ · 10 min · auto-graded**
#
# Write `circular_com(y, s_min, spacing)`, the centre of mass $\hat s$ of the responses `y`
# (shape `(..., N)`, at least one spike each) of $N$ neurons whose preferred stimuli
# $s_{\min} + i\Delta$ lie on a ring of period $N\Delta$. Follow the formula of the section
# "What the spikes say about the position": index every neuron by its signed distance $d_i$
# from the most active one, and wrap the result into $[s_{\min}, s_{\min} + N\Delta)$. Do not
# call `center_of_mass`: the check compares your function with it.
# ```

# %% [markdown]
# ```{solution-start} lti-ppc-com
# :class: dropdown
# ```

# %% tags=["solution"]
def circular_com(y, s_min, spacing):
    """Circular centre of mass of responses y (..., N) on a ring of N neurons (float64)."""
    # BEGIN SOLUTION
    N = y.shape[-1]
    y = y.to(torch.float64)
    j = y.argmax(-1, keepdim=True)                             # the most active neuron
    d = torch.remainder(torch.arange(N) - j + N // 2, N) - N // 2  # signed distance from j
    s_hat = s_min + spacing * (j[..., 0] + (d * y).sum(-1) / y.sum(-1))
    return torch.remainder(s_hat - s_min, N * spacing) + s_min
    # END SOLUTION


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["check"]
@check("lti-ppc-com")
def _():
    d = simulate(4, 300, seed=2, lti=lti, ppc=ppc)
    y = d.y[d.y.sum(-1) > 0]                                   # (n, 15), every row with spikes
    mine, ref = circular_com(y, ppc.s_min, ppc.spacing), center_of_mass(y, ppc).s_hat
    assert tuple(mine.shape) == tuple(ref.shape), (
        f"shape {tuple(mine.shape)}, expected {tuple(ref.shape)}")
    err = (mine.to(torch.float64) - ref).abs().max().item()
    assert err < 1e-9, f"max |circular_com - center_of_mass| = {err:.2e} rad"


# %% tags=["hidden-check", "remove-cell"]
@check("lti-ppc-com", hidden=True)
def _():
    seam = torch.zeros(3, ppc.n_neurons)
    seam[0, [0, 14, 13]] = torch.tensor([3.0, 2.0, 1.0])      # a hill across the ring's seam
    seam[1, [14, 0]] = torch.tensor([4.0, 4.0])                # a tie, on the seam
    seam[2, 7] = 5.0                                           # one neuron
    rates = 8 * tuning_curves(torch.linspace(-1.5, 1.5, 41, dtype=torch.float64), ppc)
    for y, integer in ((seam, True), (rates, False)):
        mine = circular_com(y, ppc.s_min, ppc.spacing).to(torch.float64)
        ref = center_of_mass(y, ppc, integer=integer).s_hat
        err = (mine - ref).abs().max().item()
        assert err < 1e-9, f"max |circular_com - center_of_mass| = {err:.2e} rad"
        assert ((mine >= ppc.s_min) & (mine < ppc.s_min + ppc.period)).all(), "not wrapped"


# %% [markdown]
# ```{exercise} A Kalman filter on the ring, and what goes wrong if the state is wrapped
# :label: lti-ppc-ring-kf
# :nonumber:
#
# **★★ · 30 min · auto-graded**
#
# Write the filter of the section "A Kalman filter on the ring" yourself:
# `ring_kalman_filter(s_obs, R, A, Q, period, z0, P0, wrap_state=False)` takes the centre-of-mass
# observations `s_obs` and their variances `R` (both `(T, B)`, as returned by
# `centred_observations`), the dynamics `A`, `Q`, the ring's period and the prior `z0`, `P0` of
# the first state, with $C = [1, 0]$, and returns the filtered states, shape `(T, B, 2)`. At the
# first step there is no prediction (use the prior) and the innovation is not wrapped; from the
# second step on it is. A step with `R = inf` (no spikes) makes no update. With
# `kf_true_params(lti)` your filter must reproduce `kf_states`, the library's KF-true.
#
# Then add what the chapter warns against: with `wrap_state=True`, wrap the position component
# of the state onto the ring, into $[-L/2, L/2)$, after every update. Measure the test-set MSE
# of both versions. Which is worse, by how much, and why?
# ```

# %% [markdown]
# ```{solution-start} lti-ppc-ring-kf
# :class: dropdown
# ```

# %% tags=["solution"]
def ring_kalman_filter(s_obs, R, A, Q, period, z0, P0, wrap_state=False):
    """Kalman filter of [position, velocity] from ring-valued positions s_obs (T, B)."""
    # BEGIN SOLUTION
    T, B = s_obs.shape
    z, P = z0.expand(B, 2).clone(), P0.expand(B, 2, 2).clone()
    means = []
    for t in range(T):
        if t > 0:                                              # predict
            z, P = z @ A.T, A @ P @ A.T + Q
        e = s_obs[t] - z[:, 0]                                 # innovation, C = [1, 0]
        if t > 0:
            e = wrap_error(e, period)                          # the nearest image of s_obs[t]
        K = P[:, :, 0] / (P[:, 0, 0] + R[t])[:, None]          # (B, 2); 0 where R is inf
        z = z + K * e[:, None]
        P = P - K[:, :, None] * P[:, None, 0, :]               # (I - K C) P
        if wrap_state:
            z = torch.stack([wrap_error(z[:, 0], period), z[:, 1]], -1)
        means.append(z)
    return torch.stack(means)
    # END SOLUTION


# %%
s_obs, R_obs = centred_observations(data.y, lti, ppc)
mse_state = {
    wrap: torus_mse(ring_kalman_filter(s_obs, R_obs, true_params.A, true_params.Q, ppc.period,
                                       true_params.init_mean, true_params.init_cov,
                                       wrap_state=wrap)[..., 0], data.position, ppc.period)
    for wrap in (False, True)}
print(f"test MSE: state kept unwrapped {mse_state[False]:.3e}, state wrapped "
      f"{mse_state[True]:.3e} rad² ({mse_state[True] / mse_state[False]:.2f} times)")

# %% [markdown]
# Wrapping the state makes KF-true worse, by about a quarter on this test set, although only a
# handful of steps are near the seam. When a trajectory crosses the seam, the wrapped position
# jumps by $L = 2.24$ rad while the velocity does not. The dynamics then act on the jumped
# position: the spring term $-\frac{k}{m}\Delta t\,x$ of $A$ changes sign and pushes the
# predicted velocity the wrong way, and the filter needs many steps to recover. Kept unwrapped,
# the state describes the physical mass, and only the comparison with each observation needs the
# ring.
#
# ```{solution-end}
# ```

# %% tags=["check"]
@check("lti-ppc-ring-kf")
def _():
    d = simulate(4, 400, seed=3, lti=lti, ppc=ppc)
    s, R = centred_observations(d.y, lti, ppc)
    prm = kf_true_params(lti)
    mine = ring_kalman_filter(s, R, prm.A, prm.Q, ppc.period, prm.init_mean, prm.init_cov)
    ref = kf_states(d.y, lti, ppc)
    assert tuple(mine.shape) == tuple(ref.shape), (
        f"shape {tuple(mine.shape)}, expected {tuple(ref.shape)}")
    err = (mine - ref).abs().max().item()
    assert err < 1e-5, f"max |your states - kf_states| = {err:.2e}"


# %% tags=["hidden-check", "remove-cell"]
@check("lti-ppc-ring-kf", hidden=True)
def _():
    # A mass moving steadily across the seam at +L/2: the innovation must be wrapped, the state not.
    T, L = 60, ppc.period
    pos = torch.linspace(0.9, 1.5, T, dtype=torch.float64)
    s = wrap_error(pos, L)[:, None]
    R = torch.full((T, 1), 1e-4, dtype=torch.float64)
    prm = LDSParams(A=torch.tensor([[1.0, 1.0], [0.0, 1.0]], dtype=torch.float64),
                    C=torch.tensor([[1.0, 0.0]], dtype=torch.float64),
                    Q=torch.diag(torch.tensor([1e-8, 1e-6], dtype=torch.float64)),
                    R=torch.eye(1, dtype=torch.float64),
                    init_mean=torch.tensor([0.9, 0.01], dtype=torch.float64),
                    init_cov=torch.diag(torch.tensor([1e-4, 1e-4], dtype=torch.float64)))
    mine = ring_kalman_filter(s, R, prm.A, prm.Q, L, prm.init_mean, prm.init_cov)
    ref = kalman_filter(prm, s[..., None], R_t=R[..., None, None], wrap_period=L).means
    err = (mine - ref).abs().max().item()
    assert err < 1e-8, f"seam crossing: max |your states - kalman_filter| = {err:.2e}"
    assert mine[-1, 0, 0] > L / 2, "the state must stay unwrapped when the mass crosses the seam"
    # What goes wrong: wrapping the state raises the test MSE.
    s, R = centred_observations(data.y, lti, ppc)
    prm = kf_true_params(lti)
    mse = {w: torus_mse(ring_kalman_filter(s, R, prm.A, prm.Q, L, prm.init_mean, prm.init_cov,
                                           wrap_state=w)[..., 0], data.position, L)
           for w in (False, True)}
    assert mse[True] > 1.1 * mse[False], f"wrap_state=True should hurt; MSE {mse}"


# %% [markdown]
# ```{exercise} KF-1 is a one-number filter
# :label: lti-ppc-kf1-gain
# :nonumber:
#
# **★★ · 25 min · auto-graded**
#
# KF-1 is a one-state model, $z_{t+1} = a z_t + w_t$ with $w_t \sim \mathcal{N}(0, q)$ and
# $\hat s_t = c z_t + v_t$ with $v_t \sim \mathcal{N}(0, r)$. With a constant $r$ its
# covariance pass does not depend on the data, and it converges: after a short transient KF-1
# is $m_t = a m_{t-1} + K\, \operatorname{wrap}(\hat s_t - c\, a\, m_{t-1})$ with one constant
# gain $K$.
#
# 1. Write `steady_state_gain(a, c, q, r)`. Solve the fixed point of $p^- = a^2 p + q$,
#    $p = p^- r / (c^2 p^- + r)$ for the predicted variance $p^-$ in closed form (it is a
#    quadratic equation), and return $K = p^- c / (c^2 p^- + r)$.
# 2. Write `constant_gain_filter(s_obs, a, c, K, m0, period)` that returns the position
#    estimates $c\, m_t$, shape `(T, B)`, starting from $m_1 = m_0 + K(\hat s_1 - c\, m_0)$
#    (no wrapping at the first step).
#
# The check compares the gain with the limit of `kalman_filter`'s covariances, and the filter with
# `kalman_filter` after the transient.
# ```

# %% [markdown]
# ```{solution-start} lti-ppc-kf1-gain
# :class: dropdown
# ```

# %% tags=["solution"]
def steady_state_gain(a, c, q, r):
    """Steady-state Kalman gain of the scalar model z' = a z + w (var q), s = c z + v (var r)."""
    # BEGIN SOLUTION
    # p⁻ = a² p⁻ r / (c² p⁻ + r) + q  ⇔  c² p⁻² + (r (1 - a²) - q c²) p⁻ - q r = 0
    b = r * (1 - a * a) - q * c * c
    p_pred = (-b + math.sqrt(b * b + 4 * c * c * q * r)) / (2 * c * c)  # the positive root
    return p_pred * c / (c * c * p_pred + r)
    # END SOLUTION


def constant_gain_filter(s_obs, a, c, K, m0, period):
    """Positions c m_t (T, B) of the constant-gain filter m_t = a m_{t-1} + K wrap(innovation)."""
    # BEGIN SOLUTION
    m = torch.full(s_obs.shape[1:], float(m0), dtype=torch.float64)
    out = []
    for t in range(s_obs.shape[0]):
        if t > 0:
            m = a * m
        e = s_obs[t] - c * m
        if t > 0:
            e = wrap_error(e, period)
        m = m + K * e
        out.append(c * m)
    return torch.stack(out)
    # END SOLUTION


# %% [markdown]
# With KF-1 fitted as `run` fits it (here on 8 training trajectories, to keep it quick), the
# constant-gain filter and the library's KF-1 agree to rounding error once the transient is over:

# %%
kf1_small = fit_kf(train_data(preset, SEED).y[:, :8], 1, lti, ppc, n_iter=preset.em_max_iter,
                   tol=preset.em_tol, generator=make_generator(SEED, "ppc/em1-init"))
a1, c1, q1, r1 = (v.item() for v in kf1_small.params[:4])
K1 = steady_state_gain(a1, c1, q1, r1)
s_kf1 = run_kf(kf1_small.params, data.y, lti, ppc)
s_const = constant_gain_filter(centred_observations(data.y, lti, ppc)[0], a1, c1, K1,
                               kf1_small.params.init_mean.item(), ppc.period)
print(f"a = {a1:.4f}, c = {c1:.3f}, q = {q1:.2e}, r = {r1:.2e}: steady-state gain K = {K1:.3f}")
print(f"max |constant gain - KF-1| after 50 steps: {(s_const - s_kf1)[50:].abs().max():.1e} rad; "
      "test MSE from step 50 on: "
      f"{torus_mse(s_const[50:], data.position[50:], ppc.period):.4e} and "
      f"{torus_mse(s_kf1[50:], data.position[50:], ppc.period):.4e} rad²")

# %% [markdown]
# So KF-1 is, in effect, an exponential moving average of the centre of mass with a gain of
# about 2/3, slightly shrunk towards its mean by $a < 1$. A single number carries everything it
# learned about the dynamics, which is why it lags behind the moving mass.
#
# ```{solution-end}
# ```

# %% tags=["check"]
def _kf_gain_reference(a, c, q, r, n_steps=400):
    """The scalar model as LDSParams, and the gain p c / r after n_steps of the covariance pass."""
    prm = LDSParams(*(torch.tensor([[v]], dtype=torch.float64) for v in (a, c, q, r)),
                    init_mean=torch.zeros(1, dtype=torch.float64),
                    init_cov=torch.full((1, 1), 0.3, dtype=torch.float64))
    p = kalman_filter(prm, torch.zeros(n_steps, 1, 1)).covs[-1, 0, 0, 0].item()
    return prm, p * c / r


@check("lti-ppc-kf1-gain")
def _():
    a, c, q, r = 0.995, 0.97, 1e-3, 8e-4
    prm, K_ref = _kf_gain_reference(a, c, q, r)
    K = float(steady_state_gain(a, c, q, r))
    assert math.isclose(K, K_ref, rel_tol=1e-9), f"gain {K:.6f}, expected {K_ref:.6f}"
    s, _ = centred_observations(simulate(4, 300, seed=4, lti=lti, ppc=ppc).y, lti, ppc)
    ref = kalman_filter(prm, s[..., None], wrap_period=ppc.period).means[..., 0] * c
    mine = constant_gain_filter(s, a, c, K_ref, 0.0, ppc.period)
    assert tuple(mine.shape) == tuple(ref.shape), f"shape {tuple(mine.shape)}, expected (300, 4)"
    err = (mine - ref)[100:].abs().max().item()
    assert err < 1e-9, f"after the transient: max |your filter - kalman_filter| = {err:.2e}"


# %% tags=["hidden-check", "remove-cell"]
@check("lti-ppc-kf1-gain", hidden=True)
def _():
    for a, c, q, r in ((0.8, 1.3, 0.05, 0.2), (1.0, 1.0, 1e-4, 1e-2), (0.9, -0.7, 0.01, 0.003)):
        _, K_ref = _kf_gain_reference(a, c, q, r, n_steps=2000)
        K = float(steady_state_gain(a, c, q, r))
        assert math.isclose(K, K_ref, rel_tol=1e-8), (
            f"a, c, q, r = {a, c, q, r}: gain {K:.6f}, expected {K_ref:.6f}")


# %% [markdown]
# ````{exercise} Why can a converged KF-2 lose to KF-true?
# :label: lti-ppc-kf2-gap
# :nonumber:
#
# **★ · 10 min · written answer, not auto-graded**
#
# KF-2 has two states, like the true system, and its EM fit has converged, yet its test MSE
# (1.61e-4 in the spec's re-simulation) stays above KF-true's (1.47e-4). Name two differences
# between the two filters that could explain the gap, and an experiment with the library that
# measures one of them.
# ````
#
# ````{solution} lti-ppc-kf2-gap
# :class: dropdown
#
# - **A constant $R$.** KF-2 assumes the same observation noise at every step, while KF-true uses
#   $R_t = \sigma_{tc}^2 / \sum_i y_t^i$, which changes with each step's gain. A filter that
#   knows which steps are reliable weights them better. `run_kf(kf2.params, data.y, lti, ppc,
#   gain_aware=True)` gives KF-2 KF-true's $R_t$ and measures exactly this part of the gap.
# - **Estimated parameters.** EM estimates $A$, $Q$ and $R$ from 40 × 1000 noisy steps, and it
#   maximises the likelihood of the observations, not the accuracy of the position estimates.
#   Refitting on more training data (or on several seeds) shows how much of the gap is sampling
#   error.
# - Smaller effects: the unwrapping of the training observations by continuity can misplace a
#   seam crossing, and the fitted prior of the first state differs from KF-true's flat one (this
#   matters for the first few steps only).
# ````

# %% [markdown]
# ```{exercise} How the error scales with the gain
# :label: lti-ppc-gain-scaling
# :nonumber:
#
# **★★★ · 45 min · auto-graded**
#
# A larger gain means more spikes per step and a better position estimate, but how much better?
# First predict the exponents $a$ in $\mathrm{MSE} \propto g^{a}$. For ORDER 0 use the variance
# $\sigma_{tc}^2 / \sum_i y_i$ derived above. For KF-true think of the steady-state Riccati
# equation: with the noise mainly on the velocity, the position is nearly a double integrator of
# white noise, for which the steady-state position variance grows like $r^{3/4}$ with the
# observation variance $r$.
#
# Then measure. Write `mse_vs_gain(gains, n_traj=4, T=1000, seed=1)` that returns a dict
# `{"ORDER 0": [...], "KF-true": [...]}` with the torus MSE of both estimates on data simulated
# with a mean gain $g$ (a gain drawn from $[0.8g, 1.2g]$ at each step, as `explore` does), and
# `loglog_slope(x, y)`, the least-squares slope of $\log y$ against $\log x$. Expected outcome:
# about $-1$ for ORDER 0 and about $-3/4$ for KF-true over gains 4 to 64, so the filter's
# advantage shrinks as the gain grows.
# ```

# %% [markdown]
# ```{solution-start} lti-ppc-gain-scaling
# :class: dropdown
# ```

# %% tags=["solution"]
def mse_vs_gain(gains, n_traj=4, T=1000, seed=1):
    """Torus MSE of ORDER 0 and KF-true on data simulated with each mean gain."""
    # BEGIN SOLUTION
    out = {"ORDER 0": [], "KF-true": []}
    for gain in gains:
        ppc_g = replace(ppc, gain_min=0.8 * gain, gain_max=1.2 * gain)
        d = simulate(n_traj, T, seed=seed, lti=lti, ppc=ppc_g)
        out["ORDER 0"].append(torus_mse(order0(d.y, ppc_g), d.position, ppc_g.period))
        out["KF-true"].append(torus_mse(kf_true(d.y, lti, ppc_g), d.position, ppc_g.period))
    return out
    # END SOLUTION


def loglog_slope(x, y):
    """Least-squares slope of log y against log x."""
    # BEGIN SOLUTION
    lx = torch.log(torch.as_tensor(x, dtype=torch.float64))
    ly = torch.log(torch.as_tensor(y, dtype=torch.float64))
    lx = lx - lx.mean()
    return float((lx * (ly - ly.mean())).sum() / (lx * lx).sum())
    # END SOLUTION


# %%
gains = (4, 16, 64)
by_gain = mse_vs_gain(gains)
print(", ".join(f"{name}: slope {loglog_slope(gains, v):+.2f}" for name, v in by_gain.items()))
# The prediction for KF-true: the steady-state variance of the true filter with a constant
# R = σ_tc² / (2.48 g), from kalman_filter's covariance pass.
flat_sum = math.sqrt(2 * math.pi) * ppc.tuning_std / ppc.spacing       # Σ_i f_i, as above
steady = [kalman_filter(true_params._replace(R=torch.tensor([[ppc.tuning_std**2 / (flat_sum * g)]],
                                                            dtype=torch.float64),
                                             init_cov=torch.eye(2, dtype=torch.float64)),
                        torch.zeros(3000, 1, 1)).covs[-1, 0, 0, 0].item() for g in gains]
print(f"steady-state Riccati prediction for KF-true: slope {loglog_slope(gains, steady):+.2f}")

# %% [markdown]
# ORDER 0 falls as $1/g$, slightly faster at low gain, where a step with few spikes has a
# variance $\sigma_{tc}^2/n$ above $\sigma_{tc}^2/\mathbb{E}n$. KF-true falls more slowly, close to
# the $g^{-3/4}$ of the double integrator, and its steady-state covariance predicts the measured
# slope. The filter's advantage over ORDER 0 is therefore largest at low gain: the fewer the
# spikes, the more a model of the dynamics is worth.
#
# ```{solution-end}
# ```

# %% tags=["check"]
@check("lti-ppc-gain-scaling")
def _():
    gains = (4, 16, 64)
    result = mse_vs_gain(gains)
    assert set(result) == {"ORDER 0", "KF-true"}, f"keys {sorted(result)}"
    a0, a_kf = loglog_slope(gains, result["ORDER 0"]), loglog_slope(gains, result["KF-true"])
    assert -1.2 < a0 < -0.9, f"ORDER 0: expected a slope near -1, got {a0:.2f}"
    assert -0.9 < a_kf < -0.6, f"KF-true: expected a slope near -3/4, got {a_kf:.2f}"


# %% tags=["hidden-check", "remove-cell"]
@check("lti-ppc-gain-scaling", hidden=True)
def _():
    assert math.isclose(loglog_slope([1, 2, 4], [3, 3 * 2**-0.6, 3 * 4**-0.6]), -0.6,
                        rel_tol=1e-9), "loglog_slope on an exact power law"
    ppc_8 = replace(ppc, gain_min=6.4, gain_max=9.6)
    d = simulate(2, 300, seed=3, lti=lti, ppc=ppc_8)
    expected = {"ORDER 0": torus_mse(order0(d.y, ppc_8), d.position, ppc_8.period),
                "KF-true": torus_mse(kf_true(d.y, lti, ppc_8), d.position, ppc_8.period)}
    result = mse_vs_gain([8], n_traj=2, T=300, seed=3)
    for name, value in expected.items():
        assert math.isclose(result[name][0], value, rel_tol=1e-9), (
            f"{name} at gain 8: {result[name][0]:.4e}, expected {value:.4e}")
