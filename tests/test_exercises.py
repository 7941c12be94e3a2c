"""The chapters' exercises (tlr.exercises, tools/): checks that cannot be vacuous.

For every chapter with exercises:
(a) the instructor notebook (setup cells + exercises with their solutions) runs top to bottom in
    a fresh kernel, and every public and hidden check passes;
(b) with the student stubs, every check fails (a check that passes on a stub checks nothing);
(c) the student notebook runs top to bottom in a fresh kernel, the failing checks reporting ✗
    instead of raising.
Plus the static layout: stubs hide the solutions, the Colab cell comes first, no outputs, and the
exercise table of book/instructors.md matches the chapters.
"""

import re
import sys
from pathlib import Path

import jupytext
import pytest

from tlr import exercises

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))  # tools/ is scripts, not a package
import assignments  # noqa: E402
import exercise_notebooks as notebooks  # noqa: E402

CHAPTERS = assignments.chapters()
PARAMS = [pytest.param(p, id=p.stem) for p in CHAPTERS] or [
    pytest.param(None, marks=pytest.mark.skip(reason="no chapter has exercises"))]


def _notebooks(path: Path):
    nb = jupytext.read(path)
    return (nb, notebooks.student_notebook(nb, path.stem),
            notebooks.instructor_notebook(nb, path.stem))


def _errors(nb) -> list[str]:
    return [f"{o['ename']}: {o['evalue']}" for c in nb.cells for o in c.get("outputs", [])
            if o.get("output_type") == "error"]


def _graded(nb) -> dict:
    return {ex["label"]: ex for ex in notebooks.parse_exercises(nb) if ex["graded"]}


@pytest.mark.parametrize("path", PARAMS)
def test_layout(path: Path):
    nb, student, instructor = _notebooks(path)
    exs = notebooks.parse_exercises(nb)
    assert 3 <= len(exs) <= 5, f"{path.name}: {len(exs)} exercises (3-5 per chapter)"
    first = next(c.source for c in nb.cells if c.cell_type == "code" and c.source.strip())
    for version in (student, instructor):
        code = [c for c in version.cells if c.cell_type == "code"]
        assert code[0].source == first, "the Colab install cell must come first"
        assert all(not c.outputs and c.execution_count is None for c in code), "outputs left"
    text = "\n".join(c.source for c in student.cells)
    assert all(nb.cells[i].source not in text for ex in exs for i in ex["hidden"])
    assert "{solution" not in text and "{exercise}" not in text, "MyST left in the student notebook"
    block = re.compile(r"# BEGIN SOLUTION\n(.*?)# END SOLUTION", re.S)
    outside = "\n".join(block.sub("", c.source) for c in nb.cells)
    for ex in exs:  # no line of a solution block survives in the student notebook
        for i in ex["solution_cells"]:
            for solution in block.findall(nb.cells[i].source):
                for line in filter(None, (ln.strip() for ln in solution.split("\n"))):
                    assert line not in text or line in outside, f"{ex['label']}: {line!r} leaked"


@pytest.mark.parametrize("path", PARAMS)
def test_solutions_pass_every_check(path: Path, tmp_path: Path):
    nb, _, instructor = _notebooks(path)
    graded = _graded(nb)
    ran, results = exercises.execute(exercises.with_checks(instructor, instructor),
                                     allow_errors=False, cwd=str(tmp_path))
    assert not _errors(ran)
    for label, ex in graded.items():
        mine = [r for r in results if r["name"] == label]
        assert len(mine) == len(ex["public"]) + len(ex["hidden"]), (label, mine)
        assert all(r["passed"] for r in mine), (label, [r["message"] for r in mine])


@pytest.mark.parametrize("path", PARAMS)
def test_student_notebook_runs_and_every_stub_fails(path: Path, tmp_path: Path):
    nb, student, instructor = _notebooks(path)
    graded = _graded(nb)
    # The student notebook as handed out (its own public checks), plus the hidden checks.
    ran, results = exercises.execute(exercises.with_checks(student, instructor,
                                                           replace_public=False),
                                     allow_errors=False, cwd=str(tmp_path))
    assert not _errors(ran)
    for label, ex in graded.items():
        mine = [r for r in results if r["name"] == label]
        assert len(mine) == len(ex["public"]) + len(ex["hidden"]), (label, mine)
        passed = [r for r in mine if r["passed"]]
        assert not passed, f"{label}: a check passes on the stub, so it checks nothing"
    printed = "".join(o.get("text", "") for c in ran.cells if "check" in c.metadata.get("tags", [])
                      for o in c.outputs)
    assert printed.count("✗") == len(graded), printed


def test_check_modes():
    exercises.set_mode("report")
    try:
        assert exercises.check("demo", lambda: None) is True
        assert exercises.check("demo", lambda: 1 / 0) is False
        assert exercises.results()[-1]["message"] == "ZeroDivisionError: division by zero"
    finally:
        exercises.set_mode("raise")
    with pytest.raises(exercises.ExerciseCheckFailed, match="demo: went wrong"):
        exercises.check("demo", _fail)


def _fail():
    raise AssertionError("went wrong")


def test_stub():
    src = "def f(x):\n    '''doc'''\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION\n"
    assert "return 2 * x" not in notebooks.stub(src, "q")
    assert 'raise NotImplementedError("exercise q")' in notebooks.stub(src, "q")
    top = "# BEGIN SOLUTION\nanswer = 42\n# END SOLUTION\nprint(1)"
    assert notebooks.stub(top, "q") == "# Your code here.\nprint(1)"


def test_instructors_page_lists_every_exercise():
    text = assignments.PAGE.read_text()
    assert assignments.page_table(text) == assignments.exercise_table(), (
        "book/instructors.md is out of date: run python tools/assignments.py --update-page")
