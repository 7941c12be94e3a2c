"""tlr.analyses: the analyses behind the book's saved tables, at sizes a test can afford."""

from __future__ import annotations

import math

import pytest

from tlr.analyses import ANALYSES, harmoniums_clamped, run_analysis


def _quiet(_: str) -> None:
    pass


def test_harmoniums_clamped_is_reproducible_and_separates_the_rules():
    a = harmoniums_clamped(seed=1, n_hidden=8, n_epochs=2, log=_quiet)
    b = harmoniums_clamped(seed=1, n_hidden=8, n_epochs=2, log=_quiet)
    assert set(a["runs"]) == {"rEFH", "clamped"}
    for name, run in a["runs"].items():
        assert run["epochs"] == [1, 2] and run["updates"] == 2 * 1000
        assert all(math.isfinite(m) and m > 0 for m in run["val_mse"])
        assert run["val_mse"] == b["runs"][name]["val_mse"], f"{name}: same seed, other numbers"
    # the same initial weights and data, another rule: other numbers from the first epoch on
    assert a["runs"]["rEFH"]["val_mse"][0] != a["runs"]["clamped"]["val_mse"][0]
    assert a["order0"] == b["order0"] > 0 and a["n_hidden"] == 8 and a["seed"] == 1


def test_unknown_analysis_is_named():
    with pytest.raises(ValueError, match="'nope'.*harmoniums-clamped"):
        run_analysis("nope")
    assert "harmoniums-clamped" in ANALYSES
