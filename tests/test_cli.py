"""``python -m tlr run``: the results JSON contract, the table, and exit code 2 on bad names."""

import datetime as dt
import json
import math
import re
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


def test_diverged_model_is_reported_and_others_kept(tmp_path, capsys):
    """A real divergence (the rEFH at lr 1e3 blows up within a few online updates): the error
    names the epoch and step, the model is listed under "failed", the others still run."""
    path = tmp_path / "r.json"
    code = main(["run", "ppc", "--models", "rEFH,ORDER 0", *SMALL,
                 "--set", "refh.optim.lr=1e3", "--json", str(path)])
    assert code == 1
    out = json.loads(path.read_text())
    assert list(out["results"]) == ["ORDER 0"]
    assert list(out["failed"]) == ["rEFH"]
    assert re.match(r"training diverged at epoch 1, step \d+: ", out["failed"]["rEFH"])
    assert f"rEFH: FAILED ({out['failed']['rEFH']})" in capsys.readouterr().out


def test_apply_overrides_rebuilds_a_saved_runs_preset():
    from tlr.cli import apply_overrides
    from tlr.experiments.balls import PRESETS

    p = apply_overrides(PRESETS["medium"], {"harmonium.n_epochs": "100", "eval_every": "20"})
    assert p.harmonium.n_epochs == 100 and p.eval_every == 20
    assert p.harmonium.n_seq == PRESETS["medium"].harmonium.n_seq
    with pytest.raises(ValueError, match="valid keys"):
        apply_overrides(PRESETS["medium"], {"nope": "1"})


# ------------------------------------------------------------------ --set: apply_overrides


def test_apply_overrides_nested_optimiser_fields():
    from tlr.experiments.balls import PRESETS
    from tlr.experiments.common import apply_overrides

    base = PRESETS["medium"]
    p = apply_overrides(base, {"harmonium.optim.name": "adam",
                               "harmonium.optim.m0": "50,12.5,50,50,12.5",
                               "harmonium.optim.lr": "3e-3"})
    assert p.harmonium.optim.name == "adam" and p.harmonium.optim.lr == 3e-3
    assert p.harmonium.optim.m0 == (50, 12.5, 50, 50, 12.5)
    assert type(p.harmonium.optim.m0[1]) is float and p.harmonium.optim.m0[1] == 12.5  # kept
    assert p.harmonium.n_hidden == base.harmonium.n_hidden and p.vae == base.vae  # untouched
    assert base.harmonium.optim.name != "adam"  # the preset itself is frozen, not edited
    assert p.name == base.name


def test_apply_overrides_types_and_none():
    from tlr.experiments.common import apply_overrides
    from tlr.experiments.mnist import PRESETS

    q = PRESETS["quick"]
    assert q.vae.n_train is None
    assert apply_overrides(q, {"vae.n_train": "500"}).vae.n_train == 500
    assert apply_overrides(q, {"vae.n_train": "none"}).vae.n_train is None
    assert apply_overrides(q, {"vae.channels": "4,8"}).vae.channels == (4, 8)
    assert apply_overrides(q, {"device": "auto"}).device == "auto"


# The messages name the key; a nested one may be named by its last part or in full (the
# dotted prefix is optional in the patterns below).
@pytest.mark.parametrize("key,raw,match", [
    ("name", "x", r"bad --set key 'name'"),  # the preset's own name is its identity
    ("bogus", "1", r"bad --set key 'bogus'"),
    ("harmonium.bogus", "1", r"bad --set key '(harmonium\.)?bogus'"),
    ("harmonium.optim.bogus", "1", r"bad --set key '(harmonium\.optim\.)?bogus'"),
    ("harmonium.optim.name", "rmsprop",
     r"--set (harmonium\.optim\.)?name=rmsprop: unknown optimiser 'rmsprop'"),
    ("harmonium.optim.lr", "fast", r"--set (harmonium\.optim\.)?lr expects float, got 'fast'"),
    ("harmonium.optim.m0", "50,x,50,50,12",
     r"--set (harmonium\.optim\.)?m0 expects int, got 'x'"),
    ("harmonium.n_hidden", "many", r"--set (harmonium\.)?n_hidden expects int, got 'many'"),
    ("harmonium.optim", "adam", r"--set (harmonium\.)?optim: set one of its fields instead"),
    ("T.x", "1", r"--set T\.x: T has no sub-fields"),
    ("harmonium.optim.decay", "0",
     r"--set (harmonium\.optim\.)?decay=0: lr and decay must be > 0"),
])
def test_apply_overrides_bad_keys_and_values(key, raw, match):
    from tlr.experiments.balls import PRESETS
    from tlr.experiments.common import apply_overrides

    with pytest.raises(ValueError, match=match) as e:
        apply_overrides(PRESETS["medium"], {key: raw})
    if key == "name":
        valid = str(e.value).split("valid keys here: ")[1].split(", ")
        assert "name" not in valid and "harmonium" in valid and "T" in valid


