"""Student and instructor notebooks from a chapter's exercises (used by tools/assignments.py).

Authoring convention, in a chapter's ``book/NAME.py`` (py:percent; the one source of truth).
Everything lives in a section whose markdown cell starts with ``## Exercises`` and that ends at
the next ``## `` heading:

- a markdown cell with a sphinx-exercise directive, whose first body line gives the difficulty,
  the time and whether the exercise is auto-graded (``:nonumber:``: Sphinx would number the
  exercises through the whole book; the notebooks number them per chapter)::

      ```{exercise} Title
      :label: chapter-short-name
      :nonumber:

      **★★ · 20 min · auto-graded**     (or: **★ · 10 min · written answer, not auto-graded**)
      ```

- its solution between two markdown cells ```` ```{solution-start} LABEL ```` (with
  ``:class: dropdown``) and ```` ```{solution-end} ````. Code cells tagged ``solution`` mark what
  the student writes with ``# BEGIN SOLUTION`` / ``# END SOLUTION`` lines (otter-grader's markers);
  the student notebook keeps the rest (signature, docstring) and replaces each block by
  ``raise NotImplementedError`` inside a function, by a comment at the top level. Code cells in
  the region without markers (demonstrations) are left out of the student notebook. A written
  answer uses a plain ```` ```{solution} LABEL ```` directive instead;
- one cell tagged ``check`` (public, in the book and the student notebook), and one or more cells
  tagged ``hidden-check`` and ``remove-cell`` (run in the book, left out of the student notebook)::

      @check("chapter-short-name")          # @check("chapter-short-name", hidden=True)
      def _():
          assert ..., "what is wrong, in words"

- setup cells that the exercises need, tagged ``exercise-setup`` (the imports cell, helpers).

The ``check`` helper and the grader live in :mod:`tlr.exercises` (installed with tlr,
so that a student notebook needs nothing else).
"""

from __future__ import annotations

import copy
import re

import nbformat

from tlr.exercises import _tags

__all__ = ["parse_exercises", "stub", "student_notebook", "instructor_notebook"]

_DIRECTIVE = re.compile(r"^(?P<fence>`{3,})\{(?P<name>[\w-]+)\}[ \t]*(?P<arg>.*)$", re.M)
_HEADER = re.compile(  # **★★ · 20 min · auto-graded**
    r"\*\*(?P<stars>★+)\s*·\s*(?P<time>[^·*]*\b(?:min|h))\s*·\s*(?P<kind>[^*]+)\*\*")
_ROLE = re.compile(r"\{[\w:-]+\}`([^`]*)`")



def _directives(md: str):
    """Yield (name, argument, options, body, start, end) for each fenced MyST directive."""
    pos = 0
    while m := _DIRECTIVE.search(md, pos):
        close = re.compile(rf"^{m['fence']}[ \t]*$", re.M).search(md, m.end())
        end = close.end() if close else len(md)
        lines = md[m.end():close.start() if close else len(md)].strip("\n").split("\n")
        options = {}
        while lines and (o := re.match(r"^:([\w-]+):\s*(.*)$", lines[0])):
            options[o[1]] = o[2].strip()
            lines.pop(0)
        yield m["name"], m["arg"].strip(), options, "\n".join(lines).strip(), m.start(), end
        pos = end


def _section(nb) -> list[int]:
    """Indices of the cells of the "## Exercises" section."""
    idx, inside = [], False
    for i, cell in enumerate(nb.cells):
        heading = cell.cell_type == "markdown" and cell.source.lstrip().startswith("## ")
        if heading:
            inside = cell.source.lstrip().startswith("## Exercises")
        if inside:
            idx.append(i)
    return idx


def parse_exercises(nb) -> list[dict]:
    """The exercises of a chapter, in order, with their check cells; raises on a broken layout."""
    exercises, current_solution = {}, None
    for i in _section(nb):
        cell = nb.cells[i]
        if current_solution:
            exercises[current_solution]["solution_cells"].append(i)
        if cell.cell_type == "markdown":
            for name, arg, opts, body, _, _ in _directives(cell.source):
                if name == "exercise":
                    label = opts.get("label")
                    if not label:
                        raise ValueError(f"cell {i}: exercise {arg!r} has no :label:")
                    head = _HEADER.search(body)
                    if not head:
                        raise ValueError(f"exercise {label}: first line must be like "
                                         "'**★★ · 20 min · auto-graded**'")
                    kind = head["kind"].strip()
                    exercises[label] = dict(
                        label=label, title=arg, stars=len(head["stars"]),
                        time=head["time"].strip(), kind=kind,
                        graded=kind.startswith("auto-graded"), public=[], hidden=[],
                        solution_cells=[])
                elif name in ("solution-start", "solution"):
                    if arg not in exercises:
                        raise ValueError(f"cell {i}: {name} for unknown exercise {arg!r}")
                    if name == "solution-start":
                        current_solution = arg
                        exercises[arg]["solution_cells"].append(i)
                elif name == "solution-end":
                    current_solution = None
        else:
            tags = _tags(cell)
            if ("# BEGIN SOLUTION" in cell.source) != ("solution" in tags) or (
                    "solution" in tags and not current_solution):
                raise ValueError(f"cell {i}: tag 'solution' iff '# BEGIN SOLUTION' markers, "
                                 "and only between solution-start and solution-end")
            for kind in ("check", "hidden-check"):
                if kind in tags:
                    m = re.search(r"check\(\s*['\"]([\w-]+)['\"]", cell.source)
                    if not m or m[1] not in exercises:
                        raise ValueError(f"cell {i}: {kind} cell names no known exercise")
                    exercises[m[1]]["public" if kind == "check" else "hidden"].append(i)
    for ex in exercises.values():
        n_pub, n_hid = len(ex["public"]), len(ex["hidden"])
        if ex["graded"] and (n_pub != 1 or n_hid < 1):
            raise ValueError(f"{ex['label']}: an auto-graded exercise needs one public check "
                             f"and at least one hidden check (has {n_pub} and {n_hid})")
        if not ex["graded"] and n_pub + n_hid:
            raise ValueError(f"{ex['label']}: checks on an exercise that is not auto-graded")
    return list(exercises.values())


