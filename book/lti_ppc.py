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
# measure how close a learned model comes to it, on a scale that runs from a filter of the
# first order to one of the second; {doc}`refh_dynamics` then asks *what order of dynamics* a
# model has learned.
#
# This chapter builds the data set, the three reference rows of the poster's Table 1 that need
# no neural network (ORDER 0, KF-1, KF-2), and a fourth reference the poster does not report: a
# Kalman filter with the true parameters (KF-true).
#
# **What you will learn**
#
# - how the mass on a spring is simulated, and how the eigenvalues of its transition matrix and
#   a Lyapunov equation give its period, its decay time and its spread;
# - how fifteen Poisson neurons on a ring encode the position, and why all their counts say
#   about it is two numbers: the centre of mass $\bar s_t$ and the total count (Ma et al. 2006);
# - the circular centre of mass and the Kalman filter on a ring (wrap the innovation, not the
#   state), both written as code in the page and checked against `tlr`;
# - the four reference filters (three from Table 1, plus KF-true), and the scale from KF-1 to
#   KF-2 on which a learned model's error is placed (its order is tested later);
# - why a capped EM fit is a plausible reading of the poster's KF-2 row, and why a stiffer
#   spring makes the mass *easier*, not harder, for the true filter to track.
#
# **Prerequisites.** Gaussian conditioning and the Kalman filter (seen once), the Poisson
# distribution, and {doc}`Why not BPTT <why_not_bptt>` for the question the book asks. The
# symbols are those of the {doc}`notation <notation>` page.
#
# **Run time.** About a minute on one CPU core at the default (`quick`) preset, most of it in
# the two EM fits of KF-2. `TLR_FULL=1` fits the EM baselines to the tighter tolerance of the
# `paper` preset; it takes several minutes, and the numbers typed in the text are those of the
# quick preset.
#
# Statements quoted from the poster are in quotation marks; the rest of the text explains them
# and the code.
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
# The data, the filters and the figures come from `tlr`; the two algorithms the chapter
# teaches, the circular centre of mass and the Kalman filter on the ring, are also written in
# the page and checked against it.

# %% tags=["exercise-setup"]
import math
import os
from dataclasses import replace

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

import tlr.results
from tlr.data import simulate, tuning_curves
from tlr.evaluation import center_of_mass, torus_mse, wrap_error
from tlr.evaluation.order import lag_steps
from tlr.experiments.ppc import PRESETS, run, test_data, train_data
from tlr.filters import (
    centred_observations,
    fit_kf,
    fit_lds_em,
    kalman_filter,
    kf_states,
    kf_true,
    kf_true_params,
    order0,
    run_kf,
    unwrap_continuous,
)
from tlr.poster import TABLE_1
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
# The filters loop over time on tiny tensors: extra threads only add overhead (and fight each
# other on a shared CPU).
torch.set_num_threads(1)
plt.rcParams["figure.dpi"] = 110
print(f"preset {preset.name!r}, seed {SEED}")


# %% [markdown]
# ## A damped mass on a spring
#
# The poster writes the latent dynamics as
# "$p(z_{t+1}\mid z_t) = \mathcal{N}(\mathbf{A}z_t, \Sigma_{\hat{x}})$", and calls them
# "second-order (oscillatory!) dynamics, but only position is 'reported' by the neurons".
# The state $z_t = [s_t; \dot s_t]$ is the position $s_t$ (rad) and velocity $\dot s_t$ (rad/s)
# of a mass $m$ on a spring of stiffness $\kappa$ with damping $\zeta$,
# $m \ddot s = -\kappa s - \zeta \dot s$. One Euler step of length $\Delta t$ gives the
# transition matrix ({ref}`Sources §2.2 <sources-2-2>`, from Makin's `setDynamics.m`):
#
# $$
# z_{t+1} = A z_t + w_t, \qquad
# A = \begin{bmatrix} 1 & \Delta t \\ -\frac{\kappa}{m}\Delta t & 1 - \frac{\zeta}{m}\Delta t
# \end{bmatrix},
# \qquad w_t \sim \mathcal{N}(0, Q),\quad Q = \mathrm{diag}(5\times10^{-7},\,
# 5\times10^{-5}),
# $$
#
# with $\Delta t = 0.05$ s, $m = 5$, $\zeta = 0.25$ and $\kappa = 3$. The process-noise
# covariance $Q$ is the poster's $\Sigma_{\hat x}$. `LTIConfig` holds these numbers (`mass`,
# `damping`, `spring`) and builds $A$ and $Q$:

# %%
print(lti)
print("A =", lti.A.numpy().round(4).tolist())
print("Q =", lti.Q.diagonal().tolist())

# %% [markdown]
# The eigenvalues $\lambda = |\lambda| e^{\pm i\omega}$ of $A$ give the period $2\pi/\omega$ and
# the decay time $-1/\log|\lambda|$ of the oscillation, both in steps. The noise keeps it going:
# the stationary covariance $P_\infty$ of $z_t$ solves the discrete Lyapunov equation
#
# $$
# P_\infty = A P_\infty A^\top + Q
# \quad\Longleftrightarrow\quad
# \operatorname{vec} P_\infty = (I - A \otimes A)^{-1} \operatorname{vec} Q .
# $$

# %%
A = lti.A
lam = torch.linalg.eigvals(A)
period_steps = 2 * math.pi / lam.angle().abs().max().item()
decay_steps = -1 / math.log(lam.abs().max().item())
P_inf = torch.linalg.solve(torch.eye(4, dtype=torch.float64) - torch.kron(A, A),
                           lti.Q.reshape(-1)).reshape(2, 2)
std_s, std_s_dot = P_inf.diagonal().sqrt().tolist()
print(f"eigenvalues {lam[0].item():.5f}, {lam[1].item():.5f}  (|lambda| = {lam.abs()[0]:.5f})")
print(f"period {period_steps:.1f} steps = {period_steps * lti.dt:.2f} s; "
      f"amplitude decay time {decay_steps:.0f} steps = {decay_steps * lti.dt:.0f} s")
print(f"stationary std: position {std_s:.3f} rad, velocity {std_s_dot:.3f} rad/s")
assert 161 < period_steps < 163 and abs(std_s - 0.20) < 0.01 and abs(std_s_dot - 0.16) < 0.01
# Forward Euler: |λ|² = det A = 1 - (ζ/m) Δt + (κ/m) Δt², slower than exp(-(ζ/m) Δt).
assert math.isclose(lam.abs()[0].item() ** 2, 1 - lti.damping / lti.mass * lti.dt
                    + lti.spring / lti.mass * lti.dt**2)
assert 1990 < decay_steps < 2010  # the continuous-time 2m/ζ is 800 steps
continuous_steps = 2 * lti.mass / lti.damping / lti.dt          # 2m/ζ = 40 s, in steps
assert round(2 * lti.mass / lti.damping) == 40 and round(continuous_steps) == 800
assert f"{decay_steps / continuous_steps:.1f}" == "2.5"         # "2.5 times more slowly"
assert round(100 * lti.spring * lti.dt / lti.damping) == 60     # (κ/m)Δt² undoes 60 % of (ζ/m)Δt
start_max = lti.pos_max - lti.init_margin                       # starts: U[±(π/3 - 0.05)]
assert round(start_max, 1) == 1.0 and round(start_max / std_s) == 5   # five stationary s.d.
assert round(start_max / 2, 1) == 0.5 and abs(start_max / 2 / std_s - 2.5) < 0.1  # a typical start
assert round(lam.abs().max().item() ** preset.T_test, 1) == 0.6  # the swing left after 1000 steps

