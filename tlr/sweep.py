"""Sweeps: experiment x models x seeds x a grid of ``--set`` overrides, run through submitit.

A sweep expands into runs, and each run is exactly one ``python -m tlr run``: one experiment,
preset, model, seed and setting, run by :func:`tlr.cli.run_json`, writing that command's results
JSON (the same contract, with its own provenance) into the output folder. The runs go to
submitit (github.com/facebookincubator/submitit): ``LocalExecutor`` (processes on this machine,
``--jobs N`` at once), ``SlurmExecutor`` (one SLURM job array; submitit writes the sbatch
script) or ``DebugExecutor`` (in this process, one after another). This module expands grids,
names files and keeps the manifest; the scheduling is submitit's (or SLURM's).

Command line::

    python -m tlr sweep ppc --preset quick --models "ORDER 0,KF-1" --seeds 0,1 \\
        --set T_test=500 --set n_test=10 --set n_test=20 --executor local --jobs 2 --out DIR
    python -m tlr sweep --grid table2 --executor slurm --partition gpu --gpus 1 --device cuda \\
        --time 720 --array-parallelism 20 --out DIR
    python -m tlr summarize DIR --json summary.json --markdown summary.md

``--set KEY=V``: a key given once is fixed for every run; a key given several times is a grid
axis, and the axes are crossed (above: 2 settings, n_test 10 and 20, both with T_test 500).
Each value goes to :func:`tlr.experiments.common.apply_overrides` as written, so commas belong
to the value: ``--set harmonium.optim.m0=50,12.5,50,50,12.5`` is one tuple, never an axis.

Grid files (YAML, ``sweeps/*.yaml``; ``--grid FILE``, or ``--grid NAME`` for the grids shipped
with tlr: ``table1``, ``table2``, ``dynamics``, ``hidden``, so that an installed tlr without a
checkout, e.g. on Colab, runs them too)::

    experiment: ppc           # required
    preset: paper             # default: quick
    models: [rEFH, KF-1]      # default: every model of the experiment
    seeds: [0, 1, 2]          # default: [0]
    set:                      # optional: fixed overrides of every run
      em_max_iter: 500
    grid:                     # optional: axes KEY: [values], crossed
      refh.n_hidden: [60, 240]

``grid`` may also be a list of such blocks, expanded one after the other (their union, in
order, repeats dropped); ``{}`` is the preset unchanged::

    grid:
      - {}
      - lti.spring: [0.75, 12]
      - lti.mass: [1.25, 20]

An axis is always a list (``KEY: value`` without brackets is one fixed value). A value is a
scalar, or a list for a tuple-valued field: ``m0: [[50, 12.5, 50, 50, 12.5]]`` is an axis of one
tuple, as is ``m0: ["50,12.5,50,50,12.5"]`` (but ``m0: [50, 12.5]`` is an axis of two values).
Command-line ``--preset``, ``--models`` and ``--seeds`` replace the file's; ``--set`` keys are
added to every block and win over the file's.

The output folder holds:

* one JSON per run, ``{experiment}_{preset}_{model}_seed{seed}_{setting}_{hash}.json``, e.g.
  ``ppc_quick_ORDER-0_seed1_n_test=10_3c5e0a1b.json``: ``setting`` is a readable slug of the
  overrides (``defaults`` if none; cut at 40 characters) and ``hash`` the first 8 hex digits of
  the SHA-1 of the overrides as sorted JSON, so a run always gets the same name and two
  settings never share one;
* ``sweep.json``, the manifest: the sweep (experiment, preset, models, seeds, grid and the
  settings it expands to), the executor, and each run's file, status (``done``, ``failed``,
  ``running``, ``submitted`` or ``pending``), attempts and error;
* ``logs/``: submitit's pickles, sbatch scripts and each job's stdout and stderr.

One sweep per folder: another sweep into the same folder replaces ``sweep.json`` (the run files
stay, and :func:`summarize` still reads them).

Running the same command again skips the runs whose JSON is there and valid (the same run, a
finite metric, nothing under ``"failed"``) and runs the others, failed ones included. A run
whose training diverges (listed under ``"failed"`` in its JSON, as ``tlr run`` does) or that
crashes is marked failed in the manifest; the sweep carries on, and exits 1 at the end.

:func:`summarize` groups any run JSONs (a sweep's folder, or the saved ``results/``, whose files
hold several models each) by experiment, preset, overrides and model, and reports over seeds
n, mean, sd and the 95% t-interval mean ± t_{0.975, n-1} sd/√n (one seed: its value only).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
import re
import shlex
import sys
import time
import traceback
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlr.cli import UsageError, resolve_run, run_json

if TYPE_CHECKING:
    import argparse

    import matplotlib.axes
    import submitit

__all__ = ["Run", "Sweep", "grid_names", "grid_path", "load_grid", "set_axes", "run_one",
           "make_executor", "run_sweep", "t_quantile", "summarize", "summary_rows",
           "format_markdown",
           "plot_summary"]

MANIFEST = "sweep.json"
GRID_KEYS = ("experiment", "preset", "models", "seeds", "set", "grid")
_SLURM_ACTIVE = ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "READY",
                 "SUSPENDED")


def _raw(value: Any) -> str:
    """A YAML value as the raw text ``--set`` takes (a list: a comma-separated tuple)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ",".join(_raw(v) for v in value)
    return str(value)