def test_apply_overrides_none_field_rejects_text():
    from tlr.experiments.common import apply_overrides
    from tlr.experiments.mnist import PRESETS

    with pytest.raises(ValueError, match=r"--set (vae\.)?n_train expects a number or none"):
        apply_overrides(PRESETS["quick"], {"vae.n_train": "lots"})


# ------------------------------------------------------------------ --threads, --device


def _record_threads(monkeypatch):
    """Wrap PPC.baseline to record the torch thread count inside the run."""
    from tlr.experiments.ppc import PPC

    seen = []
    original = PPC.baseline

    def baseline(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(PPC, "baseline", baseline)
    return seen


@pytest.mark.parametrize("outside,flag,want", [(1, ["--threads", "2"], 2), (2, [], 1)])
def test_threads_are_used_and_recorded(tmp_path, monkeypatch, outside, flag, want):
    seen = _record_threads(monkeypatch)
    old = torch.get_num_threads()
    torch.set_num_threads(outside)
    try:
        out = _run_json(tmp_path, "--preset", "quick", "--models", "ORDER 0", *SMALL, *flag)
        assert torch.get_num_threads() == outside  # restored after the run
    finally:
        torch.set_num_threads(old)
    assert seen == [want]  # what torch really used inside the run
    prov = out["provenance"]
    assert prov["threads"] == want
    assert prov["device"].startswith(f"cpu ({want} threads")


def test_bad_threads_and_devices(capsys):
    code, err = _exit_code(["run", "ppc", "--models", "ORDER 0", "--threads", "0"], capsys)
    assert code == 2 and "--threads must be >= 1, got 0" in err
    code, err = _exit_code(["run", "ppc", "--models", "ORDER 0", "--device", "tpu"], capsys)
    assert code == 2 and "invalid choice: 'tpu'" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_usage_error(capsys):
    code, err = _exit_code(["run", "ppc", "--models", "ORDER 0", "--device", "cuda"], capsys)
    assert code == 2
    assert "device 'cuda' requested but CUDA is not available" in err
    # "auto" falls back to the CPU
    assert main(["run", "ppc", "--models", "ORDER 0", *SMALL, "--device", "auto"]) == 0


def test_progress_of_checkpointed_runs(tmp_path, capsys):
    """``run --checkpoint-dir`` then ``progress DIR``: one row per model, its epochs of the
    run's total, its updates and validation points."""
    ck = tmp_path / "ck"
    _run_json(tmp_path, "--models", "rEFH,TRBM", *SMALL, "--set", "refh.n_epochs=2",
              "--set", "refh.n_traj=4", "--set", "trbm.n_epochs=2", "--set", "trbm.n_traj=10",
              "--checkpoint-dir", str(ck))
    capsys.readouterr()
    assert main(["progress", str(ck)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["checkpoint", "epoch", "updates", "trained", "per", "epoch",
                                "left", "validation"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert sorted(rows) == ["ppc_quick_seed0_TRBM.pt", "ppc_quick_seed0_rEFH.pt"]
    assert all(r[1] == "2/2" and r[7:9] == ["0", "s"] for r in rows.values())  # done: none left
    assert rows["ppc_quick_seed0_TRBM.pt"][-2] == "2:"  # the last validation point: the last epoch


def test_progress_durations():
    from tlr.cli import _duration

    assert [_duration(s) for s in (None, 6.7, 89, 90, 599, 600, 5399, 5400, 40_000)] == [
        "?", "7 s", "89 s", "1.5 min", "10.0 min", "10 min", "90 min", "1.5 h", "11.1 h"]


@pytest.mark.parametrize("args, match", [
    (["progress", "{tmp}/missing"], "no such checkpoint or folder"),
    (["progress", "{tmp}/empty"], "no checkpoint (*.pt) in the folder"),
    (["progress", "{tmp}/bad.pt"], "is not a checkpoint written by tlr.train.fit"),
    (["progress", "{tmp}/bad.pt", "--epochs", "0"], "--epochs must be >= 1, got 0"),
])
def test_progress_bad_paths(tmp_path, capsys, args, match):
    (tmp_path / "bad.pt").write_text("not torch")
    (tmp_path / "empty").mkdir()
    code, err = _exit_code([a.format(tmp=tmp_path) for a in args], capsys)
    assert code == 2 and match in err
