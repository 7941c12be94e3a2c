"""``python -m tlr run``: the results JSON contract, the table, and exit code 2 on bad names."""

import datetime as dt
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tlr.cli import main
from tlr.experiments import ppc as exp

CONTRACT = {"experiment", "preset", "seed", "results", "provenance"}
SMALL = ["--set", "n_test=8", "--set", "T_test=300"]



def _run_json(tmp_path: Path, *args: str, name: str = "out.json") -> dict:
    path = tmp_path / name
    assert main(["run", "ppc", *args, "--json", str(path)]) == 0
    return json.loads(path.read_text())


def test_json_contract_and_table(tmp_path, capsys):
    out = _run_json(tmp_path / "sub", "--models", "ORDER 0,KF-true", name="r.json")
    assert CONTRACT <= set(out)
    assert out["experiment"] == "ppc" and out["preset"] == "quick" and out["seed"] == 0
    assert list(out["results"]) == ["ORDER 0", "KF-true"]
    for model, r in out["results"].items():
        assert {"mse", "train_s"} <= set(r), model
        assert type(r["mse"]) is float and math.isfinite(r["mse"]) and r["mse"] > 0
        assert type(r["train_s"]) is float and r["train_s"] >= 0
    assert abs(out["results"]["ORDER 0"]["mse"] - 1.19e-3) < 0.08 * 1.19e-3
    assert out["results"]["KF-true"]["mse"] < out["results"]["ORDER 0"]["mse"]
    prov = out["provenance"]
    assert {"git", "torch", "device", "started"} <= set(prov)
    assert prov["torch"] == torch.__version__
    assert isinstance(prov["git"], str) and prov["git"]
    assert prov["device"].startswith("cpu")
    started = dt.datetime.fromisoformat(prov["started"])
    assert started.tzinfo is not None
    assert abs((dt.datetime.now(dt.timezone.utc) - started).total_seconds()) < 600

    printed = capsys.readouterr().out
    lines = printed.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["model", "MSE"])
    rows = lines[header + 1:header + 3]
    assert rows[0].startswith("ORDER 0") and rows[1].startswith("KF-true")
    assert float(rows[0].split()[2]) == pytest.approx(out["results"]["ORDER 0"]["mse"], rel=1e-3)
    assert "wrote" in printed