# %% [markdown]
# > The amplitude decays with a time constant of 2000 steps (100 s), not the continuous-time
# > $2m/\zeta = 40$ s = 800 steps ({ref}`Sources §2.2 <sources-2-2>`). The forward-Euler step
# > adds a little energy every step: $|\lambda|^2 = \det A = 1 - \frac{\zeta}{m}\Delta t +
# > \frac{\kappa}{m}\Delta t^2$, and the last term undoes 60 % of the damping. The period, 162
# > steps, is unaffected.
# >
# > The start position is drawn uniformly from $\pm(\pi/3 - 0.05) \approx \pm 1.0$ rad and the
# > start velocity is essentially zero ({ref}`Sources §2.3 <sources-2-3>`). That is five
# > stationary standard deviations, and a typical start ($|s_1| \approx 0.5$ rad) is about two
# > and a half: most trajectories begin as a swing larger than the noise alone would sustain.
# > It shrinks only to about 60 % of its size over the 1000 steps of a sequence, with
# > noise-driven jitter of about 0.2 rad on top.
#
# The book's test set is the canonical one of {ref}`Sources §2.6 <sources-2-6>`: 40
# trajectories of 1000 steps, simulated from the chapter's seed with random numbers of their own,
# separate from those of every training set (`test_data`). Here are the first four:

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
# $s_t = z_t^1$ is encoded. The poster counts the neurons from 1; the book, like the code,
# counts from 0. Neuron $i$ prefers the position $\mu_i = s_{\min} + i\,\Delta\mu$
# ($i = 0,\dots,14$), with $s_{\min} = -\pi/3$ and spacing $\Delta\mu = (2\pi/3)/14$, and has a
# Gaussian tuning curve of width $\sigma_{\text{tc}}$ (a full width at half maximum of 1/6 of
# the range). The stimulus lives on a ring of circumference
# $L = N\Delta\mu = \frac{15}{14}\cdot\frac{2\pi}{3}$, so that the last neuron and the first
# are neighbours. Each neuron sums the three images $s' \in \{s - L, s, s + L\}$ of the stimulus
# nearest its preferred position ({ref}`Sources §2.5 <sources-2-5>`), with the stimulus $s$
# first brought onto the ring, $s \mapsto s_{\min} + \big((s - s_{\min}) \bmod L\big)$:
#
# $$
# f_i(s) = \sum_{s' \in \{s - L,\ s,\ s + L\}}
# \exp\!\left(-\frac{(s' - \mu_i)^2}{2\sigma_{\text{tc}}^2}\right)
# \qquad (s \text{ on the ring}).
# $$

# %%
print(f"spacing {ppc.spacing:.4f} rad, ring circumference L = {ppc.period:.4f} rad, "
      f"sigma_tc = {ppc.tuning_std:.5f} rad")
assert math.isclose(ppc.period, 15 / 14 * 2 * math.pi / 3)
s_grid = torch.linspace(ppc.s_min - 0.4, ppc.s_min + ppc.period + 0.4, 2001, dtype=torch.float64)
f = tuning_curves(s_grid, ppc)  # (2001, 15): unit-gain rates
plot_tuning_curves(s_grid, f, ppc);

# %% [markdown]
# The dashed line is $\sum_i f_i(s)$. It is flat: with the tuning width about equal to the
# spacing, the sum of the tuning curves equals $\sqrt{2\pi}\,\sigma_{\text{tc}}/\Delta\mu$ up
# to a ripple with the period $\Delta\mu$ of the neurons. By the Poisson summation formula the
# ripple's relative amplitude is $2\exp(-2\pi^2\sigma_{\text{tc}}^2/\Delta\mu^2) \approx
# 8 \times 10^{-9}$: far above the rounding error of float64 ($10^{-16}$), far below anything
# the spike counts could reveal. The next section relies on this.

# %%
total_f = f.sum(-1)
flat = math.sqrt(2 * math.pi) * ppc.tuning_std / ppc.spacing
ripple = ((total_f - flat) / flat).abs().max().item()                 # measured, relative
ripple_formula = 2 * math.exp(-2 * math.pi**2 * ppc.tuning_std**2 / ppc.spacing**2)
print(f"sum_i f_i(s): min {total_f.min():.6f}, max {total_f.max():.6f}; "
      f"sqrt(2 pi) sigma_tc / spacing = {flat:.6f}")
print(f"relative ripple: measured {ripple:.3e}, Poisson summation {ripple_formula:.3e}")
assert abs(ripple / ripple_formula - 1) < 0.01 and f"{ripple_formula:.0e}" == "8e-09"

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

# %% tags=["remove-cell"]
# The settings the text types, against the library's config objects: Δt, m, ζ, κ and Q; the
# start range ±(π/3 - 0.05); N neurons on [-π/3, π/3] with a FWHM of 1/6 of the range,
# ⌊N/2⌋ = 7, L ≈ 2.24 rad; the gain U[6.4, 9.6], g_t Σ_i f_i ≈ 2.48 g_t spikes, about 20 on
# average; test and training sets of 40 × 1000 steps; the EM tolerances of the two presets;
# ζ/Δt = 5, the stiffness above which |λ| > 1.
assert (lti.dt, lti.mass, lti.damping, lti.spring) == (0.05, 5.0, 0.25, 3.0)
assert lti.process_var == (5e-7, 5e-5)
assert (lti.pos_min, lti.pos_max, lti.init_margin) == (-math.pi / 3, math.pi / 3, 0.05)
assert (ppc.n_neurons, ppc.s_min, ppc.s_max, ppc.fwhm) == (15, -math.pi / 3, math.pi / 3, 1 / 6)
assert ppc.n_neurons // 2 == 7 and f"{ppc.period:.2f}" == "2.24"
assert (ppc.gain_min, ppc.gain_max) == (6.4, 9.6)
assert f"{flat:.2f}" == "2.48" and round(mean_total) == 20
assert (preset.n_test, preset.T_test, preset.n_train, preset.T_train) == (40, 1000, 40, 1000)
assert PRESETS["quick"].em_tol == 1e-5 and PRESETS["paper"].em_tol == 1e-7
assert lti.damping / lti.dt == 5

# %% [markdown]
# The raster shows trajectory 0: the active neurons follow the position (red), and the bottom
# panel shows the gain and the total count divided by $\sum_i f_i$, a noisy estimate of it.
#
# ## What the spikes say about the position
#
# Ma et al. (2006) showed that for Gaussian tuning curves and Poisson counts the likelihood of
# the stimulus is Gaussian. Write one neuron's tuning curve near the stimulus as
# $f_i(s) = \exp(-(s - \mu_i)^2 / 2\sigma_{\text{tc}}^2)$. Then, at one step $t$,
#
# $$
# \log p(y_t \mid s) = \sum_i \Big[ y_t^i \log\big(g_t f_i(s)\big) - g_t f_i(s) - \log y_t^i!
# \Big] = -\sum_i \frac{y_t^i\,(s - \mu_i)^2}{2\sigma_{\text{tc}}^2} \;-\; g_t\sum_i f_i(s)
# \;+\; \text{const}.
# $$
#
# The second term does not depend on $s$, because $\sum_i f_i(s)$ is flat (checked above).
# Completing the square in the first term gives
#
# $$
# p(y_t \mid s) \;\propto\; \mathcal{N}\!\left(s;\ \bar s_t,\
# \frac{\sigma_{\text{tc}}^2}{\sum_i y_t^i}\right), \qquad
# \bar s_t = \frac{\sum_i y_t^i\, \mu_i}{\sum_i y_t^i},
# $$
#
# the centre of mass of the counts. All that fifteen counts tell us about the position is two
# numbers: $\bar s_t$ and the total count $\sum_i y_t^i$.
#
# > The variance is $\sigma_{\text{tc}}^2/\sum_i y_t^i$, not $1/g_t$ and not
# > $1/(g_t \sum_i y_t^i)$: the gain enters only through the counts it produces. Because
# > $\mathbb{E}\sum_i y_t^i \approx 2.48\,g_t$, the *expected* precision grows in proportion to
# > the gain, which is how Ma et al. state it.
#
# ### The centre of mass on a ring
#
# On the ring the preferred positions are not points on a line, so the sum above must be taken
# around the right part of the ring. Makin's `centerNoisyHills.m` ({ref}`Sources §3.2
# <sources-3-2>`, {ref}`§3.3 <sources-3-3>`) shifts the population so that the most active
# neuron, $i^\ast$, sits in the middle, takes the ordinary centre of mass of the shifted counts,
# and shifts the result back:
#
# $$
# \bar s_t = \mu_{i^\ast} + \Delta\mu \left(\frac{\sum_i i\;
# y_t^{\,(i + i^\ast - \lfloor N/2 \rfloor) \bmod N}}{\sum_i y_t^i} - \lfloor N/2 \rfloor\right),
# $$
#
# with $\lfloor N/2 \rfloor = 7$ the middle neuron, and wrapped back onto the ring. Here it
# is, with `torch.roll` doing the shift for every row of a batch:

# %%
def com_by_shifting(y: torch.Tensor, s_min: float, spacing: float) -> torch.Tensor:
    """Circular centre of mass of y (..., N) (each row with spikes): roll the most active neuron
    to the middle, take the linear centre of mass, roll back and wrap onto the ring."""
    N, mid = y.shape[-1], y.shape[-1] // 2                     # mid = ⌊N/2⌋
    rows = y.to(torch.float64).reshape(-1, N)
    i_star = rows.argmax(-1)                                   # most active neuron of each row
    shifted = torch.stack([torch.roll(row, mid - int(i)) for row, i in zip(rows, i_star)])
    offset = (torch.arange(N) * shifted).sum(-1) / shifted.sum(-1) - mid  # in units of Δμ
    s_bar = s_min + spacing * (i_star + offset)                # μ_{i*} + Δμ · offset
    s_bar = s_min + torch.remainder(s_bar - s_min, N * spacing)            # onto the ring
    return s_bar.reshape(y.shape[:-1])


# %% [markdown]
# The library's `center_of_mass` computes the same number in one vectorised expression, with
# every neuron indexed by its signed distance from $i^\ast$ around the ring; on 800 steps of test
# responses, and on a hill that straddles the ring's seam, the two agree:

# %%
y_check = data.y[:200, :4].reshape(-1, ppc.n_neurons)          # 800 responses
y_check = y_check[y_check.sum(-1) > 0]                         # (a row needs spikes)
seam_hill = torch.zeros(1, ppc.n_neurons)
seam_hill[0, [13, 14, 0, 1]] = torch.tensor([2.0, 5.0, 4.0, 1.0])  # neurons 14 and 0 are neighbours
for y_c in (y_check, seam_hill):
    assert torch.allclose(com_by_shifting(y_c, ppc.s_min, ppc.spacing),
                          center_of_mass(y_c, ppc).s_hat, atol=1e-12)
print(f"seam hill: s_bar = {com_by_shifting(seam_hill, ppc.s_min, ppc.spacing).item():+.4f} rad "
      f"(the seam is at s_min + L = {ppc.s_min + ppc.period:+.4f} rad)")

# %% [markdown]
# ## ORDER 0: the spikes of the current step alone
#
# ORDER 0 (Makin's "sensory" estimate) is $\bar s_t$ itself: a model with no dynamics at all.
# Every estimate $\tilde s_t$ is scored by the torus-wrapped squared error, averaged over all
# $40 \times 1000$ test steps including $t = 1$, in rad² ({ref}`Sources §5.6 <sources-5-6>`):
#
# $$
# \mathrm{MSE} = \frac{1}{TB} \sum_{t, b} \operatorname{wrap}\!\big(\tilde s_{t,b} - s_{t,b}
# \big)^2, \qquad \operatorname{wrap}(\cdot) = \big((\,\cdot\, + L/2) \bmod L\big) - L/2 .
# $$
#
# The derivation predicts this number before we measure it: the mean of
# $\sigma_{\text{tc}}^2/\sum_i y_t^i$ over the test set.

# %%
com = center_of_mass(data.y, ppc)
mse_order0 = torus_mse(com.s_hat, data.position, ppc.period)
predicted = com.obs_var.mean().item()
print(f"ORDER 0 MSE {mse_order0:.3e} rad^2; predicted mean(sigma_tc^2 / sum_i y_t^i) "
      f"{predicted:.3e}")
assert abs(mse_order0 / predicted - 1) < 0.05
plot_estimates(data.position[:300, 0], {"ORDER 0 (centre of mass)": com.s_hat[:300, 0]},
               ppc.period);

# %% [markdown]
# A sharper check of the variance formula: group the test steps by their total count
# $\sum_i y_t^i$ and compare the mean squared error in each group with
# $\sigma_{\text{tc}}^2 / \sum_i y_t^i$.

# %%
err2 = wrap_error(com.s_hat - data.position, ppc.period).pow(2).flatten()
count = com.total.long().flatten()                 # total count of each step
groups = torch.bincount(count)
emp_var = torch.bincount(count, weights=err2) / groups.clamp(min=1)
keep = groups >= 200  # counts with enough samples for a stable variance
count_kept = keep.nonzero().squeeze(1)
theory = ppc.tuning_std**2 / count_kept
ratio = emp_var[keep] / theory
z = (ratio - 1) / (2 / (groups[keep] - 1)).sqrt()  # in standard errors of a variance
pooled = (err2 * count / ppc.tuning_std**2).mean()
print(f"{int(keep.sum())} groups, total count "
      f"{count_kept.min().item()}..{count_kept.max().item()}; "
      f"measured / predicted = {ratio.min():.2f}..{ratio.max():.2f}; "
      f"pooled mean of count * e^2 / sigma_tc^2 = {pooled:.3f}")
assert z.abs().max() < 4 and abs(pooled - 1) < 0.05
plot_binned_variance(count_kept, emp_var[keep], ppc.tuning_std**2, groups[keep]);

# %% [markdown]
# ## A Kalman filter on the ring
#
# "Observation model is *nonlinear*, but a closed-form solution is still available (KF). This
# allows us to determine what order model was learned." The closed form is the result above:
# replace each step's counts by the linear-Gaussian observation
# $\bar s_t = C z_t + \epsilon_t$ with $C = [1, 0]$ and a noise variance that changes every
# step, $\epsilon_t \sim \mathcal{N}(0, R_t)$, $R_t = \sigma_{\text{tc}}^2/\sum_i y_t^i$. The
# Kalman filter then computes $p(z_t \mid y_{1:t}) = \mathcal N(\mu_{t \mid t}, P_{t \mid t})$,
# exactly as far as this Gaussian likelihood holds, up to the choice of the image of $\bar s_t$
# on the ring described below ({ref}`Sources §4.2 <sources-4-2>`):
#
# $$
# \begin{aligned}
# \text{predict:}\quad & \mu_{t \mid t-1} = A \mu_{t-1 \mid t-1}, &
# P_{t \mid t-1} &= A P_{t-1 \mid t-1} A^\top + Q, \\
# \text{update:}\quad & \Delta s_t = \operatorname{wrap}(\bar s_t - C \mu_{t \mid t-1}), &
# K_t &= P_{t \mid t-1} C^\top \big(C P_{t \mid t-1} C^\top + R_t\big)^{-1}, \\
# & \mu_{t \mid t} = \mu_{t \mid t-1} + K_t \Delta s_t, &
# P_{t \mid t} &= (I - K_t C)\, P_{t \mid t-1} .
# \end{aligned}
# $$
#
# Only the innovation $\Delta s_t$ is wrapped onto the ring; the state stays unwrapped. The
# observation $\bar s_t$ is known only up to a multiple of $L$, so the innovation takes the
# image nearest the prediction. The state is a physical position, though: the spring pulls with
# force $-\kappa s_t$ on the *unwrapped* $s_t$. Wrapping $\mu_{t \mid t}$ when a trajectory
# crosses the ring's seam would move it by $L = 2.24$ rad and make the spring push the wrong way.
#
# The first step has no prediction: it starts from the prior
# $\mathcal N(\mu_{1 \mid 0}, P_{1 \mid 0})$ of $z_1$, too vague to pick an image of $\bar s_1$
# by, so the innovation is not wrapped and $\bar s_1$ is taken on one fixed image of the ring:
# the window $[-L/2, L/2)$, centred on the range of start positions, which holds every start.
# One step of the filter, for a batch of $B$ trajectories (rows, as everywhere in `tlr`:
# $A\mu$ becomes `mu @ A.T`):