def _slug(text: str) -> str:
    """``text`` as a file-name part: β spelled out (rVAE-β and rVAE must not share a name),
    anything else outside [A-Za-z0-9._=+-] a dash."""
    return re.sub(r"[^A-Za-z0-9._=+-]+", "-", text.replace("β", "beta")).strip("-")


@dataclass(frozen=True)
class Run:
    """One ``tlr run``: one experiment, preset, model, seed and setting."""

    experiment: str
    preset: str
    model: str
    seed: int
    overrides: tuple[tuple[str, str], ...] = ()  # (key, raw value), as --set gives them

    @property
    def setting(self) -> dict[str, str]:
        return dict(self.overrides)

    @property
    def file_name(self) -> str:
        digest = hashlib.sha1(json.dumps(self.setting, sort_keys=True).encode()).hexdigest()[:8]
        slug = "_".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in self.overrides) or "defaults"
        return (f"{self.experiment}_{self.preset}_{_slug(self.model)}_seed{self.seed}_"
                f"{_slug(slug)[:40]}_{digest}.json")

    def command(self, path: str | Path, threads: int = 1, device: str | None = None) -> str:
        """The ``python -m tlr run`` command line of this run."""
        argv = ["python", "-m", "tlr", "run", self.experiment, "--preset", self.preset,
                "--models", self.model, "--seed", str(self.seed)]
        for k, v in self.overrides:
            argv += ["--set", f"{k}={v}"]
        argv += ["--threads", str(threads)] + (["--device", device] if device else [])
        return shlex.join(argv + ["--json", str(path)])

    def finished(self, out: Any) -> bool:
        """Whether ``out`` (a results JSON) is this run, done: a finite metric, nothing failed."""
        try:
            mse = out["results"][self.model]["mse"]
            same = (out["experiment"], out["preset"], out["seed"], out.get("overrides", {})) == (
                self.experiment, self.preset, self.seed, self.setting)
        except (KeyError, TypeError):
            return False
        return same and not out.get("failed") and isinstance(mse, float) and math.isfinite(mse)


