"""``python -m tlr bench bptt``: JSON schema, finite timings, memory flat in T for the local
rules and growing for BPTT, the streamed rVAE update's gradient, the worker process, the CLI."""

import json
import math

import pytest
import torch

from tlr import cli
from tlr.bench import (
    MODES,
    PAIRS,
    _measure_isolated,
    build_update,
    format_bptt_table,
    run_bptt,
    rvae_local_update,
)
from tlr.models.rvae import RVAE, RVAEConfig

TS = (5, 20)
BATCH = 16


@pytest.fixture(scope="module")
def result():
    return run_bptt(T=TS, batch=BATCH, repeats=1, isolate=False)


def test_schema(result):
    assert set(result) == {"T", "pairs", "details", "provenance"}
    assert result["T"] == list(TS)
    assert set(result["pairs"]) == {"rVAE", "rEFH"}
    for pair in result["pairs"].values():
        assert set(pair) == {"local", "bptt"}
        for series in pair.values():
            assert set(series) == {"ms", "peak_mb"}
            for values in series.values():
                assert len(values) == len(TS)
                assert all(type(v) is float and math.isfinite(v) and v > 0 for v in values)
    assert set(result["details"]) == set(MODES)
    prov = result["provenance"]
    assert {"git", "torch", "device", "started", "batch", "threads", "repeats",
            "memory_method"} <= set(prov)
    assert prov["batch"] == BATCH and prov["repeats"] == 1 and prov["threads"] == 1
    json.dumps(result)  # serialisable as is
    table = format_bptt_table(result).splitlines()
    assert len(table) == 2 + len(TS) and table[2].split()[0] == str(TS[0])


def test_local_memory_flat_bptt_grows(result):
    for name, pair in result["pairs"].items():
        local, bptt = pair["local"]["peak_mb"], pair["bptt"]["peak_mb"]
        assert local[-1] <= 1.1 * local[0], (name, local)
        assert bptt[-1] >= 2.0 * bptt[0], (name, bptt)  # T grows 4x
    batched = result["details"]["rVAE local (batched)"]["peak_mb"]
    assert batched[-1] >= 2.0 * batched[0]  # the library's batched local path is O(T)


def test_streamed_rvae_update_equals_sequence_loss_gradient(monkeypatch):
    y = torch.poisson(torch.full((6, 3, 15), 1.5), generator=torch.Generator().manual_seed(0))
    a = RVAE(RVAEConfig(n_units=16), generator=torch.Generator().manual_seed(0))
    b = RVAE(RVAEConfig(n_units=16), generator=torch.Generator().manual_seed(0))
    for m in (a, b):  # the same (zero) noise on both paths
        monkeypatch.setattr(m, "_noise", lambda shape, like, g: torch.zeros(shape))
    opt = torch.optim.SGD(a.parameters(), lr=0.0)
    rvae_local_update(a, opt, y)
    loss, _ = b.sequence_loss(y, b.initial_state(3))
    loss.backward()
    for (n, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.allclose(pa.grad, pb.grad, rtol=1e-5, atol=1e-6), n
    with pytest.raises(ValueError, match="bptt=False"):
        rvae_local_update(RVAE(RVAEConfig(bptt=True)), opt, y)


def test_isolated_point_reports_rss():
    p = _measure_isolated("rEFH", 5, batch=4, repeats=1, device="cpu", threads=1, seed=0)
    assert {"ms", "ms_all", "peak_mb", "rss_growth_mb"} <= set(p)
    assert p["ms"] > 0 and p["peak_mb"] > 0 and p["rss_growth_mb"] >= 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown mode"):
        build_update("LSTM")
    with pytest.raises(ValueError, match="T must be"):
        run_bptt(T=[], isolate=False)
    with pytest.raises(ValueError, match="missing"):
        run_bptt(T=[5], modes=["rVAE"], isolate=False)
    assert set(PAIRS) == {"rVAE", "rEFH"}


@pytest.mark.parametrize("argv", [["bench", "nope"], ["bench", "bptt", "--T", "5,x"],
                                  ["bench", "bptt", "--T", "0"],
                                  ["bench", "bptt", "--repeats", "0"]])
def test_cli_rejects_bad_input_with_exit_code_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    if argv[1] == "nope":
        assert "valid: bptt" in capsys.readouterr().err


def test_cli_writes_json(tmp_path, monkeypatch, capsys):
    def fast(**kw):  # in-process, tiny: the plumbing is what is tested here
        return run_bptt(**{**kw, "batch": 4, "repeats": 1}, isolate=False,
                        modes=[m for m in MODES if m != "TRBM"])

    monkeypatch.setitem(cli.BENCHMARKS, "bptt", fast)
    path = tmp_path / "sub" / "bptt.json"
    assert cli.main(["bench", "bptt", "--T", "3,4", "--json", str(path)]) == 0
    out = json.loads(path.read_text())
    assert out["T"] == [3, 4] and set(out["pairs"]) == {"rVAE", "rEFH"}
    assert "rVAE local" in capsys.readouterr().out
