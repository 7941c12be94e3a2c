"""The one experiment runner behind ``python -m tlr run``, shared by ``ppc``, ``balls``, ``mnist``.

An experiment is an :class:`Experiment`: its presets, its model names, and what differs from
one experiment to the next (the data, how each model is configured and trained, how it is
scored). Everything else is here, once: preset and model resolution, ``--set`` overrides
(:func:`apply_overrides`), device and thread handling, building models through the registry
(:func:`tlr.models.build_model`), training through :func:`tlr.train.fit` with per-epoch
checkpoints, timing, and the one result type, :class:`ModelResult`.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

import torch

from tlr.models import build_model
from tlr.rng import derive_seed, make_generator, torch_threads
from tlr.train import History, OptimConfig, fit

__all__ = ["ModelResult", "TrainSpec", "Experiment", "resolve", "apply_overrides",
           "resolve_device", "checkpoint_path", "restart_generator", "final_val", "paired_stream",
           "kl_schedule", "latent_rates", "build", "train", "run_experiment"]


class ModelResult(TypedDict):
    """What a run reports for one model."""

    mse: float  # the experiment's test metric (see its module docstring)
    train_s: float  # seconds of training (0 for models that do not train); summed over resumes
    info: dict  # model-specific extras (learning curve, diagnostics, wall_s, ...)


@dataclass(frozen=True)
class TrainSpec:
    """How one model is trained: the arguments of :func:`tlr.train.fit` an experiment sets."""

    n_epochs: int
    optim: OptimConfig
    window: int | None = None  # steps per update (None: whole sequences)
    batch: int | None = None  # sequences per update group (None: all at once)
    n_pretrain: int = 0
    pretrain_cd_steps: int = 5
    eval_every: int = 5
    cuda_graph: bool = False  # each update of whole sequences replayed as a CUDA graph


class Experiment:
    """What one experiment defines; :func:`run_experiment` does the rest.

    Subclasses set ``name``, ``presets`` and ``models`` (baselines first) and implement the
    hooks below. ``data`` is whatever :meth:`prepare` returns (the test set and anything the
    scoring shares across models).
    """

    name: str
    presets: Mapping[str, Any]
    models: tuple[str, ...]
    baselines: tuple[str, ...] = ()  # models that do not train

    def prepare(self, preset, seed: int, device: torch.device) -> Any:
        raise NotImplementedError

    def baseline(self, name: str, preset, seed: int, data) -> tuple[float, float, dict]:
        """(test metric, seconds spent fitting, info) of a model that is not trained by
        :func:`tlr.train.fit` (copies of the last frame, Kalman filters)."""
        raise NotImplementedError

    def model_config(self, name: str, preset) -> tuple[str, dict]:
        """(registry name, config fields) of a trained model."""
        raise NotImplementedError

    def train_spec(self, name: str, preset) -> TrainSpec:
        raise NotImplementedError

    def generators(self, name: str, seed: int, device: torch.device
                   ) -> tuple[torch.Generator, torch.Generator]:
        """(initial weights, training noise); by default one stream for both."""
        g = make_generator(seed, f"{self.name}/{name}", device)
        return g, g

    def train_data(self, name: str, preset, seed: int, data,
                   device: torch.device) -> Callable[[int], torch.Tensor]:
        """``epoch -> (T, N, n_obs)``: the model's fresh training data of each epoch."""
        raise NotImplementedError

    def evaluator(self, name: str, preset, seed: int, data,
                  device: torch.device) -> Callable[[torch.nn.Module], float]:
        """The validation metric recorded during training (the learning curve)."""
        raise NotImplementedError

    def diagnostics(self, name: str, preset, seed: int, data,
                    device: torch.device) -> Callable[[torch.nn.Module], dict] | None:
        """Named numbers recorded beside the learning curve (``History.extra``); None: none."""
        return None

    def score(self, model, name: str, preset, seed: int, data, hist: History,
              device: torch.device) -> tuple[float, dict]:
        """(test metric, info) of a trained model."""
        raise NotImplementedError

    def restarts(self, name: str, preset) -> int:
        """How many initialisations of model ``name`` to train (default 1). With k > 1,
        :func:`run_experiment` trains restarts 0..k-1 (restart 0 draws exactly what a run
        without restarts draws; restart r > 0 reseeds both generators, :func:`restart_generator`)
        and keeps the one with the lowest :func:`final_val`; the test metric is that one's."""
        return 1

    def check(self, preset) -> None:
        """Raise a ValueError if the preset cannot run (default: anything goes)."""