@dataclass(frozen=True)
class Sweep:
    """Experiment x models x seeds x settings (the grid: blocks of axes, see the docstring)."""

    experiment: str
    preset: str = "quick"
    models: tuple[str, ...] | None = None  # None: every model of the experiment
    seeds: tuple[int, ...] = (0,)
    grid: tuple[Mapping[str, Any], ...] = ({},)

    def settings(self) -> list[dict[str, str]]:
        """The settings, ``{key: raw value}``, block by block (each block's axes crossed)."""
        out: list[dict[str, str]] = []
        for block in self.grid:
            axes = [[_raw(v) for v in vals] if isinstance(vals, list) else [_raw(vals)]
                    for vals in block.values()]
            for combo in itertools.product(*axes):
                setting = dict(zip(block, combo, strict=True))
                if setting not in out:
                    out.append(setting)
        return out

    def runs(self) -> list[Run]:
        """Every run, settings x seeds x models; UsageError if a name or value is bad (devices
        are checked by each run, where it runs)."""
        from tlr.experiments import EXPERIMENTS

        if not self.seeds or min(self.seeds) < 0:
            raise UsageError(f"seeds must be one or more ints >= 0, got {list(self.seeds)}")
        models = self.models
        for setting in self.settings():
            try:
                _, _, models, _ = resolve_run(self.experiment, self.preset, self.models, 0,
                                              setting, threads=1, device="cpu")
            except UsageError as e:
                raise UsageError(f"{e} (setting {setting})" if setting else str(e)) from None
        models = EXPERIMENTS[self.experiment].MODELS if models is None else models
        return [Run(self.experiment, self.preset, m, seed, tuple(s.items()))
                for s in self.settings() for seed in self.seeds for m in models]

    def to_dict(self) -> dict:
        return {"experiment": self.experiment, "preset": self.preset,
                "models": None if self.models is None else list(self.models),
                "seeds": list(self.seeds), "grid": [dict(b) for b in self.grid],
                "settings": self.settings()}


def set_axes(pairs: Sequence[str]) -> dict[str, list[str]]:
    """``--set KEY=V`` pairs as axes ``{key: [values]}``: a repeated key adds a value."""
    axes: dict[str, list[str]] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"bad --set {pair!r}: expected KEY=VALUE")
        key, _, value = pair.partition("=")
        if value not in axes.setdefault(key, []):
            axes[key].append(value)
    return axes


def grid_names() -> list[str]:
    """The named grids shipped with tlr (the repository's ``sweeps/*.yaml``), e.g. ``table1``."""
    return sorted(p.stem for p in _grids_root().glob("*.yaml"))


def _grids_root() -> Path:
    """``tlr/_grids`` in a regular install, the repository's ``sweeps/`` in a checkout."""
    here = Path(__file__).resolve().parent
    return here / "_grids" if (here / "_grids").is_dir() else here.parent / "sweeps"


def grid_path(name: str | Path) -> Path:
    """A grid file: ``name`` itself if it exists, else the shipped grid of that name
    (``table1`` or ``table1.yaml``: :func:`grid_names`)."""
    p = Path(name)
    if p.is_file():
        return p
    shipped = _grids_root() / f"{p.name.removesuffix('.yaml')}.yaml"
    if len(p.parts) == 1 and shipped.is_file():
        return shipped
    raise UsageError(f"no grid file {str(name)!r}, and no shipped grid of that name "
                     f"(shipped: {', '.join(grid_names()) or 'none'})")


def load_grid(path: str | Path) -> Sweep:
    """The :class:`Sweep` of a YAML grid file or a shipped grid's name (schema: the module
    docstring; :func:`grid_path`)."""
    import yaml

    path = grid_path(path)
    try:
        spec = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as e:
        raise UsageError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(spec, dict) or "experiment" not in spec:
        raise UsageError(f"{path}: a grid is a YAML mapping with at least 'experiment'")
    unknown = sorted(set(spec) - set(GRID_KEYS))
    if unknown:
        raise UsageError(f"{path}: unknown key(s) {unknown}; valid: {', '.join(GRID_KEYS)}")
    models, seeds = spec.get("models"), spec.get("seeds", [0])
    if models is not None and not (isinstance(models, list) and models
                                   and all(isinstance(m, str) for m in models)):
        raise UsageError(f"{path}: models must be a list of model names, got {models!r}")
    if not (isinstance(seeds, list) and seeds and all(type(s) is int for s in seeds)):
        raise UsageError(f"{path}: seeds must be a list of ints, got {seeds!r}")
    grid, fixed = spec.get("grid") or [{}], spec.get("set") or {}
    blocks = [grid] if isinstance(grid, dict) else grid
    if not isinstance(fixed, dict) or not all(isinstance(b, dict) for b in blocks or [None]):
        raise UsageError(f"{path}: 'set' must be a mapping and 'grid' a mapping or a list of them")
    fixed_axes = {k: [v] for k, v in fixed.items()}
    return Sweep(spec["experiment"], spec.get("preset", "quick"),
                 None if models is None else tuple(models), tuple(seeds),
                 tuple({**fixed_axes, **(b or {})} for b in blocks))


