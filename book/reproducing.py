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
# # Reproducing the tables
#
# Every table in this book comes from runs of one command, `python -m tlr run`, each of which
# trains and scores some models on one experiment with one seed and writes a JSON file. A
# table with error bars needs many such runs: models × seeds × settings. This chapter shows
# how to launch them as one **sweep**, on a laptop, on Colab or on a SLURM cluster, and how to
# turn a folder of run files into a table of means with confidence intervals.
#
# **What you will learn**
#
# - how a grid of experiment × models × seeds × settings expands into runs, and how to run it
#   with `python -m tlr sweep` (local processes or a SLURM job array, through
#   [submitit](https://github.com/facebookincubator/submitit));
# - how `python -m tlr summarize` aggregates the run files: mean, standard deviation and the
#   95 % $t$-interval over seeds, per model and setting;
# - the poster's Table 1 over every saved seed, with intervals, and what one seed of Table 2
#   can and cannot say;
# - how to decide whether two models differ, with a paired comparison over seeds;
# - what a full reproduction costs on a CPU.
#
# **Prerequisites.** The experiments of {doc}`lti_ppc` and {doc}`balls` (what a run computes);
# a confidence interval for a mean. The verdicts on the poster's numbers are in
# {doc}`scorecard`; this chapter is about how the numbers are made.
#
# **Run time.** About half a minute on a CPU: one small live sweep (four runs of the quick
# preset); everything else is read from the saved runs through `tlr.results`.

# %% tags=["remove-input"]
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "tlr[sweep] @ git+https://github.com/tlr-book/tlr"], check=True)

# %% tags=["exercise-setup"]
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from tlr.provenance import short_command
from tlr import results
from tlr.poster import TABLE_1, TABLE_2
from tlr.sweep import (Sweep, format_markdown, grid_path, load_grid, plot_summary, run_sweep,
                       summarize, summary_rows, t_quantile)

T_START = time.perf_counter()
plt.rcParams["figure.dpi"] = 110

# %% [markdown]
# ## One run, one file
#
# A run is one experiment, one preset, one seed and any number of models. From a shell:
#
# ```bash
# python -m tlr run ppc --preset paper --models "KF-1,rEFH" --seed 3 --json run.json
# ```
#
# The file holds the score of each model (`results`), what the chapters plot (`details`), the
# settings changed from the preset (`overrides`) and the `provenance`: the commit, the
# versions, the device and threads, the command and the wall time. Here is one of the saved
# Table 1 runs, without its details:

# %%
name = results.available("ppc/seeds_3_4/*rEFH_seed3*")[0]
run = results.load(name)
shown = {k: v for k, v in run.items() if k != "details"}
# the output path is the machine's own: shorten it
shown["provenance"] = {**run["provenance"], "command": short_command(run["provenance"]["command"])}
print(name)
print(json.dumps(shown, indent=1, ensure_ascii=False))

# %% [markdown]
# ## A sweep: a grid of runs
#
# A sweep crosses an experiment's models, seeds and settings (each setting a set of
# `--set KEY=VALUE` overrides of the preset) and makes each combination one run with one
# model, so that a crashed or diverged run costs only itself and a finished run is never
# redone. The grids behind the book's tables ship with `tlr` and are named: `table1`,
# `table2`, `dynamics` and `hidden`. Table 1's:

# %%
print(grid_path("table1").read_text())
table1_grid = load_grid("table1")
print(f"{len(table1_grid.runs())} runs: {len(table1_grid.models)} models × "
      f"{len(table1_grid.seeds)} seeds × {len(table1_grid.settings())} setting")

# %% [markdown]
# A small sweep runs live below: ORDER 0 and KF-1 on the quick preset, two seeds, as two local
# processes at a time. It is the same call as
#
# ```bash
# python -m tlr sweep ppc --preset quick --models "ORDER 0,KF-1" --seeds 0,1 \
#     --executor local --jobs 2 --out DIR
# ```

# %%
out = Path(tempfile.mkdtemp(prefix="tlr-sweep-"))
small = Sweep("ppc", "quick", models=("ORDER 0", "KF-1"), seeds=(0, 1))
t0 = time.perf_counter()
manifest = run_sweep(small, out, "local", jobs=2, progress=False)  # no widget in the page
print(f"{manifest['counts']} in {time.perf_counter() - t0:.0f} s")
print(sorted(p.name for p in out.glob("*.json")))

