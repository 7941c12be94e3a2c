"""tlr.results finds every saved run, in the checkout and in a regular (non-editable) install.

Colab installs tlr with `pip install git+...`: no checkout, so the chapters' saved tables must
come from the installed package. The install test builds tlr from a copy of the build inputs
(pyproject.toml, README.md, LICENSE, tlr/, results/) into a fresh, pip-less venv, offline and
without build isolation (setuptools comes from the running environment), then loads every
saved run from a working directory outside the checkout. It takes a few seconds.
"""

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tlr import results

ROOT = Path(__file__).resolve().parents[1]
SAVED = ROOT / "results"
# What setuptools reads to build tlr (pyproject.toml names README.md and LICENSE); absent ones
# are skipped.
BUILD_INPUTS = ["pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "tlr", "results",
                "sweeps", "benchmarks"]


def _expected_names() -> list[str]:
    return sorted(p.relative_to(SAVED).with_suffix("").as_posix() for p in SAVED.rglob("*.json"))


def test_checkout_lists_and_loads_every_saved_run():
    """The running environment (editable install or a clone) reads the repository's results/."""
    names = results.available()
    assert names == _expected_names()
    assert results.root() == SAVED
    for name in names:
        assert isinstance(results.load(name), dict), name
    assert results.available("ppc/paper_seed?") == [f"ppc/paper_seed{s}" for s in range(3)]
    assert results.path("results/ppc/paper_seed0.json") == SAVED / "ppc" / "paper_seed0.json"


def test_unknown_name_names_the_closest_runs():
    with pytest.raises(KeyError, match="ppc/paper_seed0_vae"):
        results.load("ppc/paper_seed0_vea")
    with pytest.raises(KeyError, match="no saved run named"):
        results.load("../pyproject")


_LOAD_ALL = """
import json, sys
from pathlib import Path
import tlr, tlr.results as r
names = r.available()
loaded = {n: r.load(n) for n in names}
assert all(isinstance(d, dict) for d in loaded.values())
pkg = Path(tlr.__file__).resolve().parent
print(json.dumps({"tlr": str(pkg), "root": str(r.root()), "names": names,
                  "grids": sorted(p.name for p in (pkg / "_grids").glob("*.yaml")),
                  "bench": {p.stem: r.benchmark(p.stem).get("benchmark")
                            for p in (pkg / "_bench").glob("*.json")},
                  "py": sorted(p.relative_to(pkg).as_posix() for p in pkg.rglob("*.py"))}))
"""


def _fresh_venv(where: Path) -> Path:
    """A venv without pip (milliseconds to make; the running pip installs into it)."""
    try:
        venv.EnvBuilder(with_pip=False, clear=True).create(where)
    except Exception as err:  # any failure here means: no venv on this host
        pytest.skip(f"cannot create a virtual environment here ({type(err).__name__}: {err})")
    python = where / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not python.exists():
        pytest.skip(f"venv creation left no interpreter at {python}")
    return python


def test_regular_install_ships_every_saved_run(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for item in BUILD_INPUTS:
        if (ROOT / item).is_dir():
            shutil.copytree(ROOT / item, src / item,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif (ROOT / item).is_file():
            shutil.copy2(ROOT / item, src / item)

    python = _fresh_venv(tmp_path / "venv")
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_"))}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    # --target: install into the fresh venv with the running pip and setuptools, offline.
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", site, str(src)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert pip.returncode == 0, f"pip install failed:\n{pip.stdout}\n{pip.stderr}"

    outside = tmp_path / "elsewhere"  # no checkout above this folder
    outside.mkdir()
    run = subprocess.run(
        [str(python), "-I", "-c", _LOAD_ALL],
        capture_output=True, text=True, env=env, cwd=outside, timeout=120,
    )
    assert run.returncode == 0, f"loading the saved runs failed:\n{run.stdout}\n{run.stderr}"
    got = json.loads(run.stdout)

    installed = Path(got["tlr"])
    assert installed.is_relative_to(Path(site).resolve()), f"imported tlr from {installed}"
    assert Path(got["root"]) == installed / "_saved"
    assert len(got["names"]) == len(list(SAVED.rglob("*.json")))
    assert got["names"] == _expected_names()
    # the named grids of `python -m tlr sweep --grid NAME` ship too
    assert got["grids"] == sorted(p.name for p in (ROOT / "sweeps").glob("*.yaml"))
    # and the saved benchmarks, which tlr.results.benchmark reads
    saved_bench = sorted(p.stem for p in (ROOT / "benchmarks/results").glob("*.json"))
    assert sorted(got["bench"]) == saved_bench
    assert got["bench"]["gpu_estimate"] == "gpu_estimate"
    # pyproject.toml lists the packages explicitly: a subpackage missing there is missing here.
    checkout_py = sorted(p.relative_to(ROOT / "tlr").as_posix() for p in
                         (ROOT / "tlr").rglob("*.py") if "__pycache__" not in p.parts)
    assert got["py"] == checkout_py, "pyproject.toml [tool.setuptools] packages is incomplete"
