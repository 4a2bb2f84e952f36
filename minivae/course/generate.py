"""Generate the student notebooks ``exercises/NN_name.ipynb`` from ``solutions/NN_name.ipynb``.

The solution notebook is the single source (nbgrader's format, schema 3). The student version
is what nbgrader's ``generate_assignment`` would give, written deterministically:

- each region between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (markers included) becomes
  ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` at the indentation of the BEGIN line
  (in a markdown cell: ``YOUR ANSWER HERE``), exactly as nbgrader's ``ClearSolutions`` does;
- each region between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` is removed;
- outputs and execution counts are cleared; cell metadata (nbgrader's included) is kept.

``check_exercises`` compares what would be written with what is on disk, byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
TEXT_STUB = ("YOUR ANSWER HERE",)

NBGRADER_KEYS = frozenset({"grade", "solution", "locked", "points", "grade_id", "schema_version"})
SCHEMA_VERSION = 3
_GRADE_ID = re.compile(r"^[A-Za-z0-9_\-]+$")
_MAGIC = re.compile(r"^\s*[%!]")

ROOT = Path(__file__).resolve().parents[2]


class NotebookFormatError(ValueError):
    """A solution notebook breaks the course format; the message lists every problem found."""


# ----------------------------------------------------------------------------- helpers


def _nbgrader(cell: Any) -> dict[str, Any]:
    return dict(cell.get("metadata", {}).get("nbgrader", {}))


def _where(index: int, cell: Any) -> str:
    grade_id = _nbgrader(cell).get("grade_id")
    return f"cell {index}" + (f" ({grade_id})" if grade_id else "")


def is_solution_cell(cell: Any) -> bool:
    return bool(_nbgrader(cell).get("solution", False))


def is_graded_cell(cell: Any) -> bool:
    return bool(_nbgrader(cell).get("grade", False))


def _regions(lines: list[str], begin: str, end: str, what: str) -> list[tuple[int, int]]:
    """(begin line, end line) of each region; ValueError if markers are nested or unbalanced."""
    regions: list[tuple[int, int]] = []
    start: int | None = None
    for i, line in enumerate(lines):
        if begin in line:
            if start is not None:
                raise ValueError(
                    f"nested '{begin}' (line {i + 1}; the previous one is on line {start + 1})"
                )
            start = i
        elif end in line:
            if start is None:
                raise ValueError(f"'{end}' on line {i + 1} without a '{begin}' before it")
            regions.append((start, i))
            start = None
    if start is not None:
        raise ValueError(f"'{begin}' on line {start + 1} has no '{end}' ({what} region not closed)")
    return regions


# ----------------------------------------------------------------------------- validation


def validate_solution(nb: Any, name: str = "notebook") -> None:
    """Check a solution notebook against the course format; raise NotebookFormatError listing
    every problem (metadata keys, schema version, grade_ids, points, markers, magics)."""
    problems: list[str] = []
    seen: dict[str, int] = {}
    if nb.get("nbformat") != 4:
        problems.append(f"nbformat {nb.get('nbformat')} (expected 4)")
    for index, cell in enumerate(nb.cells):
        where = _where(index, cell)
        meta = cell.get("metadata", {}).get("nbgrader")
        lines = cell.source.split("\n")
        if meta is not None:
            extra = sorted(set(meta) - NBGRADER_KEYS)
            if extra:
                problems.append(
                    f"{where}: metadata.nbgrader has keys {extra} that nbgrader does not know "
                    f"(allowed: {sorted(NBGRADER_KEYS)}; put project markers in metadata.tags)"
                )
            if meta.get("schema_version") != SCHEMA_VERSION:
                problems.append(
                    f"{where}: metadata.nbgrader.schema_version is {meta.get('schema_version')!r}, "
                    f"expected {SCHEMA_VERSION}"
                )
            for key in ("grade", "solution", "locked"):
                if not isinstance(meta.get(key), bool):
                    problems.append(
                        f"{where}: metadata.nbgrader.{key} must be true or false, "
                        f"got {meta.get(key)!r}"
                    )
            if cell.cell_type == "markdown" and bool(meta.get("grade")) != bool(
                meta.get("solution")
            ):
                problems.append(
                    f"{where}: nbgrader needs a markdown cell to be both a solution and a graded "
                    "cell (a written answer graded by hand), or neither"
                )
            grade_id = meta.get("grade_id")
            if not isinstance(grade_id, str) or not grade_id:
                problems.append(f"{where}: metadata.nbgrader has no grade_id")
            elif not _GRADE_ID.match(grade_id):
                problems.append(
                    f"{where}: grade_id {grade_id!r} may hold only letters, digits, '_' and '-'"
                )
            elif grade_id in seen:
                problems.append(
                    f"{where}: grade_id {grade_id!r} is used twice (also cell {seen[grade_id]})"
                )
            else:
                seen[grade_id] = index
            if meta.get("grade"):
                points = meta.get("points")
                if isinstance(points, bool) or not isinstance(points, int | float) or points < 0:
                    problems.append(
                        f"{where}: a graded cell needs metadata.nbgrader.points (a number >= 0), "
                        f"got {points!r}"
                    )
            elif "points" in meta:
                problems.append(f"{where}: points on a cell that is not graded (grade is false)")
            if meta.get("solution") and meta.get("locked"):
                problems.append(f"{where}: a solution cell cannot be locked")
        try:
            solution_regions = _regions(lines, BEGIN_SOLUTION, END_SOLUTION, "solution")
            hidden_regions = _regions(lines, BEGIN_HIDDEN, END_HIDDEN, "hidden tests")
        except ValueError as err:
            problems.append(f"{where}: {err}")
            continue
        if solution_regions and not (meta or {}).get("solution"):
            problems.append(
                f"{where}: has '{BEGIN_SOLUTION}' but is not a solution cell "
                "(metadata.nbgrader.solution is not true)"
            )
        if hidden_regions and not (meta or {}).get("grade"):
            problems.append(
                f"{where}: has '{BEGIN_HIDDEN}' but is not a graded test cell "
                "(metadata.nbgrader.grade is not true)"
            )
        if cell.cell_type == "code":
            for i, line in enumerate(lines):
                if _MAGIC.match(line):
                    problems.append(
                        f"{where}: line {i + 1} is an IPython magic or shell command "
                        f"({line.strip()[:40]!r}); solution notebooks must be plain Python"
                    )
    if not any(is_graded_cell(c) for c in nb.cells):
        problems.append("no graded test cell (metadata.nbgrader.grade true) in the notebook")
    if problems:
        raise NotebookFormatError(
            f"{name}: {len(problems)} problem(s) with the solution notebook:\n  - "
            + "\n  - ".join(problems)
        )


# ----------------------------------------------------------------------------- generation


def clear_solutions(source: str, cell_type: str = "code") -> str:
    """Replace each solution region (markers included) by the stub, at the BEGIN line's indent."""
    lines = source.split("\n")
    stub = CODE_STUB if cell_type == "code" else TEXT_STUB
    regions = _regions(lines, BEGIN_SOLUTION, END_SOLUTION, "solution")
    out: list[str] = []
    last = 0
    for begin, end in regions:
        out.extend(lines[last:begin])
        match = re.match(r"\s*", lines[begin])
        indent = match.group(0) if match else ""
        out.extend(indent + line for line in stub)
        last = end + 1
    out.extend(lines[last:])
    return "\n".join(out)


