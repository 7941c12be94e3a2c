"""Command line: ``python -m tlr run EXPERIMENT ...`` and ``python -m tlr bench NAME ...``.

``python -m tlr run EXPERIMENT --preset P --models "A,B" --seed S --json PATH`` trains and
scores models, prints a table (model, MSE, train seconds) and writes the results contract::

    {"experiment": ..., "preset": ..., "seed": ...,
     "results": {"<model>": {"mse": <float>, "train_s": <float>}, ...},
     "details": {"<model>": {...model-specific extras...}},
     "provenance": {"git": ..., "torch": ..., "device": ..., "started": ...}}

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
import dataclasses
import datetime as dt
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from tlr.bench import BENCHMARKS, format_bptt_table
from tlr.experiments import EXPERIMENTS
from tlr.provenance import provenance

__all__ = ["main", "format_table", "apply_overrides"]


def format_table(results: dict[str, dict]) -> str:
    """A plain-text table of model, MSE and training seconds."""
    width = max([len("model")] + [len(m) for m in results])
    lines = [f"{'model':<{width}}  {'MSE':>10}  {'train s':>8}"]
    lines += [f"{m:<{width}}  {r['mse']:>10.3e}  {r['train_s']:>8.1f}" for m, r in results.items()]
    return "\n".join(lines)


def _override(obj, key: str, raw: str):
    """``dataclasses.replace`` one (possibly dotted) field of ``obj``, parsing ``raw`` by type."""
    head, _, rest = key.partition(".")
    # a preset's own "name" is its identity; a nested config's "name" (e.g. optim.name) is not
    top = hasattr(obj, "harmonium") or hasattr(obj, "refh") or hasattr(obj, "vae")
    fields = {f.name for f in dataclasses.fields(obj) if f.name != "name" or rest or not top}
    if head not in fields:
        raise ValueError(f"bad --set key {key!r}; valid keys here: {', '.join(sorted(fields))}")
    current = getattr(obj, head)
    if rest:
        if not dataclasses.is_dataclass(current):
            raise ValueError(f"--set {key}: {head} has no sub-fields")
        return dataclasses.replace(obj, **{head: _override(current, rest, raw)})
    if dataclasses.is_dataclass(current):
        sub = ", ".join(f"{head}.{f.name}" for f in dataclasses.fields(current))
        raise ValueError(f"--set {key}: set one of its fields instead ({sub})")
    if isinstance(current, bool):
        if raw.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"--set {key} expects true/false, got {raw!r}")
        value = raw.lower() in ("true", "1")
    elif isinstance(current, (int, float, str)):
        try:
            value = type(current)(raw)
        except ValueError:
            msg = f"--set {key} expects {type(current).__name__}, got {raw!r}"
            raise ValueError(msg) from None
    elif isinstance(current, tuple):
        try:
            value = tuple((float if isinstance(c, (int, float)) and not isinstance(c, bool)
                           and "." in x else type(c))(x)
                          for c, x in zip(current, raw.split(","), strict=True))
        except ValueError:
            msg = f"--set {key} expects {len(current)} comma-separated values, got {raw!r}"
            raise ValueError(msg) from None
    else:
        raise ValueError(f"--set cannot override {key} (type {type(current).__name__})")
    try:
        return dataclasses.replace(obj, **{head: value})
    except (ValueError, TypeError) as e:
        raise ValueError(f"--set {key}={raw}: {e}") from None


def apply_overrides(preset, overrides: Mapping[str, str]):
    """``preset`` with ``{key: raw value}`` overrides applied, as ``--set key=value`` does
    (dotted keys reach nested configs). A results JSON records its run's overrides this way,
    so ``apply_overrides(PRESETS[res["preset"]], res["overrides"])`` rebuilds its preset."""
    for key, raw in overrides.items():
        preset = _override(preset, key, raw)
    return preset


def _parse_set(pairs: list[str], preset):
    """Apply ``--set key=value`` overrides (dotted keys reach nested configs)."""
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"bad --set {pair!r}: expected KEY=VALUE")
    return apply_overrides(preset, dict(p.partition("=")[::2] for p in pairs))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tlr", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train and evaluate models on one experiment")
    run.add_argument("experiment", help=f"one of: {', '.join(EXPERIMENTS)}")
    run.add_argument("--preset", default="quick", help="quick (CPU, book/CI) or paper")
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
    device = args.device
    if device != "cpu":
        import torch

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        elif not torch.cuda.is_available():
            parser.error("--device cuda: CUDA is not available")
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "bench":
        return _main_bench(parser, args)
    if args.experiment not in EXPERIMENTS:
        parser.error(f"unknown experiment {args.experiment!r}; valid: {', '.join(EXPERIMENTS)}")
    exp = EXPERIMENTS[args.experiment]
    if args.preset not in exp.PRESETS:
        parser.error(f"unknown preset {args.preset!r}; valid: {', '.join(exp.PRESETS)}")
    models = list(exp.MODELS) if args.models is None else [
        m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in exp.MODELS]
    if unknown or not models:
        parser.error(f"unknown model(s) {unknown or args.models!r}; valid: {', '.join(exp.MODELS)}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    try:
        preset = _parse_set(args.set, exp.PRESETS[args.preset])
    except ValueError as e:
        parser.error(str(e))

    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    import torch

    torch.set_num_threads(args.threads)
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    # One model at a time, so that a model whose training diverges (FloatingPointError naming
    # the epoch and step) is reported under "failed" without losing the others' results.
    results, failed = {}, {}
    for m in models:
        try:
            results.update(exp.run(models=[m], preset=preset, seed=args.seed,
                                   checkpoint_dir=args.checkpoint_dir))
        except FloatingPointError as e:
            failed[m] = str(e)
            print(f"{m}: {e}", file=sys.stderr)
    out = {
        "experiment": args.experiment,
        "preset": args.preset,
        "seed": args.seed,
        "results": {m: {"mse": r["mse"], "train_s": r["train_s"]} for m, r in results.items()},
        "details": {m: r.get("info", {}) for m, r in results.items()},
        "overrides": dict(s.partition("=")[::2] for s in args.set),
        "provenance": {**provenance("cpu", started), "wall_s": time.perf_counter() - t0},
    }
    if failed:
        out["failed"] = failed
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
