"""Each chapter's first code cell installs tlr under Colab only, and never pins torch.

Colab preinstalls torch; pinning it (or anything heavy) is the most common way tutorial
notebooks break there. Expected shape (plain Python, so book/NAME.py still runs as a script):

    import subprocess, sys
    if "google.colab" in sys.modules:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                        "tlr @ git+https://github.com/tlr-book/tlr"], check=True)
"""

import ast
import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.py"))
INSTALL_SPEC = "tlr @ git+https://github.com/tlr-book/tlr"
# extras allowed, e.g. "tlr[sweep] @ git+..." for the chapter that runs sweeps
INSTALL_RE = re.compile(r"\btlr(\[[\w,]+\])? @ git\+https://github\.com/tlr-book/tlr\b")


def _first_code_cell(path: Path) -> str:
    nb = jupytext.read(path)
    code = [c.source for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert code, f"{path.name} has no code cell"
    return code[0]


def _is_colab_guard(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "google.colab" in ast.unparse(node.test)


@pytest.mark.parametrize(
    "chapter",
    [pytest.param(p, id=p.name) for p in CHAPTERS]
    or [pytest.param(None, marks=pytest.mark.skip(reason="no book/*.py chapters yet"))],
)
def test_first_cell_installs_tlr_only_under_colab(chapter: Path):
    src = _first_code_cell(chapter)
    assert "google.colab" in src, f"{chapter.name}: first code cell has no google.colab check"
    assert re.search(r"\bpip\b", src) and "install" in src, f"{chapter.name}: no pip install"
    assert INSTALL_RE.search(src), f"{chapter.name}: first code cell does not install tlr"

    # Plain Python (no %pip magic, which jupytext comments out in the .py), and the
    # install spec appears only inside the `if "google.colab" in sys.modules:` body.
    tree = ast.parse(src)
    guarded = {
        id(n) for g in ast.walk(tree) if _is_colab_guard(g) for s in g.body for n in ast.walk(s)
    }
    specs = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and INSTALL_RE.search(n.value)
    ]
    assert specs, f"{chapter.name}: the tlr install spec must be a string literal"
    assert all(id(n) in guarded for n in specs), (
        f"{chapter.name}: pip install of tlr runs outside the google.colab guard"
    )


@pytest.mark.parametrize(
    "chapter",
    [pytest.param(p, id=p.name) for p in CHAPTERS]
    or [pytest.param(None, marks=pytest.mark.skip(reason="no book/*.py chapters yet"))],
)
def test_first_cell_does_not_pin_torch(chapter: Path):
    src = _first_code_cell(chapter)
    # No install argument naming torch at all: Colab's own torch must be used as is.
    assert not re.search(r"""["'\s]torch(vision|audio)?\s*(==|~=|>=|<=|!=|<|>|@|["'])""", src), (
        f"{chapter.name}: first code cell pins or installs torch"
    )