# %%
def kalman_step(mu, P, s_bar_t, R_t, A, C, Q, period, first=False):
    """One predict + update on the ring: mu (B, n_z), P (B, n_z, n_z), s_bar_t and R_t (B,)."""
    if not first:                                              # predict
        mu, P = mu @ A.T, A @ P @ A.T + Q                      # μ_{t|t-1}, P_{t|t-1}
    ds = s_bar_t[:, None] - mu @ C.T                           # innovation Δs_t, (B, 1)
    if not first:
        ds = wrap_error(ds, period)                            # the image nearest the prediction
    S = C @ P @ C.T + R_t[:, None, None]                       # C P Cᵀ + R_t, (B, 1, 1)
    K = P @ C.T @ torch.linalg.inv(S)                          # Kalman gain K_t, (B, n_z, 1)
    mu = mu + (K @ ds[..., None])[..., 0]                      # μ_{t|t}
    P = (torch.eye(len(A), dtype=P.dtype) - K @ C) @ P         # P_{t|t}
    return mu, (P + P.transpose(-1, -2)) / 2                   # symmetric against rounding


def ring_kalman(s_bar, R, params, period):
    """Filtered means μ_{t|t} (T, B, n_z) from observations s_bar and variances R, both (T, B)."""
    T, B = s_bar.shape
    mu = params.init_mean.expand(B, -1)                        # the prior of z_1
    P = params.init_cov.expand(B, -1, -1)
    means = []
    for t in range(T):
        mu, P = kalman_step(mu, P, s_bar[t], R[t], params.A, params.C, params.Q, period,
                            first=t == 0)
        means.append(mu)
    return torch.stack(means)


# %% [markdown]
# KF-true runs this filter with the true $A$ and $Q$, $R_t$ from the total count, and a flat
# prior on the first position (`kf_true_params`). Its observations are the centres of mass,
# placed on that window $[-L/2, L/2)$ (`centred_observations`); only the first step's image
# matters, since from the second step on the wrapped innovation picks the nearest one. We check
# the page's filter against the library's
# `kalman_filter` and against `kf_states`, the library's KF-true, on the whole test set:

# %%
true_params = kf_true_params(lti)                     # A, C = [1, 0], Q and a flat prior
s_bar, R_obs = centred_observations(data.y, lti, ppc)  # s̄_t and R_t, (T, B) each
assert ((s_bar >= -ppc.period / 2) & (s_bar < ppc.period / 2)).all()  # the window [-L/2, L/2)
assert lti.pos_min + lti.pos_max == 0 and lti.pos_max - lti.init_margin < ppc.period / 2  # holds
mu_page = ring_kalman(s_bar, R_obs, true_params, ppc.period)
mu_lib = kalman_filter(true_params, s_bar[..., None], R_t=R_obs[..., None, None],
                       wrap_period=ppc.period).means
assert torch.isfinite(R_obs).all()  # every test step has spikes (R_t = inf would skip the update)
assert torch.allclose(mu_page, mu_lib, rtol=0, atol=1e-12)
assert torch.allclose(mu_page, kf_states(data.y, lti, ppc), rtol=0, atol=1e-12)
print(f"max |page - kalman_filter| = {(mu_page - mu_lib).abs().max():.1e} "
      f"over {tuple(mu_page.shape)} states")
mse_kf_true = torus_mse(mu_page[..., 0], data.position, ppc.period)
print(f"KF-true: test MSE {mse_kf_true:.3e} rad^2, {mse_order0 / mse_kf_true:.1f} times below "
      "ORDER 0")


# %% tags=["remove-cell"]
# The note below: kalman_step with the gain computed by a division by S instead of inv(S)
# differs from the library's filter by rounding errors of about 1e-7 rad (3e-7 on the machine
# that built the book; the bound below allows for other CPUs); the page's kalman_step not at all.
def _kalman_step_divided(mu, P, s_bar_t, R_t, A, C, Q, period, first=False):
    if not first:
        mu, P = mu @ A.T, A @ P @ A.T + Q
    ds = s_bar_t[:, None] - mu @ C.T
    if not first:
        ds = wrap_error(ds, period)
    K = P @ C.T / (C @ P @ C.T + R_t[:, None, None])           # a division, not inv(S)
    mu = mu + (K @ ds[..., None])[..., 0]
    P = (torch.eye(len(A), dtype=P.dtype) - K @ C) @ P
    return mu, (P + P.transpose(-1, -2)) / 2


_mu = true_params.init_mean.expand(s_bar.shape[1], -1)
_P = true_params.init_cov.expand(s_bar.shape[1], -1, -1)
_means = []
for _t in range(len(s_bar)):
    _mu, _P = _kalman_step_divided(_mu, _P, s_bar[_t], R_obs[_t], true_params.A, true_params.C,
                                   true_params.Q, ppc.period, first=_t == 0)
    _means.append(_mu)
assert 1e-8 < (torch.stack(_means) - mu_lib).abs().max() < 1e-6  # rounding: about 1e-7 rad
assert torch.equal(mu_page, mu_lib)

# %% [markdown]
# > The library's `kalman_filter` is organised differently, for speed: the covariances
# > $P_{t \mid t-1}$, $P_{t \mid t}$ and the gains $K_t$ do not depend on the observations, only
# > on their variances, so it computes them first for all $t$ (with a constant $R$ they reach a
# > steady state after a few dozen steps and are shared by the whole batch), and then runs the
# > mean pass. A step with no spikes ($R_t = \infty$) makes no update.
# >
# > The flat prior is a variance of $10^8$ on the first position, so the first update computes
# > $P_{1 \mid 1}^{11} \approx R_1 \approx 10^{-3}$ as a difference of two numbers near $10^8$:
# > a rounding error of one part in $10^{16}$ in the gain becomes one part in $10^5$ in
# > $P_{1 \mid 1}$. The page therefore computes the gain with the same operations as the library
# > (`inv(S)` rather than a division by $S$, and the symmetrised $P$); with a division the two
# > filters differ by rounding errors of about $10^{-7}$ rad, with these operations not at all.
# >
# > Wrapping the state instead of the innovation does real damage; an exercise at the end of
# > the chapter measures how much on this test set. (The re-simulation of
# > {ref}`Sources §4.2 <sources-4-2>`, with its seam in another place, found a larger effect.)
#
# ## Learning the dynamics: KF-1 and KF-2
#
# KF-true is given $A$ and $Q$. The models of the later chapters must learn the dynamics
# from spike counts alone, and two learned Kalman filters mark the scale on which they are
# placed (Makin et al. 2015; {ref}`Sources §4.4 <sources-4-4>`). Each fits a linear dynamical system
# with $n_z$ latent states and a constant observation noise $R$,
#
# $$
# z_{t+1} = A z_t + w_t,\ \ w_t \sim \mathcal{N}(0, Q), \qquad
# \bar s_t = C z_t + \epsilon_t,\ \ \epsilon_t \sim \mathcal{N}(0, R), \qquad
# z_t \in \mathbb{R}^{n_z},
# $$
#
# by expectation-maximisation (Shumway & Stoffer 1982; Ghahramani & Hinton 1996; E-step: Kalman
# filter and RTS smoother; M-step: closed form) to the centre-of-mass observations of a separate
# training set of 40 × 1000 steps, unwrapped by continuity so that a crossing of the seam is not
# a jump of $L$. This training set stays fixed during EM (Makin's code draws new data at every
# iteration; see below). The fitted model is then run as a filter on the test set.
#
# - **KF-1** has one state, so its dynamics are at best a leaky random walk: it has no place to
#   keep a velocity. It is the EM-fitted (maximum-likelihood) first-order filter with a constant
#   $R$. Maximum likelihood is not least squares: a random-walk filter whose noise is chosen for
#   the smallest error does a little better ({ref}`Sources §12.3 <sources-12-3>`), and so does
#   one told each step's spike count ({doc}`rvae`).
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
assert math.isclose(mse["KF-true"], mse_kf_true, rel_tol=1e-9)  # and the page's KF-true