def test_no_json_still_prints(capsys):
    assert main(["run", "ppc", "--models", "ORDER 0", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "ORDER 0" in out and "MSE" in out and "wrote" not in out


def _exit_code(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code, capsys.readouterr().err


def test_unknown_experiment(capsys):
    code, err = _exit_code(["run", "nope"], capsys)
    assert code == 2
    assert "unknown experiment 'nope'" in err and "ppc" in err


def test_unknown_preset(capsys):
    code, err = _exit_code(["run", "ppc", "--preset", "huge"], capsys)
    assert code == 2
    assert "unknown preset 'huge'" in err
    for name in exp.PRESETS:
        assert name in err


@pytest.mark.parametrize("models", ["KF-3", "ORDER 0,kf-true", ",", " "])
def test_unknown_model(models, capsys):
    code, err = _exit_code(["run", "ppc", "--models", models], capsys)
    assert code == 2
    assert "unknown model" in err
    for name in ("ORDER 0", "KF-1", "KF-2", "KF-true"):
        assert name in err


def test_negative_seed(capsys):
    code, err = _exit_code(["run", "ppc", "--seed", "-1", "--models", "ORDER 0"], capsys)
    assert code == 2 and "--seed must be >= 0" in err


def test_set_override(tmp_path):
    out = _run_json(tmp_path, "--models", "KF-1", "--set", "em_max_iter=3", *SMALL)
    assert out["details"]["KF-1"]["em_iterations"] <= 3
    assert out["overrides"] == {"em_max_iter": "3", "n_test": "8", "T_test": "300"}
    assert math.isfinite(out["results"]["KF-1"]["mse"])


@pytest.mark.parametrize(
    "pair, match",
    [
        ("bogus=1", "valid keys"),
        ("name=x", "valid keys"),
        ("em_max_iter", "KEY=VALUE"),
        ("em_max_iter=abc", "expects int"),
        ("em_tol=fast", "expects float"),
        ("lti=1", "lti.dt"),  # a nested config: lists its fields
        ("lti.bogus=1", "valid keys"),
        ("ppc.n_neurons=1", "n_neurons must be >= 2"),  # the config's own validation
    ],
)
def test_bad_set(pair, match, capsys):
    code, err = _exit_code(["run", "ppc", "--models", "ORDER 0", "--set", pair], capsys)
    assert code == 2
    assert match in err
    if pair in ("bogus=1", "name=x"):
        for key in ("n_test", "T_test", "n_train", "T_train", "em_max_iter", "em_tol"):
            assert key in err
    if pair == "lti.bogus=1":
        for key in ("dt", "mass", "process_var"):
            assert key in err


def test_same_seed_same_numbers(tmp_path):
    args = ["--models", "ORDER 0,KF-true", *SMALL]
    a = _run_json(tmp_path, "--seed", "3", *args, name="a.json")
    b = _run_json(tmp_path, "--seed", "3", *args, name="b.json")
    c = _run_json(tmp_path, "--seed", "4", *args, name="c.json")
    for m in ("ORDER 0", "KF-true"):
        assert a["results"][m]["mse"] == b["results"][m]["mse"]
        assert a["results"][m]["mse"] != c["results"][m]["mse"]
    assert a["seed"] == 3 and c["seed"] == 4


def test_module_entry_point_exit_code(tmp_path):
    """``python -m tlr`` in a fresh process exits 2 and lists the valid names (stderr)."""
    bad = subprocess.run([sys.executable, "-m", "tlr", "run", "ppc", "--models", "KF-9"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert bad.returncode == 2
    assert "unknown model" in bad.stderr
    assert "KF-true" in bad.stderr and "ORDER 0" in bad.stderr
    assert bad.stdout == ""


def test_nested_set_override(tmp_path):
    out = _run_json(tmp_path, "--models", "ORDER 0", "--set", "ppc.gain_max=12.8", *SMALL)
    base = _run_json(tmp_path, "--models", "ORDER 0", *SMALL, name="base.json")
    assert out["overrides"]["ppc.gain_max"] == "12.8"
    # A higher gain means more spikes and a better static readout.
    assert out["results"]["ORDER 0"]["mse"] < base["results"]["ORDER 0"]["mse"]


def test_diverged_model_is_reported_and_others_kept(tmp_path, monkeypatch, capsys):
    def diverges(preset, seed, test, opts):
        raise FloatingPointError("training diverged at epoch 3, step 7: loss is nan")

    monkeypatch.setitem(exp.MODELS, "boom", diverges)
    path = tmp_path / "r.json"
    code = main(["run", "ppc", "--models", "boom,ORDER 0", *SMALL, "--json", str(path)])
    assert code == 1
    out = json.loads(path.read_text())
    assert list(out["results"]) == ["ORDER 0"]
    assert out["failed"] == {"boom": "training diverged at epoch 3, step 7: loss is nan"}
    assert "boom: FAILED (training diverged at epoch 3, step 7" in capsys.readouterr().out


def test_apply_overrides_rebuilds_a_saved_runs_preset():
    from tlr.cli import apply_overrides
    from tlr.experiments.balls import PRESETS

    p = apply_overrides(PRESETS["medium"], {"harmonium.n_epochs": "100", "eval_every": "20"})
    assert p.harmonium.n_epochs == 100 and p.eval_every == 20
    assert p.harmonium.n_seq == PRESETS["medium"].harmonium.n_seq
    with pytest.raises(ValueError, match="valid keys"):
        apply_overrides(PRESETS["medium"], {"nope": "1"})