def resolve(preset: Any, models: list[str] | None, presets: Mapping[str, Any],
            valid: Mapping[str, Any] | tuple[str, ...]) -> tuple[Any, list[str]]:
    """``(preset object, model names)``: a preset name is looked up in ``presets``;
    ``models=None`` means every valid model. Unknown names raise ValueError listing the valid
    ones."""
    if isinstance(preset, str):
        if preset not in presets:
            raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(presets)}")
        preset = presets[preset]
    models = list(valid) if models is None else list(models)
    unknown = [m for m in models if m not in valid]
    if unknown or not models:
        raise ValueError(f"unknown model(s) {unknown or models}; valid: {', '.join(valid)}")
    return preset, models


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"`` → cuda if available, else cpu; ``"cuda"`` without CUDA is an error."""
    device = "cpu" if device is None else device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {str(device)!r}")
    return device


def _parse(key: str, current: Any, raw: str, in_tuple: bool = False) -> Any:
    """``raw`` parsed as the type of the field's ``current`` value (an int entry of a tuple
    also takes a float, e.g. Makin's m0 = 12.5; ``None`` fields take "none" or a number)."""
    if isinstance(current, bool):
        if raw.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"--set {key} expects true/false, got {raw!r}")
        return raw.lower() in ("true", "1")
    if isinstance(current, tuple):
        parts = raw.split(",")
        if len(parts) != len(current) and len({type(c) for c in current}) != 1:
            raise ValueError(f"--set {key} expects {len(current)} comma-separated values, "
                             f"got {raw!r}")
        return tuple(_parse(key, current[min(i, len(current) - 1)], x, in_tuple=True)
                     for i, x in enumerate(parts))
    if current is None and raw.lower() == "none":
        return None
    kinds = {str: (str,), float: (float,)}.get(type(current),
                                               (int, float) if in_tuple or current is None
                                               else (int,))
    for kind in kinds:
        try:
            return kind(raw)
        except ValueError:
            pass
    want = type(current).__name__ if current is not None else "a number or none"
    raise ValueError(f"--set {key} expects {want}, got {raw!r}")


def _override(obj, key: str, raw: str, top: bool = True, full: str | None = None):
    """``dataclasses.replace`` one (possibly dotted) field of ``obj``, parsing ``raw`` by type
    (``full``: the whole dotted key, for messages)."""
    full = key if full is None else full
    head, _, rest = key.partition(".")
    # a preset's own ``name`` is its identity; a nested config's (e.g. optim.name) is a setting
    fields = {f.name for f in dataclasses.fields(obj) if f.name != "name" or not top or rest}
    if head not in fields:
        raise ValueError(f"bad --set key {full!r}; valid keys here: {', '.join(sorted(fields))}")
    current = getattr(obj, head)
    if rest:
        if not dataclasses.is_dataclass(current):
            raise ValueError(f"--set {full}: {head} has no sub-fields")
        return dataclasses.replace(obj, **{head: _override(current, rest, raw, False, full)})
    if dataclasses.is_dataclass(current):
        sub = ", ".join(f"{head}.{f.name}" for f in dataclasses.fields(current))
        raise ValueError(f"--set {full}: set one of its fields instead ({sub})")
    value = _parse(full, current, raw)
    try:
        return dataclasses.replace(obj, **{head: value})
    except (ValueError, TypeError) as e:
        raise ValueError(f"--set {full}={raw}: {e}") from None


def apply_overrides(preset, overrides: Mapping[str, str]):
    """``preset`` with ``{key: raw value}`` overrides applied, as ``--set key=value`` does
    (dotted keys reach nested configs, e.g. ``harmonium.optim.lr``). A results JSON records its
    run's overrides this way, so ``apply_overrides(PRESETS[res["preset"]], res["overrides"])``
    rebuilds its preset."""
    for key, raw in overrides.items():
        preset = _override(preset, key, raw)
    return preset