# %% [markdown]
# The poster's Table 1 has three of these rows; the reference re-simulation of
# {ref}`Sources §12.3 <sources-12-3>` (a numpy implementation of the same settings, not a
# published result) has all four.

# %%
resim = {  # MSE in rad² of the Sources §12.3 re-simulation; the poster's from tlr.poster
    "ORDER 0": 11.9e-4, "KF-1": 6.26e-4, "KF-2": 1.61e-4, "KF-true": 1.47e-4,
}
rows = ["| model | this chapter | re-simulation (Sources §12.3) | poster Table 1 |",
        "|---|---:|---:|---:|"]
for name, value in resim.items():
    poster_txt = f"{TABLE_1[name] * 1e4:.1f}" if name in TABLE_1 else "—"  # no KF-true row
    rows.append(f"| {name} | {mse[name] * 1e4:.2f} | {value * 1e4:.2f} | {poster_txt} |")
display(Markdown("MSE in units of $10^{-4}$ rad²\n\n" + "\n".join(rows)))
assert abs(mse["ORDER 0"] / TABLE_1["ORDER 0"] - 1) < 0.05
assert abs(mse["KF-1"] / TABLE_1["KF-1"] - 1) < 0.1
assert abs(mse["KF-true"] / 1.47e-4 - 1) < 0.1 and abs(mse["KF-2"] / 1.61e-4 - 1) < 0.1
# the rounded values the text quotes (ORDER 0 11.9e-4, KF-1 5.9e-4, KF-2 1.5e-4 and 1.53e-4,
# KF-true 1.4e-4 and 1.42e-4), and the poster's KF-1 (5.8e-4) and KF-2 (2.2e-4)
assert [f"{mse[m] * 1e4:.1f}" for m in BASELINES] == ["11.9", "5.9", "1.5", "1.4"]
assert f"{mse['KF-true'] * 1e4:.2f}" == "1.42" and (FULL or f"{mse['KF-2'] * 1e4:.2f}" == "1.53")
assert [f"{TABLE_1[m] * 1e4:.1f}" for m in ("KF-1", "KF-2")] == ["5.8", "2.2"]
# "about 40 % above both our fit and the re-simulation's fitted KF-2 (1.61e-4)"
assert FULL or all(0.35 < TABLE_1["KF-2"] / m - 1 < 0.45 for m in (mse["KF-2"], 1.61e-4))

# %% [markdown]
# > ORDER 0 and KF-1 agree with the poster to within a few per cent, which suggests the poster
# > used Makin's `LTI-PPC` settings, as we do. KF-2 does not: the poster's 2.2e-4 is about 40 %
# > above both our fit and the re-simulation, and even further above KF-true.
# > The poster does not say how its KF-2 was fitted ({ref}`Sources §13 <sources-13>`, question 2).
#
# ## Why might the poster's KF-2 be higher?
#
# EM for a linear dynamical system is slow to converge, and the fit above took over a hundred
# iterations to meet the quick preset's tolerance (relative log-likelihood change below
# $10^{-5}$; at the `paper` preset's $10^{-7}$ the saved runs of seeds 0–2 take about
# 800–1000 iterations, and seed 0 ends a few per cent lower). Makin's `EM4LDS` stops after at
# most **50** iterations (`NepochsMax`), or earlier when the relative change falls below
# $10^{-4}$ ({ref}`Sources §4.4 <sources-4-4>`). To see what a cap does, we repeat the KF-2
# fit of `run` (same training data, same random start) and score it on the test set after each
# of several numbers of iterations. EM is deterministic given its data and starting point, so
# continuing a fit from the parameters of a shorter one gives exactly the iterates of one long
# run.

# %%
train = train_data(preset, SEED)  # what run() fits the Kalman filters on
s_train = unwrap_continuous(center_of_mass(train.y, ppc).s_hat, ppc.period, centre=0.0)
MAKIN_CAP = 50  # NepochsMax of Makin's EM4LDS (Sources §4.4)
caps = [5, 10, 20, 30, 40, MAKIN_CAP, 75, 100]
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
print("EM iterations:", *(f"{k:>5d}" for k in mse_at))
print("MSE / 1e-4:   ", *(f"{v * 1e4:5.2f}" for v in mse_at.values()))
print(f"converged after {done} iterations; Makin's 1e-4 tolerance would stop at {makin_stop}")
assert math.isclose(mse_at[done], mse["KF-2"], rel_tol=1e-9)  # the same fit as run()'s KF-2
assert all(a > b for a, b in zip(mse_at.values(), list(mse_at.values())[1:], strict=False))
assert done > 100 and makin_stop > MAKIN_CAP  # the cap binds, not the 1e-4 rule
at_cap = mse_at[MAKIN_CAP] / mse["KF-2"] - 1  # how much worse the capped fit is
print(f"at Makin's cap of {MAKIN_CAP}: {mse_at[MAKIN_CAP]:.2e} rad^2, {at_cap:.0%} above the "
      "converged fit")
assert f"{at_cap:.1f}" == "0.2" and f"{mse_at[MAKIN_CAP] * 1e4:.1f}" == "1.8"  # as the text says
# on our data the cap alone does not reach the poster's KF-2; 30 to 40 iterations do
assert mse_at[30] > TABLE_1["KF-2"] > mse_at[40] > mse_at[MAKIN_CAP]

# The paper preset's saved runs (python -m tlr run ppc --preset paper, seeds 0-2): EM iterations
# of KF-2 at the 1e-7 tolerance, and seed 0's KF-2 (the exercise "Why can a converged KF-2 lose
# to KF-true?" quotes it).
paper_runs = [tlr.results.load(f"ppc/paper_seed{s}") for s in (0, 1, 2)]
paper_iters = [r["details"]["KF-2"]["em_iterations"] for r in paper_runs]
paper_kf2 = paper_runs[0]["results"]["KF-2"]["mse"]
print(f"paper preset: KF-2 EM iterations {paper_iters} (seeds 0-2); seed 0 KF-2 "
      f"{paper_kf2:.3e} rad^2")
assert all(r["details"]["KF-2"]["em_converged"] for r in paper_runs)
assert 750 <= min(paper_iters) and max(paper_iters) <= 1050  # "about 800-1000"
assert f"{paper_kf2 * 1e4:.2f}" == "1.49" and (FULL or 0.01 < 1 - paper_kf2 / mse["KF-2"] < 0.05)

# %%
fig = plot_mse_vs_iterations(list(mse_at), list(mse_at.values()),
                             {"KF-1": mse["KF-1"], "poster KF-2": TABLE_1["KF-2"],
                              "KF-true": mse["KF-true"]})
ax = fig.axes[0]
ax.axvline(MAKIN_CAP, color="k", ls=":", lw=1, label=f"Makin's cap ({MAKIN_CAP} iterations)")
ax.axvline(makin_stop, color="0.5", ls="-.", lw=1,
           label=f"where the $10^{{-4}}$ rule stops ({makin_stop})")
ax.legend(fontsize=8, loc="center right");

# %% [markdown]
# > The cap matters. On our fixed training data, Makin's $10^{-4}$ rule alone would stop later
# > than his cap of 50 (printed above), so the cap is what binds. There our KF-2 is about 20 %
# > worse than at the end of the fit, and the poster's 2.2e-4 is reached earlier, after roughly
# > 30–40 iterations: on our data the cap alone does not reach it. Makin's EM also
# > draws fresh training data at every iteration, which makes the log-likelihood noisy, so its
# > $10^{-4}$ stopping rule can fire earlier than in our fixed-data run, and it starts from a
# > different random point. A capped, not fully converged EM fit is therefore a plausible
# > reading of the poster's KF-2 row, not a proven one. We keep our KF-2 and KF-true
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
for name, s_tilde in est.items():
    assert math.isclose(torus_mse(s_tilde, data.position, ppc.period), mse[name], rel_tol=1e-9)
t0, t1 = 100, 250
plot_estimates(data.position[t0:t1, 0], {k: v[t0:t1, 0] for k, v in est.items()}, ppc.period,
               t0=t0);