# %% [markdown]
# The folder holds one JSON per run, named after its model, seed and setting, and the
# manifest `sweep.json` with each run's status. Running the same command again runs nothing:

# %%
t0 = time.perf_counter()
again = run_sweep(small, out, "local", jobs=2, progress=False)
print(f"ran {len(again['ran'])} runs in {time.perf_counter() - t0:.1f} s")
assert again["ran"] == [] and again["counts"]["done"] == 4

# %% [markdown]
# ### Where to run it
#
# | where | command | notes |
# |---|---|---|
# | a laptop or workstation | `python -m tlr sweep --grid table1 --executor local --jobs 4 --out DIR` | one process per run, `--jobs` at a time; `--threads` per process |
# | Colab (GPU runtime) | `!pip install "tlr[sweep] @ git+https://github.com/tlr-book/tlr"` then the line above with `--device auto --jobs 1` | the grids ship with the package; keep `DIR` on Google Drive to resume after a disconnect |
# | a SLURM cluster | `python -m tlr sweep --grid table1 --executor slurm --partition gpu --gpus 1 --time 120 --array-parallelism 20 --out DIR` | one job array; submitit writes the `sbatch` script into `DIR/logs` |
# | anywhere | `make reproduce` | Tables 1 and 2 on this machine, then their summary |
#
# A run that diverges is written with its model under `"failed"` and marked failed in the
# manifest; the sweep carries on and exits with status 1 at the end. The same command retries
# the failed runs.

# %% [markdown]
# ## From runs to a table
#
# `summarize` groups run files by experiment, preset, setting and model and reports, over the
# seeds, the mean $\bar m$, the standard deviation $s$ and the 95 % interval of the mean,
#
# $$\bar m \pm t_{0.975,\,n-1}\, \frac{s}{\sqrt n},$$
#
# with $n$ the number of seeds and $t_{0.975,\,n-1}$ the quantile of Student's $t$ with
# $n - 1$ degrees of freedom. Two seeds give an interval $t_{0.975,1} = 12.7$ standard
# errors wide on each side; five seeds, 2.78. On the small sweep:

# %%
small_summary = summarize(out)
display(Markdown(format_markdown(small_summary)))

# %% [markdown]
# The same from a shell: `python -m tlr summarize DIR --json summary.json --markdown
# summary.md`. The interval is written in the page below and checked against the library's:

# %%
def interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95 % t-interval (lo, hi) of the mean of ``values`` (two or more)."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


for row in small_summary["experiments"]["ppc"]:
    mean, lo, hi = interval(row["values"])
    assert math.isclose(mean, row["mean"]) and math.isclose(lo, row["ci95"][0])
    assert math.isclose(hi, row["ci95"][1])
print("interval() equals summarize()'s on every row")

# %% [markdown]
# ## Table 1 over every saved seed
#
# The saved runs of the `paper` preset (`results/ppc`, shipped with `tlr`) hold several files
# per seed: the runs made one command per group of models, and the runs of the `table1` grid
# for the later seeds. `summarize` reads them all. A model scored in two files of one seed
# (KF-1 is fitted next to the rEFH and next to the VAEs) must have the same score in both: a
# seed fixes the data, and `summarize` warns if the two differ.

# %%
def paper_rows(experiment: str, metric: str = "mse") -> list[dict]:
    """The rows of the saved paper-preset runs with default settings. Times of one seed may
    differ between two files (KF-1 is fitted in two), scores may not."""
    return list(summary_rows(results.root() / experiment, experiment, preset="paper",
                             metric=metric, agree=metric == "mse").values())


table1 = [r for r in paper_rows("ppc") if r["model"] in table1_grid.models]  # the poster's rows


def fmt(x: float | None, scale: float = 1e4) -> str:
    return "—" if x is None else f"{x * scale:.2f}"


rows = ["| model | seeds | mean (×10⁻⁴) | sd | 95 % interval | poster | poster inside? |",
        "|---|---|---:|---:|---|---:|---|"]