def checkpoint_path(checkpoint_dir: str | None, experiment: str, preset, seed: int,
                    name: str, restart: int = 0) -> str | None:
    """Where a model's per-epoch checkpoint lives (None: no checkpoints)."""
    if checkpoint_dir is None:
        return None
    tail = f"_restart{restart}" if restart else ""
    return f"{checkpoint_dir}/{experiment}_{preset.name}_seed{seed}_{name}{tail}.pt"


def restart_generator(g: torch.Generator, restart: int) -> torch.Generator:
    """``g`` for restart ``restart``: ``g`` itself for restart 0, otherwise a generator on the
    same device seeded from ``g``'s seed and the restart number (a stream of its own)."""
    if restart == 0:
        return g
    out = torch.Generator(device=g.device)
    out.manual_seed(derive_seed(g.initial_seed() % (2**62), f"restart{restart}"))
    return out


def final_val(curve: list[float]) -> float:
    """A run's validation score at the end of training: the mean of the last three points of
    its learning curve (fewer if it has fewer). Restarts are chosen by it."""
    if not curve:
        raise ValueError("an empty learning curve: no validation score to choose a restart by")
    return statistics.mean(curve[-3:])


def paired_stream(name: str) -> str:
    """The random streams model ``name`` draws from: the rVAE-β uses the rVAE's (initial
    weights, training data and noise, test sampling), so that with β = 1 and no warm-up it *is*
    the rVAE, number for number, and otherwise differs from it only by the KL weight."""
    return "rVAE" if name == "rVAE-β" else name


def kl_schedule(run) -> dict:
    """The rVAE-β's KL options (``RVAEConfig`` / ``ConvRVAEConfig`` fields) from an
    experiment's VAE settings (their ``beta_*`` fields)."""
    return dict(kl_weight=run.beta_kl_weight, kl_warmup=run.beta_kl_warmup,
                kl_weight0=run.beta_kl_weight0, free_bits=run.beta_free_bits)


def latent_rates(nu: torch.Tensor, logvar: torch.Tensor) -> list[float]:
    """Per latent coordinate j, the rate E[KL(N(ν_j, e^{logvar_j}) ‖ N(0, 1))] in nats,
    averaged over steps and sequences: the quantity free bits floor (``RVAEConfig.free_bits``
    floors its batch mean at each step). ``nu``, ``logvar``: (T, B, n_latent) posterior
    parameters of a model whose prior is N(0, I) (the rVAE family; not the TVAE). The closed
    form of :func:`tlr.models.rvae.prior_kl` from log-variances: the same to float rounding
    (within 2e-7 relative), and the form the saved runs were scored with."""
    kl = 0.5 * (nu.pow(2) + logvar.exp() - 1 - logvar)
    return kl.mean((0, 1)).tolist()


def build(exp: Experiment, name: str, preset, seed: int, device: torch.device,
          restart: int = 0) -> tuple[torch.nn.Module, torch.Generator]:
    """Model ``name`` of ``exp``, untrained, through the registry, and its training generator
    (the experiment decides whether weights and training noise share one stream; ``restart``
    reseeds both, :func:`restart_generator`)."""
    init, g = exp.generators(name, seed, device)
    new_init = restart_generator(init, restart)
    g = new_init if g is init else restart_generator(g, restart)
    arch, config = exp.model_config(name, preset)
    return build_model(arch, generator=new_init, **config).to(device), g


