"""Command line: ``python -m tlr run EXPERIMENT ...`` and ``python -m tlr bench NAME ...``.

``python -m tlr run EXPERIMENT --preset P --models "A,B" --seed S --json PATH`` trains and
scores models, prints a table (model, MSE, train seconds) and writes the results contract::

    {"experiment": ..., "preset": ..., "seed": ...,
     "results": {"<model>": {"mse": <float>, "train_s": <float>}, ...},
     "details": {"<model>": {...model-specific extras...}},
     "provenance": {"git": ..., "torch": ..., "device": ..., "started": ...}}

:func:`run_json` is that run as a function (the sweeps call it for each of their runs).

``python -m tlr sweep EXPERIMENT --models "A,B" --seeds 0,1 --set KEY=V1 --set KEY=V2
--executor local|slurm --out DIR`` runs experiment x models x seeds x a grid of overrides,
one ``run`` per model, seed and setting, through submitit (:mod:`tlr.sweep`);
``python -m tlr summarize DIR`` tabulates the runs found (mean, sd, 95% t-interval over seeds).

``python -m tlr progress DIR`` reports how far the runs checkpointed under DIR have come
(epoch, updates, training hours, the validation curve, hours left) while they train.

``python -m tlr analyze NAME --json PATH`` runs one of the book's analyses
(:mod:`tlr.analyses`).

``python -m tlr bench bptt --json PATH [--T 10,30,100,300,1000] [--repeats N] [--threads 1]``
times one training update and measures its peak memory, temporally local rules vs BPTT, and
writes ``{"T": [...], "pairs": {...}, "details": {...}, "provenance": {...}}`` (see
:mod:`tlr.bench`).

Unknown experiments, presets, models or benchmarks exit with code 2 and list the valid names.
A model whose training diverges is listed under ``"failed"`` (with the error naming the epoch
and step), the other models still run, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tlr.bench import BENCHMARKS, format_bptt_table
from tlr.experiments import EXPERIMENTS
from tlr.experiments.common import apply_overrides, resolve_device
from tlr.provenance import provenance
from tlr.rng import torch_threads

__all__ = ["main", "format_table", "format_progress", "run_json", "resolve_run", "UsageError"]


def format_table(results: dict[str, dict]) -> str:
    """A plain-text table of model, MSE and training seconds."""
    width = max([len("model")] + [len(m) for m in results])
    lines = [f"{'model':<{width}}  {'MSE':>10}  {'train s':>8}"]
    lines += [f"{m:<{width}}  {r['mse']:>10.3e}  {r['train_s']:>8.1f}" for m, r in results.items()]
    return "\n".join(lines)


def _duration(s: float | None) -> str:
    if s is None:
        return "?"
    if s < 90:
        return f"{s:.0f} s"
    return f"{s / 60:.{1 if s < 600 else 0}f} min" if s < 5400 else f"{s / 3600:.1f} h"


def format_progress(rows: Sequence[Mapping]) -> str:
    """A plain-text table of :func:`tlr.train.checkpoint_progress` rows, one per checkpoint."""
    head = ("checkpoint", "epoch", "updates", "trained", "per epoch", "left", "validation")
    lines = [(Path(r["path"]).name, f"{r['epoch']}/{r['n_epochs'] or '?'}", f"{r['updates']:,}",
              _duration(r["train_s"]), _duration(r["s_per_epoch"]), _duration(r["left_s"]),
              ", ".join(f"{e}: {m:.4g}" for e, m in r["validation"][-3:]) or "-")
             for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *lines, strict=True)]
    return "\n".join("  ".join(x.ljust(w) if i in (0, 6) else x.rjust(w)
                               for i, (x, w) in enumerate(zip(line, widths, strict=True))).rstrip()
                     for line in (head, *lines))


class UsageError(ValueError):
    """A bad name or value on the command line (exit code 2), raised before anything runs."""


def _parse_set(pairs: list[str]) -> dict[str, str]:
    """``--set key=value`` pairs as ``{key: raw value}`` (a repeated key: the last one wins)."""
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"bad --set {pair!r}: expected KEY=VALUE")
    return dict(p.partition("=")[::2] for p in pairs)


def resolve_run(experiment: str, preset: str, models: Sequence[str] | None, seed: int,
                 overrides: Mapping[str, str], threads: int, device: str | None):
    """(experiment module, preset object, model names, torch device); UsageError if any name
    or value is bad."""
    if experiment not in EXPERIMENTS:
        raise UsageError(f"unknown experiment {experiment!r}; valid: {', '.join(EXPERIMENTS)}")
    exp = EXPERIMENTS[experiment]
    if preset not in exp.PRESETS:
        raise UsageError(f"unknown preset {preset!r}; valid: {', '.join(exp.PRESETS)}")
    models = list(exp.MODELS) if models is None else list(models)
    unknown = [m for m in models if m not in exp.MODELS]
    if unknown or not models:
        raise UsageError(f"unknown model(s) {unknown or models!r}; valid: {', '.join(exp.MODELS)}")
    if seed < 0:
        raise UsageError(f"--seed must be >= 0, got {seed}")
    try:
        preset_obj = apply_overrides(exp.PRESETS[preset], overrides)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if threads < 1:
        raise UsageError(f"--threads must be >= 1, got {threads}")
    try:
        dev = resolve_device(preset_obj.device if device is None else device)
    except ValueError as e:
        raise UsageError(str(e)) from None
    harmonium = getattr(preset_obj, "harmonium", None)
    if getattr(harmonium, "cuda_graph", False) and dev.type != "cuda":
        raise UsageError(f"harmonium.cuda_graph=true needs --device cuda, got device {dev.type}")
    return exp, preset_obj, models, dev


def run_json(experiment: str, preset: str = "quick", models: Sequence[str] | None = None,
             seed: int = 0, overrides: Mapping[str, str] | None = None, threads: int = 1,
             device: str | None = None, checkpoint_dir: str | None = None,
             command: str | None = None) -> dict:
    """Run one experiment, as ``python -m tlr run``, and return its results JSON (the contract
    in the module docstring).

    ``models``: None means every model of the experiment; ``overrides``: ``{key: raw value}``
    as ``--set key=value`` gives them; ``command``: what ``provenance["command"]`` records
    (default: this process's command line). Bad names or values raise :class:`UsageError`
    before anything runs. A model whose training diverges is listed under ``"failed"``.
    """
    overrides = dict(overrides or {})
    exp, preset_obj, models, dev = resolve_run(experiment, preset, models, seed, overrides,
                                                threads, device)
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    # One model at a time, so that a model whose training diverges (FloatingPointError naming
    # the epoch and step) is reported under "failed" without losing the others' results.
    results, failed = {}, {}
    with torch_threads(threads):  # what the runs use, and what provenance records
        prov = provenance(dev, started)
        for m in models:
            try:
                results.update(exp.run(models=[m], preset=preset_obj, seed=seed,
                                       checkpoint_dir=checkpoint_dir, threads=threads,
                                       device=dev))
            except FloatingPointError as e:
                failed[m] = str(e)
                print(f"{m}: {e}", file=sys.stderr)
    if command is not None:
        prov["command"] = command
    out = {
        "experiment": experiment,
        "preset": preset,
        "seed": seed,
        "results": {m: {"mse": r["mse"], "train_s": r["train_s"]} for m, r in results.items()},
        "details": {m: r["info"] for m, r in results.items()},
        "overrides": overrides,
        "provenance": {**prov, "threads": threads, "wall_s": time.perf_counter() - t0},
    }
    if failed:
        out["failed"] = failed
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tlr", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train and evaluate models on one experiment")
    run.add_argument("experiment", help=f"one of: {', '.join(EXPERIMENTS)}")
    run.add_argument("--preset", default="quick",
                     help="quick (CPU, book/CI), medium (balls and mnist: longer) or paper")
    run.add_argument("--models", default=None,
                     help="comma-separated model names (default: all of the experiment)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--json", type=Path, default=None, help="write the results JSON here")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a preset field, e.g. --set em_max_iter=50 or "
                          "--set refh.optim.lr=1e-3")
    run.add_argument("--threads", type=int, default=1,
                     help="torch CPU threads (default 1: the models run small tensors in "
                          "Python loops, where more threads only add overhead)")
    run.add_argument("--checkpoint-dir", default=None,
                     help="save training checkpoints here and resume from them")
    run.add_argument("--device", default=None, choices=("cpu", "cuda", "auto"),
                     help="where models, data and sampling live (default: the preset's, "
                          "cpu except mnist's paper preset, auto)")
    _add_sweep_parsers(sub)
    pr = sub.add_parser("progress", help="how far checkpointed runs have come (epoch, hours "
                                         "trained and left, validation curve)")
    pr.add_argument("paths", nargs="+", type=Path,
                    help="checkpoint files, or folders (their *.pt files), e.g. a run's "
                         "--checkpoint-dir")
    pr.add_argument("--epochs", type=int, default=None,
                    help="the run's number of epochs, for checkpoints that do not record it")
    an = sub.add_parser("analyze", help="run one of the book's analyses (tlr.analyses)")
    an.add_argument("which", help="bptt-alignment, balls-chain-starts, balls-quick-sweep or "
                                   "harmoniums-clamped")
    an.add_argument("--seed", type=int, default=0)
    an.add_argument("--json", type=Path, required=True, help="write the results JSON here")
    an.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    an.add_argument("--models", default=None, help="bptt-alignment: comma-separated models")
    an.add_argument("--preset", default="medium", help="balls-chain-starts: the runs' preset")
    an.add_argument("--n-test", type=int, default=100,
                    help="balls-chain-starts: test sequences scored (default 100)")
    an.add_argument("--checkpoint", action="append", default=[], metavar="LABEL=PATH",
                    help="balls-chain-starts: a saved harmonium checkpoint (repeatable)")
    bench = sub.add_parser("bench", help="benchmark training updates (local rules vs BPTT)")
    bench.add_argument("which", help=f"one of: {', '.join(BENCHMARKS)}")
    bench.add_argument("--json", type=Path, default=None, help="write the results JSON here")
    bench.add_argument("--T", default="10,30,100,300,1000",
                       help="comma-separated sequence lengths (default: 10,30,100,300,1000)")
    bench.add_argument("--repeats", type=int, default=3,
                       help="timed updates per point; the median is reported (default 3)")
    bench.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    bench.add_argument("--batch", type=int, default=40,
                       help="sequences per update (default 40, the paper preset's trajectories)")
    bench.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"),
                       help="cpu (default), cuda, or auto (cuda if available)")
    return parser


def _add_sweep_parsers(sub) -> None:
    """``sweep`` and ``summarize`` (:mod:`tlr.sweep` does the work)."""
    sw = sub.add_parser("sweep", help="experiment x models x seeds x a grid of --set overrides, "
                                      "one run each, on local processes or SLURM (submitit)")
    sw.add_argument("experiment", nargs="?", default=None,
                    help=f"one of: {', '.join(EXPERIMENTS)} (or given by --grid)")
    sw.add_argument("--grid", type=Path, default=None,
                    help="a YAML grid file, or the name of a grid shipped with tlr (table1, "
                         "table2, dynamics, hidden: the repository's sweeps/*.yaml; schema: "
                         "tlr.sweep); "
                         "the flags below add to or replace its fields")
    sw.add_argument("--preset", default=None, help="default: the grid's, else quick")
    sw.add_argument("--models", default=None,
                    help="comma-separated model names (default: the grid's, else all)")
    sw.add_argument("--seeds", default=None, help="comma-separated seeds (default: the grid's, "
                                                  "else 0)")
    sw.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="an override; a key given several times is a grid axis "
                         "(--set T_test=50 --set T_test=60); commas belong to the value "
                         "(tuples: --set harmonium.optim.m0=50,12.5,50,50,12.5)")
    sw.add_argument("--out", type=Path, required=True,
                    help="the runs' JSON files and sweep.json (the manifest) go here")
    sw.add_argument("--executor", default="local", choices=("local", "slurm", "debug"),
                    help="local processes (default), SLURM job arrays, or debug (in this "
                         "process, one at a time)")
    sw.add_argument("--jobs", type=int, default=1, help="local: runs at once (default 1)")
    sw.add_argument("--threads", type=int, default=1, help="torch CPU threads per run (default 1)")
    sw.add_argument("--device", default=None, choices=("cpu", "cuda", "auto"),
                    help="each run's device (default: the preset's)")
    sw.add_argument("--time", type=int, default=1440,
                    help="minutes a run may take before it is stopped (default 1440)")
    sw.add_argument("--partition", default=None, help="slurm: the partition")
    sw.add_argument("--gpus", type=int, default=None,
                    help="slurm: GPUs per run (default 0); local: GPUs visible to the runs "
                         "(default: all)")
    sw.add_argument("--array-parallelism", type=int, default=64,
                    help="slurm: array tasks running at once (default 64)")
    sw.add_argument("--mem", type=float, default=None, help="slurm: memory per run in GB")
    sw.add_argument("--no-wait", action="store_true",
                    help="slurm: submit and exit; run the same command again to collect")
    sm = sub.add_parser("summarize", help="mean, sd and 95%% t-interval over seeds of the run "
                                          "JSONs under a folder")
    sm.add_argument("paths", nargs="+", type=Path, help="folders (searched recursively) or files")
    sm.add_argument("--metric", default="mse", help="the results field to summarize (mse)")
    sm.add_argument("--json", type=Path, default=None, help="write the summary JSON here")
    sm.add_argument("--markdown", type=Path, default=None, help="write the tables here")


def _parse_T(raw: str) -> list[int]:
    try:
        Ts = [int(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--T expects comma-separated ints, got {raw!r}") from None
    if not Ts or min(Ts) < 1:
        raise ValueError(f"--T expects positive ints, got {raw!r}")
    return Ts


def _main_bench(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.which not in BENCHMARKS:
        parser.error(f"unknown benchmark {args.which!r}; valid: {', '.join(BENCHMARKS)}")
    try:
        Ts = _parse_T(args.T)
    except ValueError as e:
        parser.error(str(e))
    for name in ("repeats", "threads", "batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    try:
        device = resolve_device(args.device).type
    except ValueError as e:
        parser.error(f"--device {args.device}: {e}")
    out = BENCHMARKS[args.which](T=Ts, batch=args.batch, repeats=args.repeats,
                                 threads=args.threads, device=device,
                                 progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(f"bench {args.which} / device {device} / batch {args.batch} / threads {args.threads}"
          f" / {out['provenance']['wall_s']:.0f} s")
    print(format_bptt_table(out))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def _main_analyze(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from tlr.analyses import ANALYSES, run_analysis

    if args.which not in ANALYSES:
        parser.error(f"unknown analysis {args.which!r}; valid: {', '.join(ANALYSES)}")
    if args.threads < 1 or args.seed < 0:
        parser.error("--threads must be >= 1 and --seed >= 0")
    kw: dict = {"seed": args.seed}
    if args.which == "bptt-alignment" and args.models:
        kw["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.which == "balls-chain-starts":
        if not args.checkpoint or any("=" not in c for c in args.checkpoint):
            parser.error("balls-chain-starts needs --checkpoint LABEL=PATH (one or more)")
        kw.update(preset=args.preset, n_test=args.n_test,
                  checkpoints=dict(c.split("=", 1) for c in args.checkpoint))
    out = run_analysis(args.which, threads=args.threads, **kw)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0


def _main_progress(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from tlr.train import checkpoint_progress

    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    files = []
    for path in args.paths:
        if path.is_dir():
            found = sorted(path.glob("*.pt"))
            if not found:
                parser.error(f"no checkpoint (*.pt) in the folder {path}")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            parser.error(f"no such checkpoint or folder: {path}")
    try:
        rows = [checkpoint_progress(f, args.epochs) for f in files]
    except ValueError as e:
        parser.error(str(e))
    print(format_progress(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "progress":
        return _main_progress(parser, args)
    if args.command == "bench":
        return _main_bench(parser, args)
    if args.command == "analyze":
        return _main_analyze(parser, args)
    if args.command == "sweep":
        from tlr.sweep import main_sweep

        return main_sweep(parser, args)
    if args.command == "summarize":
        from tlr.sweep import main_summarize

        return main_summarize(parser, args)
    models = None if args.models is None else [
        m.strip() for m in args.models.split(",") if m.strip()]
    try:
        out = run_json(args.experiment, args.preset, models, args.seed, _parse_set(args.set),
                       args.threads, args.device, args.checkpoint_dir)
    except UsageError as e:
        parser.error(str(e))
    results, failed = out["results"], out.get("failed", {})
    print(f"{args.experiment} / preset {args.preset} / seed {args.seed}")
    print(format_table(results))
    for m, e in failed.items():
        print(f"{m}: FAILED ({e})")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
