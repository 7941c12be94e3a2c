"""The book's chapters are jupytext pairs (book/NAME.py <-> book/NAME.ipynb) listed in _toc.yml.

`jupytext --diff` exits 0 even when a pair differs, so the pair check compares the inputs here.
Fix a failure with `make sync` (after editing book/NAME.py) and re-execute the notebook.
"""

import re
from pathlib import Path

import jupytext
import pytest
import yaml
from jupytext.compare import compare_notebooks

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
TOC = ROOT / "_toc.yml"


def _book_files(pattern: str) -> list[Path]:
    return sorted(p for p in BOOK.rglob(pattern) if ".ipynb_checkpoints" not in p.parts)


CHAPTER_PY = _book_files("*.py")
CHAPTER_IPYNB = _book_files("*.ipynb")
NO_CHAPTERS = "no chapters under book/ yet (no *.py or *.ipynb)"


def _params(paths: list[Path]) -> list:
    """One param per chapter file; a single skipped param if there are none at all."""
    if not CHAPTER_PY and not CHAPTER_IPYNB:
        return [pytest.param(None, marks=pytest.mark.skip(reason=NO_CHAPTERS), id="none")]
    return [pytest.param(p, id=str(p.relative_to(ROOT))) for p in paths]


def _toc_entries() -> tuple[str, list[str]]:
    """(root, [every other `file:` entry]) of the jb-book _toc.yml, in order."""
    toc = yaml.safe_load(TOC.read_text())
    files: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(str(node["file"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return str(toc["root"]), files


def _resolve(entry: str) -> Path | None:
    """The source file Jupyter Book would use for a toc entry (extension optional)."""
    path = ROOT / entry
    if path.suffix in {".ipynb", ".md"}:
        return path if path.exists() else None
    for suffix in (".ipynb", ".md"):
        if path.with_suffix(suffix).exists():
            return path.with_suffix(suffix)
    return None


@pytest.mark.parametrize("py", _params(CHAPTER_PY))
def test_py_has_paired_ipynb_with_same_inputs(py: Path):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"{py.name} has no paired {ipynb.name}: run `make sync`"
    compare_notebooks(
        jupytext.read(ipynb),
        jupytext.read(py),
        fmt="py:percent",
        allow_expected_differences=True,
        compare_outputs=False,
    )


@pytest.mark.parametrize("ipynb", _params(CHAPTER_IPYNB))
def test_ipynb_has_paired_py(ipynb: Path):
    py = ipynb.with_suffix(".py")
    assert py.exists(), (
        f"{ipynb.name} has no paired {py.name}: run `jupytext --set-formats ipynb,py:percent`"
    )


@pytest.mark.parametrize("ipynb", _params(CHAPTER_IPYNB))
def test_ipynb_has_committed_outputs(ipynb: Path):
    """`make test` renders the committed outputs, so every chapter must be committed executed."""
    nb = jupytext.read(ipynb)
    unrun = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        and cell.source.strip()
        and "skip-execution" not in cell.metadata.get("tags", [])
        and cell.get("execution_count") is None
    ]
    assert not unrun, (
        f"{ipynb.name}: code cells {unrun} were never executed; "
        f"run `jupyter execute --inplace {ipynb.relative_to(ROOT)}`"
    )


def test_scorecard_lists_every_saved_run():
    """The scorecard lists every saved run: re-executed whenever a result file is added."""
    from tlr import results

    nb = jupytext.read(BOOK / "scorecard.ipynb")
    text = "\n".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells for o in c.get("outputs", []))
    shown = re.findall(r"(\d+) saved runs \(tlr\.results\)", text)
    assert len(shown) == 1, "the scorecard prints its count of saved runs once"
    assert int(shown[0]) == len(results.available()), (
        f"book/scorecard.ipynb was executed with {shown[0]} saved runs, results/ has "
        f"{len(results.available())}: re-execute it (jupyter execute --inplace) and sync the pair")


def test_toc_root_exists():
    root, _ = _toc_entries()
    assert _resolve(root) is not None, f"_toc.yml root {root!r} has no .md/.ipynb"


def _toc_chapter_params() -> list:
    if not CHAPTER_PY and not CHAPTER_IPYNB:
        return [pytest.param(None, marks=pytest.mark.skip(reason=NO_CHAPTERS), id="none")]
    return [pytest.param(entry, id=entry) for entry in _toc_entries()[1]]


@pytest.mark.parametrize("entry", _toc_chapter_params())
def test_toc_chapter_exists(entry: str):
    assert _resolve(entry) is not None, f"_toc.yml lists {entry!r} but no .ipynb/.md exists"


@pytest.mark.parametrize("ipynb", _params(CHAPTER_IPYNB))
def test_ipynb_listed_in_toc(ipynb: Path):
    root, files = _toc_entries()
    listed = {str(Path(e).with_suffix("")) for e in [root, *files]}
    name = str(ipynb.relative_to(ROOT).with_suffix(""))
    assert name in listed, f"{name} is not in _toc.yml (only_build_toc_files hides it)"
