"""The saved paper-scale runs (``results/**/*.json``), from a checkout or from an installed tlr.

Every file under the repository's ``results/`` folder is the JSON output of a ``python -m tlr
run``, ``analyze`` or ``bench`` command (its ``provenance`` block records which). A run is named
by its path under ``results/`` without ``.json``, e.g. ``"ppc/paper_seed0"`` or
``"balls/paper_refh_seed0"``::

    from tlr import results
    results.available("ppc/paper_seed?")   # ['ppc/paper_seed0', 'ppc/paper_seed1', ...]
    run = results.load("ppc/paper_seed0")  # the parsed JSON (a dict)

Where the files are found:

- in a regular install (``pip install git+https://github.com/tlr-book/tlr``, as on Colab, or
  ``pip install .``), ``results/`` is shipped as package data under ``tlr/_saved/``
  (``pyproject.toml`` maps the folder into the package; git holds one copy);
- in an editable install (``pip install -e .``, what ``make`` does) or when running from the
  checkout, the repository's own ``results/`` is read, so a run the CLI just wrote is
  available at once.

Only the standard library is used: loading a saved table needs neither torch nor a checkout.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
from pathlib import Path

__all__ = ["UnknownResultError", "available", "load", "path", "root", "benchmark"]

_PACKAGE_DIR = Path(__file__).resolve().parent
_INSTALLED = _PACKAGE_DIR / "_saved"  # regular install: results/ shipped as package data
_BENCH_INSTALLED = _PACKAGE_DIR / "_bench"  # and benchmarks/results/
_CHECKOUT = _PACKAGE_DIR.parent  # editable install or a clone: the repository root


class UnknownResultError(KeyError):
    """No saved run has this name. Also a KeyError, as for a missing key of a mapping."""

    def __str__(self) -> str:  # KeyError's str() would show the message's repr
        return str(self.args[0]) if self.args else ""


def root() -> Path:
    """The folder that holds the saved runs (``tlr/_saved`` when installed, else ``results/``)."""
    if _INSTALLED.is_dir():
        return _INSTALLED
    checkout = _CHECKOUT / "results"
    if checkout.is_dir() and (_CHECKOUT / "pyproject.toml").is_file():
        return checkout
    raise FileNotFoundError(
        f"no saved results next to tlr ({_PACKAGE_DIR}): expected {_INSTALLED} (an installed "
        f"tlr) or {checkout} (a checkout); reinstall tlr from the repository"
    )


def available(pattern: str = "*") -> list[str]:
    """The names of the saved runs, sorted; ``pattern`` is a shell-style filter on the name.

    ``available()`` lists every run; ``available("ppc/paper_seed?_vae")`` the rVAE/TVAE runs
    of the three seeds. ``*`` also matches ``/``, so ``"ppc/*"`` includes ``ppc/hidden_sweep/``.
    """
    base = root()
    names = (p.relative_to(base).with_suffix("").as_posix() for p in base.rglob("*.json"))
    return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))


def _normalise(name: str) -> str:
    """Accept ``ppc/paper_seed0``, ``ppc/paper_seed0.json`` and ``results/ppc/paper_seed0``."""
    if not isinstance(name, str):
        raise TypeError(f"a saved run's name is a str such as 'ppc/paper_seed0', got {name!r}")
    name = name.strip().replace("\\", "/").strip("/")
    name = name.removeprefix("results/")
    return name.removesuffix(".json")


def path(name: str) -> Path:
    """The JSON file of the saved run ``name`` (e.g. ``"balls/paper_refh_seed0"``).

    Raises :class:`UnknownResultError` (a KeyError) naming the closest matches if there is none.
    """
    key = _normalise(name)
    file = root() / f"{key}.json"
    if key and ".." not in key.split("/") and file.is_file():
        return file
    names = available()
    close = difflib.get_close_matches(key, names, n=5, cutoff=0.5)
    same_folder = [n for n in names if key and n.startswith(key.rsplit("/", 1)[0] + "/")]
    hint = close or same_folder[:8]
    raise UnknownResultError(
        f"no saved run named {name!r} (of {len(names)} in {root()}); "
        + (f"closest: {', '.join(hint)}" if hint else "see tlr.results.available()")
    )


def load(name: str) -> dict:
    """The parsed JSON of the saved run ``name`` (a new dict on every call)."""
    return json.loads(path(name).read_text(encoding="utf-8"))


def benchmark(name: str) -> dict:
    """The saved benchmark ``name`` (``benchmarks/results/NAME.json``, e.g. ``"bptt"`` or
    ``"gpu_estimate"``; shipped as ``tlr/_bench`` in a regular install)."""
    folder = (_BENCH_INSTALLED if _BENCH_INSTALLED.is_dir()
              else _CHECKOUT / "benchmarks" / "results")
    key = str(name).removesuffix(".json")
    file = folder / f"{key}.json"
    if "/" in key or "\\" in key or not file.is_file():
        names = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        raise UnknownResultError(f"no saved benchmark named {name!r}; saved: "
                                 f"{', '.join(names) or 'none'} (in {folder})")
    return json.loads(file.read_text(encoding="utf-8"))
