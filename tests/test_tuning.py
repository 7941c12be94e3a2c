"""tlr.tuning: the learning-rate rule of the rEFH's sweeps, on synthetic run files."""

from __future__ import annotations

import json
import math

import pytest

from tlr import tuning
from tlr.sweep import load_grid


def _run(seed: int, overrides: dict, curve: list[float], mse: float) -> dict:
    epochs = [5 * (i + 1) for i in range(len(curve))]
    return {"experiment": "ppc", "preset": "paper", "seed": seed, "overrides": overrides,
            "results": {"rEFH": {"mse": mse, "train_s": 1.0}},
            "details": {"rEFH": {"curve": curve, "epochs": epochs}},
            "provenance": {"command": "python -m tlr run ppc"}}


def _curve(end: float, at60: float | None = None) -> list[float]:
    c = [10.0] * 18  # epochs 5 ... 90
    c[11] = at60 if at60 is not None else end  # epoch 60
    c[-3:] = [end] * 3
    return c


def test_m0_and_scale_round_trip():
    assert tuning.m0_of(1.0) == ",".join(f"{m:g}" for m in tuning.PAPER_M0)
    for s in (0.25, 0.5, 1.0, 2.0, 4.0):
        assert tuning.scale_of({"refh.optim.m0": tuning.m0_of(s)}) == s
    assert tuning.scale_of({}) == 1.0
    with pytest.raises(ValueError, match="must be > 0, got 0"):
        tuning.m0_of(0)


def test_the_pilot_grids_use_the_rule_scales():
    for name in ("hidden_pilot", "dynamics_pilot"):
        m0s = {s["refh.optim.m0"] for s in load_grid(name).settings() if "refh.optim.m0" in s}
        scales = {tuning.scale_of({"refh.optim.m0": m}) for m in m0s}  # powers of 2
        assert all(math.log2(x).is_integer() and abs(math.log2(x)) <= 4 for x in scales), name
        assert {tuning.m0_of(0.5), tuning.m0_of(2.0)} <= m0s, name


def test_val_score_keep_and_late_gain():
    runs = {0.5: _run(0, {}, _curve(3.0), 1.0), 1.0: _run(0, {}, _curve(2.0, 2.5), 9.0),
            2.0: _run(0, {}, _curve(2.5), 0.1)}
    assert tuning.val_score(runs[1.0]) == 2.0
    assert tuning.keep(runs) == 1.0  # validation decides, never the test MSE
    assert tuning.late_gain(runs[1.0]) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="needs 3"):
        tuning.val_score(_run(0, {}, [1.0, 2.0], 1.0))
    with pytest.raises(ValueError, match="no pilot"):
        tuning.keep({})


def test_apply_rule_on_saved_files(tmp_path, monkeypatch):
    folder = tmp_path / "ppc" / "sweepx"
    folder.mkdir(parents=True)
    base = {"lti.spring": "6"}
    files = {  # x1 without an m0 key (the dynamics grid), x1/2 and x2 with one
        "a": _run(0, base, _curve(3.0), 3e-4),
        "b": _run(0, {**base, "refh.optim.m0": tuning.m0_of(0.5)}, _curve(4.0), 4e-4),
        "c": _run(0, {**base, "refh.optim.m0": tuning.m0_of(2.0)}, _curve(2.0, 2.2), 2e-4),
        "d": _run(1, {**base, "refh.optim.m0": tuning.m0_of(2.0)}, _curve(2.0), 2.4e-4),
        "e": _run(0, {}, _curve(1.0), 1e-4),  # another point: never mixed in
    }
    for name, run in files.items():
        (folder / f"ppc_{name}.json").write_text(json.dumps(run))
    monkeypatch.setattr(tuning.results, "root", lambda: tmp_path)
    monkeypatch.setattr(tuning.results, "available", lambda pattern: sorted(
        f"ppc/sweepx/{p.stem}" for p in folder.glob("ppc_*.json")))
    monkeypatch.setattr(tuning.results, "load",
                        lambda name: json.loads((tmp_path / f"{name}.json").read_text()))
    rows, found = tuning.saved_sweeps("ppc/sweepx")
    point = tuning.apply_rule(base, rows, found)
    assert sorted(point["pilot"]) == [0.5, 1.0, 2.0]
    assert point["kept"] == 2.0 and point["at_edge"]
    assert point["rEFH"]["seeds"] == [0, 1]
    assert point["rEFH"]["mean"] == pytest.approx(2.2e-4)
    assert point["late_gain"] == pytest.approx(0.2 / 2.2) and point["length_limited"]
    assert tuning.apply_rule({}, rows, found)["kept"] == 1.0
    with pytest.raises(KeyError, match="no seed-0 run"):
        tuning.apply_rule({"lti.mass": "20"}, rows, found)