for r in table1:
    ci = "—" if r["ci95"] is None else f"[{fmt(r['ci95'][0])}, {fmt(r['ci95'][1])}]"
    poster = TABLE_1.get(r["model"])
    inside = ("—" if poster is None or r["ci95"] is None
              else "yes" if r["ci95"][0] <= poster <= r["ci95"][1] else "no")
    rows.append(f"| {r['model']} | {','.join(map(str, r['seeds']))} | {fmt(r['mean'])} | "
                f"{fmt(r['sd'])} | {ci} | {fmt(poster)} | {inside} |")
display(Markdown("\n".join(rows)))

# %%
fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
plot_summary({"metric": "position MSE (rad²)", "experiments": {"Table 1": table1}},
             "Table 1", ax=ax)
labels = [t.get_text() for t in ax.get_yticklabels()]
for y, model in enumerate(labels):
    if model in TABLE_1:
        ax.plot(TABLE_1[model], y, "x", color="C3", ms=8, mew=2,
                label="poster" if y == labels.index(next(m for m in labels if m in TABLE_1))
                else None)
ax.legend(loc="lower right", fontsize=8)
ax.set_title("Table 1, paper preset: seeds (grey), mean and 95 % interval (blue), poster (×)",
             fontsize=9);

# %% [markdown]
# Sorted by their means, the rows fall into groups whose intervals overlap; between groups the
# intervals are disjoint, so the seeds cannot reorder them:

# %%
ranked = sorted((r for r in table1 if r["ci95"] is not None), key=lambda r: r["mean"])
groups = [[ranked[0]]]
for r in ranked[1:]:
    if r["ci95"][0] <= max(o["ci95"][1] for o in groups[-1]):
        groups[-1].append(r)
    else:
        groups.append([r])
display(Markdown(" < ".join("{" + ", ".join(r["model"] for r in g) + "}" for g in groups)
                 + " (seeds with an interval; rows of one seed are left out)"))

# %% [markdown]
# Whether the poster's number falls inside our interval is not the scorecard's rule (a band of
# ±15 % around the poster's number, since the poster reports no spread); {doc}`scorecard`
# states each verdict.
#
# ### Do two models differ?
#
# Two intervals that overlap do not show that two models are equal, and the seeds of two
# models are not independent samples: the same seed gives both the same test trajectories.
# The right comparison is **paired**: the interval of the per-seed difference. For the rEFH,
# trained with a local rule, and the RTRBM, trained with BPTT:

# %%
def paired(a: str, b: str, rows: list[dict]) -> dict:
    """Per-seed ratio b/a and the 95 % interval of the mean difference b - a (common seeds)."""
    va, vb = ({s: v for s, v in zip(r["seeds"], r["values"], strict=True)}
              for name in (a, b) for r in rows if r["model"] == name)
    seeds = sorted(set(va) & set(vb))
    diff = [vb[s] - va[s] for s in seeds]
    mean, lo, hi = interval(diff)
    return {"seeds": seeds, "ratio": [vb[s] / va[s] for s in seeds],
            "mean": mean, "ci95": (lo, hi)}


cmp = paired("rEFH", "RTRBM", table1)
display(Markdown(
    f"RTRBM − rEFH over seeds {cmp['seeds']}: mean {fmt(cmp['mean'])} × 10⁻⁴, 95 % interval "
    f"[{fmt(cmp['ci95'][0])}, {fmt(cmp['ci95'][1])}] × 10⁻⁴; RTRBM / rEFH per seed: "
    + ", ".join(f"{x:.2f}" for x in cmp["ratio"]) + "."))

# %% [markdown]
# ## Table 2: one seed
#
# The bouncing-ball runs cost hours per harmonium on a CPU ({doc}`balls`), and the saved
# `paper` runs have one seed each. One seed gives a number and no interval: the table below
# cannot say how much of a difference between two rows is the seed.

# %%
table2 = paper_rows("balls")
display(Markdown("\n".join(
    ["| model | seeds | MSE per pixel | × ORDER 0 | poster |", "|---|---|---:|---:|---:|"]
    + [f"| {r['model']} | {','.join(map(str, r['seeds']))} | {r['mean']:.5f} | "
       f"{r['mean'] / next(o['mean'] for o in table2 if o['model'] == 'ORDER 0'):.3f} | "
       f"{TABLE_2.get(r['model'], '—')} |" for r in table2])))

# %% [markdown]
# ## What a reproduction costs
#
# Every run file records its training time. Summed over the saved Table 1 runs, per model and
# seed (one CPU thread each):