# %% [markdown]
# ORDER 0 jumps with the spike noise. KF-1 cannot predict the motion, so to keep up with the
# swing it must trust each new centre of mass heavily: it removes only part of the noise, and
# it still trails the mass. KF-2 and KF-true expect the mass to keep moving, average over many
# steps, and are hard to tell apart. The lag shows up as an error proportional to the velocity,
# $\tilde s_t - s_t \approx -\tau\,\Delta t\,\dot s_t$, so that the estimate is where the mass
# was $\tau$ steps earlier; a least-squares fit of $\tau$:

# %%
lag = {name: lag_steps(s_tilde, data.position, data.z[..., 1], ppc.period, lti.dt)
       for name, s_tilde in est.items()}  # tau in steps
print("lag tau (steps): " + ", ".join(f"{k} {t:+.2f}" for k, t in lag.items()))
assert 0.4 < lag["KF-1"] < 0.7 and all(abs(lag[k]) < 0.1 for k in ("ORDER 0", "KF-2", "KF-true"))


# %% [markdown]
# ## Explore: the spring and the gain
#
# How do the spring and the gain change the picture? `explore` simulates eight short
# trajectories with another stiffness $\kappa$ and mean gain (the gain still varies by ±20 %
# from step to step) and compares ORDER 0 with KF-true. A larger gain gives more spikes and a
# better ORDER 0 (an exercise at the end measures by how much).

# %%
def explore(spring: float = 3.0, gain: float = 8.0):
    lti_x = replace(lti, spring=spring)
    ppc_x = replace(ppc, gain_min=0.8 * gain, gain_max=1.2 * gain)
    d = simulate(8, 400, seed=1, lti=lti_x, ppc=ppc_x)
    s0, s_kf = order0(d.y, ppc_x), kf_true(d.y, lti_x, ppc_x)
    e0, ekf = (torus_mse(s, d.position, ppc_x.period) for s in (s0, s_kf))
    title = rf"$\kappa$ = {spring:g}, mean gain {gain:g}: MSE ORDER 0 {e0:.1e}, KF-true {ekf:.1e}"
    return plot_estimates(d.position[:, 0], {"ORDER 0": s0[:, 0], "KF-true": s_kf[:, 0]},
                          ppc_x.period, title=title)


explore();

# %% [markdown]
# Opened in Jupyter or Colab (the launch button at the top of the page), the notebook has one
# more cell here, with sliders for $\kappa$ and the gain.

# %% tags=["remove-cell", "nbval-skip", "skip-execution"]
# Sliders for the stiffness and the mean gain. Run this cell yourself: the book build and the
# tests skip it.
from ipywidgets import FloatSlider, interact

interact(explore, spring=FloatSlider(value=3.0, min=0.0, max=24.0, step=0.5),
         gain=FloatSlider(value=8.0, min=1.0, max=32.0, step=1.0));

# %% [markdown]
# A stiffer spring makes the mass swing faster. Does that make it harder to track? We measure
# the two errors over five stiffnesses, on 3 seeds × 20 trajectories of 400 steps at the
# default gain, and set them beside the steady state of the true filter: its covariance
# $P_{t \mid t}$ as $t \to \infty$, computed by `kalman_filter`'s covariance pass with the
# constant $R$ of the mean spike count. Its entry $P_{t \mid t}^{11}$ is the position error
# variance, and $P_{t \mid t}^{12} / (P_{t \mid t}^{11} P_{t \mid t}^{22})^{1/2}$ the correlation
# of the position and velocity errors.

# %%
def steady_state_cov(lti_x, gain: float = 8.0) -> torch.Tensor:
    """P_{t|t} (2, 2) of the true filter as t → ∞, with R = σ_tc² / (mean total count)."""
    R = ppc.tuning_std**2 / (flat * gain)
    prm = kf_true_params(lti_x)._replace(R=torch.tensor([[R]], dtype=torch.float64),
                                         init_cov=torch.eye(2, dtype=torch.float64))
    return kalman_filter(prm, torch.zeros(3000, 1, 1)).covs[-1, 0]


SPRINGS = (0.0, 3.0, 6.0, 12.0, 24.0)
by_spring = {}
for kappa in SPRINGS:
    lti_k = replace(lti, spring=kappa)
    sims = [simulate(20, 400, seed=s, lti=lti_k, ppc=ppc) for s in (1, 2, 3)]
    e0 = torch.tensor([torus_mse(order0(d.y, ppc), d.position, ppc.period) for d in sims])
    ekf = torch.tensor([torus_mse(kf_true(d.y, lti_k, ppc), d.position, ppc.period)
                        for d in sims])
    speed = torch.stack([d.z[..., 1].pow(2).mean() for d in sims]).mean().sqrt().item()
    abs_lam = torch.linalg.eigvals(lti_k.A).abs().max().item()
    P = steady_state_cov(lti_k)
    corr = (P[0, 1] / (P[0, 0] * P[1, 1]).sqrt()).item()
    by_spring[kappa] = (e0.mean().item(), ekf.mean().item(), ekf.std().item(),
                        P[0, 0].item(), speed, abs_lam, corr)
rows = ["| $\\kappa$ | $\\lvert\\lambda\\rvert$ | rms $\\dot s_t$ (rad/s) | ORDER 0 | KF-true "
        "(mean ± s.d. over seeds) | KF-true, steady state | error correlation |",
        "|---:|---:|---:|---:|---:|---:|---:|"]
rows += [f"| {k:g} | {v[5]:.5f} | {v[4]:.2f} | {v[0] * 1e4:.2f} | {v[1] * 1e4:.2f} ± "
         f"{v[2] * 1e4:.2f} | {v[3] * 1e4:.2f} | {v[6]:.2f} |" for k, v in by_spring.items()]
display(Markdown("Position MSE in units of $10^{-4}$ rad²\n\n" + "\n".join(rows)))
kf_mean, kf_steady, kf_corr = ([by_spring[k][i] for k in SPRINGS] for i in (1, 3, 6))
assert all(a > b for a, b in zip(kf_steady, kf_steady[1:]))        # falls with the stiffness
assert all(a > b for a, b in zip(kf_corr, kf_corr[1:]))            # and so does the correlation
assert kf_mean[SPRINGS.index(24.0)] < 0.85 * kf_mean[SPRINGS.index(3.0)]
assert max(v[0] for v in by_spring.values()) < 1.05 * min(v[0] for v in by_spring.values())
# the values the text quotes, as the table rounds them
assert [f"{by_spring[k][1] * 1e4:.2f}" for k in (3.0, 24.0)] == ["1.49", "1.14"]
assert [f"{by_spring[k][3] * 1e4:.2f}" for k in (3.0, 24.0)] == ["1.41", "1.07"]
assert [f"{by_spring[k][6]:.2f}" for k in (3.0, 24.0)] == ["0.62", "0.33"]
assert round(by_spring[24.0][5] ** 400) == 7  # the growth of the oscillation over 400 steps

