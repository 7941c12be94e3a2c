"""The checks of the book's exercises, and the grading of students' notebooks.

A chapter's exercises (book/NAME.py; the authoring convention is in tools/exercise_notebooks.py
and book/instructors.md) end with check cells::

    @check("why-bptt-adjoint")            # or @check("why-bptt-adjoint", hidden=True)
    def _():
        assert ..., "what is wrong, in words"

:func:`check` runs the function at once. In the default mode ("raise", the book and the tests) a
failure raises, so the book build fails; in "report" mode (student notebooks, grading) it prints
``✗ label: ...`` and the notebook carries on. The mode can also be set with the environment
variable ``TLR_EXERCISES_MODE``. ``make assignments`` writes the student notebooks and the
instructor notebooks (the keys), and ``python -m tlr.exercises grade SUBMISSION --key KEY``
grades a submission against its key: public and hidden checks, in a fresh kernel.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["ExerciseCheckFailed", "check", "set_mode", "results", "reset", "summary", "grade"]

MODES = ("raise", "report")
_mode = os.environ.get("TLR_EXERCISES_MODE", "raise")
_results: list[dict] = []
RESULTS_MARK = "<<tlr-exercises-results>>"


class ExerciseCheckFailed(AssertionError):
    """A check failed in "raise" mode."""


def set_mode(mode: str) -> None:
    """"raise": a failing check raises (book, tests); "report": it prints ✗ and returns."""
    global _mode
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    _mode = mode


def reset() -> None:
    _results.clear()


def results() -> list[dict]:
    """Every check run in this kernel: {"name", "hidden", "passed", "message"}, in order."""
    return [dict(r) for r in _results]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, NotImplementedError):
        return "not done yet (NotImplementedError): fill in the exercise's code cell and run it"
    if isinstance(exc, NameError):
        return f"{exc} (run the exercise's code cell, above this check, first)"
    text = str(exc).strip() or "(no message)"
    return text if isinstance(exc, AssertionError) else f"{type(exc).__name__}: {text}"


def check(name: str, fn: Callable[[], object] | None = None, *, hidden: bool = False):
    """Run ``fn()`` now as the check ``name``; usable as ``@check(name)`` on a function.

    Prints ``✓ name: passed`` or ``✗ name: reason``, records the result (see :func:`results`),
    and returns whether it passed; in "raise" mode a failure raises ExerciseCheckFailed.
    """
    if fn is None:
        return lambda f: check(name, f, hidden=hidden)
    what = f"hidden check {name}" if hidden else name
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 -- any error in student code is a failed check
        message = _describe(exc)
        _results.append({"name": name, "hidden": hidden, "passed": False, "message": message})
        print(f"✗ {what}: {message}")
        if _mode == "raise":
            raise ExerciseCheckFailed(f"{what}: {message}") from exc
        return False
    _results.append({"name": name, "hidden": hidden, "passed": True, "message": ""})
    print(f"✓ {what}: passed")
    return True


def summary() -> None:
    """Print the latest public result of each exercise checked in this kernel."""
    latest = {r["name"]: r for r in _results if not r["hidden"]}
    for name, r in latest.items():
        print(f"{'✓' if r['passed'] else '✗'} {name}")
    print(f"{sum(r['passed'] for r in latest.values())} of {len(latest)} checks pass")


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


# --- Grading ---

def with_checks(submission, key, replace_public: bool = True):
    """The submission with report mode on, the key's checks appended and the results printed."""
    import nbformat

    nb = copy.deepcopy(submission)
    if replace_public:  # the key's public checks, not a possibly edited copy
        nb.cells = [c for c in nb.cells if not {"check", "hidden-check"} & set(_tags(c))]
    kinds = {"check", "hidden-check"} if replace_public else {"hidden-check"}
    nb.cells.insert(0, nbformat.v4.new_code_cell(
        'from tlr import exercises\nexercises.set_mode("report")\nexercises.reset()'))
    if replace_public:  # count only the key's checks (a check cell that lost its tag still runs)
        nb.cells.append(nbformat.v4.new_code_cell("exercises.reset()"))
    nb.cells += [copy.deepcopy(c) for c in key.cells
                 if c.cell_type == "code" and kinds & set(_tags(c))]
    nb.cells.append(nbformat.v4.new_code_cell(
        f"import json\nprint({RESULTS_MARK!r} + json.dumps(exercises.results()))"))
    return nb


def execute(nb, timeout: int = 600, allow_errors: bool = True, cwd: str | None = None):
    """Run ``nb`` in a fresh kernel of this Python; return (executed notebook, check results)."""
    from nbclient import NotebookClient

    nb = copy.deepcopy(nb)
    client = NotebookClient(nb, timeout=timeout, allow_errors=allow_errors,
                            kernel_name="python3",
                            resources={"metadata": {"path": cwd or os.getcwd()}})
    client.execute()
    for output in nb.cells[-1].get("outputs", []):
        text = output.get("text", "")
        if RESULTS_MARK in text:
            return nb, json.loads(text.split(RESULTS_MARK, 1)[1])
    return nb, []


def grade(submission_path: str | Path, key_path: str | Path, timeout: int = 600) -> dict:
    """Grade one submitted notebook against an instructor notebook (public + hidden checks)."""
    import nbformat

    submission = nbformat.read(submission_path, as_version=4)
    key = nbformat.read(key_path, as_version=4)
    meta = key.metadata.get("tlr_exercises", {})
    got = submission.metadata.get("tlr_exercises", {}).get("chapter")
    if got and got != meta.get("chapter"):
        raise ValueError(f"{submission_path} is for chapter {got!r}, the key for "
                         f"{meta.get('chapter')!r}")
    _, res = execute(with_checks(submission, key), timeout=timeout,
                     cwd=str(Path(submission_path).resolve().parent))
    rows = []
    for ex in (e for e in meta.get("exercises", []) if e["graded"]):
        mine = [r for r in res if r["name"] == ex["label"]]
        n_total = sum(1 for c in key.cells if {"check", "hidden-check"} & set(_tags(c))
                      and re.search(rf"check\(\s*['\"]{re.escape(ex['label'])}['\"]", c.source))
        failed = [f"{'hidden' if r['hidden'] else 'public'}: {r['message']}"
                  for r in mine if not r["passed"]]
        rows.append({"label": ex["label"], "passed": sum(r["passed"] for r in mine),
                     "total": n_total, "messages": failed})
    return {"submission": str(submission_path), "chapter": meta.get("chapter"), "exercises": rows,
            "score": sum(r["passed"] for r in rows), "max_score": sum(r["total"] for r in rows)}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tlr.exercises", description=__doc__.split(
        "\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade submitted notebooks against an instructor notebook")
    g.add_argument("submissions", nargs="+")
    g.add_argument("--key", required=True, help="instructor/NAME.ipynb from make assignments")
    g.add_argument("--json", help="also write all results to this JSON file")
    g.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    reports = []
    for path in args.submissions:
        report = grade(path, args.key, timeout=args.timeout)
        reports.append(report)
        print(f"{path}: {report['score']} / {report['max_score']} checks passed")
        for row in report["exercises"]:
            print(f"  {row['label']:<28} {row['passed']}/{row['total']}"
                  + "".join(f"\n      ✗ {m}" for m in row["messages"]))
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
