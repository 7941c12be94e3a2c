"""The Sources appendix quotes this library's own measurements in one place (§9.5, "Measured
with this library"). It is a Markdown page, so nothing executes there: this test recomputes
every ratio that paragraph quotes from the saved runs, so that a re-run or a new run cannot
leave the appendix behind the chapters.
"""

import re
from pathlib import Path

from tlr import results

SOURCES = Path(__file__).resolve().parents[1] / "book" / "sources.md"
POSTER_RATIO = 0.0067 / 0.0120  # Table 2: the poster's rEFH over its ORDER 0


def _ratio(run: str) -> float:
    """The rEFH's one-step MSE over ORDER 0's on the run's own test set."""
    r = results.load(run)["results"]
    return r["rEFH"]["mse"] / r["ORDER 0"]["mse"]


def _measured_paragraph() -> str:
    text = SOURCES.read_text(encoding="utf-8")
    start = text.index("*Measured with this library*")
    return text[start:text.index("\n\n", start)]


def test_sources_measured_ratios_equal_the_saved_runs() -> None:
    quoted = re.findall(r"(\d+\.\d\d) ×", _measured_paragraph())
    expected = [_ratio("balls/medium_seed0"),              # 400 units, medium budget
                _ratio("balls_levers/medium_h800_seed0"),   # 800 units, medium budget
                _ratio("balls_levers/medium_h1600_seed0"),  # 1600 units, medium budget
                _ratio("balls/paper_refh_seed0"),           # 400 units, the authors' budget
                _ratio("balls/paper_refh_h800_seed0"),      # 800 units, the authors' budget
                _ratio("balls_seeds/paper_refh_h800_seed1"),  # the same, a second seed
                _ratio("balls/paper_refh_h1600_seed0"),     # 1600 units, the authors' budget
                POSTER_RATIO]
    assert quoted == [f"{x:.2f}" for x in expected]


def test_sources_measured_claims_hold() -> None:
    """The paragraph's words: 2500 units no better than 1600; none reaches the poster."""
    assert "no better with 2500" in _measured_paragraph()
    assert _ratio("balls_levers/medium_h2500_bf16_seed0") > _ratio(
        "balls_levers/medium_h1600_seed0") - 0.01
    assert "None reaches the poster" in _measured_paragraph()
    assert min(_ratio(run) for run in results.available("balls/paper_refh*_seed0")) > POSTER_RATIO