# %% [markdown]
# A stiffer spring does not make the mass harder to track; KF-true's error *falls*, from about
# 1.5e-4 at $\kappa = 3$ to about 1.14e-4 at $\kappa = 24$ (mean over three seeds), and the
# steady-state variance of the filter falls in step (1.41e-4 to 1.07e-4). The spring's pull is
# deterministic: a filter that knows $\kappa$ predicts it exactly, however fast the mass moves,
# and what it cannot predict, the random kicks $w_t$, does not change with $\kappa$. The spring
# even helps: it pulls the velocity error against the position error, so the two errors are
# less correlated (from 0.62 at $\kappa = 3$ to 0.33 at $\kappa = 24$) and add up less when the
# next position is predicted, $P_{t \mid t-1}^{11} = P_{t-1 \mid t-1}^{11} + 2\Delta t\,
# P_{t-1 \mid t-1}^{12} + \Delta t^2 P_{t-1 \mid t-1}^{22} + Q^{11}$. ORDER 0 does not use the dynamics, and its error stays
# where the spike counts put it.
#
# > For $\kappa > \zeta/\Delta t = 5$ the Euler step adds more energy than the damping removes:
# > $|\lambda| > 1$, and the oscillation grows instead of decaying (at $\kappa = 24$ by a factor
# > of about 7 over 400 steps, so that the mass sweeps around the whole ring). The filter does
# > not mind; a learned model would see positions on the whole ring.
#
# ## The question for the rest of the book
#
# The two learned filters mark the scale on which the poster's models are placed: KF-1
# (5.9e-4 here, 5.8e-4 on the poster) at the first-order end, a filter that knows where the
# mass is but not where it is going, and KF-2 (1.5e-4) at the second-order end, a filter that
# has found the velocity that no neuron reports. The error places a model on this scale; it
# does not by itself say which order of dynamics the model has learned. That is decided by the
# lag and velocity probes of {doc}`refh_dynamics` and by the fraction $f_{\text{gap}}$ of the
# KF-1-to-KF-2 gap that the model closes ({doc}`scorecard`). On the poster's Table 1 the TRBM (6.0e-4) sits
# at KF-1, while the rEFH (3.3e-4), trained without backpropagation through time, comes close
# to the RTRBM (3.1e-4), which needs it; the rVAE (5.3e-4) is only a little better than KF-1.

# %% tags=["remove-cell"]
# The poster's values quoted in the text above.
assert (TABLE_1["TRBM"], TABLE_1["KF-1"], TABLE_1["rVAE"]) == (6.0e-4, 5.8e-4, 5.3e-4)
assert (TABLE_1["rEFH"], TABLE_1["RTRBM"]) == (3.3e-4, 3.1e-4)

# %% [markdown]
# So the rest of the book asks: **which models can learn second-order dynamics from
# position-only observations, and can they do it without backpropagation through time?**
#
# ## Summary
#
# - The mass on a spring is a linear system $z_{t+1} = A z_t + w_t$ with a period of 162 steps;
#   its forward-Euler step decays 2.5 times more slowly than the continuous system.
# - Fifteen Poisson neurons with Gaussian tuning on a ring report only the position. Because
#   their tuning curves sum to a constant, the counts reduce to the circular centre of mass
#   $\bar s_t$ and its variance $\sigma_{\text{tc}}^2 / \sum_i y_t^i$; ORDER 0's error matches
#   that variance count by count.
# - A Kalman filter on $\bar s_t$ (KF-true) is therefore optimal as far as the Gaussian
#   likelihood holds, up to the nearest-image choice on the ring. On the ring it wraps the
#   innovation, never the state; the page's filter reproduces `tlr.filters.kalman_filter`
#   exactly.
# - Against ORDER 0 at 11.9e-4 rad², KF-1 (5.9e-4) is a fitted first-order filter with constant
#   $R$ and KF-2 (1.5e-4) a learned second-order one, close to KF-true (1.4e-4). KF-1 lags the
#   mass by about half a step; KF-2 and KF-true do not.
# - Stopped at Makin's cap of 50 EM iterations, our KF-2 is at about 1.8e-4; the poster's
#   2.2e-4 is what the same fit reaches after 30–40 iterations: a plausible reading of that
#   row, not a proven one.
# - A stiffer spring lowers KF-true's error (1.5e-4 at $\kappa = 3$, 1.14e-4 at $\kappa = 24$):
#   the dynamics are predictable, only the noise is not.

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
from tlr.filters import LDSParams

data = test_data(preset, SEED)  # the chapter's test set
true_params = kf_true_params(lti)  # KF-true's A, C, Q and flat prior