# %%
train = {r["model"]: r for r in paper_rows("ppc", "train_s") if r["model"] in table1_grid.models}
rows = ["| model | seeds | training time per seed (min) |", "|---|---|---:|"]
rows += [f"| {m} | {len(r['values'])} | {statistics.median(r['values']) / 60:.1f} (median) |"
         for m, r in train.items()]
per_seed = sum(statistics.median(r["values"]) for r in train.values())
balls_h = sum(statistics.median(r["values"]) for r in paper_rows("balls", "train_s")) / 3600
display(Markdown("\n".join(rows) + f"\n\nOne seed of Table 1, every model: "
                 f"**{per_seed / 60:.0f} CPU minutes**; five seeds: "
                 f"{5 * per_seed / 3600:.1f} CPU hours. One seed of Table 2: "
                 f"**{balls_h:.1f} CPU hours**; the `table2` grid's three seeds: "
                 f"{3 * balls_h:.1f} CPU hours."))

# %% [markdown]
# The sequence models dominate: the TRBM and RTRBM pay for their sampling and their BPTT pass
# at every step, and the bouncing-ball harmoniums for 102 000 updates of 25 Gibbs steps each.
# Runs are independent, so `--jobs N` divides the wall time by up to `N` on `N` cores, and a
# SLURM array by the number of nodes it gets.

# %% [markdown]
# ## Summary
#
# - A run is one `python -m tlr run`: one experiment, preset and seed, its models' scores and
#   its provenance in one JSON file. A sweep is a grid of such runs, one model each.
# - `python -m tlr sweep` runs a grid on local processes or a SLURM array through submitit,
#   skips what is done and retries what failed; the book's grids ship with `tlr` by name.
# - `python -m tlr summarize` turns a folder of runs into per-model means, standard
#   deviations and 95 % $t$-intervals; with few seeds the interval is wide by construction.
# - Compare models over the same seeds with a paired interval, not by overlapping intervals.
# - The poster's Table 1 is cheap enough to rerun on a CPU; Table 2 costs hours per seed.

# %% [markdown]
# ## Exercises
#
# Three exercises, each with its level (★ routine, ★★ needs the chapter's derivations, ★★★
# open-ended) and a time estimate. The coding exercises are checked automatically: in the
# book, the check cell under each exercise runs the hidden solution; in the student notebook
# made from this chapter it runs your code and prints ✓ or ✗ with the reason.

# %%
from tlr.exercises import check

# %% [markdown]
# ```{exercise} A grid, counted
# :label: reproducing-grid
# :nonumber:
#
# **★ · 10 min · auto-graded**
#
# Write `mass_grid()`, returning a `tlr.sweep.Sweep` for the `ppc` experiment at the `paper`
# preset that runs the rEFH and KF-1 with seeds 0, 1 and 2 at the default dynamics and at the
# mass of the spring multiplied by 1/4, 1/2, 2 and 4 (the key is `lti.mass`; the default mass
# is 5). It should expand into 30 runs. Hint: `grid` is a tuple of blocks, each a mapping
# from a key to a list of values; `{}` is the preset unchanged.
# ```

# %% [markdown]
# ```{solution-start} reproducing-grid
# :class: dropdown
# ```

# %% tags=["solution"]
def mass_grid() -> Sweep:
    """rEFH and KF-1, seeds 0-2, the default mass and four multiples of it."""
    # BEGIN SOLUTION
    return Sweep("ppc", "paper", models=("rEFH", "KF-1"), seeds=(0, 1, 2),
                 grid=({}, {"lti.mass": [1.25, 2.5, 10, 20]}))
    # END SOLUTION


# %% [markdown]
# ```{solution-end}
# ```

# %% tags=["check"]
@check("reproducing-grid")
def _():
    grid = mass_grid()
    runs = grid.runs()
    assert len(runs) == 30, f"expected 30 runs, got {len(runs)}"
    masses = sorted({dict(r.overrides).get("lti.mass", "5") for r in runs}, key=float)
    assert [float(m) for m in masses] == [1.25, 2.5, 5, 10, 20], f"masses: {masses}"
    assert {r.model for r in runs} == {"rEFH", "KF-1"} and {r.preset for r in runs} == {"paper"}


# %% tags=["hidden-check", "remove-cell"]
@check("reproducing-grid", hidden=True)
def _():
    runs = mass_grid().runs()
    assert {r.seed for r in runs} == {0, 1, 2}
    assert sum(1 for r in runs if not r.overrides) == 6, "the defaults: 2 models x 3 seeds"


