"""Committed notebooks show what the current saved results give.

The book renders the committed outputs (it does not re-execute), and nbval checks only that
cells run. The scorecard lists every saved run, so its outputs go stale whenever a result file
is added or removed without re-executing it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tlr import results

BOOK = Path(__file__).resolve().parents[1] / "book"


def _text_outputs(notebook: Path) -> str:
    nb = json.loads(notebook.read_text())
    texts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            texts.append("".join(out.get("text", "")))
            texts.append("".join(out.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


def test_scorecard_lists_every_saved_run():
    text = _text_outputs(BOOK / "scorecard.ipynb")
    shown = re.findall(r"(\d+) saved runs \(tlr\.results\)", text)
    assert len(shown) == 1, "the scorecard prints its count of saved runs once"
    assert int(shown[0]) == len(results.available()), (
        f"book/scorecard.ipynb was executed with {shown[0]} saved runs, results/ has "
        f"{len(results.available())}: re-execute it (jupyter execute --inplace) and sync the pair")