# %% [markdown]
# ```{exercise} The circular centre of mass by hand
# :label: lti-ppc-com
# :nonumber:
#
# **★ · 10 min · auto-graded**
#
# Write `circular_com(y, s_min, spacing)`, the circular centre of mass $\bar s$ of the responses
# `y` (shape `(..., N)`, at least one spike each) of $N$ neurons whose preferred positions
# $\mu_i = s_{\min} + i\,\Delta\mu$ lie on a ring of circumference $N\Delta\mu$, in one
# vectorised expression, with no loop over rows and no `torch.roll`. Index every neuron by its
# signed distance from the most active neuron $i^\ast$ around the ring,
# $d_i = \big((i - i^\ast + \lfloor N/2 \rfloor) \bmod N\big) - \lfloor N/2 \rfloor$, so that
# $\bar s = \mu_{i^\ast} + \Delta\mu \sum_i d_i\, y^i / \sum_i y^i$, and wrap the result into
# $[s_{\min}, s_{\min} + N\Delta\mu)$. Do not call `center_of_mass` or the page's
# `com_by_shifting`: the check compares your function with the library.
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
    i_star = y.argmax(-1, keepdim=True)                        # the most active neuron
    d = torch.remainder(torch.arange(N) - i_star + N // 2, N) - N // 2  # distance from i_star
    s_hat = s_min + spacing * (i_star[..., 0] + (d * y).sum(-1) / y.sum(-1))
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
# The page's `kalman_step` works for any $C$. Write the filter for $C = [1, 0]$ without it and
# without a matrix inverse, in one loop over time:
# `ring_kalman_filter(s_obs, R, A, Q, period, mu0, P0, wrap_state=False)` takes the
# centre-of-mass observations `s_obs` and their variances `R` (both `(T, B)`, as returned by
# `centred_observations`), the dynamics `A`, `Q`, the ring's circumference and the prior
# `mu0`, `P0` of the first state ($\mu_{1 \mid 0}$, $P_{1 \mid 0}$), and returns the filtered
# means $\mu_{t \mid t}$, shape `(T, B, 2)`. With $C = [1, 0]$ the gain is a column of
# $P_{t \mid t-1}$ divided by a number. At the first step there is no prediction (use the
# prior) and the innovation is not wrapped; from the second step on it is. A step with
# `R = inf` (no spikes) must make no update. With `kf_true_params(lti)` your filter must
# reproduce `kf_states`, the library's KF-true.
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
def ring_kalman_filter(s_obs, R, A, Q, period, mu0, P0, wrap_state=False):
    """Kalman filter of [position, velocity] from ring-valued positions s_obs (T, B)."""
    # BEGIN SOLUTION
    T, B = s_obs.shape
    mu, P = mu0.expand(B, 2).clone(), P0.expand(B, 2, 2).clone()
    means = []
    for t in range(T):
        if t > 0:                                              # predict
            mu, P = mu @ A.T, A @ P @ A.T + Q
        ds = s_obs[t] - mu[:, 0]                               # innovation, C = [1, 0]
        if t > 0:
            ds = wrap_error(ds, period)                        # the nearest image of s_obs[t]
        K = P[:, :, 0] / (P[:, 0, 0] + R[t])[:, None]          # (B, 2); 0 where R is inf
        mu = mu + K * ds[:, None]
        P = P - K[:, :, None] * P[:, None, 0, :]               # (I - K C) P
        if wrap_state:
            mu = torch.stack([wrap_error(mu[:, 0], period), mu[:, 1]], -1)
        means.append(mu)
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
assert 1.2 < mse_state[True] / mse_state[False] < 1.3  # "about a quarter" worse

# %% [markdown]
# Wrapping the state makes KF-true worse, by about a quarter on this test set. When a
# trajectory crosses the seam, the wrapped position
# jumps by $L = 2.24$ rad while the velocity does not. The dynamics then act on the jumped
# position: the spring term $-\frac{\kappa}{m}\Delta t\,s_t$ of $A$ changes sign and pushes the
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
# KF-1 is the model of the section "Learning the dynamics" with $n_z = 1$:
# $z_{t+1} = A z_t + w_t$, $w_t \sim \mathcal{N}(0, Q)$, and
# $\bar s_t = C z_t + \epsilon_t$, $\epsilon_t \sim \mathcal{N}(0, R)$, where $A$, $C$, $Q$
# and $R$ are numbers (the arguments `a`, `c`, `q`, `r` below). With a constant $R$ its
# covariance pass does not depend on the data, and it converges: after a short transient KF-1
# is $\mu_{t \mid t} = A \mu_{t-1 \mid t-1} + K\, \operatorname{wrap}(\bar s_t - C A\,
# \mu_{t-1 \mid t-1})$ with one constant gain $K$.
#
# 1. Write `steady_state_gain(a, c, q, r)`. Solve the fixed point of
#    $P_{t \mid t-1} = A^2 P_{t-1 \mid t-1} + Q$,
#    $P_{t \mid t} = P_{t \mid t-1} R / (C^2 P_{t \mid t-1} + R)$ for the steady-state
#    predicted variance $P_{t \mid t-1}$ in closed form (it is a quadratic equation), and
#    return $K = P_{t \mid t-1} C / (C^2 P_{t \mid t-1} + R)$.
# 2. Write `constant_gain_filter(s_obs, a, c, K, mu0, period)` that returns the position
#    estimates $C \mu_{t \mid t}$, shape `(T, B)`, starting from
#    $\mu_{1 \mid 1} = \mu_{1 \mid 0} + K(\bar s_1 - C \mu_{1 \mid 0})$, where
#    $\mu_{1 \mid 0}$ is `mu0` (no wrapping at the first step).
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
    """Steady-state Kalman gain of the scalar model z' = a z + w (var q), s̄ = c z + ε (var r)."""
    # BEGIN SOLUTION
    # p = a² p r / (c² p + r) + q  ⇔  c² p² + (r (1 - a²) - q c²) p - q r = 0 (p: predicted)
    b = r * (1 - a * a) - q * c * c
    p_pred = (-b + math.sqrt(b * b + 4 * c * c * q * r)) / (2 * c * c)  # the positive root
    return p_pred * c / (c * c * p_pred + r)
    # END SOLUTION


def constant_gain_filter(s_obs, a, c, K, mu0, period):
    """Positions c μ_t (T, B) of the constant-gain filter μ_t = a μ_{t-1} + K wrap(innovation)."""
    # BEGIN SOLUTION
    mu = torch.full(s_obs.shape[1:], float(mu0), dtype=torch.float64)
    out = []
    for t in range(s_obs.shape[0]):
        if t > 0:
            mu = a * mu
        ds = s_obs[t] - c * mu
        if t > 0:
            ds = wrap_error(ds, period)
        mu = mu + K * ds
        out.append(c * mu)
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
print(f"A = {a1:.4f}, C = {c1:.3f}, Q = {q1:.2e}, R = {r1:.2e}: steady-state gain K = {K1:.3f}")
assert abs(K1 - 2 / 3) < 0.05 and 0.99 < a1 < 1  # as the text below says
print(f"max |constant gain - KF-1| after 50 steps: {(s_const - s_kf1)[50:].abs().max():.1e} rad; "
      "test MSE from step 50 on: "
      f"{torus_mse(s_const[50:], data.position[50:], ppc.period):.4e} and "
      f"{torus_mse(s_kf1[50:], data.position[50:], ppc.period):.4e} rad²")

# %% [markdown]
# So KF-1 is, in effect, an exponential moving average of the centre of mass with a gain of
# about 2/3, whose previous estimate is slightly shrunk towards zero by $A < 1$ (these numbers
# are those of the 8-trajectory fit; the chapter's KF-1, fitted on all 40 training trajectories,
# has its own). A single number carries everything it learned about the dynamics, which is why
# it lags behind the moving mass.
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
# (1.53e-4 in this chapter's table, 1.49e-4 in the saved run of seed 0 at the `paper`
# tolerance) stays above KF-true's (1.42e-4). Name two
# differences between the two filters that could explain the gap, and an experiment with the
# library that measures one of them.
# ````
#
# ````{solution} lti-ppc-kf2-gap
# :class: dropdown
#
# - **A constant $R$.** KF-2 assumes the same observation noise at every step, while KF-true uses
#   $R_t = \sigma_{\text{tc}}^2 / \sum_i y_t^i$, which changes with each step's gain. A filter that
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
# First predict the slopes of $\log \mathrm{MSE}$ against $\log \bar g$, where $\bar g$ is the
# mean gain. For ORDER 0 use the variance $\sigma_{\text{tc}}^2 / \sum_i y_t^i$ derived above.
# For KF-true think of the steady-state Riccati equation: with the noise mainly on the
# velocity, the position is nearly a double integrator of white noise. How does its
# steady-state position variance grow with the observation variance $R$?
#
# Then measure. Write `mse_vs_gain(gains, n_traj=4, T=1000, seed=1)` that returns a dict
# `{"ORDER 0": [...], "KF-true": [...]}` with the torus MSE of both estimates on data simulated
# with a mean gain $\bar g$ (a gain drawn from $[0.8\bar g, 1.2\bar g]$ at each step, as
# `explore` does), and
# `loglog_slope(x, y)`, the least-squares slope of $\log y$ against $\log x$. Compare the
# measured slopes over gains 4 to 64 with your predictions: does the filter's advantage over
# ORDER 0 grow or shrink as the gain grows?
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
# R = σ_tc² / (2.48 ḡ), from kalman_filter's covariance pass.
flat_sum = math.sqrt(2 * math.pi) * ppc.tuning_std / ppc.spacing       # Σ_i f_i, as above
steady = [kalman_filter(true_params._replace(R=torch.tensor([[ppc.tuning_std**2 / (flat_sum * g)]],
                                                            dtype=torch.float64),
                                             init_cov=torch.eye(2, dtype=torch.float64)),
                        torch.zeros(3000, 1, 1)).covs[-1, 0, 0, 0].item() for g in gains]
print(f"steady-state Riccati prediction for KF-true: slope {loglog_slope(gains, steady):+.2f}")
# as the text below says: ORDER 0 a little steeper than -1, KF-true as its steady state predicts
assert loglog_slope(gains, by_gain["ORDER 0"]) < -1
assert abs(loglog_slope(gains, by_gain["KF-true"]) - loglog_slope(gains, steady)) < 0.05

# %% [markdown]
# The predictions. ORDER 0's variance $\sigma_{\text{tc}}^2 / \sum_i y_t^i$ is inversely
# proportional to the gain, since $\mathbb{E}\sum_i y_t^i \approx 2.48\,\bar g$: a slope of
# $-1$. For a double integrator of white noise the steady-state position variance grows like
# $R^{3/4}$ with the observation variance $R$, and $R \propto 1/\bar g$: a slope of $-3/4$.
#
# The measurement agrees. ORDER 0 falls as $1/\bar g$, slightly faster at low gain, where a
# step with few spikes has a variance $\sigma_{\text{tc}}^2/\sum_i y_t^i$ above
# $\sigma_{\text{tc}}^2/\mathbb{E}\sum_i y_t^i$. KF-true falls more slowly, close to the
# $\bar g^{-3/4}$ of the double integrator, and its steady-state covariance predicts the
# measured slope. The filter's advantage over ORDER 0 therefore shrinks as the gain grows and is
# largest at low gain: the fewer the spikes, the more a model of the dynamics is worth.
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


# %% [markdown]
# ## References
#
# - Abdulsalam, A. & Makin, J. G. (2023). Learning recurrent models with temporally local
#   rules. Poster, ICML 2023 workshop "Localized Learning" (LLW).
#   https://openreview.net/forum?id=pamVPX8p18
# - Ghahramani, Z. & Hinton, G. E. (1996). Parameter estimation for linear dynamical systems.
#   Technical report CRG-TR-96-2, Department of Computer Science, University of Toronto.
# - Ma, W. J., Beck, J. M., Latham, P. E. & Pouget, A. (2006). Bayesian inference with
#   probabilistic population codes. *Nature Neuroscience* 9(11), 1432–1438.
# - Makin, J. G., Dichter, B. K. & Sabes, P. N. (2015). Learning to estimate dynamical state
#   with probabilistic population codes. *PLoS Computational Biology* 11(11), e1004554.
# - Shumway, R. H. & Stoffer, D. S. (1982). An approach to time series smoothing and forecasting
#   using the EM algorithm. *Journal of Time Series Analysis* 3(4), 253–264.
