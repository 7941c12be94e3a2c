"""The learning-rate rule of the rEFH's sweeps, and the saved sweeps it reads.

A sweep that moves the rEFH away from where the ``paper`` preset's schedule was chosen (240
hidden units, the default oscillator) must not measure that schedule instead of the width or
the dynamics. The hidden-unit sweep (``sweeps/hidden_pilot.yaml``) therefore chooses the
rEFH's learning rate at every width by one rule, fixed before any test score was seen; the
dynamics sweep applies the same rule (``sweeps/dynamics_pilot.yaml``, then
``sweeps/dynamics_tuned.yaml``) wherever the rEFH under the paper schedule fails to beat KF-1
on every seed, to test whether the schedule is the reason:

1. seed 0 trains under Makin's schedule at learning-rate scales ×½, ×1 and ×2 of the paper's
   (the schedule's rate is 1/m0 per parameter group: every m0 times 2, 1 and ½);
2. the scale kept is the one with the lowest validation MSE at the end of training
   (:func:`val_score`: the mean of the last three points of the learning curve, epochs 80, 85
   and 90, on the 10 validation trajectories of :func:`tlr.experiments.ppc.val_data`); if it is
   at an edge of the scales tried, the next factor 2 that way is tried too, until it is not;
3. seeds 1 and 2 train at the kept scale. The length stays 90 epochs (the schedule divides the
   rate by 1.1 per epoch); a kept run whose validation MSE still falls by more than
   :data:`LATE_GAIN_LIMIT` from epoch 60 to 90 (:func:`late_gain`) is limited by its length.

::

    rows, files = saved_sweeps("ppc/hidden")
    point = apply_rule({"refh.n_hidden": "960"}, rows, files)
    point["kept"], point["rEFH"]["mean"]
"""

from __future__ import annotations

from collections.abc import Mapping

from tlr import results
from tlr.experiments.common import final_val
from tlr.experiments.ppc import PRESETS
from tlr.sweep import summarize

__all__ = ["PAPER_M0", "LATE_GAIN_LIMIT", "m0_of", "scale_of", "val_score", "keep",
           "late_gain", "setting_key", "saved_sweeps", "apply_rule"]

PAPER_M0: tuple[float, ...] = PRESETS["paper"].refh.optim.m0  # rate 1/m0 per parameter group
LATE_GAIN_LIMIT = 0.05  # validation still falling by more than this from epoch 60 to 90
M0_KEY = "refh.optim.m0"


def m0_of(scale: float) -> str:
    """The ``--set refh.optim.m0=...`` value that runs the paper schedule at ``scale``."""
    if not scale > 0:
        raise ValueError(f"a learning-rate scale must be > 0, got {scale!r}")
    return ",".join(f"{m / scale:g}" for m in PAPER_M0)


def scale_of(overrides: Mapping[str, str]) -> float:
    """The learning-rate scale of a run's overrides (no m0 override: ×1)."""
    m0 = overrides.get(M0_KEY)
    return 1.0 if m0 is None else PAPER_M0[0] / float(str(m0).split(",")[0])


def val_score(run: Mapping, model: str = "rEFH") -> float:
    """``model``'s validation MSE at the end of training: the mean of the last three points
    of its learning curve (``details[model]["curve"]`` of a run JSON)."""
    curve = run["details"][model]["curve"]
    if len(curve) < 3:
        raise ValueError(f"a learning curve of {len(curve)} points; the rule needs 3")
    return final_val(curve)


def keep(pilot: Mapping[float, Mapping], model: str = "rEFH") -> float:
    """The scale whose run (``pilot``: scale -> seed-0 run JSON) has the lowest
    :func:`val_score`."""
    if not pilot:
        raise ValueError("no pilot runs to choose from")
    return min(pilot, key=lambda s: val_score(pilot[s], model))


def late_gain(run: Mapping, model: str = "rEFH", start: int = 60, end: int = 90) -> float:
    """Relative fall of the validation MSE from epoch ``start`` to epoch ``end``."""
    d = run["details"][model]
    at = dict(zip(d["epochs"], d["curve"], strict=True))
    if start not in at or end not in at:
        raise ValueError(f"the curve has no point at epoch {start} or {end} "
                         f"(epochs {d['epochs'][0]}...{d['epochs'][-1]})")
    return (at[start] - at[end]) / at[start]


def setting_key(overrides: Mapping) -> tuple:
    """Overrides as a sorted tuple of (key, value as text): how the saved rows are keyed."""
    return tuple(sorted((k, str(v)) for k, v in overrides.items()))


def saved_sweeps(*folders: str, model: str = "rEFH") -> tuple[dict, dict]:
    """The saved sweeps in ``results/<folder>``: :func:`tlr.sweep.summarize`'s rows by
    (overrides, model), and ``model``'s run files by (overrides, seed); overrides as sorted
    (key, value) tuples."""
    rows, files = {}, {}
    for folder in folders:
        for r in summarize(results.root() / folder)["experiments"].get("ppc", []):
            rows[setting_key(r["overrides"]), r["model"]] = r
        for name in results.available(f"{folder}/ppc_*"):
            run = results.load(name)
            if model in run.get("results", {}):
                files[setting_key(run["overrides"]), run["seed"]] = run
    return rows, files


def apply_rule(overrides: Mapping[str, str], rows: Mapping, files: Mapping,
               model: str = "rEFH", seed: int = 0) -> dict:
    """The rule at one point of a sweep (``overrides`` without the m0 key): the seed-0 runs at
    every scale found (``pilot``), the scale kept, its :func:`late_gain`, whether that gain
    flags the length (``length_limited``), whether the kept scale is still at an edge of the
    scales tried (``at_edge``: the rule is not finished there), and ``model``'s summary row
    over seeds at the kept scale (``None`` if that stage has not run)."""
    base = {k: v for k, v in overrides.items() if k != M0_KEY}
    point = setting_key(base)
    pilot = {scale_of(dict(k)): run for (k, s), run in files.items()
             if s == seed and tuple(kv for kv in k if kv[0] != M0_KEY) == point}
    if not pilot:
        raise KeyError(f"no seed-{seed} run of {model} at {dict(base) or 'the defaults'}")
    kept = keep(pilot, model)
    at = {**base, M0_KEY: m0_of(kept)} if kept != 1 else base
    row = rows.get((setting_key(at), model))
    if row is None and kept == 1:  # a ×1 run written with the paper's m0 spelled out
        row = rows.get((setting_key({**base, M0_KEY: m0_of(1.0)}), model))
    gain = late_gain(pilot[kept], model)
    return {"pilot": pilot, "kept": kept, "late_gain": gain,
            "length_limited": gain > LATE_GAIN_LIMIT,
            "at_edge": kept in (min(pilot), max(pilot)), model: row}