def stub(source: str, label: str) -> str:
    """The student version of a solution cell: each BEGIN/END SOLUTION block replaced."""
    out, inside = [], False
    for line in source.split("\n"):
        indent = line[: len(line) - len(line.lstrip())]
        if line.strip() == "# BEGIN SOLUTION":
            inside = True
            out.append(f"{indent}# Your code here.")
            if indent:
                out.append(f'{indent}raise NotImplementedError("exercise {label}")')
        elif line.strip() == "# END SOLUTION":
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"exercise {label}: '# BEGIN SOLUTION' without '# END SOLUTION'")
    return "\n".join(out)


def _plain_markdown(md: str, exercises: dict, student: bool) -> str | None:
    """MyST → markdown that Jupyter and Colab render; None drops the cell."""
    pieces, pos = [], 0
    for name, arg, opts, body, start, end in _directives(md):
        pieces.append(md[pos:start])
        pos = end
        if name == "exercise":
            ex = exercises[opts["label"]]
            pieces.append(f"### Exercise {ex['number']}: {arg}\n\n(`{ex['label']}`) {body}")
        elif name == "solution":
            pieces.append("*Your answer:*" if student else f"**Solution.**\n\n{body}")
        elif name in ("solution-start", "solution-end"):
            pass
        else:
            pieces.append(md[start:end])
    text = _ROLE.sub(lambda m: m[1].split("<")[0].strip(), "".join(pieces) + md[pos:]).strip()
    return text or None


def _assignment(nb, chapter: str, student: bool):
    exercises = {ex["label"]: ex for ex in parse_exercises(nb)}
    for n, ex in enumerate(exercises.values(), 1):
        ex["number"] = n
    drop = {i for ex in exercises.values() for i in ex["solution_cells"]  # the whole region
            if "solution" not in _tags(nb.cells[i])} if student else set()
    drop |= {i for ex in exercises.values() for i in ex["hidden"]} if student else set()
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    title = next((c.source.split("\n")[0].lstrip("# ") for c in nb.cells
                  if c.cell_type == "markdown"), chapter)
    intro = (f"# Exercises: {title}\n\nFrom the chapter *{title}* of the book *Learning recurrent "
             "models with temporally local rules*. ")
    intro += ("Run the cells in order. Fill in each code cell where it says `# Your code here`, "
              "then run the check cell below it: ✓ means it passes, ✗ says what is wrong. Your "
              "instructor may grade with further (hidden) checks." if student else
              "**Instructor version**: full solutions and the hidden checks. It is the key for "
              "`python -m tlr.exercises grade`; do not hand it out.")
    cells = [nbformat.v4.new_markdown_cell(intro), copy.deepcopy(code[0])]
    if student:
        cells.append(nbformat.v4.new_code_cell(
            'from tlr import exercises\n\nexercises.set_mode("report")  # a failing check '
            "prints ✗ and the notebook carries on"))
    cells += [copy.deepcopy(c) for c in nb.cells
              if c.cell_type == "code" and "exercise-setup" in _tags(c)]
    for i in _section(nb):
        if i in drop:
            continue
        cell = copy.deepcopy(nb.cells[i])
        if cell.cell_type == "markdown":
            cell.source = _plain_markdown(cell.source, exercises, student)
            if cell.source is None:
                continue
        elif student and "solution" in _tags(cell):
            label = next(lb for lb, ex in exercises.items() if i in ex["solution_cells"])
            cell.source = stub(cell.source, label)
        cells.append(cell)
    if student:
        cells.append(nbformat.v4.new_markdown_cell("## Your progress"))
        cells.append(nbformat.v4.new_code_cell("exercises.summary()"))
    out = nbformat.v4.new_notebook(cells=cells)
    for n, cell in enumerate(out.cells):
        cell["id"] = f"{chapter.replace('_', '-')}-{n}"  # stable ids: the same input, the same file
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    out.metadata = {"kernelspec": nb.metadata.get("kernelspec", {
        "name": "python3", "display_name": "Python 3", "language": "python"}),
        "language_info": {"name": "python"},
        "tlr_exercises": {"chapter": chapter, "version": "student" if student else "instructor",
                          "exercises": [{k: ex[k] for k in ("label", "title", "stars",
                                                            "time", "graded")}
                                        for ex in exercises.values()]}}
    nbformat.validator.normalize(out)
    return out


def student_notebook(nb, chapter: str):
    """Student version: stubs instead of solutions, public checks, report mode, no outputs."""
    return _assignment(nb, chapter, student=True)


def instructor_notebook(nb, chapter: str):
    """Instructor version (the grading key): full solutions, public and hidden checks."""
    return _assignment(nb, chapter, student=False)