def train(exp: Experiment, name: str, preset, seed: int, data, device: torch.device,
          checkpoint_dir: str | None = None, progress: bool | None = None, *,
          model: torch.nn.Module | None = None, generator: torch.Generator | None = None,
          evaluate: Callable | None = None, eval_every: int | None = None, restart: int = 0
          ) -> tuple[torch.nn.Module, History, float]:
    """Train model ``name`` of ``exp`` with :func:`tlr.train.fit`, as ``run`` does.

    ``model``/``generator``: from :func:`build` (default: built here); ``evaluate`` /
    ``eval_every`` replace the experiment's validation metric and its period (analyses that
    record more along the way). Returns (model, history, training seconds; summed over
    sessions if resumed). ``restart``: which initialisation (:meth:`Experiment.restarts`)."""
    if model is None:
        model, generator = build(exp, name, preset, seed, device, restart)
    spec = exp.train_spec(name, preset)
    t0 = time.perf_counter()
    hist = fit(model, exp.train_data(name, preset, seed, data, device), spec.n_epochs,
               spec.optim, generator, window=spec.window, batch=spec.batch,
               n_pretrain=spec.n_pretrain, pretrain_cd_steps=spec.pretrain_cd_steps,
               evaluate=evaluate or exp.evaluator(name, preset, seed, data, device),
               eval_every=eval_every or spec.eval_every,
               diagnose=None if evaluate else exp.diagnostics(name, preset, seed, data, device),
               checkpoint=checkpoint_path(checkpoint_dir, exp.name, preset, seed, name, restart),
               progress=progress, cuda_graph=spec.cuda_graph)
    train_s = hist.elapsed if hist.resumed_at else time.perf_counter() - t0
    return model, hist, train_s


def run_experiment(exp: Experiment, models: list[str] | None = None, preset: str | Any = "quick",
                   seed: int = 0, progress: bool | None = None,
                   checkpoint_dir: str | None = None, threads: int | None = 1,
                   device: str | torch.device | None = None) -> dict[str, ModelResult]:
    """Train and score ``models`` (default: all) of ``exp`` on one preset and seed.

    ``threads``: torch CPU threads while running (None leaves the setting alone).
    ``device``: "cpu", "cuda" or "auto" (None: the preset's ``device``); models, training
    data and sampling live there. Returns ``{model: ModelResult}``.
    """
    from tqdm.auto import tqdm

    preset, models = resolve(preset, models, exp.presets, exp.models)
    exp.check(preset)
    dev = resolve_device(preset.device if device is None else device)
    results: dict[str, ModelResult] = {}
    with torch_threads(threads):
        data = exp.prepare(preset, seed, dev)
        for name in tqdm(models, desc=f"{exp.name}/{preset.name}",
                         disable=None if progress is None else not progress):
            t0 = time.perf_counter()
            if name in exp.baselines:
                mse, train_s, info = exp.baseline(name, preset, seed, data)
            else:
                mse, train_s, info = _train_and_score(exp, name, preset, seed, data, dev,
                                                      checkpoint_dir, progress)
            results[name] = ModelResult(mse=mse, train_s=train_s,
                                        info={**info, "wall_s": time.perf_counter() - t0})
    return results


def _train_and_score(exp: Experiment, name: str, preset, seed: int, data, dev: torch.device,
                     checkpoint_dir: str | None, progress: bool | None
                     ) -> tuple[float, float, dict]:
    """(test metric, training seconds, info) of model ``name``: one run, or with
    :meth:`Experiment.restarts` > 1 the restart with the lowest :func:`final_val`. Every
    restart is scored and listed in ``info["restarts"]`` (a diagnostic: the choice reads the
    validation curves only); ``train_s`` sums the restarts' training, the protocol's cost."""
    k = exp.restarts(name, preset)
    runs = []
    for r in range(k):
        model, hist, train_s = train(exp, name, preset, seed, data, dev, checkpoint_dir,
                                     progress, restart=r)
        model.eval()
        mse, info = exp.score(model, name, preset, seed, data, hist, dev)
        info = {"updates": hist.updates, **info}
        if hist.resumed_at:  # trained over several sessions: train_s sums them
            info["resumed_at_epoch"] = hist.resumed_at
        runs.append((mse, train_s, info, hist.metric))
    if k == 1:
        return runs[0][:3]
    vals = [final_val(curve) for *_, curve in runs]
    best = min(range(k), key=vals.__getitem__)
    mse, _, info, _ = runs[best]
    listed = [{"restart": r, "val": v, "mse": m, "train_s": s,
               **{key: i[key] for key in ("velocity_r2", "motion_ratio") if key in i}}
              for r, (v, (m, s, i, _)) in enumerate(zip(vals, runs, strict=True))]
    return mse, sum(s for _, s, _, _ in runs), {**info, "kept_restart": best,
                                               "restarts": listed}
