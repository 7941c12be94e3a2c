"""Provenance recorded next to every saved result: code version, library versions, device, time."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import torch

import tlr

__all__ = ["git_revision", "device_name", "cpu_name", "provenance", "machine_load", "write_json",
           "find_results", "short_commit", "short_command"]


def git_revision(path: str | Path | None = None) -> str:
    """The commit of the checkout holding ``tlr`` (suffix ``-dirty`` if it has local changes).

    Outside a git checkout (a copy of the working tree sent to another machine), the commit
    named by the environment variable ``TLR_GIT_REVISION``, marked as declared, if set."""
    cwd = Path(path) if path is not None else Path(tlr.__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True, timeout=10).stdout
        return rev + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        declared = os.environ.get("TLR_GIT_REVISION")
        if declared:
            return f"{declared} (declared by TLR_GIT_REVISION; a copy, not a git checkout)"
        return f"unknown (tlr {tlr.__version__}, not a git checkout)"


def device_name(device: str | torch.device = "cpu") -> str:
    """A readable device description, e.g. ``cpu (2 threads)`` or ``cuda:0 (NVIDIA H100)``."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"{device} ({torch.get_num_threads()} threads, {platform.machine()})"


def cpu_name() -> str:
    """The CPU's vendor and model, e.g. ``GenuineIntel, Intel(R) Xeon(R) Processor (family 6,
    model 207), AVX512`` (the last: the vector kernels torch dispatches to)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
                if not line.strip():  # the first processor is enough
                    break
    except OSError:
        pass
    name = ", ".join(v for v in (fields.get("vendor_id"), fields.get("model name")) if v)
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return f"{name or platform.processor() or platform.machine()}, " \
           f"{torch.backends.cpu.get_cpu_capability()}"


def provenance(device: str | torch.device = "cpu", started: _dt.datetime | None = None) -> dict:
    """The ``provenance`` block of the results contract (git, torch, device, started, ...)."""
    started = started or _dt.datetime.now(_dt.timezone.utc)
    return {
        "git": git_revision(),
        "torch": torch.__version__,
        "device": device_name(device),
        # same seed, same numbers holds on one kind of CPU; on another, BLAS picks other kernels
        # (MKL by vendor and model) and the last bits differ
        "cpu": cpu_name(),
        "started": started.isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "tlr": tlr.__version__,
        "command": " ".join(sys.argv),
        # the commit the caller says this tree is (a copy sent to another machine, whose .git,
        # if any, need not be the tree's own)
        **({"declared_commit": os.environ["TLR_GIT_REVISION"]}
           if os.environ.get("TLR_GIT_REVISION") else {}),
    }


def machine_load(load_start: float) -> dict:
    """The CPU count and the 1-minute load average at a benchmark's start and now: its
    timings depend on what else the machine ran."""
    return {"cpu_count": os.cpu_count(), "load_avg_1m_start_end": [load_start, os.getloadavg()[0]]}


def write_json(path: str | Path, data: dict) -> None:
    """Write a result JSON (its folder created if needed) and say where."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {path}")


def find_results(sub: str, start: str | Path | None = None) -> Path | None:
    """The folder ``sub`` (e.g. ``"results/ppc"``) of the repository that holds ``start``
    (default: the working directory) or one of its parents; None outside a clone (e.g. on
    Colab). To load saved runs use :mod:`tlr.results` instead, which also works in an
    installed tlr (the runs ship as package data)."""
    here = Path.cwd() if start is None else Path(start)
    for d in [here, *here.parents]:
        if (d / sub).is_dir():
            return d / sub
    return None


def short_commit(git: str) -> str:
    """A recorded ``git`` value for a table: the short hash, and whether the checkout had
    local changes (:func:`git_revision`'s suffix)."""
    rev, _, suffix = git.partition("-")
    return rev[:7] + (" + local changes" if suffix else "")


def short_command(command: str, json: str | None = "…", checkpoint_dir: str | None = "…") -> str:
    """A recorded command as one types it in a checkout: ``python -m tlr ...`` instead of the
    machine's path to ``tlr/__main__.py``, ``--models`` quoted, and the ``--json`` and
    ``--checkpoint-dir`` paths replaced by ``json`` and ``checkpoint_dir`` (None: the option is
    dropped; ``{name}`` stands for the original file name). Other absolute paths become "…"."""
    cmd = re.sub(r"^\S*tlr/__main__\.py", "python -m tlr", command)
    for flag, value in (("json", json), ("checkpoint-dir", checkpoint_dir)):
        cmd = re.sub(rf" --{flag} (\S+)", lambda m, f=flag, v=value: "" if v is None else
                     f" --{f} " + v.format(name=Path(m[1]).name), cmd)
    cmd = re.sub(r"(?<=[=\s])/\S+", "…", cmd)  # any other absolute path (e.g. a checkpoint)
    cmd = re.sub(r"--models '([^']*)'", r'--models "\1"', cmd)  # shell-quoted by a sweep
    return re.sub(r"--models ([^\"].*?)(?= --|$)", r'--models "\1"', cmd)
