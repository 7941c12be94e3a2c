"""benchmarks/gpu_estimate.py on tiny configurations: the operator and FLOP counters, the
estimate formula, fit's shaping, agreement with ``fit`` itself, and the totals of a grid."""

import importlib.util
import math
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tlr.experiments.ppc import PPC, PRESETS

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_estimate.py"
_spec = importlib.util.spec_from_file_location("gpu_estimate", _PATH)
ge = importlib.util.module_from_spec(_spec)
sys.modules["gpu_estimate"] = ge  # dataclasses look their module up there
_spec.loader.exec_module(ge)

TINY = {"refh.n_hidden": "8", "refh.n_traj": "4", "refh.T": "6", "refh.n_epochs": "2",
        "trbm.n_hidden": "8", "trbm.n_cd_steps": "2", "trbm.n_traj": "4", "trbm.T": "5",
        "trbm.n_epochs": "3", "vae.n_units": "8", "vae.n_traj": "4", "vae.T": "30",
        "vae.n_epochs": "2"}


def tiny_preset():
    p = PRESETS["paper"]
    return replace(p, refh=replace(p.refh, n_hidden=8, n_traj=4, T=6, n_epochs=2),
                   trbm=replace(p.trbm, n_hidden=8, n_cd_steps=2, n_traj=4, T=5, n_epochs=3),
                   vae=replace(p.vae, n_units=8, n_traj=4, T=30, n_epochs=2))


def test_flops_of_a_matmul_are_exact():
    a, b = torch.randn(3, 4), torch.randn(4, 5)
    assert ge.count_flops(lambda: a @ b) == 2 * 3 * 4 * 5
    assert ge.count_flops(lambda: a + 1) == 0  # element-wise: not counted


def test_ops_are_counted_and_classified():
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    c = ge.count_ops(lambda: (a + b).t())
    assert c.counts == {"aten.add.Tensor": 1, "aten.t.default": 1}
    assert c.kinds["launch"] == 1 and c.kinds["no_kernel"] == 1 and c.kinds["sync"] == 0
    s = ge.count_ops(lambda: bool(a.sum() > 0))
    assert s.kinds["sync"] == 1
    assert sum(s.counts.values()) == 3  # sum, gt, _local_scalar_dense


def test_estimate_formula():
    sec, bound = ge.gpu_update_seconds(100, 0.0, t_op_us=10.0, peak_tflops=67.0,
                                       efficiency=0.5)
    assert bound == "launch" and math.isclose(sec, 1e-3)
    sec, bound = ge.gpu_update_seconds(1, 1e12, t_op_us=10.0, peak_tflops=1.0, efficiency=0.5)
    assert bound == "flops" and math.isclose(sec, 2.0)


def test_fit_windows_shapes():
    assert len(ge.fit_windows(1000, 40, 1, None)) == 1000  # PPC rEFH: online
    assert len(ge.fit_windows(100, 400, None, 1)) == 400  # whole sequences, one per update
    assert len(ge.fit_windows(1000, 40, 10, None)) == 100  # PPC VAEs
    w = ge.fit_windows(100, 400, 10, 20)  # balls VAEs: 20 groups x 10 windows
    assert len(w) == 200 and w[:2] == [(0, 20, 0, 10), (0, 20, 10, 10)] and w[10][0] == 20


@pytest.mark.parametrize("name", ["rEFH", "TRBM", "rVAE"])
def test_measure_matches_fit(name):
    m = ge.measure(PPC, name, tiny_preset(), repeats=2, min_seconds=0.0)
    assert m["ops_total"] > 0 and m["ops_launching"] > 0
    assert m["ops_total"] == m["ops_launching"] + m["ops_no_kernel"]
    assert m["ops_fit_check"] == m["ops_total"]  # the same operators as fit dispatches
    assert m["flops"] > 0 and m["cpu_ms"] > 0 and m["cpu_timed_updates"] >= 2
    e = ge.estimate(m, t_op_us=10.0, peak_tflops=67.0, efficiency=0.5)
    per_epoch = {"rEFH": 6, "TRBM": 4, "rVAE": 3}[name]
    assert m["shaping"]["updates_per_epoch"] == per_epoch
    assert e["updates_run"] == per_epoch * m["shaping"]["n_epochs"]
    assert math.isclose(e["gpu_update_s_run"],
                        e["updates_run"] * max(m["ops_launching"] * 1e-5,
                                               m["flops"] / (67e12 * 0.5)))


def test_grid_totals(tmp_path):
    grid = tmp_path / "tiny.yaml"
    grid.write_text("experiment: ppc\npreset: paper\nmodels: [ORDER 0, rEFH, TRBM]\n"
                    "seeds: [0, 1]\nset:\n"
                    + "".join(f"  {k}: {v}\n" for k, v in TINY.items()))
    res = ge.run([grid], repeats=2, min_seconds=0.0, progress=False)
    assert set(res["models"]) == {"ppc/rEFH", "ppc/TRBM"}
    tab = res["tables"]["tiny"]
    assert tab["seeds"] == 2 and tab["baselines_saved_train_s"] == {"ORDER 0": None}
    ms = res["models"].values()
    assert math.isclose(tab["gpu_train_s"], 2 * sum(m["gpu_s_run"] for m in ms))
    assert math.isclose(tab["cpu_s"], 2 * sum(m["cpu_s_run"] for m in ms))
    assert res["models"]["ppc/rEFH"]["updates_run"] == 12
    assert set(res["gpu_h_by_gpu"]) == set(ge.GPUS)
    by_t_op = res["gpu_h_by_t_op_us"]
    assert math.isclose(by_t_op["10.0"]["tiny"], tab["gpu_h"])
    assert by_t_op["5.0"]["tiny"] < by_t_op["10.0"]["tiny"] < by_t_op["20.0"]["tiny"]