# %% [markdown]
# ```{exercise} How many seeds does a claim need?
# :label: reproducing-seeds
# :nonumber:
#
# **★★ · 20 min · auto-graded**
#
# Suppose the per-seed values of a model have standard deviation `sd`. Write
# `seeds_needed(sd, half_width)`, the smallest number of seeds $n \ge 2$ for which the 95 %
# interval of the mean, $t_{0.975,\,n-1}\, s/\sqrt n$, is at most `half_width` on each side
# (take $s$ = `sd`; use `t_quantile`). Then use it on the saved Table 1: how many seeds would
# pin the rEFH's mean to ±2 % of itself?
# ```

# %% [markdown]
# ```{solution-start} reproducing-seeds
# :class: dropdown
# ```

# %% tags=["solution"]
def seeds_needed(sd: float, half_width: float) -> int:
    """The smallest n >= 2 with t_{0.975, n-1} * sd / sqrt(n) <= half_width."""
    # BEGIN SOLUTION
    n = 2
    while t_quantile(n - 1) * sd / math.sqrt(n) > half_width:
        n += 1
    return n
    # END SOLUTION


# %%
refh = summary_rows(results.root() / "ppc", "ppc", preset="paper")["rEFH"]
print(f"rEFH: sd {refh['sd']:.2e} over {refh['n']} seeds -> "
      f"{seeds_needed(refh['sd'], 0.02 * refh['mean'])} seeds for ±2 % of the mean")

# %% [markdown]
# The interval shrinks like $1/\sqrt n$ once $t_{0.975,\,n-1}$ has settled near 2, so halving
# it takes four times as many seeds.
#
# ```{solution-end}
# ```

# %% tags=["check"]
@check("reproducing-seeds")
def _():
    assert seeds_needed(1.0, 10.0) == 2, "a generous width is met with two seeds"
    n = seeds_needed(1.0, 1.0)
    assert n == 7, f"sd 1, half-width 1: expected 7 seeds, got {n}"


# %% tags=["hidden-check", "remove-cell"]
@check("reproducing-seeds", hidden=True)
def _():
    for sd, hw in ((2.0, 0.5), (3e-5, 1e-5), (1.0, 0.3)):
        n = int(seeds_needed(sd, hw))
        assert t_quantile(n - 1) * sd / math.sqrt(n) <= hw, (sd, hw, n)
        assert n == 2 or t_quantile(n - 2) * sd / math.sqrt(n - 1) > hw, (sd, hw, n)


# %% [markdown]
# ```{exercise} A width rule for the hidden-unit sweep
# :label: reproducing-width-rule
# :nonumber:
#
# **★★★ · 2–4 h · not auto-graded**
#
# The `hidden` grid trains the rEFH with 15 to 960 hidden units, every width under the
# learning-rate schedule and length that the paper preset chose for 240 units. A wide model
# under a schedule tuned for a narrow one may plateau early, and the sweep would then measure
# the schedule, not the width. Propose one rule, stated before any test score is seen, that
# sets each width's learning rate and number of epochs from validation data, write it as grid
# blocks (one per width), and say what result would show that the width, not the schedule,
# limits the rEFH.
# ```

# %% [markdown]
# ````{solution} reproducing-width-rule
# :class: dropdown
#
# One defensible rule: for each width, run a short pilot (say a quarter of the paper length)
# at three learning-rate scales (×1/2, ×1, ×2 of the paper's schedule) on one seed, keep the
# scale with the lowest *validation* MSE (`ppc` runs record a validation curve), then train
# until the validation MSE has not improved by 1 % over the last quarter of the run, with a
# cap of four times the paper length. Each width becomes one block, e.g.
# `- {refh.n_hidden: [960], refh.optim.m0: ["25,6.25,25,25,6.25"], refh.n_epochs: [...]}`.
# The evidence that width is what limits the model: under this rule the test MSE falls
# monotonically with width until it levels off, and the level does not move when the cap on
# the length is raised; if instead the wide models' validation curves are still falling at
# the cap, the sweep is limited by compute, not width.
# ````

# %% tags=["hide-input"]
print(f"chapter executed in {time.perf_counter() - T_START:.0f} s")