def _write_json(path: Path, data: dict) -> None:
    """Write ``data`` to ``path`` atomically (never a half-written file to skip or summarize)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def run_one(run: Run, path: str, threads: int = 1, device: str | None = None) -> dict:
    """The job of one run: ``tlr run`` through :func:`tlr.cli.run_json`, its JSON written to
    ``path``. Returns ``{"status": "done" | "failed", "error": ...}``; never raises, so that one
    bad run does not stop the sweep (its traceback goes to the job's stderr)."""
    try:
        out = run_json(run.experiment, run.preset, [run.model], run.seed, run.setting,
                       threads=threads, device=device,
                       command=run.command(path, threads, device))
    except Exception as e:  # noqa: BLE001 - recorded in the manifest, the sweep goes on
        traceback.print_exc()
        return {"status": "failed", "error": f"{type(e).__name__}: {e}"}
    _write_json(Path(path), out)
    if out.get("failed"):
        return {"status": "failed", "error": out["failed"][run.model]}
    return {"status": "done", "error": None}


def make_executor(kind: str, folder: str | Path, *, threads: int = 1, time_min: int = 1440,
                  gpus: int | None = None, partition: str | None = None,
                  array_parallelism: int = 64, mem_gb: float | None = None,
                  name: str = "tlr-sweep") -> submitit.Executor:
    """A submitit executor: ``"local"``, ``"slurm"`` or ``"debug"``."""
    import submitit

    if kind == "debug":
        return submitit.DebugExecutor(folder)
    if kind == "local":
        if gpus is None:  # LocalExecutor hides every GPU unless told how many a job sees
            import torch

            gpus = torch.cuda.device_count()
        ex = submitit.LocalExecutor(folder)
        ex.update_parameters(timeout_min=time_min, gpus_per_node=gpus)
        return ex
    if kind != "slurm":
        raise UsageError(f"unknown executor {kind!r}; valid: local, slurm, debug")
    ex = submitit.SlurmExecutor(folder)
    params: dict[str, Any] = dict(job_name=name, time=time_min, cpus_per_task=threads,
                                  array_parallelism=array_parallelism)
    if partition:
        params["partition"] = partition
    if gpus:
        params["gpus_per_node"] = gpus
    if mem_gb is not None:
        params["mem"] = f"{int(mem_gb)}GB" if float(mem_gb).is_integer() else \
            f"{int(mem_gb * 1024)}MB"
    ex.update_parameters(**params)
    return ex


def _reattach(folder: Path, job_id: str | None) -> submitit.SlurmJob | None:
    """A SLURM job of an earlier invocation that is still queued or running, else None."""
    import submitit

    if not job_id:
        return None
    job = submitit.SlurmJob(folder=folder, job_id=job_id)
    return job if job.state.split()[0].upper() in _SLURM_ACTIVE else None


def _error_line(err: BaseException) -> str:
    lines = [x for x in str(err).strip().splitlines() if x.strip()]
    return f"{type(err).__name__}: {lines[-1] if lines else ''}"


def run_sweep(sweep: Sweep, out: str | Path, executor: str = "local", *, jobs: int = 1,
              threads: int = 1, device: str | None = None, wait: bool = True,
              progress: bool | None = None, **executor_options: Any) -> dict:
    """Run every unfinished run of ``sweep`` into ``out`` and return the manifest
    (``out/sweep.json``).

    ``executor``: "local" (``jobs`` runs at once), "slurm" (one job array) or "debug";
    ``executor_options``: :func:`make_executor`'s (time_min, gpus, partition,
    array_parallelism, mem_gb); ``wait=False`` (slurm): submit and return.
    """
    from tqdm.auto import tqdm

    runs = sweep.runs()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    old = {r["file"]: r for r in (_read_json(out / MANIFEST) or {}).get("runs", [])}
    entries = {r.file_name: {"file": r.file_name, "model": r.model, "seed": r.seed,
                             "overrides": r.setting, "status": "pending",
                             "attempts": old.get(r.file_name, {}).get("attempts", 0),
                             "error": None, "job_id": None} for r in runs}
    manifest = {"sweep": sweep.to_dict(), "command": " ".join(sys.argv),
                "executor": {"kind": executor, "jobs": jobs, "threads": threads,
                             "device": device, **executor_options},
                "runs": list(entries.values())}
    ex = make_executor(executor, logs, threads=threads, **executor_options)
    inflight: dict[Any, Run] = {}
    todo = []
    for r in runs:
        e = entries[r.file_name]
        if r.finished(_read_json(out / r.file_name)):
            e["status"] = "done"
        elif executor == "slurm" and (job := _reattach(logs, old.get(r.file_name, {})
                                                       .get("job_id"))) is not None:
            inflight[job] = r
            e.update(status="submitted", job_id=job.job_id)
        else:
            todo.append(r)
    ran = [r.file_name for r in todo]

    def save() -> None:
        manifest["counts"] = {s: sum(e["status"] == s for e in entries.values())
                              for s in ("done", "failed", "running", "submitted", "pending")}
        _write_json(out / MANIFEST, manifest)

    def submit(batch: list[Run]) -> None:
        jobs_ = [ex.submit(run_one, r, str(out / r.file_name), threads, device) for r in batch]
        for job, r in zip(jobs_, batch, strict=True):
            inflight[job] = r
            e = entries[r.file_name]
            e["attempts"] += 1
            e.update(status="submitted" if executor == "slurm" else "running", error=None)
            if executor != "slurm":  # a job array's ids exist once the batch is submitted
                e["job_id"] = job.job_id

    bar = tqdm(total=len(runs), initial=len(runs) - len(todo) - len(inflight), unit="run",
               desc=f"sweep {sweep.experiment}/{sweep.preset}",
               disable=None if progress is None else not progress)
    try:
        save()
        while todo or inflight:
            if executor == "slurm" and todo:
                with ex.batch():  # one job array, array_parallelism tasks at once
                    submit(todo)
                for job, r in inflight.items():
                    entries[r.file_name]["job_id"] = job.job_id
                todo = []
                save()
            if not wait:
                break
            while todo and len(inflight) < max(1, jobs):
                submit([todo.pop(0)])
            for job, r in list(inflight.items()):
                if not job.done():
                    continue
                del inflight[job]
                try:
                    res = job.result()
                except Exception as err:  # noqa: BLE001 - killed, timed out, lost
                    res = {"status": "failed", "error": _error_line(err)}
                entries[r.file_name].update(status=res["status"], error=res["error"])
                bar.update()
                bar.set_postfix(failed=sum(e["status"] == "failed" for e in entries.values()))
                save()
            if inflight:
                time.sleep(10 if executor == "slurm" else 0.2)
    except BaseException:
        if executor != "slurm":  # local jobs would outlive us; SLURM ones are re-attached
            for job, r in inflight.items():
                job.cancel(check=False)
                entries[r.file_name]["status"] = "pending"
        save()
        raise
    finally:
        bar.close()
    manifest["ran"] = ran
    save()
    return manifest


# ----------------------------------------------------------------------------- summaries

# t_{0.975, df} for df = 1..30 (two-sided 95%); beyond 30, the Cornish-Fisher expansion below.
_T975 = (12.7062047, 4.30265273, 3.18244631, 2.77644511, 2.57058184, 2.44691185, 2.36462425,
         2.30600414, 2.26215716, 2.22813885, 2.20098516, 2.17881283, 2.16036866, 2.14478669,
         2.13144955, 2.11990530, 2.10981558, 2.10092204, 2.09302405, 2.08596345, 2.07961384,
         2.07387307, 2.06865761, 2.06389856, 2.05953855, 2.05552944, 2.05183052, 2.04840714,
         2.04522964, 2.04227246)


def t_quantile(df: int) -> float:
    """t_{0.975, df}, the 97.5% quantile of Student's t with ``df`` degrees of freedom (a table
    to df = 30, then Abramowitz & Stegun 26.7.5, exact to ~1e-7 there)."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959963984540054
    g = ((z**3 + z) / 4, (5 * z**5 + 16 * z**3 + 3 * z) / 96,
         (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384,
         (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160)
    return z + sum(gi / df ** (i + 1) for i, gi in enumerate(g))


def _run_jsons(source: Any) -> Iterable[tuple[str, dict]]:
    """(where, run JSON) for every results JSON in ``source``: folders (recursively), files or
    dicts. Other JSONs (manifests, analyses) are skipped."""
    items = [source] if isinstance(source, (str, Path, Mapping)) else list(source)
    for item in items:
        if isinstance(item, Mapping):
            yield "<dict>", dict(item)
            continue
        p = Path(item)
        for f in sorted(p.rglob("*.json")) if p.is_dir() else [p]:
            d = _read_json(f)
            if f.name != MANIFEST and isinstance(d, dict) and isinstance(d.get("results"), dict) \
                    and {"experiment", "preset", "seed"} <= d.keys():
                yield str(f), d


def _setting_order(overrides: dict[str, str]) -> tuple:
    def num(v: str) -> tuple:
        try:
            return (0, float(v), "")
        except ValueError:
            return (1, 0.0, v)
    return tuple((k, num(v)) for k, v in sorted(overrides.items()))


def summarize(source: Any, metric: str = "mse", *, agree: bool = True) -> dict:
    """Mean, sd and 95% t-interval over seeds of ``metric``, per experiment, preset, overrides
    and model, of the run JSONs in ``source`` (folders, searched recursively, files, or dicts).

    Returns ``{"metric": metric, "experiments": {experiment: [row, ...]}}``; a row has
    preset, overrides, setting (a label), model, seeds, values (one per seed), n, mean, sd and
    ci95 ``[lo, hi]`` (sd and ci95 are None with one seed) and failed (seeds that only failed).
    A seed found twice keeps its first file (sorted paths); a different value warns, unless
    ``agree`` is False (for metrics that differ between two runs of one seed, e.g. times).
    """
    from tlr.experiments import EXPERIMENTS

    groups: dict[tuple, dict] = {}
    for where, d in _run_jsons(source):
        ov = {str(k): str(v) for k, v in (d.get("overrides") or {}).items()}
        base = (d["experiment"], d["preset"], json.dumps(ov, sort_keys=True))
        seed = int(d["seed"])
        for model, r in d["results"].items():
            if not isinstance(r, dict) or metric not in r:
                continue
            g = groups.setdefault(base + (model,), {"values": {}, "failed": set(), "ov": ov})
            value = float(r[metric])
            if seed not in g["values"]:
                g["values"][seed] = (value, where)
            elif agree and not math.isclose(g["values"][seed][0], value, rel_tol=1e-9):
                warnings.warn(f"{base[0]}/{base[1]} {model} seed {seed}: {value} in {where} "
                              f"differs from {g['values'][seed][0]} in {g['values'][seed][1]}; "
                              "keeping the first", stacklevel=2)
        for model in d.get("failed") or {}:
            groups.setdefault(base + (model,), {"values": {}, "failed": set(), "ov": ov}
                              )["failed"].add(seed)

    def order(key: tuple) -> tuple:
        exp, preset, _, model = key
        mod = EXPERIMENTS.get(exp)
        names = list(EXPERIMENTS)
        presets = list(mod.PRESETS) if mod else []
        models = list(mod.MODELS) if mod else []
        return (names.index(exp) if exp in names else len(names), exp,
                presets.index(preset) if preset in presets else len(presets), preset,
                _setting_order(groups[key]["ov"]),
                models.index(model) if model in models else len(models), model)

    experiments: dict[str, list[dict]] = {}
    for key in sorted(groups, key=order):
        exp, preset, _, model = key
        g = groups[key]
        seeds = sorted(g["values"])
        values = [g["values"][s][0] for s in seeds]
        n = len(values)
        mean = sum(values) / n if n else None
        sd = ci = None
        if n >= 2:
            sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
            half = t_quantile(n - 1) * sd / math.sqrt(n)
            ci = [mean - half, mean + half]
        experiments.setdefault(exp, []).append({
            "preset": preset, "overrides": g["ov"],
            "setting": ", ".join(f"{k}={v}" for k, v in g["ov"].items()) or "defaults",
            "model": model, "seeds": seeds, "values": values, "n": n, "mean": mean, "sd": sd,
            "ci95": ci, "failed": sorted(g["failed"] - set(seeds))})
    return {"metric": metric, "experiments": experiments}


def summary_rows(source: Any, experiment: str, *, preset: str | None = None,
                 setting: str = "defaults", metric: str = "mse",
                 agree: bool = True) -> dict[str, dict]:
    """:func:`summarize`'s rows of one experiment, preset (None: any) and setting, by model:
    ``summary_rows(tlr.results.root() / "ppc", "ppc", preset="paper")["rEFH"]["values"]``."""
    rows = summarize(source, metric, agree=agree)["experiments"].get(experiment, [])
    return {r["model"]: r for r in rows
            if (preset is None or r["preset"] == preset) and r["setting"] == setting}


def format_markdown(summary: dict) -> str:
    """One Markdown table per experiment of a :func:`summarize` result."""
    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:.3e}"

    parts = []
    for exp, rows in summary["experiments"].items():
        parts += [f"### {exp}: {summary['metric']} over seeds", "",
                  "| preset | setting | model | seeds | n | mean | sd | 95% interval | failed |",
                  "|---|---|---|---|---:|---:|---:|---|---|"]
        for r in rows:
            ci = "-" if r["ci95"] is None else f"[{num(r['ci95'][0])}, {num(r['ci95'][1])}]"
            parts.append(f"| {r['preset']} | {r['setting']} | {r['model']} | "
                         f"{','.join(map(str, r['seeds'])) or '-'} | {r['n']} | {num(r['mean'])} "
                         f"| {num(r['sd'])} | {ci} | {','.join(map(str, r['failed'])) or '-'} |")
        parts.append("")
    return "\n".join(parts)


def plot_summary(summary: dict, experiment: str, ax: matplotlib.axes.Axes | None = None,
                 log: bool = True) -> matplotlib.axes.Axes:
    """Dot-and-interval plot of one experiment of a :func:`summarize` result: each seed (grey),
    the mean (dot) and the 95% interval (bar), one line per model and setting. Returns ax."""
    import matplotlib.pyplot as plt

    rows = summary["experiments"][experiment]
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 0.3 * len(rows) + 1.2))
    several = len({(r["preset"], r["setting"]) for r in rows}) > 1
    for i, r in enumerate(rows):
        y = len(rows) - 1 - i
        ax.plot(r["values"], [y] * r["n"], "o", color="0.65", ms=3, zorder=1)
        if r["ci95"] is not None:
            ax.plot(r["ci95"], [y, y], "-", color="C0", lw=2, zorder=2)
        if r["mean"] is not None:
            ax.plot([r["mean"]], [y], "o", color="C0", ms=6, zorder=3)
    labels = [f"{r['model']} ({r['preset']}, {r['setting']})" if several else r["model"]
              for r in rows]
    ax.set_yticks(range(len(rows)), labels[::-1])
    if log and all(v > 0 for r in rows for v in r["values"]):
        ax.set_xscale("log")
    ax.set_xlabel(f"{summary['metric']} (dots: seeds; bar: 95% interval of the mean)")
    ax.set_title(experiment)
    return ax


# ----------------------------------------------------------------------------- command line


def main_sweep(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``python -m tlr sweep ...`` (arguments: :func:`tlr.cli.build_parser`)."""
    try:
        sweep = load_grid(args.grid) if args.grid is not None else None
        if sweep is None and args.experiment is None:
            raise UsageError("name an EXPERIMENT or give --grid FILE")
        if sweep is not None and args.experiment not in (None, sweep.experiment):
            raise UsageError(f"EXPERIMENT {args.experiment!r} but --grid says "
                             f"{sweep.experiment!r}")
        sweep = sweep or Sweep(args.experiment)
        changes: dict[str, Any] = {}
        if args.preset is not None:
            changes["preset"] = args.preset
        if args.models is not None:
            changes["models"] = tuple(m.strip() for m in args.models.split(",") if m.strip())
        if args.seeds is not None:
            try:
                changes["seeds"] = tuple(int(s) for s in args.seeds.split(",") if s.strip())
            except ValueError:
                raise UsageError(f"--seeds expects comma-separated ints, got {args.seeds!r}")\
                    from None
        axes = set_axes(args.set)
        changes["grid"] = tuple({**b, **axes} for b in sweep.grid)
        sweep = dataclasses.replace(sweep, **changes)
        n_runs = len(sweep.runs())
        for name in ("jobs", "threads", "time", "array_parallelism"):
            if getattr(args, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 1, "
                                 f"got {getattr(args, name)}")
        if args.no_wait and args.executor != "slurm":
            raise UsageError("--no-wait needs --executor slurm")
        if args.executor != "slurm" and args.device is not None:
            from tlr.experiments.common import resolve_device

            try:
                resolve_device(args.device)
            except ValueError as e:
                raise UsageError(str(e)) from None
        import submitit  # noqa: F401 - the optional dependency, checked before anything runs
    except (UsageError, OSError) as e:
        parser.error(str(e))
    except ImportError as e:
        parser.error(f"{e}: sweeps need submitit and PyYAML (pip install 'tlr[sweep]')")
    options = dict(time_min=args.time, gpus=args.gpus, partition=args.partition,
                   array_parallelism=args.array_parallelism, mem_gb=args.mem)
    t0 = time.perf_counter()
    manifest = run_sweep(sweep, args.out, args.executor, jobs=args.jobs, threads=args.threads,
                         device=args.device, wait=not args.no_wait, **options)
    counts = manifest["counts"]
    print(f"sweep {sweep.experiment}/{sweep.preset}: {n_runs} runs, ran {len(manifest['ran'])}"
          f" now, " + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
          + f" ({time.perf_counter() - t0:.0f} s); manifest {Path(args.out) / MANIFEST}")
    for e in manifest["runs"]:
        if e["status"] == "failed":
            print(f"FAILED {e['file']}: {e['error']}")
    return 1 if counts["failed"] else 0


def main_summarize(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``python -m tlr summarize PATH ... [--json FILE] [--markdown FILE]``."""
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        parser.error(f"no such file or folder: {', '.join(missing)}")
    summary = summarize(args.paths, metric=args.metric)
    if not summary["experiments"]:
        parser.error(f"no run JSONs with a {args.metric!r} in {', '.join(map(str, args.paths))}")
    text = format_markdown(summary)
    print(text)
    for path, content in ((args.json, json.dumps(summary, indent=2) + "\n"),
                          (args.markdown, text)):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            print(f"wrote {path}")
    return 0