def remove_hidden_tests(source: str) -> str:
    """Remove each hidden-tests region, markers included."""
    lines = source.split("\n")
    regions = _regions(lines, BEGIN_HIDDEN, END_HIDDEN, "hidden tests")
    out: list[str] = []
    last = 0
    for begin, end in regions:
        out.extend(lines[last:begin])
        last = end + 1
    out.extend(lines[last:])
    return "\n".join(out)


def make_exercise(solution: Any, name: str = "notebook") -> Any:
    """The student version of a (validated) solution notebook, as a new notebook node."""
    validate_solution(solution, name)
    nb = nbformat.from_dict(solution)  # a deep copy
    for cell in nb.cells:
        if is_solution_cell(cell):
            if BEGIN_SOLUTION in cell.source:
                cell.source = clear_solutions(cell.source, cell.cell_type)
            else:  # like nbgrader: a solution cell without a region is replaced as a whole
                stub = CODE_STUB if cell.cell_type == "code" else TEXT_STUB
                cell.source = "\n".join(stub)
        if BEGIN_HIDDEN in cell.source:
            cell.source = remove_hidden_tests(cell.source)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    return nb


def notebook_text(nb: Any) -> str:
    """Deterministic JSON of a notebook: sorted keys, indent 1, trailing newline."""
    nbformat.validate(nb)
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def exercise_text(solution_path: Path) -> str:
    solution = nbformat.read(solution_path, as_version=4)
    return notebook_text(make_exercise(solution, str(solution_path)))


# ----------------------------------------------------------------------------- directories


def display_path(path: Path) -> str:
    """``path`` relative to the current directory where it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@dataclass
class Outcome:
    """What generating or checking a directory found."""

    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    out_of_date: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)
    stray: list[Path] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.out_of_date or self.missing or self.stray or self.invalid)

    def problems(self) -> list[str]:
        lines = [f"out of date: {display_path(p)}" for p in self.out_of_date]
        lines += [f"missing: {display_path(p)}" for p in self.missing]
        lines += [
            f"stray (no solution notebook generates it): {display_path(p)}" for p in self.stray
        ]
        lines += [f"invalid solution notebook: {m}" for m in self.invalid]
        return lines


def solution_notebooks(solutions: Path) -> list[Path]:
    return sorted(p for p in solutions.glob("*.ipynb") if p.is_file())


def _pairs(solutions: Path, exercises: Path) -> Iterable[tuple[Path, Path]]:
    for path in solution_notebooks(solutions):
        yield path, exercises / path.name


def generate_exercises(solutions: Path, exercises: Path, *, check: bool = False) -> Outcome:
    """Write (or, with ``check``, only compare) every exercise notebook; report what was found."""
    outcome = Outcome()
    expected_names = set()
    for solution_path, exercise_path in _pairs(solutions, exercises):
        expected_names.add(exercise_path.name)
        try:
            text = exercise_text(solution_path)
        except (NotebookFormatError, ValueError) as err:
            outcome.invalid.append(str(err))
            continue
        current = exercise_path.read_bytes() if exercise_path.exists() else None
        if current == text.encode("utf-8"):
            outcome.unchanged.append(exercise_path)
        elif check:
            (outcome.missing if current is None else outcome.out_of_date).append(exercise_path)
        else:
            exercise_path.parent.mkdir(parents=True, exist_ok=True)
            exercise_path.write_bytes(text.encode("utf-8"))
            outcome.written.append(exercise_path)
    if exercises.is_dir():
        for path in sorted(exercises.glob("*.ipynb")):
            if path.name not in expected_names:
                outcome.stray.append(path)
    return outcome


def default_dirs() -> tuple[Path, Path]:
    """solutions/ and exercises/ of the current directory if it has solutions/, else the repo's."""
    base = Path.cwd() if (Path.cwd() / "solutions").is_dir() else ROOT
    return base / "solutions", base / "exercises"
